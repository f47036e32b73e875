"""The docs agree with the code, checked without running anything.

- Every `python -m experiments.* / jgan.* ...` command in README.md, docs/*.md and the
  experiments' docstrings, in fenced code or inline code, is parsed by its module's own parser;
  an experiment's flags and `--set`s are also applied to its config (`jgan.cli.dry_run`), so a
  stale flag, field or value fails here. Placeholders (`DIR`, `$i`, `<run>`, ...) get a value
  that fits their flag; `a|b` lists and `[--opt X]` brackets are expanded.
- Every repository path the docs name (`docs/x.png`, `benchmarks/x.sh`, `jgan/...py`), every
  relative link and its `#anchor`, and every script that a command runs exists.
- Figures that the README and docs quote from a table in docs/results.md equal its cells (and
  tables copied from one equal it); the run directories the docs name are the ones the commands
  write; the sketch in docs/adding_a_family.md is the real Pix2Pix module, abridged.
"""

import ast
import builtins
import dataclasses
import functools
import importlib
import re
import shlex
from pathlib import Path

import pytest

from jgan import __main__ as entry
from jgan.cli import DryRun, dry_run
from jgan.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXPERIMENTS = sorted((REPO / "experiments").glob("[a-z]*.py"))

# Documented commands that are not checked, and why.
SKIPPED = {
    "pytest": "not a jgan module",
    "experiments.<name>": "a template for every experiment; the commands that name one check "
                          "its flags",
}
# Values for placeholders, by the flag they follow; any other placeholder becomes a string.
PLACEHOLDER_VALUES = {"--steps": "2", "--step": "2", "--seed": "0", "--batch-size": "64",
                      "--batch": "8", "--num": "16", "--num-processes": "4", "--process-id": "0",
                      "--method": "gan", "--dataset": "mnist", "--psi": "0.7"}
PLACEHOLDER = re.compile(r"^(\$\w+|\$\{\w+\}|<[^>]+>|[A-Z][A-Z0-9_]*(:\d+)?)$")


@dataclasses.dataclass(frozen=True)
class Code:
    source: str  # "docs/gan.md:31"
    text: str  # one logical line of a fenced block, or an inline span, newlines as spaces
    fenced: bool  # a line of a code block (or an indented docstring line), not inline code


def fenced_and_inline(path: Path, text: str) -> list[Code]:
    """Each logical line of the fenced blocks and each inline code span of the rest, with the
    line it starts on."""
    name = path.relative_to(REPO).as_posix()
    lines, prose, fence = text.split("\n"), [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fence = not fence
            prose.append("")
        else:
            prose.append("" if fence else line)
    fenced = [line if not prose_line and not line.lstrip().startswith("```") else ""
              for line, prose_line in zip(lines, prose)]
    codes = code_lines(name, fenced)
    rest = "\n".join(prose)
    for match in re.finditer(r"`((?:[^`\n]|\n(?![ \t]*\n))+)`", rest):
        number = rest.count("\n", 0, match.start()) + 1
        codes.append(Code(f"{name}:{number}", " ".join(match.group(1).split()), False))
    return codes


def code_lines(name: str, lines: list[str]) -> list[Code]:
    """The logical lines of shell code (continuations joined, comments cut), by first line."""
    codes, pending = [], None
    for number, line in enumerate(lines, 1):
        line = re.sub(r"(^|\s)#.*", "", line).rstrip()
        start, joined = pending or (number, "")
        joined += " " + line.removesuffix("\\")
        pending = (start, joined) if line.endswith("\\") else None
        if pending is None and joined.strip():
            codes.append(Code(f"{name}:{start}", " ".join(joined.split()), True))
    return codes


def docstring_code(path: Path) -> list[Code]:
    """The command lines of an experiment's docstring, the indented ones (each says how to run
    the experiment, or what to run after it)."""
    module = ast.parse(path.read_text())
    docstring = module.body[0].value.value if ast.get_docstring(module) else ""
    first = module.body[0].lineno if docstring else 1
    lines = [line if line.startswith("    ") else "" for line in docstring.split("\n")]
    return code_lines(path.relative_to(REPO).as_posix(), [""] * (first - 1) + lines)


@functools.cache
def all_code() -> list[Code]:
    codes = [code for doc in DOCS for code in fenced_and_inline(doc, doc.read_text())]
    return codes + [code for path in EXPERIMENTS for code in docstring_code(path)]


def shell_words(tail: str) -> list[str]:
    """A command's arguments, cut at the shell's `&&`, `;`, `&`, `|` or a closing quote."""
    return shlex.split(re.split(r"\s(?:&&|\|\||&|\|)(?:\s|$)|;|\"|`", tail)[0])


def python_m_commands(code: Code):
    """`(module, args)` of each `python -m MODULE ARGS` in a line of code, and of each `jgan
    COMMAND ARGS` as the module that the `jgan` command runs for it (`jgan.__main__`)."""
    for match in re.finditer(r"python -m (\S+)(.*)", code.text):
        if match.group(1) != "jgan":
            yield match.group(1), shell_words(match.group(2))
    commands = "|".join(["train", "generate", *map(re.escape, entry.TOOLS)])
    for match in re.finditer(rf"(?:^|[\s`(])(?:python -m )?jgan ({commands})(?![\w-])(.*)",
                             code.text):
        args = shell_words(match.group(2))
        if match.group(1) in entry.TOOLS:
            yield entry.TOOLS[match.group(1)][0], args
        elif args and match.group(1) == "train":
            yield f"experiments.{args[0]}", args[1:]
        elif len(args) > 1:  # generate EXPERIMENT RUN ...
            yield f"experiments.{args[0]}", ["--generate", *args[1:]]


def expand(args: list[str]) -> list[list[str]]:
    """`[--opt X]` as `--opt X`, `...` dropped, and one command per alternative of `a|b|c`
    (the i-th command takes the i-th alternative of every list)."""
    tokens = []
    for arg in args:
        arg = arg.removeprefix("[").removesuffix("]")
        if arg and arg != "..." and arg != "|":
            tokens.append(arg.split("|") if re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", arg) else [arg])
    count = max((len(options) for options in tokens), default=1)
    return [[options[i % len(options)] for options in tokens] for i in range(count)]


def fill_placeholders(args: list[str]) -> list[str]:
    filled = []
    for arg in args:
        if PLACEHOLDER.match(arg):
            flag = filled[-1] if filled and filled[-1].startswith("--") else None
            arg = PLACEHOLDER_VALUES.get(flag, "placeholder")
        filled.append(arg)
    return filled


def documented_commands():
    """One pytest param per documented command (and per alternative of its `a|b` lists)."""
    params = []
    for code in all_code():
        for module, args in python_m_commands(code):
            if module in SKIPPED:
                params.append(pytest.param(module, args, id=f"{code.source} {module}",
                                           marks=pytest.mark.skip(reason=SKIPPED[module])))
                continue
            for i, argv in enumerate(expand(args)):
                params.append(pytest.param(module, fill_placeholders(argv),
                                           id=f"{code.source} {module} {i}"))
    return params


def check_command(module_name: str, argv: list[str]):
    """Parse `argv` with `python -m module_name`'s own parser; run nothing. Returns what the
    parse gave: an experiment's `jgan.cli.DryRun`, a tool's `argparse.Namespace`."""
    module = importlib.import_module(module_name)
    own = vars(module)
    if "parse_config" in own and own["parse_config"].__module__ == module_name:
        # A trainer with a command line of its own (experiments.dann).
        return DryRun(own["parser"](), *own["parse_config"](argv))
    if "parser" in own:
        # With no arguments a tool is named in the text (`jgan.tools.sample draws the same
        # way`), not run: its parser is built, and its required arguments not asked for.
        return own["parser"]().parse_args(argv) if argv else own["parser"]()
    if module_name.startswith("experiments."):
        return dry_run(module.main, argv)
    assert not hasattr(module, "__path__"), (
        f"python -m {module_name} runs its __main__: teach check_command its arguments")
    # A module with no flags (jgan.environment): it runs as a script, and takes none.
    assert not argv, f"{module_name} takes no arguments"
    assert 'if __name__ == "__main__":' in Path(module.__file__).read_text()
    return None


@pytest.mark.parametrize("module, argv", documented_commands())
def test_documented_command_parses(module, argv, capsys):
    assert module.startswith(("experiments.", "jgan.")), f"{module}: add it to SKIPPED, or why"
    try:
        check_command(module, argv)
    except SystemExit as error:
        if error.code == 0:  # --help
            return
        pytest.fail(f"python -m {module} {shlex.join(argv)}: argparse exit {error.code}: "
                    f"{capsys.readouterr().err.strip()}")
    except UserError as error:
        pytest.fail(f"python -m {module} {shlex.join(argv)}: {error}")


def test_the_docs_hold_commands_of_every_kind():
    """The extraction sees what it should: a fenced block, inline code across a line break, a
    shell loop, a docstring."""
    found = {(code.source.split(":")[0], module, " ".join(args))
             for code in all_code() for module, args in python_m_commands(code)}
    assert ("README.md", "experiments.dcgan", "") in found
    assert ("README.md", "experiments.biggan", "--generate RUN --labels 7 --truncation 0.5"
            ) in found
    assert ("README.md", "experiments.dcgan",
            "--batch-size 512 --coordinator 127.0.0.1:12355 --num-processes 4 --process-id $I"
            ) in found
    assert ("docs/translation.md", "jgan.translate", "RUN_DIR --input DIR --out DIR "
            "[--direction AtoB|BtoA] [--step N] [--seed S]") in found
    assert ("experiments/pix2pix.py", "experiments.pix2pix", "--data-dir ../shared/datasets"
            ) in found
    assert expand(["--method", "gan|unrolled", "--dataset", "ring|grid|x", "[--step", "N]"]) == [
        ["--method", "gan", "--dataset", "ring", "--step", "N"],
        ["--method", "unrolled", "--dataset", "grid", "--step", "N"],
        ["--method", "gan", "--dataset", "x", "--step", "N"]]
    assert fill_placeholders(["RUN", "--steps", "N", "--out", "DIR", "--x", "$i"]) == [
        "placeholder", "--steps", "2", "--out", "placeholder", "--x", "placeholder"]


@pytest.mark.parametrize("module, argv, refused", [
    ("experiments.dcgan", ["--stpes", "2"], SystemExit),
    ("experiments.dcgan", ["--set", "model.no_such_field=1"], UserError),
    ("experiments.dcgan", ["--preset", "nope"], SystemExit),
    ("experiments.biggan", ["--generate", "RUN", "--psi", "0.5"], SystemExit),  # StyleGAN's flag
    ("experiments.stylegan", ["--generate", "RUN", "--labels", "7"], SystemExit),  # BigGAN's
    ("experiments.mode_collapse", ["--method", "nope"], SystemExit),
    ("experiments.mode_collapse", ["--unroll", "x"], SystemExit),
    ("experiments.ssgan", ["--num-labels", "many"], SystemExit),
    ("experiments.dann", ["--set", "no_such_field=1"], UserError),
    ("experiments.dann", ["--loss", "hinge"], SystemExit),
    ("jgan.tools.sample", ["RUN", "--labesl", "3"], SystemExit),
    ("jgan.tools.components", ["import", "RUN"], SystemExit),
    ("jgan.environment", ["--verbose"], AssertionError),
])
def test_the_check_refuses_what_the_command_refuses(module, argv, refused):
    with pytest.raises(refused):
        check_command(module, argv)


def test_a_dry_run_resolves_the_config_and_run_directory():
    run = check_command("experiments.dcgan", ["--preset", "paper", "--set", "train.steps=7"])
    assert (run.config.name, run.config.train.steps, run.workdir) == (
        "dcgan_paper", 7, "runs/dcgan_paper_mnist")
    sampling = check_command("experiments.biggan", ["--generate", "RUN", "--labels", "7"])
    assert "--truncation" in sampling.parser.format_help()


def prose_and_fences(text: str) -> tuple[str, str]:
    """The text outside fenced blocks and inside them, each with the other's lines blanked."""
    outside, inside, fence = [], [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
            line = ""
        outside.append("" if fence else line)
        inside.append(line if fence else "")
    return "\n".join(outside), "\n".join(inside)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces
    as `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.cache
def anchors(path: Path) -> set[str]:
    seen, found = {}, set()
    for heading in re.findall(r"^#+ +(.+)$", prose_and_fences(path.read_text())[0], re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(doc: Path):
    """`(line, target)` of each markdown link and image outside fenced code."""
    prose = prose_and_fences(doc.read_text())[0]
    for match in re.finditer(r"\]\(([^)\s]+)\)", prose):
        yield prose.count("\n", 0, match.start()) + 1, match.group(1)


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_relative_links_and_their_anchors_exist(doc):
    broken = []
    for line, target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"line {line}: {target}: no file {file.relative_to(REPO)}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"line {line}: {target}: no heading of "
                          f"{file.relative_to(REPO).as_posix()} has the anchor #{anchor}")
    assert not broken, "\n".join(broken)


# Repository paths as the docs write them: from a top-level folder of the repository.
REPO_PATH = re.compile(r"(?<![\w./~-])((?:docs|benchmarks|jgan|experiments|tests|\.ci)/"
                       r"[a-z0-9_./{},-]*[a-z0-9_/}])")


def repository_paths(text: str) -> set[str]:
    """Every path from a top-level folder named in `text`, `{a,b}` expanded; a `<name>` ends
    one (`experiments/<name>.py` names the folder)."""
    paths = set()
    for path in REPO_PATH.findall(text):
        alternatives = re.search(r"\{([^}]*)\}", path)
        if alternatives:
            paths.update(path.replace(alternatives.group(0), name)
                         for name in alternatives.group(1).split(","))
        else:
            paths.add(path)
    return paths


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_every_repository_path_named_exists(doc):
    missing = sorted(path for path in repository_paths(doc.read_text())
                     if not (REPO / path).exists())
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def script_commands():
    """`(source, runner, script)` of every `bash X.sh` or `python X.py` in the docs' code, and
    of every line of a code block that runs `benchmarks/X` or `./X` itself (runner None)."""
    for code in all_code():
        for match in re.finditer(r"\b(bash|python) +((?:\./)?(?:benchmarks|\.ci)/[\w./-]+)",
                                 code.text):
            yield code.source, match.group(1), match.group(2)
        direct = re.match(r"(?:[A-Z_]+=\S* +)*((?:\./)?(?:benchmarks|\.ci)/[\w./-]+)", code.text)
        if code.fenced and direct:
            yield code.source, None, direct.group(1)


def test_every_script_a_command_runs_exists():
    found = list(script_commands())
    assert ("benchmarks/mode_collapse_runs.sh" in {script for _, _, script in found})
    problems = []
    for source, runner, script in found:
        path = REPO / script
        if not path.is_file():
            problems.append(f"{source}: {script} does not exist")
        elif runner is None and not path.stat().st_mode & 0o111:
            problems.append(f"{source}: {script} is run directly but is not executable "
                            f"(write `bash {script}`)")
    assert not problems, "\n".join(problems)


def tables_under(doc: Path, heading: str) -> list[list[dict[str, str]]]:
    """The tables between `heading` (its text, any level) and the next heading of the same or a
    higher level, each a list of rows by column header."""
    lines = prose_and_fences(doc.read_text())[0].split("\n")
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"#+ +{re.escape(heading)}",
                                                                   line.strip()))
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    tables, rows = [], None
    for line in lines[start + 1:]:
        depth = len(line) - len(line.lstrip("#"))
        if 0 < depth <= level and line[depth:depth + 1] == " ":
            break
        if not line.startswith("|"):
            rows = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if rows is None:
            rows, header = [], cells
            tables.append(rows)
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            rows.append(dict(zip(header, cells)))
    return tables


def numbers(text: str) -> list[float]:
    """The numbers written in `text` (`1,180` is 1180), footnote marks like `(b)` aside."""
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?(?![\d,])", text)]


RESULTS = REPO / "docs/results.md"
MNIST = (RESULTS, "MNIST, default commands", 0)
RING = (RESULTS, "Mode collapse on the 2-D ring and grid", 0)
DIGITS_500 = (RESULTS, "Limited data: augmentation", 0)
QUICK_START = (REPO / "docs/gan.md", "The quick start", 0)
DEFAULT_ROW = "**the same, its convolutions run by Eigen (the default since 2026-12-08)**"
D_RATE_ROW = "the same with D's rate 1e-4 (the default from 2026-12-07, later)"
OLD_DEFAULT_ROW = ("the same, 5000 steps, G's EMA (half-life 10 kimg) sampled with standing "
                   "statistics (the default for part of 2026-12-07)")
NO_CUTOUT_ROW = "the same without cutout (`--set train.augment_ops=color,translation`)"
WITH_CUTOUT = "dcgan with cutout, D at 2e-4"
DIFFAUGMENT_ROW = "minibatch discrimination + DiffAugment (colour, translation, cutout)"
MINIBATCH_ROW = "minibatch discrimination, 50 kernels of 5"
NO_DIFFAUGMENT = "dcgan without DiffAugment"
NO_EMA = "dcgan, 4000 steps, no EMA"

# Figures quoted from a table: (doc, the quote, (table's doc, heading, index), row, column).
# Every number of the quote must be one of the cell's.
QUOTES = [
    ("README.md", "took 8 min 8 s", MNIST, "dcgan", "wall"),
    ("README.md", "at about 680 img/s", MNIST, "dcgan", "img/s"),
    ("README.md", "classifier-FID 43.7", MNIST, "dcgan", "FID"),
    ("README.md", "43.2 at `--seed 1`", QUICK_START, DEFAULT_ROW, "FID"),
    ("README.md", "45.3 and 44.7 before", QUICK_START, D_RATE_ROW, "FID"),
    ("README.md", "60.5 with DiffAugment's cutout", MNIST, WITH_CUTOUT, "FID"),
    ("README.md", "72.0 after", MNIST, NO_EMA, "FID"),
    ("README.md", "104.9 without DiffAugment", MNIST, NO_DIFFAUGMENT, "FID"),
    ("README.md", "129.8 with `--preset paper`", MNIST, "dcgan, paper", "FID"),
    ("README.md", "between 7.5% and 13.4%", QUICK_START, DEFAULT_ROW, "rarest / commonest digit"),
    ("README.md", "collapses without it (classifier-FID 952.5)", DIGITS_500, "none", "FID"),
    ("README.md", "with DiffAugment reaches FID 77.4", DIGITS_500, "diffaugment", "FID"),
    ("README.md", "below its 104.9", MNIST, NO_DIFFAUGMENT, "FID"),
    ("docs/gan.md", "CGAN 8.6", MNIST, "cgan", "FID"),
    ("docs/gan.md", "ACGAN 50.7", MNIST, "acgan", "FID"),
    ("docs/gan.md", "DCGAN 43.7", MNIST, "dcgan", "FID"),
    ("docs/gan.md", "(60.5 with cutout", MNIST, WITH_CUTOUT, "FID"),
    ("docs/gan.md", "72.0 at", MNIST, NO_EMA, "FID"),
    ("docs/gan.md", "EMA, 104.9 without DiffAugment", MNIST, NO_DIFFAUGMENT, "FID"),
    ("docs/gan.md", "129.8 with `--preset paper`)", MNIST, "dcgan, paper", "FID"),
    ("docs/gan.md", "SNGAN 134.3", MNIST, "sngan", "FID"),
    ("docs/gan.md", "WGAN-GP 190.7", MNIST, "wgan_gp", "FID"),
    ("docs/gan.md", "WGAN 328.6", MNIST, "wgan", "FID"),
    ("docs/gan.md", "GAN 399.4", MNIST, "gan", "FID"),
    ("docs/gan.md", "real training images 1.8", MNIST, "real data (floor)", "FID"),
    ("docs/gan.md", "took FID from 104.9", QUICK_START, MINIBATCH_ROW, "FID"),
    ("docs/gan.md", "to 72.0 at seed", QUICK_START, DIFFAUGMENT_ROW, "FID"),
    ("docs/gan.md", "and 76.0 at seed 1", QUICK_START, DIFFAUGMENT_ROW, "FID"),
    ("docs/gan.md", "scores 60.5 and 60.3", QUICK_START, OLD_DEFAULT_ROW, "FID"),
    ("docs/gan.md", "fell to 43.9 and 51.0", QUICK_START, NO_CUTOUT_ROW, "FID"),
    ("docs/gan.md", "gave 45.3 and 44.7", QUICK_START, D_RATE_ROW, "FID"),
    ("docs/gan.md", "43.7 and 43.2 over two seeds", QUICK_START, DEFAULT_ROW, "FID"),
    ("docs/results.md", "DCGAN 43.7", MNIST, "dcgan", "FID"),
    ("docs/results.md", "(60.5 with cutout", MNIST, WITH_CUTOUT, "FID"),
    ("docs/results.md", "72.0 after", MNIST, NO_EMA, "FID"),
    ("docs/results.md", "EMA, 104.9 without DiffAugment", MNIST, NO_DIFFAUGMENT, "FID"),
    ("docs/results.md", "129.8 at `--preset paper`)", MNIST, "dcgan, paper", "FID"),
    ("docs/results.md", "SNGAN 134.3", MNIST, "sngan", "FID"),
    ("docs/results.md", "WGAN-GP 190.7", MNIST, "wgan_gp", "FID"),
    ("docs/results.md", "without DiffAugment, FID 104.9", MNIST, NO_DIFFAUGMENT, "FID"),
    ("experiments/dcgan.py", "from 129.8 to", QUICK_START, "none (`--preset paper`)", "FID"),
    ("experiments/dcgan.py", "to 104.9", QUICK_START, MINIBATCH_ROW, "FID"),
    ("experiments/dcgan.py", "43.7 and 43.2", QUICK_START, DEFAULT_ROW, "FID"),
    ("experiments/dcgan.py", "(8 min 8 s", MNIST, "dcgan", "wall"),
]
# Tables that copy columns of another: (copy, source); rows match by their first `name`.
TABLE_COPIES = [
    ((REPO / "README.md", "Families", 1), RING),
    ((REPO / "docs/mode_collapse.md", "Measured", 0), RING),
]


def cell(table, row: str, column: str) -> str:
    doc, heading, index = table
    rows = tables_under(doc, heading)[index]
    matches = [found for found in rows if found[next(iter(found))] == row]
    assert len(matches) == 1, f"{doc.name} '{heading}' table {index}: no one row {row!r}"
    return matches[0][column]


@pytest.mark.parametrize("doc, quote, table, row, column", QUOTES,
                         ids=[f"{doc} {quote}" for doc, quote, *_ in QUOTES])
def test_a_quoted_figure_equals_its_table(doc, quote, table, row, column):
    text = " ".join((REPO / doc).read_text().split())
    assert quote in text, f"{doc} no longer says {quote!r}: update QUOTES with the new wording"
    value = cell(table, row, column)
    assert numbers(quote) and set(numbers(quote)) <= set(numbers(value)), (
        f"{doc} says {quote!r}, but {table[0].name}'s table under '{table[1]}' has {value!r} "
        f"for {row}, {column}")


def row_name(row: dict) -> str:
    first = row[next(iter(row))]
    named = re.match(r"`([^`]+)`", first)
    return named.group(1) if named else first


@pytest.mark.parametrize("copy, source", TABLE_COPIES,
                         ids=[copy[0].name for copy, _ in TABLE_COPIES])
def test_a_copied_table_equals_its_source(copy, source):
    copied = tables_under(copy[0], copy[1])[copy[2]]
    original = {row_name(row): row for row in tables_under(source[0], source[1])[source[2]]}
    compared = 0
    for row in copied:
        assert row_name(row) in original, f"{copy[0].name}: no row {row_name(row)!r} in the source"
        for column, value in row.items():
            if column in original[row_name(row)] and column != next(iter(row)):
                assert value == original[row_name(row)][column], (
                    f"{copy[0].name}, {row_name(row)}, {column}: {value!r} against the source's "
                    f"{original[row_name(row)][column]!r}")
                compared += 1
    assert compared >= 2 * len(copied)


def test_quoted_numbers_are_read_as_written():
    assert numbers("6 min 9 s (b)") == [6, 9]
    assert numbers("~1,180 (a)") == [1180]
    assert numbers("**5.7% (6) / 13.3% (3)**") == [5.7, 6, 13.3, 3]


def default_run_directories() -> set[str]:
    """The run directories that the documented experiment commands write."""
    found = set()
    for param in documented_commands():
        module, argv = param.values
        if module.startswith("experiments.") and not param.marks:
            try:
                found.add(check_command(module, argv).workdir)
            except (SystemExit, UserError, ImportError):
                pass  # test_documented_command_parses names it
    return found


# Run directories the docs name that a user chose (`--workdir`, a benchmark script's argument).
CHOSEN_RUN_DIRECTORIES = {"runs/bigan_a", "runs/bigan_b", "runs/c", "runs/quality",
                          "runs/biggan_cmp", "runs/ssgan_cmp", "runs/ssgan_epochs", "runs/dann"}


def test_the_run_directories_named_are_those_the_commands_write():
    written = default_run_directories()
    named = {(path, doc.relative_to(REPO).as_posix()) for doc in [*DOCS, *EXPERIMENTS]
             for path in re.findall(r"(?<![\w/.~-])runs/[\w.-]+", doc.read_text())}
    unknown = sorted((doc, path) for path, doc in named if path not in written
                     and path not in CHOSEN_RUN_DIRECTORIES and not re.search(r"[A-Z]", path))
    assert not unknown, f"run directories no documented command writes: {unknown}"


def test_the_best_checkpoint_lies_in_the_run_that_evaluates():
    from jgan.train.family_trainer import BEST_DIR

    run = check_command("experiments.dcgan", ["--preset", "paper", "--eval-every", "500"])
    best = f"{run.workdir}/{BEST_DIR}/"
    assert "python -m experiments.dcgan --preset paper --eval-every 500" in RESULTS.read_text()
    assert f"keeps the best checkpoint in `{best}`" in " ".join(RESULTS.read_text().split())
    assert f"writes `{run.workdir}`" in (REPO / "docs/gan.md").read_text()


def test_the_quick_start_grid_has_the_hash_the_docs_quote():
    import hashlib

    digest = hashlib.sha256((REPO / "docs/dcgan_mnist_step005000.png").read_bytes()).hexdigest()
    for doc in ("README.md", "docs/reproducibility.md"):
        quoted = re.findall(r"sha256 `([0-9a-f]{8,})\.\.\.`", (REPO / doc).read_text())
        assert digest[:12] in quoted, f"{doc} quotes {quoted}, the grid's sha256 is {digest}"


def test_the_family_sketch_is_the_real_pix2pix_module():
    """docs/adding_a_family.md's abridged jgan/families/pix2pix/__init__.py: its classes, bases, fields
    and defaults, functions, and the arguments of its `Setup` and `Family` are the module's."""
    from jgan.families import pix2pix
    from jgan.train.setup import Family

    doc = (REPO / "docs/adding_a_family.md").read_text()
    sketch = ast.parse(re.search(r"```python\n(.*?)```", doc, re.S).group(1))
    real = vars(pix2pix)
    for node in sketch.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            assert node.name in real, f"pix2pix has no {node.name}"
        if isinstance(node, ast.ClassDef):
            cls = real[node.name]
            assert [base.id for base in node.bases] == [b.__name__ for b in cls.__bases__]
            fields = {field.name: field for field in dataclasses.fields(cls)}
            for item in node.body:
                if isinstance(item, ast.AnnAssign):
                    name = item.target.id
                    assert name in fields, f"{node.name} has no field {name}"
                    if item.value is not None:
                        assert ast.literal_eval(item.value) == fields[name].default, name
                if isinstance(item, ast.FunctionDef):
                    assert item.name in vars(cls), f"{node.name} defines no {item.name}"
    calls = {node.func.id: node for node in ast.walk(sketch)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    for name in calls:
        assert name in real or hasattr(builtins, name), f"pix2pix uses no {name}"
    for cls, call in ((Family, calls["Family"]), (pix2pix.Pix2PixSetup, calls["Pix2PixSetup"])):
        given = {keyword.arg for keyword in call.keywords}
        fields = {field.name: field for field in dataclasses.fields(cls)}
        required = {name for name, field in fields.items()
                    if field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING}
        assert required <= given <= set(fields), (cls.__name__, given, set(fields))
    family = {keyword.arg: keyword.value for keyword in calls["Family"].keywords}
    assert ast.literal_eval(family["name"]) == pix2pix.FAMILY.name
    assert ast.literal_eval(family["network_names"]) == pix2pix.FAMILY.network_names
    assert ast.literal_eval(family["description"]) == pix2pix.FAMILY.description

"""The `jgan` command and the installed package: every experiment from any folder, no top-level
`experiments` package in site-packages, and a library that never imports the scripts.

The wheel itself is built, installed outside the checkout and run from / by `.ci/check_wheel`,
a CI step beside the tests (about a minute).
"""

import ast
import subprocess
import sys

import pytest

from conftest import REPO
from jgan import __main__ as entry


def test_setup_installs_every_package_and_the_experiments_under_jgan():
    """A new family's folder needs no line in the packaging: setup.py finds it."""
    code = ("import sys, setuptools; setuptools.setup = lambda **kw: print(repr(kw)); "
            "sys.argv = ['setup.py']; exec(open('setup.py').read())")
    found = ast.literal_eval(subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                                            capture_output=True, text=True).stdout)
    on_disk = {".".join(init.parent.relative_to(REPO).parts)
               for init in (REPO / "jgan").rglob("__init__.py")}
    assert set(found["packages"]) == on_disk | {"jgan.experiments"}
    assert found["package_dir"] == {"jgan.experiments": "experiments"}


def test_the_library_never_imports_the_experiment_scripts():
    """Only the `jgan` command itself reaches the experiments, by name, at run time."""
    offenders = []
    for path in (REPO / "jgan").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}: {name}" for name in names
                          if name.split(".")[0] == "experiments"
                          or name.startswith("jgan.experiments")]
    assert offenders == []


def test_every_experiment_module_is_a_command():
    names = entry.experiment_names()
    assert {"dcgan", "stylegan", "biggan", "pix2pix", "cyclegan", "dann", "mode_collapse",
            "ssgan"} <= set(names)
    assert names == sorted(path.stem for path in (REPO / "experiments").glob("*.py")
                           if path.stem != "__init__")


@pytest.mark.parametrize("argv, message", [
    (["train"], "jgan train: no experiment: name one of acgan, "),
    (["train", "dcgam"], "jgan train: 'dcgam' is not an experiment: name one of acgan, "),
    (["generate", "dcgan", "runs/x"], "jgan generate: dcgan has no generator flags of its own: "
                                      "draw its images with jgan sample RUN"),
    (["generate", "stylegan", "--num", "4"], "jgan generate: name the run to draw from: "),
    (["fit", "dcgan"], "jgan: 'fit' is not a command: use one of train, generate, sample, "),
])
def test_a_wrong_command_is_one_line(argv, message):
    with pytest.raises(SystemExit) as exit_:
        entry.main(argv)
    assert str(exit_.value).startswith(message) and "\n" not in str(exit_.value)


def test_commands_pass_their_flags_through(capsys):
    with pytest.raises(SystemExit) as exit_:
        entry.main(["train", "dcgan", "--help"])
    assert exit_.value.code == 0 and "--preset {paper}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        entry.main(["sample", "--help"])
    assert "--save-folder" in capsys.readouterr().out
    assert entry.main(["--help"]) == 0 and "generate EXPERIMENT RUN" in capsys.readouterr().out

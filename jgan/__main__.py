"""The `jgan` command: every job of the experiment modules and tools, from any folder.

    jgan train dcgan                               # = python -m experiments.dcgan, in a checkout
    jgan train stylegan --data-dir DIR --steps 2900
    jgan generate stylegan pretrained --num 16 --out samples/
    jgan sample runs/dcgan_mnist --out grid.png    # = python -m jgan.tools.sample
    jgan evaluate runs/dcgan_mnist                 # = python -m jgan.tools.evaluate
    jgan translate runs/pix2pix_facades --input DIR --out DIR

`jgan COMMAND --help` gives each command's flags. The experiment modules are the top-level
`experiments/` folder of a checkout, installed as `jgan.experiments`; `jgan train` with no
experiment lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

EXPERIMENTS = "jgan.experiments"
# command -> (module whose main(argv) runs it, what it does)
TOOLS = {
    "sample": ("jgan.tools.sample", "draw a grid or numbered images from a run's checkpoint"),
    "evaluate": ("jgan.tools.evaluate", "classifier-FID, Inception score and digit shares"),
    "evaluate-bigan": ("jgan.tools.evaluate_bigan", "a BiGAN's encoder as features"),
    "evaluate-translation": ("jgan.tools.evaluate_translation", "FCN scores of a translation"),
    "translate": ("jgan.translate", "translate a folder of images with Pix2Pix or CycleGAN"),
    "components": ("jgan.tools.components", "export or load one network of a run"),
}


def experiment_names() -> list[str]:
    package = importlib.import_module(EXPERIMENTS)
    return sorted(info.name for info in pkgutil.iter_modules(package.__path__))


def usage() -> str:
    commands = {"train EXPERIMENT": f"train, or resume, one of: {', '.join(experiment_names())}",
                "generate EXPERIMENT RUN": "draw images from RUN with the experiment's own flags",
                **{name: summary for name, (_, summary) in TOOLS.items()}}
    listing = "\n".join(f"  {name:<25}{summary}" for name, summary in commands.items())
    return (f"usage: jgan COMMAND [ARGS]\n\ncommands:\n{listing}\n\n"
            "`jgan COMMAND --help` for a command's flags.")


def experiment(name: str | None, command: str):
    """The experiment module `name`, or exit with one line that lists them."""
    names = experiment_names()
    if name not in names:
        given = "no experiment" if name is None else f"{name!r} is not an experiment"
        sys.exit(f"jgan {command}: {given}: name one of {', '.join(names)}")
    return importlib.import_module(f"{EXPERIMENTS}.{name}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        return experiment(rest[0] if rest else None, command).main(rest[1:])
    if command == "generate":
        module = experiment(rest[0] if rest else None, command)
        if not hasattr(module, "sampling_flags"):
            sys.exit(f"jgan generate: {rest[0]} has no generator flags of its own: draw its "
                     "images with jgan sample RUN")
        if len(rest) < 2 or rest[1].startswith("-"):
            sys.exit(f"jgan generate: name the run to draw from: jgan generate {rest[0]} RUN "
                     "(a run directory, or 'pretrained' where the experiment ships one)")
        return module.main(["--generate", rest[1], *rest[2:]])
    if command in TOOLS:
        return importlib.import_module(TOOLS[command][0]).main(rest)
    sys.exit(f"jgan: {command!r} is not a command: use one of train, generate, "
             f"{', '.join(TOOLS)} (jgan --help)")


if __name__ == "__main__":
    sys.exit(main())

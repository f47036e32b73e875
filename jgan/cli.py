"""The command line shared by every experiment module (`python -m experiments.<name> ...`)."""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
from pathlib import Path
from typing import Any, Callable

from jgan import compile_cache
from jgan import config as config_lib
from jgan import losses
from jgan.augment import AUGMENTS
from jgan.data import check_data_config
from jgan.errors import reports_errors
from jgan.train import distributed

# Set by `dry_run`: `parse_config` hands back its parser instead of parsing, and nothing runs.
_DRY_RUN = contextvars.ContextVar("jgan_cli_dry_run", default=False)


def parse_config(default, argv, *, description: str, parents=(), presets=None):
    """Flags and `--set group.field=value` overrides applied to an experiment's default config.

    `parents`: argparse parsers whose flags the experiment reads itself (listed in `--help`).
    `presets`: named configs that `--preset NAME` starts from instead of `default` (e.g. a
    paper's settings); the other flags then apply to it. Returns `(config, workdir)`, having
    turned on the persistent compilation cache unless `--no-compile-cache` (jgan.compile_cache).
    """
    presets = presets or {}
    parents = list(parents)
    if presets:
        chooser = argparse.ArgumentParser(add_help=False)
        chooser.add_argument("--preset", choices=sorted(presets),
                             help="start from these settings instead of the defaults: "
                                  + "; ".join(f"{name}: {preset.name}" for name, preset
                                              in sorted(presets.items())))
        chosen, _ = chooser.parse_known_args(argv)
        if chosen.preset is not None:
            default = presets[chosen.preset]
        parents.append(chooser)
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
        epilog="Any config field: --set group.field=value, e.g. --set optim.g_lr=1e-4. "
               f"Groups and fields: {_field_list(default)}")
    parser.add_argument("--workdir", default=None,
                        help="run directory; the same one again resumes (default runs/NAME_DATASET)")
    parser.add_argument("--steps", type=int, help=f"total steps (default {default.train.steps})")
    parser.add_argument("--batch-size", type=int,
                        help=f"global batch size (default {default.train.batch_size})")
    parser.add_argument("--seed", type=int, help=f"run seed (default {default.train.seed})")
    parser.add_argument("--dataset", help="TFDS name, or a folder of images in --data-dir "
                                          f"(default {default.data.dataset})")
    parser.add_argument("--data-dir", help="folder laid out as shared/datasets "
                                           "(default: $JGAN_DATA_DIR, else bundled MNIST subset)")
    parser.add_argument("--images", metavar="DIR",
                        help="train on a folder of images instead of --dataset (trainA/ and "
                             "trainB/ inside: paired or unpaired A/B data)")
    parser.add_argument("--loss", choices=losses.LOSS_NAMES,
                        help=f"adversarial loss (default {default.loss.gan_loss})")
    parser.add_argument("--augment", choices=AUGMENTS,
                        help="augment every image D sees, real and generated: DiffAugment or "
                             "adaptive (ADA), for small datasets (default "
                             f"{default.train.augment}; another kind takes all of its ops, "
                             "--set train.augment_ops=A,B picks some; docs/augmentation.md)")
    parser.add_argument("--eval-every", type=int,
                        help="measure FID/KID/IS/precision/recall every N steps into "
                             "history.csv and keep the best checkpoint by FID (default off)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config field (repeatable)")
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="compile everything afresh: no persistent compilation cache "
                             "(default: $JGAN_CACHE_DIR/xla; see docs/running.md)")
    if _DRY_RUN.get():
        raise _ParserBuilt(parser, default, argv)
    args = parser.parse_args(argv)
    config, workdir = _resolve(default, args)
    # Settings that passed their checks, before anything is compiled (data, init, the step).
    compile_cache.enable(args.compile_cache)
    return config, workdir


def _resolve(default, args) -> tuple[Any, str]:
    """The parsed flags and `--set`s applied to `default`, checked, and the run directory."""
    flags = {"train.steps": args.steps, "train.batch_size": args.batch_size,
             "train.seed": args.seed, "data.dataset": args.dataset, "data.data_dir": args.data_dir,
             "data.images": args.images, "loss.gan_loss": args.loss,
             "train.eval_every": args.eval_every, "train.augment": args.augment}
    assignments = [f"{k}={v}" for k, v in flags.items() if v is not None] + args.set
    config = config_lib.override(default, assignments)
    if (config.train.augment != default.train.augment
            and not any(a.startswith("train.augment_ops=") for a in args.set)):
        # The experiment's ops are those of its own kind: another kind takes all of its own.
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       augment_ops=""))
    named = args.dataset is not None or any(a.startswith("data.dataset=") for a in args.set)
    if config.data.images is not None and not named:
        # config.json would otherwise name the experiment's default dataset, not what it trains on
        config = dataclasses.replace(config, data=dataclasses.replace(
            config.data, dataset=data_name(config.data) or "images"))
    check_data_config(config.data)
    return config, args.workdir or f"runs/{config.name}_{data_name(config.data)}"


class _ParserBuilt(Exception):
    """Ends an experiment's `main` in a dry run, carrying what `parse_config` was given."""

    def __init__(self, parser, default, argv):
        super().__init__("parse_config in a dry run")
        self.parser, self.default, self.argv = parser, default, argv


@dataclasses.dataclass(frozen=True)
class DryRun:
    parser: argparse.ArgumentParser  # the experiment's whole parser, as `--help` shows it
    config: Any  # the config the command would train
    workdir: str


def dry_run(main: Callable[[list[str]], int], argv: list[str]) -> DryRun:
    """What `main(argv)` of an experiment would train, without training: its own parser (presets
    and the experiment's flags included) parses `argv`, and the flags and `--set`s are applied
    and checked as `parse_config` does; nothing is read, compiled or written, and the
    compilation cache is left alone. A bad flag exits as the command would (SystemExit 2, the
    usage on stderr); a bad setting raises its UserError. For checking documented commands."""
    token = _DRY_RUN.set(True)
    try:
        main(list(argv))
    except _ParserBuilt as built:
        config, workdir = _resolve(built.default, built.parser.parse_args(built.argv))
        return DryRun(built.parser, config, workdir)
    finally:
        _DRY_RUN.reset(token)
    raise RuntimeError(f"{main.__module__}.main{tuple(argv)} returned before it parsed its flags "
                       "with jgan.cli.parse_config (its error, if any, is on stderr)")


def data_name(data_cfg) -> str:
    """The dataset's name, or the image folder's: the default run directory ends with it."""
    if data_cfg.images is None:
        return data_cfg.dataset
    return Path(data_cfg.images).expanduser().resolve().name


def _field_list(config) -> str:
    return "; ".join(f"{group.name}: " + ", ".join(f.name for f in dataclasses.fields(
        getattr(config, group.name))) for group in dataclasses.fields(config)
        if dataclasses.is_dataclass(getattr(config, group.name)))


@reports_errors
def run_experiment(default, argv=None, *, description: str = "", presets=None,
                   parents=()) -> int:
    """Parse flags, train, and turn user errors into one line on stderr. Returns the exit code.

    `presets`: named configs for `--preset NAME` (see `parse_config`); `parents`: parsers of
    the experiment's own flags, listed in `--help`."""
    from jgan.train.loop import train

    launch = distributed.launch_flags()
    config, workdir = parse_config(default, argv, description=description,
                                   parents=[launch, *parents], presets=presets)
    job, _ = launch.parse_known_args(argv)
    distributed.initialize(job.coordinator, job.num_processes, job.process_id)
    train(config, workdir)
    return 0


def train_or_sample(default, argv, *, sampling, sample, description: str = "",
                    presets=None) -> int:
    """An experiment with a sampling mode: `sample(args)` when `argv` holds `--generate RUN`
    (`args`: the flags of the `sampling` parser, plus `--seed`, default 0), else
    `run_experiment`, whose `--help` then lists the sampling flags too."""
    args, _ = sampling.parse_known_args(argv)
    # A dry run checks the sampling flags with the whole parser below, and draws nothing.
    if args.generate and not _DRY_RUN.get():
        seed = argparse.ArgumentParser(add_help=False)
        seed.add_argument("--seed", type=int, default=0)
        args.seed = seed.parse_known_args(argv)[0].seed
        return sample(args)
    return run_experiment(default, argv, description=description, presets=presets,
                          parents=[sampling])

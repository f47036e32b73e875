"""Sample a trained run: `python -m jgan.tools.sample RUN_DIR --num 64 --seed 0 --out grid.png`.

The generator comes from the run's latest checkpoint (or `--step`), with BatchNorm in inference
mode and G's EMA weights when the run keeps them, so the same command on the same checkpoint
writes the same pixels. A conditional run takes `--labels 0,1,2`: `--num` images split evenly
over the labels, one row per label (default: every class). Image i depends on `--seed` and i
alone, so `--num 8` draws the first 8 images of `--num 64`. A `--save-folder` that holds the
numbered images of an earlier call is refused unless `--overwrite` (which deletes those first).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from jgan.checkpoint import Checkpointer, DamagedCheckpointError
from jgan.compile_cache import enable as enable_compile_cache
from jgan.data import DataSpec, Preprocessing
from jgan.errors import UserError, reports_errors
from jgan.generate import draw_samples, spelled
from jgan.images import make_grid, save_png
from jgan.train.family_trainer import BEST_DIR, abstract_train_state, run_keys
from jgan.train.parallel import make_mesh
from jgan.train.resume import CHECKPOINTS, CONFIG_FILE, checkpoint_config
from jgan.train.setup import build_setup

NUMBERED_IMAGE = re.compile(r"\d{6}\.png")  # what save_images writes: 000000.png, ...


NOTICED_PRUNES = 3  # reads of the latest checkpoint that a training run may prune in turn


class CheckpointPruned(UserError):
    """The checkpoint being read was deleted meanwhile: a run training on keeps only the newest."""


@contextlib.contextmanager
def open_checkpoint(run_dir, step: int | None = None, *, best: bool = False):
    """`(checkpointer, step, meta, config, setup)` of a run directory's checkpoint: the latest
    unless `step` is given, or with `best`, the best by FID that --eval-every kept in
    `RUN_DIR/best`.

    Read-only: a damaged checkpoint, here or in the body, is one `UserError` that lists the
    intact ones, and stays where it is (only resuming the run moves it aside). One that vanished
    while it was read raises `CheckpointPruned` (`read_checkpoint` reads the newest instead).
    """
    run_dir = Path(run_dir)
    if not ((run_dir / CONFIG_FILE).is_file() or (run_dir / CHECKPOINTS).is_dir()):
        raise UserError(f"{run_dir} is not a run directory (no config.json): pass the --workdir "
                        "of a training run")
    if best and not (run_dir / BEST_DIR).is_dir():
        raise UserError(f"{run_dir} has no best checkpoint: train with --eval-every N to keep "
                        "one, or drop --best")
    checkpointer = Checkpointer(run_dir / (BEST_DIR if best else CHECKPOINTS), read_only=True)
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise UserError(f"{run_dir} has no checkpoint yet: train it first")
        if step not in checkpointer.all_steps():
            raise UserError(f"{run_dir} has no checkpoint at step {step}: choose one of "
                            f"{checkpointer.all_steps()}")
        meta, config = checkpoint_config(checkpointer, step)
        check_image_run(run_dir, meta)
        setup = build_setup(config, run_data_spec(meta, config))
        yield checkpointer, step, meta, config, setup
    except (FileNotFoundError, DamagedCheckpointError) as error:
        # A training run deletes its oldest checkpoint whole (renamed aside first), so a step
        # that is gone was pruned, not damaged.
        if step is not None and not (checkpointer.directory / str(step)).is_dir():
            raise CheckpointPruned(
                f"checkpoint {step} in {checkpointer.directory} was deleted while it was read "
                "(a run training there keeps only its newest checkpoints): choose one of "
                f"{listed_steps(checkpointer.directory)} with --step, or wait until the run "
                "ends") from None
        if isinstance(error, FileNotFoundError):
            raise
        raise UserError(f"{error.summary}: {intact_choice(checkpointer, error.step)}") from None
    finally:
        checkpointer.close()


def read_checkpoint(run_dir, step: int | None, read, *, best: bool = False):
    """`read(checkpointer, step, meta, config, setup)` inside `open_checkpoint`. For the latest
    checkpoint (`step` None), one that a run training on prunes between listing and reading is
    replaced by the then newest, up to `NOTICED_PRUNES` times."""
    for attempt in range(NOTICED_PRUNES + 1):
        try:
            with open_checkpoint(run_dir, step, best=best) as opened:
                return read(*opened)
        except CheckpointPruned:
            if step is not None or attempt == NOTICED_PRUNES:
                raise


def listed_steps(directory: Path) -> list[int]:
    """The steps in a checkpoint directory now, listed afresh (orbax's list is read once)."""
    return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit())


def check_image_run(run_dir, meta: dict) -> None:
    """Refuse the run of a trainer that draws no images, whose checkpoints hold no data spec:
    its results are tables and figures in the run directory, which no tool here reads."""
    if "data_spec" in meta or "image_shape" in meta:
        return
    if "seeds" in meta:
        kind, results = "2-D mode-collapse benchmark run", "mode coverage"
        maker = "experiments.mode_collapse"
    elif "adapt" in meta["config"]:
        kind, results, maker = "DANN domain-adaptation run", "accuracies", "experiments.dann"
    else:
        kind, results, maker = "run that draws no images", "results", "its experiment"
    raise UserError(f"{run_dir} is a {kind}, not an image GAN's: no jgan tool samples, "
                    f"evaluates or translates it; {Path(run_dir) / 'results.md'} and "
                    f"results.json hold its {results} (python -m {maker} writes them as it ends)")


def intact_choice(checkpointer: Checkpointer, damaged: int) -> str:
    """What to read instead of the damaged step: the steps whose items are all there and whose
    metadata reads (their arrays are read only when chosen)."""
    intact = [step for step in checkpointer.all_steps()
              if step != damaged and _metadata_reads(checkpointer, step)]
    if not intact:
        return f"no other checkpoint in {checkpointer.directory} is intact (train the run again)"
    return f"choose an intact one of {intact} with --step"


def _metadata_reads(checkpointer: Checkpointer, step: int) -> bool:
    try:
        checkpoint_config(checkpointer, step)
    except DamagedCheckpointError:
        return False
    return True


def run_data_spec(meta: dict, config) -> DataSpec:
    """The data spec a checkpoint was written with. Checkpoints from before specs stored only
    the image shape; their classes are the model's, when it has any."""
    if "data_spec" in meta:
        return DataSpec.from_json(meta["data_spec"])
    return DataSpec.from_image_shape(meta["image_shape"],
                                     num_classes=getattr(config.model, "num_classes", 0))


def load_run(run_dir, step: int | None = None, *, best: bool = False):
    """`(setup, state, config)` of a run directory's checkpoint (see `open_checkpoint`)."""
    return load_run_and_spec(run_dir, step, best=best)[:3]


def load_run_and_spec(run_dir, step: int | None = None, *, best: bool = False, check=None):
    """`(setup, state, config, data spec)` of a run directory's checkpoint (`read_checkpoint`);
    the spec holds the image shape and the preprocessing. `check(setup)`, if given, runs before
    the state is read: a request the run cannot serve is refused before that work."""

    def read(checkpointer, step, meta, config, setup):
        if check is not None:
            check(setup)
        abstract = abstract_train_state(setup, run_keys(config.train.seed)["init"], make_mesh())
        state, _, _ = checkpointer.restore(step, abstract)
        return setup, state, config, run_data_spec(meta, config)

    return read_checkpoint(run_dir, step, read, best=best)


def generate_images(run_dir, num_images: int, save_folder=None, *, seed: int = 0,
                    step: int | None = None, labels=None, best: bool = False,
                    overwrite: bool = False) -> np.ndarray:
    """uint8 images `[num_images, H, W, C]` from the run's generator, z drawn from `seed`.

    A run on a folder read with data.crop or data.center gives images the size and look of its
    source files: resized back to the crop box and pasted into the border (`to_source`).
    For a conditional run, `labels` (default: every class) are spread evenly: image i has label
    `labels[i // (num_images // len(labels))]`. With `save_folder`, each image is also written as
    `000000.png`, `000001.png`, ..., refused where it holds those of an earlier call unless
    `overwrite` (`check_save_folder`). `best` takes the run's best checkpoint by FID.
    """
    check_save_folder(save_folder, overwrite=overwrite)
    setup, state, _, spec = load_run_and_spec(run_dir, step, best=best)
    images, _ = draw_samples(setup, state, num_images, seed=seed, labels=labels)
    if spec.preprocessing:
        images = Preprocessing.from_spec(spec).to_source(images)
    save_images(images, save_folder)
    return images


def save_images(images: np.ndarray, folder) -> None:
    """Each image as `folder/000000.png`, `000001.png`, ...; nothing when `folder` is None.

    The folder's numbered images of an earlier call go first (`check_save_folder` let them),
    so that it holds one set, not this call's images followed by the rest of a larger one;
    other files stay.
    """
    if folder is not None:
        for path in numbered_images(folder):
            path.unlink()
        for index, image in enumerate(images):
            save_png(image, Path(folder) / f"{index:06d}.png")


def numbered_images(folder) -> list[Path]:
    """The images `save_images` wrote into `folder` (by their names), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if NUMBERED_IMAGE.fullmatch(path.name))


def check_save_folder(folder, *, overwrite: bool, name: str = "save_folder",
                      cli: bool = False) -> None:
    """Refuse, before anything is drawn, a save folder that is a file, or that holds numbered
    images of an earlier call unless `overwrite`: written over in part, it would mix two sets.
    `name` and `cli` word the error for the argument or flag (`--save-folder`) it came from."""
    if folder is None:
        return
    where = spelled(name, str(folder), cli=cli)
    if Path(folder).is_file():
        raise UserError(f"{where} is a file: name a folder for the images")
    earlier = numbered_images(folder)
    if earlier and not overwrite:
        replace = "add --overwrite" if cli else "pass overwrite=True"
        raise UserError(f"{where} holds {len(earlier)} images of an earlier call "
                        f"({earlier[0].name}, ...): {replace} to replace them, or choose an "
                        "empty folder")


def check_output_file(path, example: str) -> None:
    """Refuse, before any work is done, an `--out` that is a directory or whose folder is not
    one: the file is written when the work is done, and would be lost with it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--out {path} is a directory: name a file, e.g. --out {path / example}")
    folder = path.parent
    if folder.is_file():
        raise UserError(f"--out {path}: {folder} is a file, not a folder: name a file in a "
                        f"folder, e.g. --out {folder.parent / example}")
    if not folder.is_dir():
        raise UserError(f"--out {path}: its folder {folder} does not exist: create it first "
                        f"(mkdir -p {folder}), or name a file in an existing folder")
    if not os.access(folder, os.W_OK):
        raise UserError(f"--out {path}: its folder {folder} cannot be written (permission "
                        "denied): name a file in a folder you can write")


def _parse_labels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--labels {text}: write class numbers separated by commas, "
                        "e.g. --labels 0,1,2") from None


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.tools.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a training run's --workdir")
    parser.add_argument("--num", type=int, default=None,
                        help="number of images (default 64, or 8 per label)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--best", action="store_true",
                        help="the best checkpoint by FID (runs trained with --eval-every)")
    parser.add_argument("--out", default="samples.png", help="PNG grid to write")
    parser.add_argument("--save-folder", default=None, help="also write each image here")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the numbered images an earlier call left in --save-folder")
    parser.add_argument("--labels", default=None,
                        help="conditional runs: comma-separated classes, one grid row each "
                             "(default: every class)")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    enable_compile_cache()
    check_output_file(args.out, "samples.png")
    check_save_folder(args.save_folder, overwrite=args.overwrite, cli=True)
    labels = _parse_labels(args.labels)
    setup, state, _ = load_run(args.run_dir, args.step, best=args.best)
    classes = setup.num_classes
    if classes and labels is None:
        labels = list(range(classes))
    num = args.num if args.num is not None else 8 * len(labels) if classes else 64
    images, _ = draw_samples(setup, state, num, seed=args.seed, labels=labels)
    save_images(images, args.save_folder)
    columns = len(images) // len(labels) if classes else math.ceil(math.sqrt(len(images)))
    save_png(make_grid(images, columns=columns), args.out)
    print(f"wrote {len(images)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

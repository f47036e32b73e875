"""Translate a folder of images with a run's generator (Pix2Pix, CycleGAN).

    python -m jgan.translate RUN_DIR --input DIR --out DIR [--direction AtoB|BtoA] [--step N]
                             [--seed S] [--batch N]

Every image under --input (recursively, sorted by relative path, hidden files skipped; PNG, JPEG,
BMP, TIFF in any PIL mode) is brought to the generator's input (grey repeated to three channels,
or colour turned grey by Pillow's "L" when the generator takes one; alpha dropped; resized
bicubically to the generator's H x W), translated, resized back to its own size and written to
--out under the same relative path and name, in the format its extension names (JPEG at quality
95). Files that are not images or do not decode are skipped and named in one warning.

Image i's dropout key is `fold_in(key(seed), crc32(relative path))`, so its output depends on its
name, its pixels and the seed alone: not on the other files of the folder, nor on --batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
import zlib
from pathlib import Path

import jax
import numpy as np
import PIL.Image
from tqdm.auto import tqdm

from jgan.data.folders import DECODE_ERRORS, decode_image, scan_images
from jgan.data.resize import resize_image
from jgan.errors import UserError, reports_errors
from jgan.files import atomic_write
from jgan.images import to_uint8
from jgan.tools.sample import load_run
from jgan.train.setup import refuse_first

DIRECTIONS = ("AtoB", "BtoA")
JPEG_QUALITY = 95


class SkippedFilesWarning(UserWarning):
    """Files of the input folder that were not translated: not images, or unreadable."""


def resolve_direction(setup, direction: str | None) -> str:
    """`direction`, or the run's default (its first); one-line UserError for one it lacks."""
    if not setup.directions:
        setup.translation_shape(direction or DIRECTIONS[0])  # the family's own refusal
        raise UserError("this run translates no images: pass the run directory of a pix2pix or "
                        "cyclegan run")
    if direction is None:
        return setup.directions[0]
    if direction not in setup.directions:
        raise UserError(f"--direction {direction}: this run translates only "
                        f"{' and '.join(setup.directions)}: pass --direction "
                        f"{setup.directions[0]} or leave it out")
    return direction


def name_ids(relative_paths) -> np.ndarray:
    """uint32 crc32 of each relative path (POSIX separators): its image's id for `Translator`."""
    return np.asarray([zlib.crc32(path.encode()) for path in relative_paths], np.uint32)


class Translator:
    """A run's generator over arrays of any length, `batch` images per call; the last call is
    padded to `batch`, so each direction compiles once.

    Image i's dropout key is `fold_in(key(seed), ids[i])`, then folded with each of `fold` in
    turn (a second pass over the same images takes fresh keys with `fold=(1,)`). Keys are made
    inside the compiled call: made apart, every batch length would compile threefry anew.
    """

    def __init__(self, setup, state, *, batch: int = 8):
        if batch < 1:
            raise UserError(f"--batch {batch} is not positive: use --batch 8, say")
        self.setup, self.state, self.batch = setup, state, batch

        def translate(state, images, ids, *, direction, seed, fold):
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(seed), ids)
            for data in fold:
                keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)
            return setup.translate(state, images, keys, direction=direction)

        self._translate = jax.jit(translate, static_argnames=("direction", "seed", "fold"))

    def __call__(self, images, ids, *, direction: str, seed: int = 0,
                 fold: tuple[int, ...] = ()) -> np.ndarray:
        """float [-1, 1] `[N, H, W, C]` and uint32 ids `[N]` -> float32 `[N, H, W, C']` in
        [-1, 1]."""
        images, ids = np.asarray(images, np.float32), np.asarray(ids).astype(np.uint32)
        outputs = []
        for start in range(0, len(images), self.batch):
            count = min(self.batch, len(images) - start)
            rows = np.minimum(np.arange(self.batch), count - 1) + start
            out = self._translate(self.state, images[rows], ids[rows], direction=direction,
                                  seed=seed, fold=fold)
            outputs.append(np.asarray(out, np.float32)[:count])
        return np.concatenate(outputs)


def uint8_to_float(images) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], the generator's input range."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 `[H, W, 1 or 3]` -> `[H, W, channels]`: grey repeated, colour turned grey by "L"."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    return np.asarray(PIL.Image.fromarray(image).convert("L"))[..., None]


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 `[h, w, C]` -> `[height, width, C]`, bicubic (Pillow)."""
    return resize_image(image, height, width, PIL.Image.BICUBIC)


def save_image(image: np.ndarray, path: Path) -> None:
    """Write uint8 `[H, W, 1 or 3]` in the format `path`'s extension names, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = PIL.Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": JPEG_QUALITY} if image_format == "JPEG" else {}
    with atomic_write(path) as file:
        PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            file, format=image_format, **options)


@dataclasses.dataclass(frozen=True)
class InputFolder:
    root: Path
    out: Path
    images: list[Path]  # files with an image extension, by relative path
    other: list[Path]  # files without one: skipped

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _readable(path: Path) -> bool:
    try:
        decode_image(path)
    except DECODE_ERRORS:
        return False
    return True


def open_input(input_dir, out_dir) -> InputFolder:
    """The images to translate; one-line UserErrors for folders that cannot work, and for an
    input without one readable image (decoding stops at the first that reads)."""
    root, out = Path(input_dir), Path(out_dir)
    refuse_first([
        (not root.exists(), f"--input {root} does not exist: pass a folder of images"),
        (not root.is_dir(), f"--input {root} is a file: pass the folder that holds it"),
        (out.exists() and not out.is_dir(),
         f"--out {out} is a file: name a folder for the translated images"),
    ])
    inside = root.resolve() == out.resolve() or root.resolve() in out.resolve().parents
    if inside:
        raise UserError(f"--out {out} is inside --input {root}, so outputs would mix with the "
                        f"images: write them elsewhere, e.g. --out {root.resolve()}_translated")
    images, other = scan_images(root)
    if not any(_readable(path) for path in images):
        found = sorted(path.relative_to(root).as_posix() for path in images + other)
        what = (f"{len(found)} file(s) skipped, e.g. {', '.join(found[:3])}" if found
                else "it is empty")
        raise UserError(f"--input {root} holds no readable image (PNG, JPEG, BMP or TIFF): "
                        f"{what}; pass a folder of images")
    return InputFolder(root, out, images, other)


def translate_images(setup, state, input_dir, out_dir, *, direction: str | None = None,
                     seed: int = 0, batch: int = 8, log=print) -> list[Path]:
    """Translate every image of `input_dir` into `out_dir` (see the module docstring) with a
    setup and state in hand; returns the files written, in input order. Skipped files are named
    in one `SkippedFilesWarning`."""
    folder = open_input(input_dir, out_dir)
    direction = resolve_direction(setup, direction)
    height, width, channels = setup.translation_shape(direction)
    translator = Translator(setup, state, batch=batch)
    written, skipped = [], [folder.relative(path) for path in folder.other]
    # tqdm's delay: a folder done within seconds shows no bar.
    with tqdm(total=len(folder.images), unit="image", desc=f"translate {direction}",
              delay=2.0) as progress:
        for start in range(0, len(folder.images), batch):
            names, originals = [], []
            for path in folder.images[start:start + batch]:
                try:
                    originals.append(decode_image(path))
                    names.append(folder.relative(path))
                except DECODE_ERRORS:
                    skipped.append(folder.relative(path))
                    progress.total -= 1  # the bar counts images translated, as the summary does
            if names:
                inputs = np.stack([resize(to_channels(image, channels), height, width)
                                   for image in originals])
                outputs = to_uint8(translator(uint8_to_float(inputs), name_ids(names),
                                              direction=direction, seed=seed))
                for name, original, output in zip(names, originals, outputs):
                    path = folder.out / name
                    save_image(resize(output, *original.shape[:2]), path)
                    written.append(path)
            progress.update(len(names))
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable or non-image file(s) in "
                      f"{folder.root}: {', '.join(sorted(skipped))}", SkippedFilesWarning,
                      stacklevel=2)
    log(f"translated {len(written)} image(s) {direction} from {folder.root} into {folder.out}"
        f", skipped {len(skipped)}")
    return written


def translate_folder(run_dir, input_dir, out_dir, *, direction: str | None = None,
                     step: int | None = None, seed: int = 0, batch: int = 8,
                     log=print) -> list[Path]:
    """`translate_images` with the generator of a run directory's checkpoint (latest, or
    `step`); the folders are checked before the run is read."""
    open_input(input_dir, out_dir)
    if batch < 1:
        raise UserError(f"--batch {batch} is not positive: use --batch 8, say")
    setup, state, _ = load_run(run_dir, step)
    return translate_images(setup, state, input_dir, out_dir, direction=direction, seed=seed,
                            batch=batch, log=log)


def _one_line_warning(show):
    """`warnings.showwarning` that prints a `SkippedFilesWarning` as one `warning: ...` line."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SkippedFilesWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a pix2pix or cyclegan run's --workdir")
    parser.add_argument("--input", required=True, help="folder of images to translate")
    parser.add_argument("--out", required=True, help="folder to write the translations to")
    parser.add_argument("--direction", choices=DIRECTIONS, default=None,
                        help="AtoB or BtoA (default: the run's first)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout (default 0)")
    parser.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(warnings.showwarning)
        translate_folder(args.run_dir, args.input, args.out, direction=args.direction,
                         step=args.step, seed=args.seed, batch=args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

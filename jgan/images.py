"""Images out: float [-1, 1] to uint8, grids, PNG files (Pillow)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import PIL.Image

from jgan.files import atomic_write


def to_uint8(images) -> np.ndarray:
    """float [-1, 1] `[..., H, W, C]` -> uint8 [0, 255], rounded."""
    images = np.asarray(images, np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 `[N, H, W, C]` -> one uint8 `[rows * (H + p) + p, cols * (W + p) + p, C]` image."""
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding,
                     channels), np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_png(image: np.ndarray, path) -> None:
    """Write a uint8 `[H, W, C]` image (C = 1 or 3), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            file, format="PNG")


def write_gif(frames: list[Path], path, *, frame_ms: int = 250, log=print) -> None:
    """One GIF of the PNG frames, in order, looping; the last frame is held longer. A frame
    that cannot be read (cut short, say) is left out with a warning."""
    images = [image for image in map(functools.partial(_read_frame, log=log), frames)
              if image is not None]
    if not images:
        return
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 8]
    with atomic_write(path) as file:
        images[0].save(file, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0)


def _read_frame(frame: Path, *, log) -> PIL.Image.Image | None:
    try:
        with PIL.Image.open(frame) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for a damaged file
        log(f"warning: {frame} cannot be read ({type(error).__name__}: {error}); left it out "
            "of the GIF")
        return None

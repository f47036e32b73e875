"""Images out: float [-1, 1] to uint8, grids, PNG files (Pillow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import PIL.Image


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
    tmp = path.with_name(path.name + ".tmp")
    PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")
    tmp.replace(path)


def write_gif(frames: list[Path], path, *, frame_ms: int = 250) -> None:
    """One GIF of the PNG frames, in order, looping; the last frame is held longer."""
    if not frames:
        return
    images = [PIL.Image.open(frame).convert("RGB") for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 8]
    tmp = Path(path).with_suffix(".tmp.gif")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=durations, loop=0)
    tmp.replace(path)

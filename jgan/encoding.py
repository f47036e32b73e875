"""A BiGAN's encoder at work: encodings, reconstructions G(E(x)) and latent interpolations.

All take uint8 images, as datasets hold them, and a setup with `encode` and `reconstruct`
(`jgan.families.bigan.BiGANSetup`); BatchNorm runs in inference mode.
"""

from __future__ import annotations

import numpy as np

from jgan.images import make_grid, to_uint8
from jgan.train.step_parts import images_to_float

CHUNK = 500  # images per encoder call


def _in_chunks(fn, state, images: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(fn(state, images_to_float(images[i:i + CHUNK])))
                           for i in range(0, len(images), CHUNK)])


def encode_images(setup, state, images: np.ndarray) -> np.ndarray:
    """E(x) [N, z_dim] of uint8 images [N, H, W, C], BatchNorm in inference mode."""
    return _in_chunks(setup.encode_fn, state, images)


def reconstruct_images(setup, state, images: np.ndarray) -> np.ndarray:
    """G(E(x)) in [-1, 1] for uint8 images."""
    return _in_chunks(setup.reconstruct_fn, state, images)


def reconstruction_mse(setup, state, images: np.ndarray) -> float:
    """Mean squared error between x and G(E(x)), pixels in [-1, 1]."""
    reconstructions = reconstruct_images(setup, state, images)
    return float(np.mean((reconstructions - np.asarray(images_to_float(images))) ** 2))


def reconstruction_grid(setup, state, images: np.ndarray, *, columns: int = 8) -> np.ndarray:
    """uint8 grid: each row of `columns` images above a row of their reconstructions."""
    rows = len(images) // columns
    images = images[:rows * columns]
    reconstructions = to_uint8(reconstruct_images(setup, state, images))
    paired = np.stack([images.reshape(rows, columns, *images.shape[1:]),
                       reconstructions.reshape(rows, columns, *images.shape[1:])], axis=1)
    return make_grid(paired.reshape(-1, *images.shape[1:]), columns=columns)


def interpolation_grid(setup, state, starts: np.ndarray, ends: np.ndarray, *,
                       steps: int = 8) -> np.ndarray:
    """uint8 grid, one row per pair: x_a, G((1 - t) E(x_a) + t E(x_b)) for `steps` t in [0, 1],
    x_b."""
    z_a = encode_images(setup, state, starts)
    z_b = encode_images(setup, state, ends)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
    z = ((1.0 - t) * z_a[:, None] + t * z_b[:, None]).reshape(-1, z_a.shape[-1])
    middle = to_uint8(setup.sample_fn(state, {"z": z})).reshape(len(starts), steps,
                                                                *starts.shape[1:])
    rows = np.concatenate([starts[:, None], middle, ends[:, None]], axis=1)
    return make_grid(rows.reshape(-1, *starts.shape[1:]), columns=steps + 2)

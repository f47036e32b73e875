"""2-D mixtures of Gaussians, the standard mode-collapse benchmark, sampled from a key.

The ring of 8 (Metz et al. 2017, Sec. 3.1; Srivastava et al. 2017, Sec. 5.1): means on a circle
of radius 2, standard deviation 0.02. The grid of 25 (Srivastava et al. 2017): means at
{-4, -2, 0, 2, 4}^2, standard deviation 0.05. Every mode has the same weight.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jgan.errors import UserError


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
    name: str
    centres: np.ndarray  # [K, 2]
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.centres)

    def sample(self, key: jax.Array, num: int) -> jax.Array:
        """`num` points [num, 2]: a uniformly drawn mode plus isotropic Gaussian noise."""
        k_mode, k_noise = jax.random.split(key)
        modes = jax.random.randint(k_mode, (num,), 0, self.num_modes)
        noise = jax.random.normal(k_noise, (num, 2))
        return jnp.asarray(self.centres, jnp.float32)[modes] + self.std * noise


def ring(num_modes: int = 8, radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
    angles = 2 * math.pi * np.arange(num_modes) / num_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return GaussianMixture("ring", centres.astype(np.float32), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    axis = spacing * (np.arange(side) - (side - 1) / 2)
    centres = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    return GaussianMixture("grid", centres.astype(np.float32), std)


TOY_DATASETS = {"ring": ring, "grid": grid}


def toy_dataset(name: str) -> GaussianMixture:
    if name not in TOY_DATASETS:
        raise UserError(f"toy dataset {name!r} is unknown: choose one of {sorted(TOY_DATASETS)} "
                        "(e.g. --dataset ring)")
    return TOY_DATASETS[name]()


def batch_at(mixture: GaussianMixture, key: jax.Array, step, batch_size: int) -> dict:
    """The batch of step `step`: `{"image": [batch_size, 2]}`, the same whatever came before."""
    return {"image": mixture.sample(jax.random.fold_in(key, step), batch_size)}


def infinite_batches(mixture: GaussianMixture, key: jax.Array, batch_size: int,
                     start: int = 0) -> Iterator[dict]:
    """Batches of steps start, start + 1, ... without end (each from the key folded with it)."""
    step = start
    while True:
        yield batch_at(mixture, key, step, batch_size)
        step += 1

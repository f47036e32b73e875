"""N independent runs in one jitted step: `jax.vmap` over whole train states, one per seed.

Each seed has its own keys (`jgan.train.family_trainer.run_keys(seed)`, stacked), so seed s
trains exactly as a run with `train.seed=s` would: the vmapped step maps `(states [N], batches
[N], keys [N])` to `(states [N], metrics [N])` and nothing is shared across the seed axis. On
several devices the seed axis is split over them, one slice of seeds per device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgan.train.family_trainer import run_keys
from jgan.train.parallel import batch_split, replicated


def seed_keys(seeds) -> dict[str, jax.Array]:
    """`run_keys` of every seed, stacked: `{"init": [N], "run": [N], "data": [N], "grid": [N]}`."""
    per_seed = [run_keys(seed) for seed in seeds]
    return {name: jnp.stack([keys[name] for keys in per_seed]) for name in per_seed[0]}


def seed_sharding(num_seeds: int, mesh):
    """Seeds split over the devices when they divide evenly, else every device holds all."""
    return batch_split(mesh) if num_seeds % mesh.devices.size == 0 else replicated(mesh)


def init_states(setup, init_keys: jax.Array):
    """The initial train state of every seed, stacked along a leading seed axis."""
    return jax.vmap(setup.init_state)(init_keys)


def vmap_train_step(train_step):
    """`(states [N], batches [N], run keys [N]) -> (states [N], metrics [N])`."""
    return jax.vmap(train_step)


def unstack(tree, index: int):
    """Seed `index`'s slice of a stacked pytree."""
    return jax.tree.map(lambda x: x[index], tree)


def mean_and_std(values: dict) -> dict[str, tuple[float, float]]:
    """`{name: per-seed values [N]}` -> `{name: (mean, population std)}` over the seeds."""
    return {name: (float(np.mean(v)), float(np.std(v))) for name, v in values.items()}

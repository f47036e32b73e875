"""Several processes, one run: JAX's multi-controller runtime (one process per host).

Every process runs the same program over one global mesh; process 0 alone writes what is not a
checkpoint (logs, history, grids, config.json), and every process joins checkpoint saves and
restores.
"""

from __future__ import annotations

import jax


def is_primary() -> bool:
    """Whether this process writes the run's logs and files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (nothing to wait for in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)

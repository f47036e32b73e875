"""Several processes, one run: JAX's multi-controller runtime (one process per host).

Every process runs the same program over one global mesh of all devices (`jgan.train.parallel`).
Each reads only its own rows of every global batch, and `jax.make_array_from_process_local_data`
joins them into the global array the jitted step sees, so the step computes what it computes in
one process. Process 0 alone writes what is not a checkpoint (logs, history, grids, config.json);
every process joins checkpoint saves and restores, which orbax coordinates.

A job starts its processes with `--coordinator HOST:PORT --num-processes N --process-id I`, or
with no flags where JAX detects the cluster itself (SLURM, Open MPI, Cloud TPU pods, Kubernetes).
"""

from __future__ import annotations

import argparse
import os
import re

import jax
import numpy as np
from jax.sharding import NamedSharding

from jgan.errors import UserError


def launch_flags() -> argparse.ArgumentParser:
    """The flags that start one process of a multi-process job (an argparse parent)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group(
        "multi-process (one process per host; default: detect SLURM, Open MPI or a TPU pod)")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="address of process 0, which every process connects to")
    group.add_argument("--num-processes", type=int, metavar="N", help="processes in the job")
    group.add_argument("--process-id", type=int, metavar="I", help="this process, 0 .. N-1")
    return parser


def check_launch(coordinator: str | None, num_processes: int | None,
                 process_id: int | None) -> bool:
    """Whether the flags ask for a multi-process job; one-line errors for flags that can't."""
    given = {"--coordinator": coordinator, "--num-processes": num_processes,
             "--process-id": process_id}
    if all(value is None for value in given.values()):
        return False
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise UserError(f"a multi-process job needs --coordinator, --num-processes and "
                        f"--process-id together: add {' '.join(missing)}")
    if not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", coordinator):
        raise UserError(f"--coordinator {coordinator} is not HOST:PORT: use process 0's host "
                        "and a free port, e.g. --coordinator 10.0.0.1:12355")
    if num_processes < 1:
        raise UserError(f"--num-processes {num_processes} is not positive: count the processes "
                        "of the job (one per host)")
    if not 0 <= process_id < num_processes:
        raise UserError(f"--process-id {process_id} is not in 0..{num_processes - 1}: number "
                        "the processes from 0")
    return True


def detected_cluster() -> str | None:
    """The cluster JAX would configure itself from (its own detection), or None."""
    if os.environ.get("JGAN_SINGLE_PROCESS"):
        return None
    try:
        from jax._src import clusters
    except ImportError:  # JAX moved its detection: flags still work
        return None
    for cluster in clusters.ClusterEnv._cluster_types:
        try:
            if cluster.is_env_present():
                return cluster.name
        except Exception:  # a detector that probes a metadata server may fail off-cloud
            continue
    return None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, log=print) -> None:
    """Join a multi-process job: from the flags, or from the cluster JAX detects; else nothing.

    Must run before anything touches a device.
    """
    flagged = check_launch(coordinator, num_processes, process_id)
    if jax.distributed.is_initialized():  # a second run in the same process joins the same job
        return
    cluster = None if flagged else detected_cluster()
    if not flagged and cluster is None:
        return
    # CPU hosts (and the tests' local processes) need a collectives backend; GPUs and TPUs
    # bring their own, and the setting leaves them alone.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if flagged:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    else:
        jax.distributed.initialize()
    if is_primary():
        how = "flags" if flagged else f"detected {cluster}"
        log(f"multi-process job ({how}): {jax.process_count()} processes, "
            f"{jax.device_count()} devices")


def is_primary() -> bool:
    """Whether this process writes the run's logs and files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (nothing to wait for in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def broadcast(value):
    """Process 0's `value` (a pytree of numbers), on every process."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return jax.tree.map(lambda x: x.item() if np.ndim(x) == 0 else np.asarray(x),
                        multihost_utils.broadcast_one_to_all(value))


def on_primary(work, what: str):
    """`work()` on process 0, None elsewhere; if it raises there, every process stops with it
    rather than wait for process 0 at the next collective."""
    result, failure = None, None
    if is_primary():
        try:
            result = work()
        except Exception as error:  # re-raised below, once the others know
            failure = error
    if broadcast(np.int32(failure is not None)):
        if failure is not None:
            raise failure
        raise UserError(f"process 0 stopped while {what}: its output says why")
    return result


def process_rows(sharding: NamedSharding, global_rows: int) -> slice:
    """The rows of a batch split by `sharding` that live on this process's devices.

    `jgan.train.parallel.make_mesh` orders devices by process, so the rows are one block.
    """
    spans = sorted((index[0].start or 0, global_rows if index[0].stop is None else index[0].stop)
                   for index in sharding.addressable_devices_indices_map((global_rows,)).values())
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        if stop != start:
            raise RuntimeError(f"this process's rows are not one block: {spans}")
    return slice(spans[0][0], spans[-1][1])


def global_batch(local: dict, sharding: NamedSharding, global_rows: int) -> dict:
    """This process's rows of every array (`process_rows`) joined into global arrays."""
    return {name: jax.make_array_from_process_local_data(
        sharding, values, (global_rows, *values.shape[1:])) for name, values in local.items()}


def to_host(tree):
    """NumPy copies of metrics: a replicated array is read from this process's first device (so
    every process of a job can read it); one split over devices (the 2-D benchmark's seeds) is
    gathered, which one process can do."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0) if x.is_fully_replicated
                                             else x), tree)


def local_copy(tree):
    """A replicated global pytree as arrays on this process's first device, for work that only
    process 0 does (sample grids, evaluation). In one process it is the tree itself."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)

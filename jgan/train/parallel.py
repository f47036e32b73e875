"""Data parallelism with global-view code: one mesh axis "data", batch split over it, state replicated.

The step is written for one device and compiled by `jax.jit` with shardings; XLA inserts the
all-reduces. So means over the batch (losses, BatchNorm statistics) are global means, exactly as on
one device, and the same code runs on 1 CPU, 8 forced CPU devices or a GPU host.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jgan.errors import UserError

# XLA:CPU runs a convolution with YNNPACK (its default) or, with YNNPACK's convolutions turned
# off, with Eigen. Neither is faster for every network: on 2 CPU cores Eigen takes StyleGAN's
# step from 412 to 315 ms and BigGAN's from 164 to 115, and YNNPACK takes CycleGAN's from 290 to
# 254 (docs/performance.md). So each family names the faster one for its step. "eigen" is
# XLA's default list of YNNPACK fusions (single dots, single convolutions, reductions) less the
# convolutions.
CPU_CONVOLUTIONS = {"ynnpack": None,
                    "eigen": {"xla_cpu_experimental_ynn_fusion_type":
                              "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}}


def cpu_compiler_options(cpu_convolutions: str) -> dict[str, str] | None:
    """XLA's compiler options that make XLA:CPU run convolutions with `cpu_convolutions`, one of
    `CPU_CONVOLUTIONS`; None (XLA's defaults) off the CPU, and where this jaxlib's XLA refuses
    them (the option is experimental, so a later XLA may rename it)."""
    if cpu_convolutions not in CPU_CONVOLUTIONS:
        raise ValueError(f"cpu_convolutions={cpu_convolutions!r}: use one of "
                         f"{', '.join(map(repr, CPU_CONVOLUTIONS))}")
    options = CPU_CONVOLUTIONS[cpu_convolutions]
    if options is None or jax.default_backend() != "cpu":
        return None
    return options if _xla_accepts(tuple(options.items())) else None


@functools.cache
def _xla_accepts(options: tuple[tuple[str, str], ...]) -> bool:
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError:
        return False
    return True


def make_mesh(devices=None) -> Mesh:
    """All devices (of every process) on one "data" axis, each process's devices side by side,
    so that a process feeds one block of rows of every batch."""
    if devices is None:
        devices = sorted(jax.devices(), key=lambda device: (device.process_index, device.id))
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def abstract_replicated(fn, *args, mesh: Mesh):
    """Shapes and dtypes of `fn(*args)`, replicated over `mesh`, without computing it (what a
    checkpoint's restore needs before any state exists)."""
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated(mesh)),
                        jax.eval_shape(fn, *args))


def batch_split(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if batch_size % devices:
        fixed = max(devices, round(batch_size / devices) * devices)
        raise UserError(f"batch size {batch_size} does not split over {devices} devices: use a "
                        f"multiple of {devices} (e.g. --batch-size {fixed})")


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    return jax.device_put(batch, batch_split(mesh))


def jit_data_parallel(step, mesh: Mesh, *, donate_state: bool = False,
                      cpu_convolutions: str = "ynnpack"):
    """`jax.jit(step)` for `(state, batch, key) -> (state, metrics)` over the mesh.

    `donate_state`: the new state reuses the old one's buffers, which are deleted by the call, so
    that one state is in memory instead of two (the loop's runs, `jgan.train.loop`); the caller
    must not read the state it passed in. A buffer still viewed from NumPy (a checkpoint being
    written) is copied instead.
    `cpu_convolutions`: the library that runs the step's convolutions on XLA:CPU
    (`cpu_compiler_options`); a family's `Setup.cpu_convolutions`."""
    return jax.jit(step, in_shardings=(replicated(mesh), batch_split(mesh), replicated(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)),
                   donate_argnums=(0,) if donate_state else (),
                   compiler_options=cpu_compiler_options(cpu_convolutions))

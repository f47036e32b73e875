"""How much memory there is here, and how much a compiled program plans to use: the estimates
that refuse a run, in one line, before it would be killed by the kernel or swap for hours."""

from __future__ import annotations

import ctypes
import functools
import gc
import os

import jax


def host_memory() -> int:
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_memory() -> int:
    """Bytes this process's first device can hold: its limit on an accelerator, the RAM on a
    CPU (`local_devices`: another process's devices report nothing here)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("bytes_limit") or host_memory()


def compiled_memory(compiled) -> int:
    """Bytes a compiled program holds while it runs, by XLA's own buffer plan: its arguments,
    outputs and temporaries (the activations kept for the backward pass), less the outputs that
    reuse an argument's buffer. On a CPU the devices of this process share one RAM, so the
    figure is for all of them; on an accelerator it is one device's."""
    stats = compiled.memory_analysis()
    if stats is None:  # a backend without the analysis
        return 0
    need = (stats.argument_size_in_bytes + stats.output_size_in_bytes
            + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
    devices = jax.local_devices()
    return need * len(devices) if devices[0].platform == "cpu" else need


def size_text(count: int) -> str:
    """Bytes as people read them: GiB from 1 GiB up, MiB below."""
    if count >= 2**30:
        return f"{count / 2**30:,.1f} GiB"
    return f"{count / 2**20:,.1f} MiB"


def return_freed_memory() -> None:
    """Hand the heap that freed objects leave behind back to the system. Loading a compiled
    program takes far more than the program keeps, and glibc holds on to what was freed, which a
    later program's load does not always reuse: BigGAN's run peaked 130 MiB lower with this
    after each network's init program (docs/performance.md). Nothing where libc is not glibc."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None

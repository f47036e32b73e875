"""Time one jgan training step as training runs it: `build_setup`, the step jitted over all
devices with `jit_train_step` (`jit_data_parallel`), donating the state as the loop does,
batches sharded with `shard_batch`.

compile_s is `jitted.lower(...).compile()`, cold (the persistent compilation cache is off here,
whatever the environment sets); seconds is the median of `steps` steps after `warmup`
(batches cycled so that no step reuses the last one's); peak memory is the process's peak RSS on
CPU, the device's `peak_bytes_in_use` on an accelerator.
"""

from __future__ import annotations

import time

import jax
from timing import median_step_seconds, peak_rss_mb, rss_mb, run_to  # noqa: E402  (on the path)

from jgan.train.family_trainer import initial_state, jit_train_step
from jgan.train.parallel import make_mesh, shard_batch
from jgan.train.setup import build_setup


def param_counts(state, names) -> dict[str, int]:
    return {name: sum(leaf.size for leaf in jax.tree.leaves(state.nets[name].params))
            for name in names}


def peak_memory() -> tuple[float, str]:
    """`(peak MiB, "rss" or "device")`."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return round(stats["peak_bytes_in_use"] / 2 ** 20, 1), "device"
    return peak_rss_mb(), "rss"


def time_jgan_step(config, spec, batches: list[dict], *, steps: int, warmup: int,
                   memory_steps: int = 0) -> dict:
    """`{"seconds", "compile_s", "params", "peak_mb", "memory", "device", "devices"}` of the
    config's step on `batches` (host arrays, cycled), and where the memory goes: the resident
    set of the runtime before the model is built (`runtime_mb`), the peak once the step is
    compiled (`peak_compiled_mb`), after the first step (`peak_1_mb`) and after `memory_steps`
    steps (`peak_n_mb`)."""
    jax.config.update("jax_enable_compilation_cache", False)
    runtime_mb = rss_mb()
    setup = build_setup(config, spec)
    mesh = make_mesh()
    state = initial_state(setup, jax.random.key(0), mesh)  # as a run makes it
    batches = [shard_batch(batch, mesh) for batch in batches]
    key = jax.random.key(1)
    start = time.perf_counter()
    step = jit_train_step(setup, mesh).lower(state, batches[0], key).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state, "k": 0}

    def run_step():
        holder["state"], metrics = step(holder["state"], batches[holder["k"] % len(batches)],
                                        key)
        holder["k"] += 1
        jax.block_until_ready(metrics)

    peak_compiled, memory = peak_memory()
    run_step()
    peak_1, _ = peak_memory()
    for _ in range(warmup - 1):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    peak, _ = peak_memory()
    run_to(run_step, max(warmup, 1) + steps, memory_steps)
    device = jax.devices()[0]
    return {"seconds": seconds, "compile_s": compile_s,
            "params": param_counts(state, setup.networks), "peak_mb": peak, "memory": memory,
            "runtime_mb": runtime_mb, "peak_compiled_mb": peak_compiled, "peak_1_mb": peak_1,
            "peak_n_mb": peak_memory()[0] if memory_steps else None,
            "device": f"{device.platform}:{device.device_kind}", "devices": jax.device_count(),
            "images_per_step": config.train.batch_size * setup.batches_per_step}

"""Timing pieces the step benchmarks share, free of jax so that a PyTorch row can run in a process
that never loads it (its peak memory then counts PyTorch alone).

`median_step_seconds` times a step; `time_torch_step` times a PyTorch step the way jgan's is
timed (the first warm-up step counts as its compile time; CUDA synchronised after each step);
`random_batches` draws the synthetic uint8 batches both sides train on; `peak_memory_mb` reads
the process's peak RSS (CPU) or the device's peak allocation (GPU); `row_in_subprocess` runs one
benchmark row in a process of its own.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

# Batches drawn up front and cycled through, so that no step reuses the previous one's inputs.
NUM_BATCHES = 4


def median_step_seconds(run_step, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run_step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row_in_subprocess(command: list[str], row: dict, **run_kwargs) -> dict:
    """The last JSON line `command` prints, or `row` with a `skipped` field saying why there was
    none. In one process, torch's OpenMP threads and XLA's thread pool slow each other down (the
    jgan DCGAN step measured 60 ms beside an imported torch, 50 ms alone), so each row runs
    alone."""
    done = subprocess.run(command, capture_output=True, text=True, **run_kwargs)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    errors = done.stderr.strip().splitlines() or ["no output"]
    return {**row, "skipped": f"exit {done.returncode}: {errors[-1][:300]}"}


def random_batches(arrays: dict, rows: int, *, num_classes: int = 0,
                   count: int = NUM_BATCHES) -> list[dict[str, np.ndarray]]:
    """`count` dicts of `rows` random examples for a data spec's `arrays` ({name: (shape,
    dtype)}): uint8 images uniform in [0, 255], int32 labels uniform over the classes."""
    rng = np.random.default_rng(0)

    def draw(shape, dtype):
        if dtype == "uint8":
            return rng.integers(0, 256, (rows, *shape), dtype=np.uint8)
        return rng.integers(0, max(num_classes, 1), (rows, *shape), dtype=np.int32)

    return [{name: draw(tuple(shape), dtype) for name, (shape, dtype) in arrays.items()}
            for _ in range(count)]


def torch_batches(torch, batches: list[dict], device: str) -> list[dict]:
    """`random_batches` as tensors on `device`, images [B, H, W, C] turned NCHW."""
    def tensor(array):
        value = torch.from_numpy(array)
        return (value.permute(0, 3, 1, 2).contiguous() if value.ndim == 4 else value).to(device)

    return [{name: tensor(array) for name, array in batch.items()} for batch in batches]


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2 ** 20 if sys.platform == "darwin" else 2 ** 10), 1)


def torch_or_none():
    """The torch module, or None where it is not importable (torch is an optional extra)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_device(torch) -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def time_torch_step(torch, run_step, *, steps: int, warmup: int, device: str) -> dict:
    """`{"seconds": median step, "compile_s": first step, "peak_mb", "memory", "device"}`."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def synchronised_step():
        run_step()
        if device == "cuda":
            torch.cuda.synchronize()

    compile_s = median_step_seconds(synchronised_step, 1) if warmup else None
    for _ in range(warmup - 1):
        synchronised_step()
    seconds = median_step_seconds(synchronised_step, steps)
    if device == "cuda":
        peak, memory = torch.cuda.max_memory_allocated() / 2 ** 20, "device"
        name = f"cuda:{torch.cuda.get_device_name()}"
    else:
        peak, memory, name = peak_rss_mb(), "rss", "cpu"
    return {"seconds": seconds, "compile_s": compile_s, "peak_mb": round(peak, 1),
            "memory": memory, "device": name, "threads": torch.get_num_threads()}

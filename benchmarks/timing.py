"""Timing pieces the step benchmarks share, free of jax so that a PyTorch row can run in a process
that never loads it (its peak memory then counts PyTorch alone).

`median_step_seconds` times a step; `time_torch_step` times a PyTorch step the way jgan's is
timed (the first warm-up step counts as its compile time; CUDA synchronised after each step);
`random_batches` draws the synthetic uint8 batches both sides train on; `peak_rss_mb` and
`rss_mb` read the process's peak and current resident set; `run_to` steps on to the step whose
peak memory a row reports; `row_in_subprocess` runs one benchmark row in a process of its own.
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


def rss_mb() -> float | None:
    """This process's resident set size now (Linux's VmRSS), None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 2 ** 10, 1)
    except OSError:
        pass
    return None


def run_to(run_step, done: int, total: int) -> None:
    """Steps `done + 1` to `total`: a row's peak memory after `total` steps shows what grows."""
    for _ in range(max(total - done, 0)):
        run_step()


def torch_or_none():
    """The torch module, or None where it is not importable (torch is an optional extra)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_device(torch) -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def time_torch_step(torch, run_step, *, steps: int, warmup: int, device: str,
                    memory_steps: int = 0, runtime_mb: float | None = None) -> dict:
    """`{"seconds": median step, "compile_s": first step, "peak_mb", "memory", "device"}`, and
    the peaks after the first step and after `memory_steps` steps (`peak_1_mb`, `peak_n_mb`).
    `runtime_mb`: the resident set before the networks were built, which the row reports."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def synchronised_step():
        run_step()
        if device == "cuda":
            torch.cuda.synchronize()

    def peak() -> float:
        if device == "cuda":
            return round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
        return peak_rss_mb()

    compile_s = median_step_seconds(synchronised_step, 1)
    peak_1 = peak()
    for _ in range(warmup - 1):
        synchronised_step()
    seconds = median_step_seconds(synchronised_step, steps)
    peak_timed = peak()
    run_to(synchronised_step, max(warmup, 1) + steps, memory_steps)
    name = f"cuda:{torch.cuda.get_device_name()}" if device == "cuda" else "cpu"
    return {"seconds": seconds, "compile_s": compile_s if warmup else None,
            "peak_mb": peak_timed, "peak_1_mb": peak_1,
            "peak_n_mb": peak() if memory_steps else None, "runtime_mb": runtime_mb,
            "memory": "device" if device == "cuda" else "rss", "device": name,
            "threads": torch.get_num_threads()}

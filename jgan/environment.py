"""The software and processor that wrote a checkpoint, and a note when a resume runs on others.

A run's bits are fixed by its seed only for one computation on one machine: XLA's and BLAS's
rounding differ by processor, and a new jax, jaxlib, flax or optax may compile or initialise
differently. Every checkpoint's metadata therefore records what made it (`environment`), and a
resume on other versions or another processor says so in one line: the run goes on, but may no
longer match an uninterrupted one bit for bit (docs/reproducibility.md).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys

import jax

# The packages whose versions can move a run's bits (numpy draws the data order).
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
ENVIRONMENT_KEY = "environment"  # in a checkpoint's meta


def processor() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.cache
def environment() -> dict[str, str]:
    """What this process trains with: package versions, Python, processor and accelerator."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {**versions, "python": platform.python_version(), "processor": processor(),
            "device": jax.devices()[0].device_kind}


def differences(saved, now: dict[str, str]) -> list[str]:
    """`name was -> now` for each entry of `now` that `saved` (a checkpoint's record, possibly
    from an older jgan without one, or damaged) does not match."""
    if not isinstance(saved, dict):
        return []
    return [f"{name} {saved[name]} -> {value}" for name, value in now.items()
            if isinstance(saved.get(name), str) and saved[name] != value]


def note_environment(meta: dict, step: int, log) -> None:
    """Say in one line when checkpoint `step` was written by other software or hardware."""
    changed = differences(meta.get(ENVIRONMENT_KEY), environment())
    if changed:
        log(f"note: checkpoint {step} was written with {', '.join(changed)}: the run goes on, "
            "but its bits may differ from an uninterrupted run's from here")


if __name__ == "__main__":  # `python -m jgan.environment`: what a checkpoint would record
    for key, value in environment().items():
        sys.stdout.write(f"{key}: {value}\n")

"""Compare the run directories of two checkouts, as a port that must keep the bits is checked.

    bash benchmarks/port_check.sh OLD_CHECKOUT runs/port_old
    bash benchmarks/port_check.sh . runs/port_new
    python benchmarks/compare_runs.py runs/port_old runs/port_new

For every run in the first folder: every array of every checkpoint, every PNG's bytes and every
row of history.csv (less its timings) must equal the second folder's run of the same name.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as file:
        return [{k: v for k, v in row.items() if "wall" not in k and "per_s" not in k}
                for row in csv.DictReader(file)]


def differences(old: Path, new: Path) -> tuple[list[str], int]:
    """`(what differs, arrays compared)` between the runs `old` and `new`."""
    checkpointer, found, arrays = ocp.PyTreeCheckpointer(), [], 0
    for step in sorted((old / "checkpoints").iterdir()):
        for item in sorted(p for p in step.iterdir() if p.is_dir() and p.name != "meta"):
            a = jax.tree.leaves(checkpointer.restore(item))
            b = jax.tree.leaves(checkpointer.restore(new / item.relative_to(old)))
            arrays += len(a)
            if len(a) != len(b) or not all(np.array_equal(x, y) for x, y in zip(a, b)):
                found.append(str(item.relative_to(old)))
    for png in sorted(old.rglob("*.png")):
        twin = new / png.relative_to(old)
        if "curve" not in png.name and (not twin.exists() or png.read_bytes() != twin.read_bytes()):
            found.append(str(png.relative_to(old)))
    if history(old) != history(new):
        found.append("history.csv")
    return found, arrays


def main(argv=None) -> int:
    old_root, new_root = map(Path, (argv or sys.argv[1:]))
    differ = 0
    for old in sorted(p for p in old_root.iterdir() if (p / "checkpoints").is_dir()):
        found, arrays = differences(old, new_root / old.name)
        differ += bool(found)
        print(f"{old.name}: {arrays} arrays: " + ("identical" if not found else ", ".join(found)))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

"""history.csv: one row per log step, appended across resumptions, and its loss-curve PNG."""

from __future__ import annotations

import csv
import math
from pathlib import Path


class History:
    """Append-only rows `{step, kimg, <metrics>, img_per_s, wall_s}`.

    On resume, rows logged after the restored checkpoint (by a run that stopped before its next
    checkpoint) are dropped, since the resumed run logs those steps again.
    """

    def __init__(self, path, *, resume_step: int):
        self.path = Path(path)
        self.columns: list[str] | None = None
        if self.path.exists():
            self.columns, rows = read_rows(self.path)
            self._rewrite([row for row in rows if int(row["step"]) <= resume_step])

    def append(self, row: dict) -> None:
        new_columns = [name for name in row if name not in (self.columns or [])]
        if new_columns:
            # A column that first appears now (an evaluation's metrics) widens the header; the
            # earlier rows leave it empty.
            rows = self.rows()
            self.columns = list(self.columns or []) + new_columns
            self._rewrite(rows)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(
                {k: _format(v) for k, v in row.items()})

    def _rewrite(self, rows: list[dict]) -> None:
        write_rows(self.path, self.columns, rows)

    def rows(self) -> list[dict]:
        return read_rows(self.path)[1] if self.path.exists() else []


def read_rows(path) -> tuple[list[str], list[dict]]:
    """`(columns, rows)` of a history file."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def write_rows(path, columns: list[str], rows: list[dict]) -> None:
    """The file with these columns and rows, replaced atomically, so that a crash leaves the old
    file or the new one (a column that a row lacks stays empty)."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _format(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def plot_history(rows: list[dict], path) -> None:
    """Loss curves (left), D's mean outputs (middle) and, when evaluated, FID (right) by kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    kimg = [float(r["kimg"]) for r in rows]
    evaluated = [(k, float(r["eval/fid"])) for k, r in zip(kimg, rows) if r.get("eval/fid")]
    figure, axes = plt.subplots(1, 3 if evaluated else 2, figsize=(15 if evaluated else 10, 3.5))
    for name in rows[0]:
        target = axes[0] if name.startswith("loss/") else axes[1] if name.startswith("d/") else None
        if target is not None:
            target.plot(kimg, [float(r[name]) if r[name] else math.nan for r in rows], label=name)
    axes[0].set_title("losses")
    axes[1].set_title("D on real and fake (probability, or raw critic score)")
    if evaluated:
        axes[2].plot(*zip(*evaluated), marker="o", label="eval/fid")
        axes[2].set_title("FID (lower is better)")
    for axis in axes:
        axis.set_xlabel("kimg")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    figure.tight_layout()
    tmp = Path(str(path) + ".tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(path)

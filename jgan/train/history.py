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
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [row for row in reader if int(row["step"]) <= resume_step]
                self.columns = reader.fieldnames
            self._rewrite(rows)

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
        """The file with the current columns and these rows, replaced atomically."""
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


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

"""history.csv: one row per log step, appended across resumptions, and its loss-curve PNG."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import NamedTuple

from jgan.files import atomic_write, no_follow

CUT_SHORT = "cut short"  # the last line has no line end: a write that never finished


class Damage(NamedTuple):
    """The first line of a history file that cannot be read (1 is the header), and why."""
    line: int
    reason: str


class History:
    """Append-only rows `{step, kimg, <metrics>, img_per_s, wall_s}`.

    On resume, rows logged after the restored checkpoint (by a run that stopped before its next
    checkpoint) are dropped, since the resumed run logs those steps again. Only what reads
    cleanly is kept (`read_history`): a last row cut short is dropped with a warning; a file
    damaged elsewhere is moved aside, whole, to `history.csv.damaged-N`, and the rows before the
    damage are kept.
    """

    def __init__(self, path, *, resume_step: int, log=print):
        self.path = Path(path)
        self.columns: list[str] | None = None
        if not self.path.exists():
            return
        columns, rows, damage = read_history(self.path)
        if damage is not None and damage.reason == CUT_SHORT:
            log(f"warning: {self.path} ends in a row cut short (line {damage.line}); dropped it")
        elif damage is not None:
            aside = _set_aside(self.path)
            log(f"warning: {self.path} cannot be read from line {damage.line} ({damage.reason});"
                f" moved it to {aside} and kept the {len(rows)} rows before")
        if columns:
            self.columns = columns
            self._rewrite([row for row in rows if int(row["step"]) <= resume_step])
        elif self.path.exists():  # empty, or a header cut short: nothing to keep
            self.path.unlink()

    def append(self, row: dict) -> None:
        new_columns = [name for name in row if name not in (self.columns or [])]
        if new_columns:
            # A column that first appears now (an evaluation's metrics) widens the header; the
            # earlier rows leave it empty.
            rows = self.rows()
            self.columns = list(self.columns or []) + new_columns
            self._rewrite(rows)
        with open(self.path, "a", newline="", opener=no_follow) as f:
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


def read_history(path) -> tuple[list[str], list[dict], Damage | None]:
    """`(columns, rows, damage)`: the header, the rows before the first line that cannot be
    read, and that line (None when all can). A line is read when it is UTF-8 text with one value
    per column, a whole number for `step`, and a line end."""
    data = Path(path).read_bytes()
    lines = data.splitlines(keepends=True)
    columns, rows = [], []
    for number, line in enumerate(lines, start=1):
        try:
            values = next(csv.reader([line.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error):  # binary: not UTF-8, or a NUL byte
            return columns, rows, Damage(number, "not CSV text")
        if not line.endswith(b"\n"):
            return columns, rows, Damage(number, CUT_SHORT)
        if number == 1:
            if "step" not in values:
                return [], [], Damage(1, "its header names no step column")
            columns = values
            continue
        row = dict(zip(columns, values))
        if len(values) != len(columns) or not row["step"].isdigit():
            return columns, rows, Damage(number, f"{len(values)} values for {len(columns)} "
                                                 f"columns, step {row.get('step')!r}")
        rows.append(row)
    return columns, rows, None


def _set_aside(path: Path) -> Path:
    """Rename `path` to the first free `NAME.damaged-N`; returns the new name."""
    copies = 1
    while os.path.lexists(f"{path}.damaged-{copies}"):
        copies += 1
    aside = path.with_name(f"{path.name}.damaged-{copies}")
    path.rename(aside)
    return aside


def write_rows(path, columns: list[str], rows: list[dict]) -> None:
    """The file with these columns and rows, replaced atomically, so that a crash leaves the old
    file or the new one (a column that a row lacks stays empty)."""
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


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
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)
    plt.close(figure)

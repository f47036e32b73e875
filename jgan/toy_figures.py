"""Pictures of the 2-D benchmark: samples over the true centres, one panel per seed; a GIF of
those frames; and the mode metrics over training, mean and spread over the seeds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jgan.files import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend: figures are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path) -> None:
    """Write atomically, so an interrupted run never leaves half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=80)
    pyplot().close(figure)


def plot_samples(samples: np.ndarray, centres: np.ndarray, path, *, title: str,
                 seeds, covered) -> None:
    """samples [N seeds, M, 2] as dots over the centres (red crosses), a panel per seed."""
    plt = pyplot()
    count = len(samples)
    columns = min(count, 4)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows + 0.4),
                                squeeze=False)
    reach = float(np.abs(centres).max()) * 1.5
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= count:
            axis.axis("off")
            continue
        axis.scatter(samples[index, :, 0], samples[index, :, 1], s=2, alpha=0.4, color="tab:blue")
        axis.scatter(centres[:, 0], centres[:, 1], s=30, marker="x", color="tab:red")
        axis.set_xlim(-reach, reach)
        axis.set_ylim(-reach, reach)
        axis.set_aspect("equal")
        axis.set_title(f"seed {seeds[index]}: {int(covered[index])}/{len(centres)} modes",
                       fontsize=9)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)


def plot_mode_curves(steps, summaries: list[dict], path, *, num_modes: int, title: str) -> None:
    """Modes covered, high-quality share and KL to uniform by step: the seeds' mean, +- 1 std."""
    plt = pyplot()
    panels = [("modes/covered", f"modes covered (of {num_modes})"),
              ("modes/high_quality", "high-quality share (within 3 std)"),
              ("modes/kl_uniform", "KL(mode histogram || uniform)")]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for axis, (name, label) in zip(axes, panels):
        mean = np.array([summary[name][0] for summary in summaries])
        std = np.array([summary[name][1] for summary in summaries])
        axis.plot(steps, mean, color="tab:blue")
        axis.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.25)
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].set_ylim(0, num_modes + 0.5)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)

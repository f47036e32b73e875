"""D's test error against epochs of the semi-supervised GAN runs under ROOT (each RUN/results.json
of `experiments/ssgan.py`, or of the PyTorch twin's `benchmarks/ssgan_twin_epochs.py`), as a
markdown table and a figure beside the paper's 0.93%.

    python benchmarks/ssgan_curves.py runs/ssgan_epochs --figure docs/ssgan_error_epochs.png

An epoch is 60,000 unlabelled images: 600 steps of 100 (D's unlabelled batch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STEPS_PER_EPOCH = 600
PAPER_ERROR = 0.93  # Salimans et al. 2016, Table 1: 100 labels, after 300 epochs


def curves(root: Path) -> dict[str, list[tuple[float, float]]]:
    """`{label: [(epoch, test error %)]}` of every run under `root`: "jgan, RUN", or "twin, RUN"
    for the PyTorch twin's runs (benchmarks/ssgan_twin_epochs.py)."""
    found = {}
    for path in sorted(root.glob("*/results.json")):
        results = json.loads(path.read_text())
        label = f"{'twin' if results.get('twin') else 'jgan'}, {path.parent.name}"
        found[label] = [(point["step"] / STEPS_PER_EPOCH, 100 * point["test_error"])
                        for point in results["curve"]]
    return found


def table(found: dict) -> str:
    epochs = sorted({epoch for points in found.values() for epoch, _ in points})
    lines = ["| epoch | " + " | ".join(found) + " |", "|---:|" + "---:|" * len(found)]
    for epoch in epochs:
        cells = [f"{dict(points).get(epoch, float('nan')):.2f}" for points in found.values()]
        lines.append(f"| {epoch:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(found: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in found.items():
        ax.plot(*zip(*points), marker=".", label=name)
    ax.axhline(PAPER_ERROR, color="k", linestyle="--", label="paper, after 300 epochs (0.93%)")
    ax.set(xlabel="epochs of unlabelled MNIST (600 steps of 100)", ylabel="test error (%)",
           yscale="log", title="K+1 GAN, 100 labels: D's test error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--figure", type=Path, help="PNG of the curves")
    args = parser.parse_args(argv)
    found = curves(args.root)
    print(table(found))
    if args.figure:
        figure(found, args.figure)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()

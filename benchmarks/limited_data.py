"""The table and figure of the limited-data benchmark, from the runs of limited_data_runs.sh.

    python benchmarks/limited_data.py dcgan500 [--root runs/limited] [--figure docs/X.png]

For each variant (none, diffaugment, ada, ada100) it reads RUN/metrics.json (jgan.tools.evaluate),
the last row of RUN/history.csv (wall time, D's loss, ADA's p) and the last sample grid, prints a
Markdown table and writes the grids side by side.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import PIL.Image  # noqa: E402

# The variants of limited_data_runs.sh: ada100 is ADA with train.ada_kimg=100.
AUGMENTS = ("none", "diffaugment", "ada", "ada100")


def last_row(run: Path) -> dict:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))[-1]


def row(run: Path) -> str:
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    history = last_row(run)
    p = history.get("augment/p")
    shares = (f"{100 * metrics['class_share_min']:.1f}% / {100 * metrics['class_share_max']:.1f}%"
              if "class_share_min" in metrics else "")
    ifid = f"{metrics['ifid']:.1f}" if "ifid" in metrics else ""
    return (f"| {run.name} | {history['step']} | {float(history['wall_s']) / 60:.1f} min | "
            f"{metrics['fid']:.1f} | {ifid} | {metrics['kid']:.2f} | {metrics['precision']:.3f} | "
            f"{metrics['recall']:.3f} | {shares} | {float(history['loss/d']):.3f} | "
            f"{'' if p is None else f'{float(p):.3f}'} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group", help="dcgan500, dcgan2000 or biggan1000")
    parser.add_argument("--root", default="runs/limited")
    parser.add_argument("--figure", help="PNG of the last sample grids side by side")
    args = parser.parse_args(argv)
    runs = [Path(args.root) / f"{args.group}_{augment}" for augment in AUGMENTS]
    runs = [run for run in runs if (run / "metrics.json").is_file()]
    print("| run | steps | wall | FID | intra-FID | KID | precision | recall | "
          "rarest / commonest class | D loss | ADA p |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(row(run))
    if args.figure and runs:
        figure, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4.3))
        for axis, run in zip(axes if len(runs) > 1 else [axes], runs):
            grid = sorted((run / "samples").glob("step_*.png"))[-1]
            axis.imshow(PIL.Image.open(grid), cmap="gray")
            axis.set_title(f"{run.name}\n{grid.stem}", fontsize=10)
            axis.axis("off")
        figure.tight_layout()
        figure.savefig(args.figure, dpi=100)


if __name__ == "__main__":
    main()

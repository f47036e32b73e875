"""Measure the runs of benchmarks/translation_runs.sh, as docs/results.md reports them.

    bash benchmarks/translation_runs.sh runs/quality          # the six trainings, ~70 min CPU
    python benchmarks/translation_quality.py runs/quality     # this: the tables, ~3 min

Pix2Pix runs are scored on facades' 106 test pairs (`--split test`): L1, PSNR and SSIM of the
translated label maps against the photos, at the runs' 128x128, beside the training set's mean
photo for every input. CycleGAN runs are scored on their 40 + 40 held-out photos: cycle L1 and
the translation success rate of a summer/winter classifier trained on the real training photos.
Each run's numbers go to RUN/evaluation.json; the tables are printed as markdown, and the final
preview grids and GIFs are copied to docs/ with `--docs`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from jgan.tools.evaluate_translation import evaluate_translation

PIX2PIX_RUNS = {"pix2pix": "default: GAN + 100 L1", "pix2pix_lambda1000": "GAN + 1000 L1",
                "pix2pix_l1_only": "100 L1 alone (no GAN)"}
CYCLEGAN_RUNS = {"cyclegan": "default: LSGAN, pool 50", "cyclegan_no_pool": "LSGAN, no pool",
                 "cyclegan_focal": "focal (gamma 2), pool 50"}


def _wall(root: Path) -> dict[str, str]:
    walls = {}
    path = root / "wall_seconds.txt"
    if path.is_file():
        for line in path.read_text().splitlines():
            name, seconds = line.split()
            walls[name] = f"{int(seconds) // 60} min {int(seconds) % 60:02d} s"
    return walls


def pix2pix_table(root: Path, data_dir: str, walls: dict) -> list[str]:
    rows = ["| run | wall | L1 (lower is better) | PSNR dB | SSIM |", "|---|---:|---:|---:|---:|"]
    baseline = None
    for name, what in PIX2PIX_RUNS.items():
        if not (root / name / "checkpoints").is_dir():
            rows.append(f"| {what} | | not run | | |")
            continue
        result = evaluate_translation(root / name, split="test", data_dir=data_dir, log=_quiet)
        (root / name / "evaluation.json").write_text(json.dumps(result, indent=1))
        scores = next(iter(result["directions"].values()))
        baseline = scores["baseline"]
        rows.append(f"| {what} | {walls.get(name, '')} | {scores['l1']:.4f} | "
                    f"{scores['psnr']:.2f} | {scores['ssim']:.3f} |")
    if baseline is not None:
        rows.append(f"| the training set's mean photo for every input | | {baseline['l1']:.4f} | "
                    f"{baseline['psnr']:.2f} | {baseline['ssim']:.3f} |")
    return rows


def cyclegan_table(root: Path, data_dir: str, walls: dict) -> list[str]:
    rows = ["| run | wall | cycle L1 A->B->A | cycle L1 B->A->B | fake_B judged winter | "
            "fake_A judged summer |", "|---|---:|---:|---:|---:|---:|"]
    real = None
    for name, what in CYCLEGAN_RUNS.items():
        if not (root / name / "checkpoints").is_dir():
            rows.append(f"| {what} | | not run | | | |")
            continue
        result = evaluate_translation(root / name, data_dir=data_dir, log=_quiet)
        (root / name / "evaluation.json").write_text(json.dumps(result, indent=1))
        there, back = result["directions"]["AtoB"], result["directions"]["BtoA"]
        rows.append(f"| {what} | {walls.get(name, '')} | {there['cycle_l1']:.4f} | "
                    f"{back['cycle_l1']:.4f} | {there['success_rate']:.1%} | "
                    f"{back['success_rate']:.1%} |")
        real = result["classifier"]
    if real is not None:
        rows.append(f"| the classifier on the real held-out photos | | | | "
                    f"{real['accuracy_B']:.1%} of winter | {real['accuracy_A']:.1%} of summer |")
    return rows


def _quiet(*args, **kwargs):
    """Drop the evaluation's progress lines: only the tables are printed."""


def copy_pictures(root: Path, docs: Path) -> None:
    """The final preview grid and the GIF of each default run, under names docs/ links to."""
    for name, dataset in (("pix2pix", "facades"), ("cyclegan", "summer2winter")):
        grids = sorted((root / name / "samples").glob("step_*.png"))
        if grids:
            shutil.copy(grids[-1], docs / f"{name}_{dataset}_{grids[-1].stem}.png")
        if (root / name / "training.gif").is_file():
            shutil.copy(root / name / "training.gif", docs / f"{name}_{dataset}_training.gif")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="runs/quality",
                        help="the folder of benchmarks/translation_runs.sh's runs")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--docs", action="store_true",
                        help="copy the default runs' final grids and GIFs to docs/")
    args = parser.parse_args(argv)
    root = Path(args.root)
    walls = _wall(root)
    print("\n".join(pix2pix_table(root, args.data_dir, walls)), "\n")
    print("\n".join(cyclegan_table(root, args.data_dir, walls)))
    if args.docs:
        copy_pictures(root, Path(__file__).resolve().parents[1] / "docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

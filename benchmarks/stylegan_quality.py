"""Measure the runs of benchmarks/stylegan_runs.sh for collapse, as docs/results.md reports them.

    bash benchmarks/stylegan_runs.sh runs/quality          # the three trainings, ~80 min CPU
    python benchmarks/stylegan_quality.py runs/quality     # this: the table, ~5 min

For each run, 500 generated images (model size, 64x64, EMA weights, psi 1) against the 450 real
training slices after the same preprocessing:
- diversity: the mean pairwise MS-SSIM (`jgan.metrics.diversity`) of the generated and of the
  real images; collapse shows as a generated value far above the real one;
- memorisation: each of 8 generated images beside its nearest real slice by L2, and the median
  nearest distance of all 500 beside the real slices' own median nearest-other distance;
- precision and recall (Kynkaenniemi et al. 2019, k = 3) in the k-means patch feature space
  fitted on the real slices (`jgan.metrics.patch_features`);
- the crop box's edge: the mean (0-255) of each image's outer ring of `RING` pixels, which is
  black in the real slices; a generator that draws a grey box shows it here.
Numbers go to RUN/quality.json and a markdown table; `--docs` copies the figures to docs/.

    python benchmarks/stylegan_quality.py runs/quality --only A B C --side-by-side STEP PNG

draws, instead, the training grids of runs A, B, C at STEP side by side: every run draws its grid
from the same latents (the seed's grid key), so the columns differ only by the training.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jgan import workflow
from jgan.data import open_data
from jgan.images import save_png
from jgan.metrics.diversity import mean_pairwise_ms_ssim, nearest_neighbours, neighbour_strip
from jgan.metrics.patch_features import image_features, precision_recall_scores
from jgan.tools.sample import open_checkpoint

RUNS = {"stylegan_brain": "default: R1, mixing 0.9, Adam(0, 0.99)",
        "stylegan_seed": "the seed's: Adam defaults, no R1, no mixing",
        "stylegan_brain_long": "default, trained on (2.8x the steps)",
        "stylegan_diffaugment": "DiffAugment, G 1e-3, D 8e-4 (OPS=color,translation,cutout)",
        "stylegan_geometric": "DiffAugment translation and cutout, G 1e-3, D 8e-4 "
                              "(stylegan_augment_runs.sh)",
        "stylegan_ada": "ADA, all its ops, p moving 1 per 100k images, G 1e-3, D 8e-4 "
                        "(AUGMENT=ada stylegan_augment_runs.sh)",
        "stylegan_none_fast": "no augmentation, G 1e-3, D 8e-4 "
                              "(AUGMENT=none stylegan_augment_runs.sh)"}
NUM_GENERATED = 500
PAIRS = 40_000  # sampled pairs per mean MS-SSIM (all pairs differ by < 0.001 on 500 images)
RING = 2  # pixels of the 64x64 box's edge ring


def edge_ring_mean(images: np.ndarray) -> float:
    """The mean pixel (0-255) of the outer RING rows and columns of images [N, H, W, C]."""
    inner = np.zeros(images.shape[1:3], bool)
    inner[RING:-RING, RING:-RING] = True
    return float(images[:, ~inner].astype(np.float64).mean())


def real_images(run: Path) -> np.ndarray:
    with open_checkpoint(run) as (_, _, _, config, _):
        data = open_data(config.data, log=lambda *args: None)
    return np.asarray(data.dataset.take(np.arange(len(data.dataset)))["image"])


def measure(run: Path, real: np.ndarray, out: Path) -> dict:
    setup, state, _ = workflow.load_generator(run)
    fake = setup.generate(state, jax.random.key(0), NUM_GENERATED)
    key = jax.random.key(1)
    scores = {"step": int(state.step),
              "ms_ssim_generated": mean_pairwise_ms_ssim(fake, num_pairs=PAIRS, key=key),
              "ms_ssim_real": mean_pairwise_ms_ssim(real, num_pairs=PAIRS, key=key),
              "edge_ring_generated": edge_ring_mean(fake), "edge_ring_real": edge_ring_mean(real)}
    _, fake_distances = nearest_neighbours(fake, real)
    # Each real slice's nearest other slice: the spacing of the data itself.
    real_flat = real.reshape(len(real), -1).astype(np.float64)
    squared = ((real_flat[:, None] - real_flat[None]) ** 2).sum(-1)
    np.fill_diagonal(squared, np.inf)
    scores["nn_l2_generated_to_real_median"] = float(np.median(fake_distances))
    scores["nn_l2_real_to_other_real_median"] = float(np.median(np.sqrt(squared.min(1))))
    indices, _ = nearest_neighbours(fake[:8], real)
    save_png(neighbour_strip(fake[:8], real, indices), out / f"{run.name}_nearest.png")
    fake_features, real_features = image_features(fake, real)
    scores.update(precision_recall_scores(real_features, fake_features, k=3))
    save_png(setup.truncation_grid(state, jax.random.key(2)), out / f"{run.name}_truncation.png")
    save_png(setup.mixing_grid(state, jax.random.key(3)), out / f"{run.name}_mixing.png")
    save_png(setup.preview(state, setup.preview_inputs(jax.random.key(4), 36, {}))[""],
             out / f"{run.name}_samples.png")
    return scores


def real_baseline(real: np.ndarray) -> str:
    """The scale of each measure: the even-numbered real slices scored against the odd ones."""
    even, odd = real[0::2], real[1::2]
    _, distances = nearest_neighbours(even, odd)
    even_features, odd_features = image_features(even, odd)
    scores = precision_recall_scores(odd_features, even_features, k=3)
    return (f"| real slices, even against odd (the scale) | | "
            f"{mean_pairwise_ms_ssim(even, num_pairs=PAIRS, key=jax.random.key(1)):.3f} | | "
            f"{np.median(distances):.0f} | | {scores['precision']:.3f} | {scores['recall']:.3f} |")


def side_by_side(root: Path, names: list[str], step: int, path: Path) -> None:
    """The training grids of runs `names` under `root` at `step`, in one row, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import PIL.Image

    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4.4), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.imshow(PIL.Image.open(root / name / "samples" / f"step_{step:06d}.png"), cmap="gray")
        axis.set_title(f"{name}, step {step}", fontsize=10)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="the OUT_DIR of stylegan_runs.sh")
    parser.add_argument("--docs", action="store_true", help="copy the figures to docs/")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), default=sorted(RUNS),
                        help="measure these runs alone (default: every trained one)")
    parser.add_argument("--side-by-side", nargs=2, metavar=("STEP", "PNG"),
                        help="draw the --only runs' training grids of STEP side by side, and "
                             "measure nothing")
    args = parser.parse_args(argv)
    if args.side_by_side:
        step, path = args.side_by_side
        side_by_side(args.root, args.only, int(step), Path(path))
        return 0
    figures = args.root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    lines = ["| run | step | MS-SSIM generated | MS-SSIM real | NN L2 gen -> real "
             "| NN L2 real -> real | precision | recall | edge ring gen / real |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    real = None
    for name, label in RUNS.items():
        if name not in args.only:
            continue
        run = args.root / name
        if not run.is_dir():
            print(f"{run}: not trained, skipped")
            continue
        real = real_images(run) if real is None else real
        start = time.perf_counter()
        scores = measure(run, real, figures)
        scores["seconds"] = time.perf_counter() - start
        (run / "quality.json").write_text(json.dumps(scores, indent=1))
        lines.append(f"| {label} | {scores['step']} | {scores['ms_ssim_generated']:.3f} | "
                     f"{scores['ms_ssim_real']:.3f} | "
                     f"{scores['nn_l2_generated_to_real_median']:.0f} | "
                     f"{scores['nn_l2_real_to_other_real_median']:.0f} | "
                     f"{scores['precision']:.3f} | {scores['recall']:.3f} | "
                     f"{scores['edge_ring_generated']:.1f} / {scores['edge_ring_real']:.1f} |")
        if args.docs:
            for figure in figures.glob(f"{name}_*.png"):
                shutil.copy(figure, Path("docs") / figure.name.replace(name, f"{name}64"))
            shutil.copy(run / "training.gif", Path("docs") / f"{name}64_training.gif")
    if real is not None:
        lines.append(real_baseline(real))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

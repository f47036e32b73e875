"""BigGAN (Brock et al. 2019) on Fashion-MNIST, sized for a 2-core CPU (about 15 minutes of steps).

    python -m experiments.biggan --data-dir ../shared/datasets          # Fashion-MNIST
    python -m experiments.biggan --data-dir ../shared/datasets --dataset mnist
    python -m experiments.biggan --set loss.ortho_beta=0                 # orthogonal reg. off
    python -m experiments.biggan --preset cifar10                        # the paper's, for GPUs
    python -m experiments.biggan --generate runs/biggan_fashion_mnist --labels 7 --num 64 \\
        --truncation 0.5 --out sneakers.png                              # one class, truncated
    python -m experiments.biggan --generate runs/biggan_fashion_mnist --interpolate 5,7 \\
        --out sandal_to_sneaker.png                                      # through the embedding

The default: G and D of residual blocks 32 channels wide (28 -> 7x7 input, 2 up blocks; D 28,
14, 7, 7), z of 120 in 3 chunks (skip-z), a shared class embedding of 128, self-attention at
14x14, spectral norm everywhere, orthogonal init, the hinge loss, orthogonal regularization
with beta 1e-4, Adam(G 1e-4, D 4e-4, betas 0 and 0.999) with one D step per G step, batch 32,
G's EMA (half-life 10k images) sampled with standing statistics, 5,300 steps.
`docs/biggan.md` says how these were chosen and what the paper's settings gave here.

Every sample grid has a row per class and a column per z; beside it
`samples/truncation_step_N.png` (rows: no truncation, then thresholds 2, 1, 0.5, 0.25) and
`samples/interpolation_step_N.png` (rows: classes 0 -> 1, 2 -> 3, ..., through the shared
embedding).

`--preset cifar10`: BigGAN-PyTorch's CIFAR-10 script (256 channels, z of 128, no attention,
N(0, 0.02) init, 4 D steps per G step at 2e-4, batch 50), with orthogonal regularization on,
on TFDS `cifar10` when prepared (`--data-dir` with the TFDS folder). Not for this CPU.

Sampling flags (with --generate RUN): --labels (default every class), --num, --truncation
(0: none), --seed, --out FILE (a grid; a row per label), --interpolate A,B, --truncation-grid.
"""

import argparse
import sys

from jgan.cli import train_or_sample
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.errors import UserError, reports_errors
from jgan.families.biggan import BigGANLossConfig, BigGANModelConfig


def get_config() -> Config:
    return Config(
        name="biggan", family="biggan", data=DataConfig(dataset="fashion_mnist"),
        model=BigGANModelConfig(g_features=32, d_features=32, attention=14),
        loss=BigGANLossConfig(ortho_beta=1e-4),
        optim=OptimConfig(g_lr=1e-4, d_lr=4e-4, b1=0.0, b2=0.999),
        train=TrainConfig(steps=5300, batch_size=32, ema_kimg=10.0, grid_size=100,
                          log_every=50, sample_every=500, checkpoint_every=500))


def cifar10_config() -> Config:
    """BigGAN-PyTorch's `launch_cifar_ema.sh`, with orthogonal regularization on."""
    return Config(
        name="biggan_cifar10", family="biggan", data=DataConfig(dataset="cifar10"),
        model=BigGANModelConfig(z_dim=128, g_features=256, d_features=256, attention=0,
                                init="N02"),
        loss=BigGANLossConfig(ortho_beta=1e-4),
        optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, b1=0.0, b2=0.999),
        # 500 epochs of 50,000 images at 4 x 50 per step; EMA decay 0.9999 per step
        train=TrainConfig(steps=125_000, batch_size=50, n_critic=4, ema_kimg=347.0,
                          grid_size=100, log_every=100, sample_every=2000,
                          checkpoint_every=2000))


PRESETS = {"cifar10": cifar10_config()}


def sampling_flags() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("sampling a trained run (instead of training)")
    group.add_argument("--generate", metavar="RUN", help="draw images from this run directory")
    group.add_argument("--labels", help="classes to draw, e.g. 3 or 0,1,2 (default: every one)")
    group.add_argument("--num", type=int, default=0,
                       help="images (default 8 per label), split evenly over the labels")
    group.add_argument("--truncation", type=float, default=0.0,
                       help="resample z outside [-T, T] (default 0: no truncation)")
    group.add_argument("--interpolate", metavar="A,B",
                       help="instead: a row from class A to class B through the embedding")
    group.add_argument("--truncation-grid", action="store_true",
                       help="instead: rows of thresholds none, 2, 1, 0.5, 0.25 per class")
    group.add_argument("--out", metavar="FILE", default="biggan_samples.png",
                       help="grid to write (default biggan_samples.png)")
    return parser


def class_pair(text: str) -> tuple[int, int]:
    try:
        first, second = (int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--interpolate {text}: write two classes, e.g. --interpolate "
                        "5,7") from None
    return first, second


@reports_errors
def sample(args) -> int:
    import jax

    from jgan.generate import check_image_count, check_truncation, image_labels
    from jgan.images import make_grid, save_png
    from jgan.tools.sample import _parse_labels, check_output_file, load_run

    check_output_file(args.out, "grid.png")
    check_truncation("truncation", args.truncation, example=0.5, none=0, cli=True)
    if args.num != 0:  # 0, the default, draws 8 a label
        check_image_count("num", args.num, example=64, cli=True)
    pair = class_pair(args.interpolate) if args.interpolate else None
    setup, state, _ = load_run(args.generate)
    key = jax.random.key(args.seed)
    if pair is not None:
        bad = [label for label in pair if not 0 <= label < setup.num_classes]
        if bad:
            raise UserError(f"--interpolate: this run has classes 0 to {setup.num_classes - 1}")
        grid = setup.interpolation_grid(state, key, pairs=[pair], steps=args.num or 8)
    elif args.truncation_grid:
        grid = setup.truncation_grid(state, key)
    else:
        labels = _parse_labels(args.labels) or list(range(setup.num_classes))
        num = args.num or 8 * len(labels)
        per_image = image_labels(labels, num, setup.num_classes)
        images = setup.generate(state, key, num, labels=per_image, truncation=args.truncation)
        grid = make_grid(images, columns=num // len(labels))
    save_png(grid, args.out)
    print(f"grid of {grid.shape[1]}x{grid.shape[0]} in {args.out}")
    return 0


def main(argv=None) -> int:
    return train_or_sample(get_config(), argv, sampling=sampling_flags(), sample=sample,
                           description=__doc__, presets=PRESETS)


if __name__ == "__main__":
    sys.exit(main())

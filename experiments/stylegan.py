"""StyleGAN (Karras et al. 2019) on greyscale brain MRI slices, sized for a 2-core CPU.

    python -m experiments.stylegan --data-dir ../shared/datasets    # brain_mri_slices, ~25 min
    python -m experiments.stylegan --images DIR                     # your own folder
    python -m experiments.stylegan --preset seed --data-dir ../shared/datasets   # the seed's
    python -m experiments.stylegan --generate runs/stylegan_brain_mri_slices --num 16 \\
        --psi 0.7 --out samples/                                     # images like the sources

The default: the seed's preprocessing (grey, the black border cropped automatically, 256 -> 64,
pixels in [0, 1] less the dataset mean; all undone on the way out), z and w of 128 with an
8-layer mapping network, synthesis from a constant 4x4 of ones with bilinear upsampling, noise
and AdaIN at every layer, 64 channels at 4x4 to 16x16 halving to 16 at 64x64, a residual D with
minibatch stddev, the non-saturating loss with R1 (gamma 1, on every 4th real image), style
mixing 0.9, Adam(G 2.5e-4, D 2e-4, betas 0 and 0.99), batch 16, 1,450 steps (50 epochs of 450
slices), an EMA of G for sampling, samples and the loss plot every epoch.

`--preset seed` is the seed's failing setting on the same networks and data: Adam's defaults
(1e-3, betas 0.9 and 0.999), no R1, no style mixing. `--preset paper` is the paper's 256x256
networks (512 channels, z and w of 512, gamma 10), for accelerators.

Sampling flags (with --generate RUN): --num, --psi (truncation in [0, 2]; 1 = none), --cutoff
(truncate the layers before this one only; the paper's 8 is the coarse styles), --seed, --out DIR
(--overwrite replaces the images an earlier call left there), --mixing-grid FILE and
--truncation-grid FILE.
"""

import argparse
import dataclasses
import sys

from jgan.cli import train_or_sample
from jgan.config import Config, OptimConfig
from jgan.errors import reports_errors
from jgan.families.stylegan import StyleGANLossConfig, StyleGANModelConfig, brain_config
from jgan.generate import check_image_count, check_truncation

def get_config() -> Config:
    """The brain-MRI run's defaults, which `jgan.workflow` starts from too."""
    return brain_config()


def seed_config() -> Config:
    """The seed's TF run, which collapsed: Keras Adam's defaults, no R1, no style mixing."""
    base = get_config()
    return dataclasses.replace(
        base, name="stylegan_seed",
        model=dataclasses.replace(base.model, style_mixing=0.0),
        loss=dataclasses.replace(base.loss, r1_gamma=0.0),
        optim=OptimConfig(g_lr=1e-3, d_lr=1e-3, b1=0.9, b2=0.999))


def paper_config() -> Config:
    """Karras et al. 2019's networks at 256x256 (App. C): 512 channels up to 32x32, z and w of
    512, R1 with gamma 10, batch 32, for a GPU or TPU."""
    base = get_config()
    return dataclasses.replace(
        base, name="stylegan_paper",
        data=dataclasses.replace(base.data, image_size=256),
        model=StyleGANModelConfig(z_dim=512, w_dim=512, base_features=64, max_features=512),
        loss=StyleGANLossConfig(r1_gamma=10.0, reg_interval=4),
        train=dataclasses.replace(base.train, batch_size=32, steps=100_000, ema_kimg=10.0,
                                  log_every=100, sample_every=1000, checkpoint_every=1000))


PRESETS = {"seed": seed_config(), "paper": paper_config()}


def sampling_flags() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("sampling a trained run (instead of training)")
    group.add_argument("--generate", metavar="RUN", help="draw images from this run directory "
                                                         "(or 'pretrained')")
    group.add_argument("--num", type=int, default=16, help="images to draw (default 16)")
    group.add_argument("--psi", type=float, default=1.0,
                       help="truncation psi in [0, 2] (default 1: none)")
    group.add_argument("--cutoff", type=int, default=None,
                       help="truncate only the layers before this one (default all)")
    group.add_argument("--out", metavar="DIR", help="write 000000.png, ... here")
    group.add_argument("--overwrite", action="store_true",
                       help="replace the numbered images an earlier call left in --out")
    group.add_argument("--mixing-grid", metavar="FILE", help="also write a style-mixing grid")
    group.add_argument("--truncation-grid", metavar="FILE",
                       help="also write a grid of psi 0, 0.5, 0.7, 1")
    return parser


@reports_errors
def sample(args) -> int:
    from jgan import workflow
    from jgan.tools.sample import check_save_folder

    # The workflow checks these too, in its arguments' words; here they are flags.
    check_image_count("num", args.num, example=16, cli=True)
    check_truncation("psi", args.psi, high=workflow.PSI_RANGE[1], example=0.7, none=1, cli=True)
    check_save_folder(args.out, overwrite=args.overwrite, name="out", cli=True)
    images = workflow.generate_images(args.generate, args.num, args.out, psi=args.psi,
                                      cutoff=args.cutoff, seed=args.seed or 0,
                                      overwrite=args.overwrite)
    print(f"{len(images)} images of {'x'.join(map(str, images.shape[1:]))}"
          + (f" in {args.out}" if args.out else ""))
    for path, grid in (args.mixing_grid, "mixing"), (args.truncation_grid, "truncation"):
        if path:
            workflow.save_grid(args.generate, grid, path, seed=args.seed or 0)
            print(f"{grid} grid in {path}")
    return 0


def main(argv=None) -> int:
    return train_or_sample(get_config(), argv, sampling=sampling_flags(), sample=sample,
                           description=__doc__, presets=PRESETS)


if __name__ == "__main__":
    sys.exit(main())

"""Pix2Pix (Isola et al. 2017) on facades, label map -> photo (B -> A), sized for a 2-core CPU.

    python -m experiments.pix2pix --data-dir ../shared/datasets       # 17 min on 2 busy cores
    python -m experiments.pix2pix --images DIR                        # DIR/trainA, DIR/trainB
    python -m experiments.pix2pix --data-dir ../shared/datasets --preset paper     # on a GPU
    python -m jgan.translate runs/pix2pix_facades --input labels/ --out photos/
    python -m jgan.tools.evaluate_translation runs/pix2pix_facades --split test

The default: 128x128 images (facades' 256x256 resized), unet_128 and a 70x70 PatchGAN at half
the paper's widths (32 channels in their first layers), instance norm, batch 4, 2,000 steps
(20 epochs of the 392 training pairs; 8 pairs are held out for the preview grids), Adam(2e-4,
0.5) constant for the first half and then linearly to 0, vanilla GAN loss + 100 * L1, the
paper's jitter (resize to 143, random crop to 128, mirror).

`--preset paper` is the paper's facades setting: 256x256, batch 1, unet_256, widths 64, batch
norm, 200 epochs of the 400 pairs (80,000 steps), the rate decaying over the last 100 epochs.
"""

import dataclasses
import sys

from jgan.cli import run_experiment
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.families.pix2pix import Pix2PixLossConfig, Pix2PixModelConfig

STEPS = 2000


def get_config() -> Config:
    return Config(
        name="pix2pix", family="pix2pix",
        data=DataConfig(dataset="facades", image_size=128, holdout=8, pairing="paired"),
        model=Pix2PixModelConfig(generator="unet_128", g_features=32, d_features=32,
                                 norm="instance", direction="BtoA"),
        loss=Pix2PixLossConfig(),
        optim=OptimConfig(decay_fraction=0.5),
        train=TrainConfig(steps=STEPS, batch_size=4, grid_size=8, log_every=50,
                          sample_every=250, checkpoint_every=500))


def paper_config() -> Config:
    """Isola et al. 2017, Sec. 6.2 and the reference code's facades run."""
    epochs, pairs = 200, 400
    steps = epochs * pairs
    base = get_config()
    return dataclasses.replace(
        base, name="pix2pix_paper",
        data=dataclasses.replace(base.data, image_size=256, holdout=0),
        model=Pix2PixModelConfig(generator="unet_256", norm="batch", direction="BtoA"),
        optim=OptimConfig(decay_fraction=0.5),
        train=TrainConfig(steps=steps, batch_size=1, grid_size=8, sample_every=4000,
                          checkpoint_every=4000))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__,
                          presets={"paper": paper_config()})


if __name__ == "__main__":
    sys.exit(main())

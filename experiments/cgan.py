"""Conditional GAN (Mirza & Osindero 2014) on MNIST: the label is fed to G and D.

    python -m experiments.cgan                              # conditional DCGAN networks
    python -m experiments.cgan --set model.arch=mlp         # the paper's MLP networks
    python -m jgan.tools.sample runs/cgan_mnist --labels 3,7      # 8 threes, then 8 sevens

G takes the one-hot label beside z; D takes it as one constant plane per class beside the image.
DCGAN networks and settings otherwise: Adam(2e-4, beta1 0.5), batch 64, non-saturating loss.

The paper's MLPs (Sec. 4.1: G joins z -> 200 ReLU and the label -> 1000 ReLU into 1200 ReLU
units; D joins maxout layers of the image, 240 x 5, and the label, 50 x 5, into a maxout of
240 x 4, with dropout 0.5) are `--set model.arch=mlp`. Trained with Adam instead of the paper's
SGD with a decaying rate, they reached one image per class, whatever z (measured: 5000 steps),
so they are not the default. The sample grid has one row per class, each column one z.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.gan import GANModelConfig


def get_config() -> Config:
    return Config(name="cgan", model=GANModelConfig(arch="dcgan", conditioning="input",
                                                     num_classes=10))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

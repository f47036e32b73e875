"""DCGAN with spectral normalization in D (Miyato et al. 2018, SNGAN-style) on MNIST.

    python -m experiments.sngan
    python -m experiments.sngan --loss nonsaturating      # any loss of jgan.losses

Every weight of D is divided by its largest singular value, estimated by one power iteration per
call (the vectors are part of the train state), and D has no BatchNorm. Hinge loss (Eq. 16-17),
Adam(2e-4, beta1 0.5, beta2 0.999) and one D update per G update: the paper's setting C.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.gan import GANLossConfig, GANModelConfig


def get_config() -> Config:
    return Config(name="sngan",
                  model=GANModelConfig(arch="dcgan", d_norm="none", spectral_norm=True),
                  loss=GANLossConfig(gan_loss="hinge"))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

"""Auxiliary-classifier GAN (Odena, Olah & Shlens 2017) on MNIST.

    python -m experiments.acgan
    python -m jgan.tools.sample runs/acgan_mnist --labels 0,1,2

G takes the one-hot class beside z; D has no label input but a second head that predicts the
class. With L_s the log-likelihood of the right source and L_c that of the right class (Eq. 2-3),
D maximises L_s + L_c and G maximises L_c - L_s; jgan minimises the equivalent cross-entropies,
with the non-saturating form for G's source term. DCGAN networks, Adam(2e-4, beta1 0.5) as in the
paper, batch 64. The sample grid has one row per class.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.gan import GANModelConfig


def get_config() -> Config:
    return Config(name="acgan", model=GANModelConfig(arch="dcgan", conditioning="auxiliary",
                                                     num_classes=10))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

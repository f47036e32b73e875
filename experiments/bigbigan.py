"""BigBiGAN (Donahue & Simonyan 2019) at MNIST scale: unary scores s_x and s_z beside s_xz, hinge.

    python -m experiments.bigbigan
    python -m experiments.bigbigan --data-dir ../shared/datasets --dataset fashion_mnist
    python -m jgan.tools.evaluate_bigan runs/bigbigan_mnist --data-dir ../shared/datasets

BigBiGAN's objective (Sec. 2): D has an x pathway F, a z pathway H and a joint head J; besides
s_xz = J(F(x), H(z)) it scores x alone (s_x) and z alone (s_z). D minimises the hinge loss of all
three; E and G minimise their sum, unhinged. The unary s_x makes G's images answer to an
image-only critic, as in a plain GAN.

The paper's networks are BigGAN's (ResNets at 128x128 and more); at 28x28 jgan uses DCGAN-style
networks: DCGAN's G, D's strided-convolution trunk for E and for F, 512-unit LeakyReLU layers for
H and J, z of 64 dimensions, Adam(2e-4, beta1 0.5), batch 64. The first seed's encoder-collapse
regularizer is on: E's loss adds -1.5 tanh(pairwise MSE of E(x)) and
max(MSE(1, var E(x)) - 0.1, 0) times an adaptive multiplier (logged as e/variance_multiplier).
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.bigan import BiGANLossConfig, BiGANModelConfig


def get_config() -> Config:
    return Config(name="bigbigan", family="bigan",
                  model=BiGANModelConfig(arch="dcgan", z_dim=64, hidden=512, unary=True),
                  loss=BiGANLossConfig(gan_loss="hinge", e_spread_weight=1.5,
                                       e_variance_weight=1.0))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

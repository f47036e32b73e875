"""Wasserstein GAN with weight clipping (Arjovsky, Chintala & Bottou 2017) on MNIST.

    python -m experiments.wgan

Algorithm 1's defaults: a critic with linear output, loss E[f(G(z))] - E[f(x)], weights clipped
to [-0.01, 0.01] after every critic update, RMSprop at 5e-5 for both networks, n_critic = 5 critic
updates (each on its own real batch of 64) per generator update. DCGAN networks with BatchNorm, as
in the paper's DCGAN experiments. One step is one generator update.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config, OptimConfig, TrainConfig
from jgan.families.gan import GANLossConfig, GANModelConfig


def get_config() -> Config:
    return Config(name="wgan", model=GANModelConfig(arch="dcgan"),
                  optim=OptimConfig(optimizer="rmsprop", g_lr=5e-5, d_lr=5e-5, d_clip=0.01),
                  loss=GANLossConfig(gan_loss="wasserstein"),
                  train=TrainConfig(steps=2000, n_critic=5))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

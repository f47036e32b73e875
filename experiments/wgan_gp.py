"""WGAN with gradient penalty (Gulrajani et al. 2017) on MNIST.

    python -m experiments.wgan_gp

Algorithm 1's defaults: lambda = 10 on the critic's gradient norm at random real/fake
interpolates (Eq. 3), Adam(1e-4, beta1 0, beta2 0.9), n_critic = 5 critic updates (each on its
own real batch of 64) per generator update, and no BatchNorm in the critic (Sec. 4), whose
per-example gradients the penalty needs. DCGAN networks otherwise. One step is one generator
update.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config, OptimConfig, TrainConfig
from jgan.families.gan import GANLossConfig, GANModelConfig


def get_config() -> Config:
    return Config(name="wgan_gp", model=GANModelConfig(arch="dcgan", d_norm="none"),
                  optim=OptimConfig(g_lr=1e-4, d_lr=1e-4, b1=0.0, b2=0.9),
                  loss=GANLossConfig(gan_loss="wasserstein", gp_weight=10.0),
                  train=TrainConfig(steps=1500, n_critic=5))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

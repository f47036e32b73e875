"""The original GAN (Goodfellow et al. 2014): MLP generator, maxout discriminator, on MNIST.

    python -m experiments.gan                    # non-saturating generator loss
    python -m experiments.gan --loss minimax     # the game as written: log(1 - D(G(z)))

Adam(2e-4, beta1 0.5) for both networks (the paper used SGD with momentum), batch 64.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config, TrainConfig
from jgan.families.gan import GANModelConfig


def get_config() -> Config:
    return Config(name="gan", model=GANModelConfig(arch="mlp"), train=TrainConfig(steps=5000))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

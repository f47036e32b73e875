"""Conditional GAN (Mirza & Osindero 2014) on MNIST: the label is fed to G and D.

    python -m experiments.cgan                              # the paper's MLP networks
    python -m experiments.cgan --set model.arch=dcgan       # a conditional DCGAN
    python -m jgan.sample runs/cgan_mnist --labels 3,7      # 8 threes, then 8 sevens

Paper networks (Sec. 4.1): G joins z (100 -> 200 ReLU) and the one-hot label (-> 1000 ReLU) into
1200 ReLU units; D joins maxout layers of the image (240 units x 5) and the label (50 x 5) into a
maxout of 240 x 4, with dropout 0.5. Adam(2e-4, beta1 0.5) replaces the paper's SGD with momentum
and decaying rate; batch 64 (the paper used 100). The sample grid has one row per class.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config, ModelConfig, TrainConfig


def get_config() -> Config:
    return Config(name="cgan", model=ModelConfig(arch="mlp", conditioning="input", num_classes=10),
                  train=TrainConfig(steps=5000))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

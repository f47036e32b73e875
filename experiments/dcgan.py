"""DCGAN (Radford, Metz & Chintala 2016) on MNIST: the quick-start run.

    python -m experiments.dcgan                       # 4000 steps of 64 on the bundled MNIST subset
    python -m experiments.dcgan --data-dir ../shared/datasets --dataset fashion_mnist

Paper settings: Adam(2e-4, beta1 0.5), batch 64 (the paper used 128), N(0, 0.02) weights,
z ~ N(0, I) of size 100, non-saturating loss.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.gan import GANModelConfig


def get_config() -> Config:
    return Config(name="dcgan", model=GANModelConfig(arch="dcgan"))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

"""BiGAN (Donahue, Krähenbühl & Darrell 2017) on MNIST: G, an encoder E and a joint D(x, z).

    python -m experiments.bigan                                  # the paper's MNIST MLPs
    python -m experiments.bigan --data-dir ../shared/datasets    # all 60,000 training digits
    python -m jgan.tools.evaluate_bigan runs/bigan_mnist --data-dir ../shared/datasets

The paper's permutation-invariant MNIST model (its code's `mnist_mlp`): 1024-unit layers with
LeakyReLU(0.2) and BatchNorm from the second layer in E and D, ReLU and BatchNorm in G, a linear
encoder output of 50 dimensions, Adam(2e-4, beta1 0.5), batch 128, non-saturating loss with E and
G's labels flipped. Differences: the prior is N(0, I) rather than U[-1, 1]^50 (so E is linear,
with no squashing), D's z pathway is two layers joined to the x pathway by a joint layer, there
is no weight decay, and the default is 10,000 steps (21 epochs) rather than 400 epochs.

Other architectures and options: `--set model.arch=dcgan` (convolutional, any 28 or 32-pixel
dataset), `model.arch=unet` (fully convolutional, e.g. 96x96 patch_camelyon),
`model.g_head=conv`, `model.g_crop=2` (pad-then-crop), `model.downsample=mixed_pool`, and the
encoder-collapse regularizer `loss.e_spread_weight=1.5 loss.e_variance_weight=1`.
"""

import sys

from jgan.cli import run_experiment
from jgan.config import Config, TrainConfig
from jgan.families.bigan import BiGANModelConfig


def get_config() -> Config:
    return Config(name="bigan", family="bigan",
                  model=BiGANModelConfig(arch="mlp", z_dim=50, hidden=1024),
                  train=TrainConfig(steps=10000, batch_size=128, sample_every=1000,
                                    checkpoint_every=1000))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

"""DCGAN (Radford, Metz & Chintala 2016) on MNIST: the quick-start run.

    python -m experiments.dcgan                       # the quick start: bundled MNIST subset
    python -m experiments.dcgan --preset paper        # the paper's settings, at batch 64
    python -m experiments.dcgan --data-dir ../shared/datasets --dataset fashion_mnist

Both train the paper's networks at batch 64 (the paper used 128) with Adam(beta1 0.5), N(0, 0.02)
weights, z ~ N(0, I) of size 100 and the non-saturating loss; `--preset paper` at the paper's
rate 2e-4 for both networks, for 4000 steps. The quick start trains 5000 and adds four things.
Minibatch discrimination (Salimans et al. 2016, Sec. 3.2: 50 kernels of 5 on D's flattened
features) lets D see how alike a batch's samples are: classifier-FID from 129.8 to 104.9 on the
bundled subset. DiffAugment (Zhao et al. 2020) colours and translates every image D sees, real
and generated, which keeps D from memorising the 10,000 digits; its third op, cutout, erases
half of a thin digit and is left out. An EMA of G's weights samples with standing BatchNorm
statistics, and D learns at 1e-4, half of G's rate. Together: 43.7 and 43.2 at seeds 0 and 1
(8 min 8 s on 2 CPU cores; docs/gan.md#the-quick-start).
"""

import dataclasses
import sys

from jgan.cli import run_experiment
from jgan.config import Config
from jgan.families.gan import GANModelConfig

MINIBATCH_KERNELS = 50
STEPS = 5000
EMA_KIMG = 10.0  # G's EMA half-life: 10,000 images, 156 steps of 64
AUGMENT_OPS = "color,translation"
D_LR = 1e-4


def paper_config() -> Config:
    return Config(name="dcgan_paper", model=GANModelConfig(arch="dcgan"))


def get_config() -> Config:
    paper = paper_config()
    return dataclasses.replace(
        paper, name="dcgan",
        model=dataclasses.replace(paper.model, minibatch_kernels=MINIBATCH_KERNELS),
        optim=dataclasses.replace(paper.optim, d_lr=D_LR),
        train=dataclasses.replace(paper.train, augment="diffaugment", augment_ops=AUGMENT_OPS,
                                  steps=STEPS, ema_kimg=EMA_KIMG))


PRESETS = {"paper": paper_config()}


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__, presets=PRESETS)


if __name__ == "__main__":
    sys.exit(main())

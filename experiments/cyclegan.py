"""CycleGAN (Zhu et al. 2017) on summer2winter_yosemite, summer <-> winter, sized for a 2-core CPU.

    python -m experiments.cyclegan --data-dir ../shared/datasets      # about 12 min, 2 cores
    python -m experiments.cyclegan --images DIR --set data.split=train   # DIR/trainA, trainB
    python -m experiments.cyclegan --data-dir ../shared/datasets --preset paper    # on a GPU
    python -m jgan.translate runs/cyclegan_summer2winter_yosemite --input photos/ --out winter/
    python -m jgan.tools.evaluate_translation runs/cyclegan_summer2winter_yosemite

Only the official test split of summer2winter_yosemite (309 summer, 238 winter photos) is in
shared/datasets, so the default trains on it (`data.split=test`) and holds 40 photos of each side
out for the preview grids and the measurements. The default: 128x128 images, resnet_6blocks at
a quarter of the paper's width (16 channels) and 70x70 PatchGANs at half (32), instance norm and
reflection padding, LSGAN, cycle lambda 10 and identity 0.5, image pools of 50, batch 1 as in the
paper, Adam(2e-4, 0.5) constant for the first half and then linearly to 0, the jitter (143 then
crop 128, mirror).

`--preset paper` is the paper's setting for 256x256 photos: resnet_9blocks at widths 64, batch
1, 200 epochs of the full training split's larger side (1,231 summer photos: 246,200 steps), the
rate decaying over the last 100 epochs. For another dataset set --steps to 200 times its larger
side and the optim.decay_* fields to half of that.
"""

import dataclasses
import sys

from jgan.cli import run_experiment
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.families.cyclegan import CycleGANLossConfig, CycleGANModelConfig

STEPS = 1500


def get_config() -> Config:
    return Config(
        name="cyclegan", family="cyclegan",
        data=DataConfig(dataset="summer2winter_yosemite", split="test", image_size=128,
                        holdout=40),
        model=CycleGANModelConfig(generator="resnet_6blocks", g_features=16, d_features=32),
        loss=CycleGANLossConfig(),
        optim=OptimConfig(decay_fraction=0.5),
        train=TrainConfig(steps=STEPS, batch_size=1, grid_size=8, log_every=50,
                          sample_every=250, checkpoint_every=500))


def paper_config() -> Config:
    """Zhu et al. 2017, Sec. 4 and Appendix 7.1, and the reference code's defaults."""
    steps = 200 * 1231
    base = get_config()
    return dataclasses.replace(
        base, name="cyclegan_paper",
        data=dataclasses.replace(base.data, split="train", image_size=256, holdout=0),
        model=CycleGANModelConfig(generator="resnet_9blocks"),
        optim=OptimConfig(decay_fraction=0.5),
        train=TrainConfig(steps=steps, batch_size=1, grid_size=8, sample_every=5000,
                          checkpoint_every=5000))


def main(argv=None) -> int:
    return run_experiment(get_config(), argv, description=__doc__,
                          presets={"paper": paper_config()})


if __name__ == "__main__":
    sys.exit(main())

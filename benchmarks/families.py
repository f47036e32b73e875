"""Training-step throughput of every experiment at its default settings (the real step, jitted
over all devices as in training).

For each experiment: compile time, median ms per step (one G update and its n_critic D updates)
and real images per second (batch x n_critic / step time). Rows marked `xla-conv` swap D's
convolutions for `flax.linen.Conv`, whose second-order pass XLA derives itself: what
`jgan.nn.Conv` buys a gradient penalty. Inputs are real batches of the bundled MNIST subset.

Run from the repository root:  python benchmarks/families.py [--names wgan_gp sngan] [--steps 10]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json

import flax.linen as nn
import jax
from jgan_timing import time_jgan_step  # noqa: E402  (benchmarks/ is the script's folder)

import jgan.families.gan.dcgan as dcgan
from jgan.data import BatchLoader, DataSpec, find_dataset

NAMES = ("gan", "dcgan", "cgan", "acgan", "wgan", "wgan_gp", "sngan", "bigan", "bigbigan")


@contextlib.contextmanager
def xla_conv_patched():
    original = dcgan.Conv
    dcgan.Conv = nn.Conv  # same arguments, parameters and initial values
    try:
        yield
    finally:
        dcgan.Conv = original


def time_experiment(name: str, steps: int, warmup: int, dataset) -> dict:
    config = importlib.import_module(f"jgan.experiments.{name}").get_config()
    images_per_step = config.train.batch_size * config.train.n_critic
    loader = BatchLoader(dataset, batch_size=images_per_step, data_key=jax.random.key(1))
    timed = time_jgan_step(config, DataSpec.from_image_shape((28, 28, 1), num_classes=10),
                           [loader.batch(k) for k in range(4)], steps=steps, warmup=warmup)
    seconds = timed["seconds"]
    return {"experiment": name, "n_critic": config.train.n_critic,
            "ms_per_step": round(seconds * 1000, 1),
            "real_img_per_s": round(timed["images_per_step"] / seconds),
            "compile_s": round(timed["compile_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    dataset = find_dataset("mnist").open("train")
    for name in args.names:
        print(json.dumps(time_experiment(name, args.steps, args.warmup, dataset)), flush=True)
        if name == "wgan_gp":
            with xla_conv_patched():
                result = time_experiment(name, args.steps, args.warmup, dataset)
            print(json.dumps({**result, "experiment": "wgan_gp (xla-conv)"}), flush=True)


if __name__ == "__main__":
    main()

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
import time

import flax.linen as nn
import jax

import jgan.models.dcgan as dcgan
from jgan.data import BatchLoader, DataSpec, find_dataset
from jgan.train.parallel import jit_data_parallel, make_mesh, shard_batch
from jgan.train.setup import build_setup

from train_step import median_step_seconds  # noqa: E402  (benchmarks/ is the script's folder)

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
    config = importlib.import_module(f"experiments.{name}").get_config()
    setup = build_setup(config, DataSpec.from_image_shape((28, 28, 1), num_classes=10))
    mesh = make_mesh()
    images_per_step = config.train.batch_size * setup.batches_per_step
    loader = BatchLoader(dataset, batch_size=images_per_step, data_key=jax.random.key(1))
    state = jax.jit(setup.init_state)(jax.random.key(0))
    key = jax.random.key(2)
    start = time.perf_counter()
    step = jit_data_parallel(setup.train_step, mesh).lower(
        state, shard_batch(loader.batch(0), mesh), key).compile()
    compile_s = time.perf_counter() - start
    batches = [shard_batch(loader.batch(k), mesh) for k in range(4)]
    holder = {"state": state, "k": 0}

    def run_step():
        holder["state"], metrics = step(holder["state"], batches[holder["k"] % 4], key)
        holder["k"] += 1
        jax.block_until_ready(metrics)

    for _ in range(warmup):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    return {"experiment": name, "n_critic": setup.batches_per_step,
            "ms_per_step": round(seconds * 1000, 1),
            "real_img_per_s": round(images_per_step / seconds), "compile_s": round(compile_s, 1)}


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

"""Training-step throughput of DCGAN on MNIST-sized images: jgan vs. a PyTorch twin.

One step = draw z, run G once, update D on real and fake (Adam), update G with the non-saturating
loss. The model is DCGAN for 28x28x1, z_dim 100, base_features 64, in three forms:

  jgan            the library's step as training compiles it (`build_setup`, `jit_train_step`)
  jgan-xla-convT  the same step with G's up-sampling layers swapped for `flax.linen.ConvTranspose`,
                  whose kernel gradient XLA derives itself: what jgan's custom VJP buys
  pytorch         a layer-for-layer PyTorch twin of `jgan/families/gan/dcgan.py` with the training step
                  of the reference PyTorch DCGAN example (skipped if torch is not importable)

Inputs are synthetic (random uint8 images; random floats in [-1, 1] for PyTorch): this measures
speed only. Each row is timed over `--steps` steps after `--warmup` steps; ms_per_step is the
median step time and img_per_s = batch / median seconds. compile_s is the time of
`jitted.lower(...).compile()` for JAX and of the first warm-up step for PyTorch. The last line gives
img_per_s ratios (above 1: the numerator is faster). Each row runs in a subprocess of its own.

Run from the repository root:  python benchmarks/train_step.py [--batch 64 256] [--steps 30]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
from gan_twins import torch_dcgan  # benchmarks/ is the script's folder
from timing import median_step_seconds, row_in_subprocess

import jgan.families.gan.dcgan as dcgan
from jgan.config import Config, TrainConfig
from jgan.data import DataSpec
from jgan.families.gan import GANModelConfig
from jgan.train.family_trainer import jit_train_step
from jgan.train.parallel import make_mesh, shard_batch
from jgan.train.setup import build_setup

IMAGE_SHAPE = (28, 28, 1)
Z_DIM, FEATURES = 100, 64


def xla_conv_transpose(features, *, use_bias=True, kernel_init=nn.initializers.lecun_normal()):
    """jgan's `ConvTranspose` (kernel 4, stride 2, torch padding 1) as plain Flax: same params."""
    return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                            use_bias=use_bias, kernel_init=kernel_init)


@contextlib.contextmanager
def xla_conv_transpose_patched():
    original = dcgan.ConvTranspose
    dcgan.ConvTranspose = xla_conv_transpose
    try:
        yield
    finally:
        dcgan.ConvTranspose = original


def row(framework: str, batch: int, seconds: float, compile_s, **extra) -> dict:
    return {"model": "dcgan-mnist", "framework": framework, "batch": batch,
            "img_per_s": round(batch / seconds, 1), "ms_per_step": round(1e3 * seconds, 2),
            "compile_s": None if compile_s is None else round(compile_s, 2), **extra}


def time_jgan(framework: str, batch_size: int, steps: int, warmup: int) -> dict:
    config = Config(name="dcgan", model=GANModelConfig(arch="dcgan", z_dim=Z_DIM,
                                                       base_features=FEATURES),
                    train=TrainConfig(batch_size=batch_size))
    setup = build_setup(config, DataSpec.from_image_shape(IMAGE_SHAPE))
    state = setup.init_state(jax.random.key(0))
    mesh = make_mesh()
    images = np.random.default_rng(0).integers(0, 256, (batch_size, *IMAGE_SHAPE), dtype=np.uint8)
    batch = shard_batch({"image": images}, mesh)
    key = jax.random.key(1)
    start = time.perf_counter()
    step = jit_train_step(setup, mesh).lower(state, batch, key).compile()
    compile_s = time.perf_counter() - start

    def run_step():
        nonlocal state
        state, _ = jax.block_until_ready(step(state, batch, key))

    for _ in range(warmup):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    device = jax.devices()[0]
    return row(framework, batch_size, seconds, compile_s, threads=os.cpu_count(),
               device=f"{device.platform}:{device.device_kind}", devices=jax.device_count())


def time_pytorch(batch_size: int, steps: int, warmup: int) -> dict:
    import torch

    torch.manual_seed(0)
    g, d = torch_dcgan(torch)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)

    def run_step():
        fake = g(torch.randn(batch_size, Z_DIM))
        d.zero_grad()
        loss_d = bce(d(real)[:, 0], ones) + bce(d(fake.detach())[:, 0], zeros)
        loss_d.backward()
        opt_d.step()
        g.zero_grad()
        loss_g = bce(d(fake)[:, 0], ones)
        loss_g.backward()
        opt_g.step()

    compile_s = median_step_seconds(run_step, 1) if warmup else None
    for _ in range(warmup - 1):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    return row("pytorch", batch_size, seconds, compile_s, threads=torch.get_num_threads(),
               device="cpu")


def ratios(rows: list[dict]) -> dict:
    speed = {(r["framework"], r["batch"]): r["img_per_s"] for r in rows if "img_per_s" in r}
    pairs = [("jgan", "pytorch"), ("jgan-xla-convT", "pytorch"), ("jgan", "jgan-xla-convT")]
    return {f"{a}/{b}@{batch}": round(speed[a, batch] / speed[b, batch], 2)
            for a, b in pairs for (name, batch) in speed if name == a and (b, batch) in speed}


def measure_row(framework: str, batch: int, args) -> dict:
    if framework == "pytorch":
        return time_pytorch(batch, args.steps, args.warmup)
    if framework == "jgan-xla-convT":
        with xla_conv_transpose_patched():
            return time_jgan(framework, batch, args.steps, args.warmup)
    return time_jgan(framework, batch, args.steps, args.warmup)


def run_row(framework: str, batch: int, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--row", framework, str(batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    return row_in_subprocess(command, {"framework": framework, "batch": batch})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    parser.add_argument("--skip-xla-convT", action="store_true",
                        help="leave out the jgan-xla-convT rows (2.5 s a step at batch 256)")
    parser.add_argument("--row", nargs=2, metavar=("FRAMEWORK", "BATCH"),
                        help=argparse.SUPPRESS)  # a subprocess's one row
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure_row(args.row[0], int(args.row[1]), args)), flush=True)
        return
    have_torch = importlib.util.find_spec("torch") is not None
    frameworks = ["jgan"] + ([] if args.skip_xla_convT else ["jgan-xla-convT"])
    frameworks += ["pytorch"] if have_torch else []
    rows = []
    for batch in args.batch:
        for framework in frameworks:
            rows.append(run_row(framework, batch, args))
            print(json.dumps(rows[-1]), flush=True)
    if not have_torch:
        print(json.dumps({"framework": "pytorch", "skipped": "torch is not importable"}))
    print(json.dumps({"ratios": ratios(rows)}), flush=True)


if __name__ == "__main__":
    main()

"""Training-step throughput of Pix2Pix and CycleGAN at their defaults: jgan vs. PyTorch twins.

One step is the family's whole update, on a random uint8 batch of the config's batch size (pix2pix
4, cyclegan 1; 128x128 RGB A and B images), in float32:

  pix2pix   uint8 -> [-1, 1], the random jitter (one draw per pair), fake = G(x) once, D's Adam
            step on (x, y) and (x, fake), G's Adam step on GAN + lambda_l1 * L1 against the
            updated D (unet_128, 70x70 PatchGAN, widths 32, instance norm, dropout 0.5, BCE)
  cyclegan  uint8 -> [-1, 1], the jitter (one draw per image), G_A and G_B in one Adam step on
            the LSGAN, cycle and identity losses (six G passes, two D passes), the two image pools
            of 50, then D_A's and D_B's Adam steps on real images and the pools' fakes
            (resnet_6blocks at width 16, PatchGANs at width 32, instance norm, reflection padding)

in two forms:

  jgan     `build_setup(experiments.<name>.get_config(), spec).train_step`, jitted over all
           devices with `jit_data_parallel` as in training
  pytorch  layer-for-layer twins (`translation_twins.py`) of the reference's UnetGenerator /
           ResnetGenerator / NLayerDiscriminator (junyanz/pytorch-CycleGAN-and-pix2pix,
           models/networks.py) and of
           its `optimize_parameters` (Adam(2e-4, 0.5) on each side; CycleGAN's G_A and G_B share
           one Adam, as do D_A and D_B; the reference's ImagePool); the jitter as `F.interpolate`
           (bicubic) up to 143, a random 128 crop and a random mirror, per example, inside the
           step as jgan's is (the reference does it in its data loader, with PIL). On CUDA
           when available, else the CPU with the default thread count; skipped if torch is
           not importable.

Each row prints its networks' parameter counts; the twins' must equal jgan's (`params_match`),
which is the check that the layers are the same. ms_per_step is the median of `--steps` steps
after `--warmup`; img_per_s = batch / median seconds (an example is one A and one B image).
compile_s is `jitted.lower(...).compile()` for jgan and the first warm-up step for PyTorch; the
pytorch row carries the jgan/pytorch img_per_s ratio (above 1: jgan is faster). `--no-jitter`
drops the jitter on both sides; `--preset paper` times the experiments' `paper_config()` instead
(256x256, widths 64, unet_256 with batch norm and batch 1, resnet_9blocks).

Run from the repository root:  python benchmarks/translation_step.py [--names pix2pix cyclegan]
[--steps 20] [--warmup 3]. Figures measured on a quiet machine go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json

from jgan.data import DataSpec
from jgan.data.augment import jitter_size
from jgan.families.translation import unet_depth

from jgan_timing import time_jgan_step  # noqa: E402  (benchmarks/ is the script's folder)
from timing import (random_batches, time_torch_step, torch_batches,  # noqa: E402
                    torch_device, torch_or_none)
from translation_twins import make_torch_step, torch_networks  # noqa: E402

NAMES = ("pix2pix", "cyclegan")
KINDS = {"pix2pix": "paired", "cyclegan": "unpaired"}


def experiment_config(name: str, preset: str = "default", jitter: bool = True):
    module = importlib.import_module(f"jgan.experiments.{name}")
    config = module.paper_config() if preset == "paper" else module.get_config()
    return dataclasses.replace(config, model=dataclasses.replace(config.model, jitter=jitter))


def translation_spec(config) -> DataSpec:
    size = config.data.image_size
    return DataSpec(arrays={f"image_{side}": ((size, size, 3), "uint8") for side in "AB"},
                    kind=KINDS[config.family])


def twin_arguments(config) -> dict:
    """What the PyTorch twins take beside the config: the numbers jgan derives from it."""
    depth = unet_depth(config.model) if config.model.generator.startswith("unet") else 0
    return {"unet_depth": depth, "jitter_to": jitter_size(config.data.image_size)}


def result_row(name: str, framework: str, config, timed: dict, **extra) -> dict:
    batch, seconds = config.train.batch_size, timed["seconds"]
    compile_s = timed["compile_s"]
    return {"family": name, "framework": framework, "batch": batch,
            "image_size": config.data.image_size, "jitter": config.model.jitter,
            "ms_per_step": round(1e3 * seconds, 1), "img_per_s": round(batch / seconds, 2),
            "compile_s": None if compile_s is None else round(compile_s, 2), **extra}


def time_jgan(name: str, config, steps: int, warmup: int) -> dict:
    spec = translation_spec(config)
    timed = time_jgan_step(config, spec, random_batches(spec.arrays, config.train.batch_size),
                           steps=steps, warmup=warmup)
    return result_row(name, "jgan", config, timed, params=timed["params"],
                      device=timed["device"], devices=timed["devices"])


def time_pytorch(name: str, config, steps: int, warmup: int, jgan_row: dict) -> dict:
    import torch

    torch.manual_seed(0)
    device = torch_device(torch)
    arguments = twin_arguments(config)
    nets = {net: module.to(device).train() for net, module in
            torch_networks(torch, config, unet_depth=arguments["unet_depth"]).items()}
    params = {net: sum(p.numel() for p in nets[net].parameters()) for net in nets}
    step = make_torch_step(torch, config, nets, jitter_to=arguments["jitter_to"])
    batches = torch_batches(torch, random_batches(translation_spec(config).arrays,
                                                  config.train.batch_size), device)
    counter = {"k": 0}

    def run_step():
        step(batches[counter["k"] % len(batches)])
        counter["k"] += 1

    timed = time_torch_step(torch, run_step, steps=steps, warmup=warmup, device=device)
    row = result_row(name, "pytorch", config, timed, params=params, device=timed["device"],
                     threads=timed["threads"], params_match=params == jgan_row["params"])
    row["jgan/pytorch"] = round(jgan_row["img_per_s"] / row["img_per_s"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--preset", choices=("default", "paper"), default="default",
                        help="paper: the experiments' paper_config() (256x256, widths 64)")
    parser.add_argument("--no-jitter", dest="jitter", action="store_false",
                        help="time both sides without the random jitter")
    args = parser.parse_args()
    have_torch = torch_or_none() is not None
    for name in args.names:
        config = experiment_config(name, args.preset, args.jitter)
        jgan_row = time_jgan(name, config, args.steps, args.warmup)
        print(json.dumps(jgan_row), flush=True)
        if have_torch:
            print(json.dumps(time_pytorch(name, config, args.steps, args.warmup, jgan_row)),
                  flush=True)
    if not have_torch:
        print(json.dumps({"framework": "pytorch", "skipped": "torch is not importable"}),
              flush=True)


if __name__ == "__main__":
    main()

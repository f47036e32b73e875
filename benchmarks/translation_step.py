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
  pytorch  layer-for-layer twins of the reference's UnetGenerator / ResnetGenerator /
           NLayerDiscriminator (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) and of
           its `optimize_parameters` (Adam(2e-4, 0.5) on each side; CycleGAN's G_A and G_B share
           one Adam, as do D_A and D_B; the reference's ImagePool); the jitter as `F.interpolate`
           (bicubic) up to 143, a random 128 crop and a random mirror, per example, inside the
           step as jgan's is (the reference does it in its data loader, with PIL). Default
           thread count; skipped if torch is not importable.

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
import random
import re
import time

import jax
import numpy as np

from jgan.data import DataSpec
from jgan.data.augment import jitter_size
from jgan.families.translation import unet_depth
from jgan.train.parallel import jit_data_parallel, make_mesh, shard_batch
from jgan.train.setup import build_setup

from train_step import median_step_seconds  # noqa: E402  (benchmarks/ is the script's folder)

NAMES = ("pix2pix", "cyclegan")
KINDS = {"pix2pix": "paired", "cyclegan": "unpaired"}
# Batches drawn up front and cycled through, so that no step reuses the previous one's inputs.
NUM_BATCHES = 4


def experiment_config(name: str, preset: str, jitter: bool):
    module = importlib.import_module(f"experiments.{name}")
    config = module.paper_config() if preset == "paper" else module.get_config()
    return dataclasses.replace(config, model=dataclasses.replace(config.model, jitter=jitter))


def random_batches(config) -> list[dict[str, np.ndarray]]:
    """NUM_BATCHES dicts image_A, image_B -> [B, H, W, 3] uint8."""
    size, batch = config.data.image_size, config.train.batch_size
    rng = np.random.default_rng(0)
    return [{f"image_{side}": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
             for side in "AB"} for _ in range(NUM_BATCHES)]


def result_row(name: str, framework: str, config, seconds: float, compile_s, params: dict,
               **extra) -> dict:
    batch = config.train.batch_size
    return {"family": name, "framework": framework, "batch": batch,
            "image_size": config.data.image_size, "jitter": config.model.jitter,
            "ms_per_step": round(1e3 * seconds, 1), "img_per_s": round(batch / seconds, 2),
            "compile_s": None if compile_s is None else round(compile_s, 2), "params": params,
            **extra}


def time_jgan(name: str, config, steps: int, warmup: int) -> dict:
    size = config.data.image_size
    spec = DataSpec(arrays={f"image_{side}": ((size, size, 3), "uint8") for side in "AB"},
                    kind=KINDS[name])
    setup = build_setup(config, spec)
    state = jax.jit(setup.init_state)(jax.random.key(0))
    params = {net: sum(leaf.size for leaf in jax.tree.leaves(state.nets[net].params))
              for net in setup.networks}
    mesh = make_mesh()
    batches = [shard_batch(batch, mesh) for batch in random_batches(config)]
    key = jax.random.key(1)
    start = time.perf_counter()
    step = jit_data_parallel(setup.train_step, mesh).lower(state, batches[0], key).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state, "k": 0}

    def run_step():
        holder["state"], metrics = step(holder["state"], batches[holder["k"] % NUM_BATCHES], key)
        holder["k"] += 1
        jax.block_until_ready(metrics)

    for _ in range(warmup):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    device = jax.devices()[0]
    return result_row(name, "jgan", config, seconds, compile_s, params,
                      device=f"{device.platform}:{device.device_kind}",
                      devices=jax.device_count())


def torch_twins(torch):
    """Constructors of the reference networks for NCHW images, written compactly: `unet`,
    `resnet`, `patchgan`, each `(..., norm) -> nn.Module` with the reference's init."""
    tnn = torch.nn

    def norm_layer(norm: str, channels: int):
        # The reference's get_norm_layer: InstanceNorm2d without affine or running statistics.
        return tnn.BatchNorm2d(channels) if norm == "batch" else tnn.InstanceNorm2d(channels)

    class UnetSkipBlock(tnn.Module):
        """x -> cat([x, up(submodule(down(x)))]); the outermost block returns up(...) alone.

        Out of place, unlike the reference's LeakyReLU(inplace=True), which rewrites the x that
        the skip concatenates; jgan concatenates the level's input before its activation.
        """

        def __init__(self, outer: int, inner: int, submodule=None, *, norm: str,
                     input_nc: int | None = None, outermost: bool = False,
                     dropout: float = 0.0):
            super().__init__()
            innermost, bias = submodule is None, norm == "instance"
            layers = [] if outermost else [tnn.LeakyReLU(0.2)]
            layers.append(tnn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=bias))
            if not (outermost or innermost):
                layers += [norm_layer(norm, inner), submodule]
            elif outermost:
                layers.append(submodule)
            layers += [tnn.ReLU(), tnn.ConvTranspose2d(inner if innermost else 2 * inner, outer,
                                                       4, 2, 1, bias=outermost or bias)]
            layers.append(tnn.Tanh() if outermost else norm_layer(norm, outer))
            if dropout:
                layers.append(tnn.Dropout(dropout))
            self.model, self.outermost = tnn.Sequential(*layers), outermost

        def forward(self, x):
            return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)

    class ResnetBlock(tnn.Module):
        def __init__(self, dim: int, norm: str):
            super().__init__()
            bias = norm == "instance"
            self.block = tnn.Sequential(
                tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim),
                tnn.ReLU(), tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=bias),
                norm_layer(norm, dim))

        def forward(self, x):
            return x + self.block(x)

    def init_weights(net):
        # The reference's init_weights('normal', 0.02).
        for module in net.modules():
            if isinstance(module, (tnn.Conv2d, tnn.ConvTranspose2d)):
                tnn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    tnn.init.zeros_(module.bias)
            elif isinstance(module, tnn.BatchNorm2d):
                tnn.init.normal_(module.weight, 1.0, 0.02)
                tnn.init.zeros_(module.bias)
        return net

    def unet(in_channels, out_channels, depth, ngf, norm, dropout):
        """UnetGenerator(num_downs=depth): innermost first, depth - 5 blocks of 8 ngf with
        dropout around it, then 4, 2 and 1 ngf outside, the outermost ending in tanh."""
        block = UnetSkipBlock(8 * ngf, 8 * ngf, norm=norm)
        for _ in range(depth - 5):
            block = UnetSkipBlock(8 * ngf, 8 * ngf, block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(mult * ngf, 2 * mult * ngf, block, norm=norm)
        return init_weights(UnetSkipBlock(out_channels, ngf, block, norm=norm,
                                          input_nc=in_channels, outermost=True))

    def resnet(in_channels, out_channels, blocks, ngf, norm):
        """ResnetGenerator: c7s1-ngf, d2ngf, d4ngf, blocks x R4ngf, u2ngf, ungf, c7s1-out."""
        bias = norm == "instance"
        layers = [tnn.ReflectionPad2d(3), tnn.Conv2d(in_channels, ngf, 7, bias=bias),
                  norm_layer(norm, ngf), tnn.ReLU()]
        for mult in (1, 2):
            layers += [tnn.Conv2d(mult * ngf, 2 * mult * ngf, 3, 2, 1, bias=bias),
                       norm_layer(norm, 2 * mult * ngf), tnn.ReLU()]
        layers += [ResnetBlock(4 * ngf, norm) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [tnn.ConvTranspose2d(mult * ngf, mult * ngf // 2, 3, 2, 1,
                                           output_padding=1, bias=bias),
                       norm_layer(norm, mult * ngf // 2), tnn.ReLU()]
        layers += [tnn.ReflectionPad2d(3), tnn.Conv2d(ngf, out_channels, 7), tnn.Tanh()]
        return init_weights(tnn.Sequential(*layers))

    def patchgan(in_channels, ndf, num_layers, norm):
        """NLayerDiscriminator: 4x4 convolutions, num_layers at stride 2, one at stride 1 with
        norm, and a stride-1 convolution to one logit per patch."""
        bias = norm == "instance"
        layers = [tnn.Conv2d(in_channels, ndf, 4, 2, 1), tnn.LeakyReLU(0.2)]
        for n in range(1, num_layers + 1):
            stride = 2 if n < num_layers else 1
            layers += [tnn.Conv2d(ndf * min(2 ** (n - 1), 8), ndf * min(2 ** n, 8), 4, stride, 1,
                                  bias=bias),
                       norm_layer(norm, ndf * min(2 ** n, 8)), tnn.LeakyReLU(0.2)]
        layers.append(tnn.Conv2d(ndf * min(2 ** num_layers, 8), 1, 4, 1, 1))
        return init_weights(tnn.Sequential(*layers))

    return unet, resnet, patchgan


def torch_networks(torch, config) -> dict:
    """The twins of the networks `config` builds in jgan, under jgan's state names."""
    unet, resnet, patchgan = torch_twins(torch)
    model = config.model
    if model.discriminator != "patch":
        raise ValueError(f"only the PatchGAN has a twin here, not {model.discriminator!r}")

    def generator():
        if model.generator.startswith("unet"):
            return unet(3, 3, unet_depth(model), model.g_features, model.norm, model.dropout)
        blocks = int(re.fullmatch(r"resnet_(\d+)blocks", model.generator).group(1))
        return resnet(3, 3, blocks, model.g_features, model.norm)

    def discriminator(in_channels):
        return patchgan(in_channels, model.d_features, model.d_layers, model.norm)

    if config.family == "pix2pix":
        return {"g": generator(), "d": discriminator(6)}  # D sees (input, output) pairs
    return {"g_A": generator(), "g_B": generator(), "d_A": discriminator(3),
            "d_B": discriminator(3)}


class TorchImagePool:
    """The reference's util/image_pool.py: fill to `size`, then swap at random with p 1/2."""

    def __init__(self, torch, size: int, rng: random.Random):
        self.torch, self.size, self.rng, self.images = torch, size, rng, []

    def query(self, images):
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return self.torch.cat(out, 0)


def make_torch_jitter(torch, rng: random.Random):
    """[B, C, H, W] in [-1, 1] -> the same, each example resized (bicubic) to jitter_size,
    cropped back at random and mirrored with probability 1/2, as jgan's `random_jitter`."""
    functional = torch.nn.functional

    def jitter(images):
        height, width = images.shape[-2:]
        large_h, large_w = jitter_size(height), jitter_size(width)
        large = functional.interpolate(images, size=(large_h, large_w), mode="bicubic",
                                       align_corners=False)
        out = []
        for image in large:
            top, left = rng.randint(0, large_h - height), rng.randint(0, large_w - width)
            image = image[:, top:top + height, left:left + width]
            out.append(image.flip(-1) if rng.random() < 0.5 else image)
        return torch.stack(out).clamp(-1.0, 1.0)

    return jitter


def make_torch_step(torch, config, nets: dict):
    """The reference's `optimize_parameters` for `config.family` on a batch {"image_A",
    "image_B": [B, 3, H, W] uint8}."""
    model, loss_cfg = config.model, config.loss
    rng = random.Random(0)
    jitter = make_torch_jitter(torch, rng) if model.jitter else (lambda images: images)
    criterion = {"nonsaturating": torch.nn.BCEWithLogitsLoss(),
                 "least_squares": torch.nn.MSELoss()}[loss_cfg.gan_loss]
    l1 = torch.nn.L1Loss()

    def gan_loss(logits, real: bool):
        return criterion(logits, torch.full_like(logits, 1.0 if real else 0.0))

    def adam(lr: float, *names):
        params = [p for name in names for p in nets[name].parameters()]
        return torch.optim.Adam(params, lr=lr, betas=(config.optim.b1, config.optim.b2))

    def requires_grad(names, flag: bool):
        for name in names:
            for p in nets[name].parameters():
                p.requires_grad_(flag)

    def to_float(images):
        return images.float() / 127.5 - 1.0

    if config.family == "pix2pix":
        source, target = model.direction[0], model.direction[-1]
        g, d = nets["g"], nets["d"]
        opt_g, opt_d = adam(config.optim.g_lr, "g"), adam(config.optim.d_lr, "d")

        def step(batch):
            # One draw for the pair: jitter both images as one 6-channel image.
            pair = jitter(torch.cat([to_float(batch[f"image_{source}"]),
                                     to_float(batch[f"image_{target}"])], 1))
            real_A, real_B = pair[:, :3], pair[:, 3:]
            fake_B = g(real_A)
            requires_grad(["d"], True)
            opt_d.zero_grad()
            loss_d = 0.5 * (gan_loss(d(torch.cat([real_A, fake_B.detach()], 1)), False)
                            + gan_loss(d(torch.cat([real_A, real_B], 1)), True))
            loss_d.backward()
            opt_d.step()
            requires_grad(["d"], False)
            opt_g.zero_grad()
            loss_g = (gan_loss(d(torch.cat([real_A, fake_B], 1)), True)
                      + loss_cfg.lambda_l1 * l1(fake_B, real_B))
            loss_g.backward()
            opt_g.step()

        return step

    g_A, g_B, d_A, d_B = nets["g_A"], nets["g_B"], nets["d_A"], nets["d_B"]
    opt_g = adam(config.optim.g_lr, "g_A", "g_B")
    opt_d = adam(config.optim.d_lr, "d_A", "d_B")
    pools = {side: TorchImagePool(torch, loss_cfg.pool_size, rng) for side in "AB"}
    lambda_idt = loss_cfg.lambda_identity

    def step(batch):
        real_A, real_B = (jitter(to_float(batch[f"image_{side}"])) for side in "AB")
        fake_B, fake_A = g_A(real_A), g_B(real_B)
        rec_A, rec_B = g_B(fake_B), g_A(fake_A)
        requires_grad(["d_A", "d_B"], False)
        opt_g.zero_grad()
        loss_g = (gan_loss(d_A(fake_B), True) + gan_loss(d_B(fake_A), True)
                  + loss_cfg.lambda_A * l1(rec_A, real_A) + loss_cfg.lambda_B * l1(rec_B, real_B))
        if lambda_idt > 0:
            loss_g = (loss_g + lambda_idt * loss_cfg.lambda_B * l1(g_A(real_B), real_B)
                      + lambda_idt * loss_cfg.lambda_A * l1(g_B(real_A), real_A))
        loss_g.backward()
        opt_g.step()
        requires_grad(["d_A", "d_B"], True)
        opt_d.zero_grad()
        for d, real, fake in ((d_A, real_B, pools["B"].query(fake_B)),
                              (d_B, real_A, pools["A"].query(fake_A))):
            loss_d = 0.5 * (gan_loss(d(real), True) + gan_loss(d(fake.detach()), False))
            loss_d.backward()
        opt_d.step()

    return step


def time_pytorch(name: str, config, steps: int, warmup: int, jgan_row: dict) -> dict:
    import torch

    torch.manual_seed(0)
    nets = torch_networks(torch, config)
    for net in nets.values():
        net.train()
    params = {net: sum(p.numel() for p in nets[net].parameters()) for net in nets}
    step = make_torch_step(torch, config, nets)
    batches = [{side: torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
                for side, images in batch.items()} for batch in random_batches(config)]
    counter = {"k": 0}

    def run_step():
        step(batches[counter["k"] % NUM_BATCHES])
        counter["k"] += 1

    compile_s = median_step_seconds(run_step, 1) if warmup else None
    for _ in range(warmup - 1):
        run_step()
    seconds = median_step_seconds(run_step, steps)
    row = result_row(name, "pytorch", config, seconds, compile_s, params,
                     device="cpu", threads=torch.get_num_threads(),
                     params_match=params == jgan_row["params"])
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
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
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

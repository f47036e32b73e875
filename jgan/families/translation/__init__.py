"""Pieces shared by the image-to-image families, Pix2Pix and CycleGAN.

Both map images of one domain to another with the generators of Isola et al. 2017 (U-Net) or
Zhu et al. 2017 (ResNet), judge them with a PatchGAN, jitter their training images, translate a
batch image by image (`translate`) and show a preview grid of held-out images. Each piece is
written once here; the families hold only their objectives and steps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np

from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.data.augment import random_jitter
from jgan.errors import UserError
from jgan.families.translation.patchgan import (ImageDiscriminator, PatchDiscriminator,
                                                PixelDiscriminator)
from jgan.families.translation.resnet_generator import ResNetGenerator
from jgan.families.translation.unet import UNetGenerator
from jgan.images import make_grid, to_uint8
from jgan.optim import check_optim_config
from jgan.train.setup import Setup, check_choices, refuse_first
from jgan.train.state import Network, NetworkState, TrainState, apply_gradients, apply_network
from jgan.train.step_parts import images_to_float

DIRECTIONS = ("AtoB", "BtoA")
GENERATORS = ("unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks")
# Any size of either kind: unet_N (log2 N down-sampling layers) or resnet_Nblocks.
GENERATOR_PATTERN = re.compile(r"unet_(\d+)|resnet_(\d+)blocks")
DISCRIMINATORS = ("patch", "pixel", "image")
NORMS = ("batch", "instance")
TRANSLATION_LOSSES = ("least_squares", "nonsaturating", "focal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TranslationModelConfig:
    """Model fields of every image-to-image family (names as in the reference code)."""

    # unet_128, unet_256, resnet_6blocks, resnet_9blocks (or unet_N, resnet_Nblocks for others)
    generator: str = "unet_256"
    unet_depth: int = 0  # > 0: a U-Net of this many down-sampling layers, whatever its name
    g_features: int = 64  # ngf: channels of G's first layer
    d_features: int = 64  # ndf: channels of D's first layer
    discriminator: str = "patch"  # "patch" (70x70 with 3 layers), "pixel" (1x1), "image"
    d_layers: int = 3  # the PatchGAN's strided layers; 3 gives the 70x70 receptive field
    norm: str = "batch"  # "batch" or "instance", in G and D
    dropout: float = 0.5  # U-Net only: Pix2Pix's noise, active when translating too
    # Random jitter of training images (Isola et al. 2017, Sec. 6.2): resize by 286/256, crop
    # back at random, mirror at random
    jitter: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class TranslationLossConfig:
    """Loss fields of every image-to-image family."""

    gan_loss: str = "nonsaturating"  # least_squares (LSGAN), nonsaturating (vanilla) or focal
    focal_gamma: float = 2.0  # gan_loss "focal" only


TRANSLATION_MODEL_BOUNDS = {"unet_depth": Bounds(0, note="0: from model.generator"),
                            "g_features": Bounds(1), "d_features": Bounds(1),
                            "d_layers": Bounds(1), "dropout": Bounds(0, 1)}
TRANSLATION_LOSS_BOUNDS = {"focal_gamma": Bounds(0)}


def known_generator(name: str) -> bool:
    match = GENERATOR_PATTERN.fullmatch(name)
    if match is None:
        return False
    if match.group(1):
        size = int(match.group(1))
        return size >= 4 and size & (size - 1) == 0
    return int(match.group(2)) >= 1


def unet_depth(model) -> int:
    """Down-sampling layers of a U-Net generator: `unet_depth`, else log2 of the name's size."""
    if model.unet_depth:
        return model.unet_depth
    return int(math.log2(int(re.fullmatch(r"unet_(\d+)", model.generator).group(1))))


def size_error(height: int, width: int, model) -> str:
    """Why `height`x`width` images do not suit the generator, and a U-Net that does where one
    can: the deepest, whose 2^depth divides both sides."""
    deepest = min((height & -height).bit_length(), (width & -width).bit_length()) - 1
    resize = "--set data.image_size=128 (or 256)"
    if model.unet_depth:
        fix = (f"use --set model.unet_depth={deepest} (the deepest that fits), or {resize}"
               if deepest >= 2 else f"add {resize}")
        return (f"{height}x{width} images do not suit a U-Net of model.unet_depth="
                f"{model.unet_depth}, whose sides must be multiples of 2^{model.unet_depth}: {fix}")
    multiple = 2 ** unet_depth(model) if model.generator.startswith("unet") else 4
    unet = (f", or --set model.generator=unet_{2 ** deepest} (the deepest U-Net that fits)"
            if deepest >= 2 else "")
    return (f"{height}x{width} images do not suit model.generator={model.generator}, whose "
            f"sides must be multiples of {multiple}: add {resize}{unet}")


def check_translation(config, spec, *, kinds: tuple[str, ...], family: str) -> dict:
    """Refuse what the translation networks cannot take, in one line each; returns the shape of
    one image of each side, `{"A": (H, W, C), "B": ...}`."""
    model, loss_cfg = config.model, config.loss
    if not known_generator(model.generator):
        raise UserError(f"model.generator={model.generator!r} is unknown: choose one of "
                        f"{list(GENERATORS)}, or unet_N (N a power of 2 from 4) or "
                        "resnet_Nblocks (N from 1)")
    check_choices({"model.discriminator": (model.discriminator, DISCRIMINATORS),
                   "model.norm": (model.norm, NORMS),
                   "loss.gan_loss": (loss_cfg.gan_loss, TRANSLATION_LOSSES)})
    check_bounds("model", model, TRANSLATION_MODEL_BOUNDS)
    check_optim_config(config.optim)
    if spec.kind not in kinds:
        wanted = " or ".join(kinds)
        raise UserError(f"{family} trains on {wanted} A/B images, and this data is {spec.kind}: "
                        "pass --images DIR with trainA/ and trainB/ inside"
                        + (" whose file names match one to one" if kinds == ("paired",) else ""))
    shapes = {side: tuple(spec.arrays[f"image_{side}"][0]) for side in "AB"}
    (height, width, _), (height_b, width_b, _) = shapes["A"], shapes["B"]
    generator = model.generator
    # Each down-sampling layer halves the sides: a U-Net has unet_depth of them, ResNet G two.
    multiple = 2 ** unet_depth(model) if generator.startswith("unet") else 4
    refuse_first([
        (model.unet_depth and not generator.startswith("unet"),
         f"model.unet_depth applies to U-Net generators, not {generator}: drop it"),
        (model.unet_depth == 1,
         "model.unet_depth=1 leaves a U-Net no inner layer: use 2 or more (0: from the name)"),
        ((height, width) != (height_b, width_b),
         f"A images are {height}x{width} and B images {height_b}x{width_b}: add --set "
         f"data.image_size={min(height, height_b)} to bring both to one size"),
        (height % multiple or width % multiple,
         size_error(height, width, model)),
        (model.discriminator == "patch" and min(height, width) < 2 ** (model.d_layers + 1),
         f"{height}x{width} images are too small for a PatchGAN of model.d_layers="
         f"{model.d_layers}: use fewer layers or larger images"),
        (loss_cfg.gan_loss != "focal" and loss_cfg.focal_gamma != 2.0,
         "loss.focal_gamma applies to loss.gan_loss=focal only: drop it, or add --loss focal"),
    ])
    check_bounds("loss", loss_cfg, TRANSLATION_LOSS_BOUNDS)
    return shapes


def make_generator(model, out_channels: int):
    """G by `model.generator` (Isola et al. 2017 U-Net, or Zhu et al. 2017 ResNet)."""
    if model.generator.startswith("unet"):
        return UNetGenerator(out_channels=out_channels, depth=unet_depth(model),
                             base_features=model.g_features, norm=model.norm,
                             dropout=model.dropout)
    blocks = int(re.fullmatch(r"resnet_(\d+)blocks", model.generator).group(1))
    return ResNetGenerator(out_channels=out_channels, num_blocks=blocks,
                           base_features=model.g_features, norm=model.norm)


def make_discriminator(model):
    """D by `model.discriminator`: a PatchGAN, the 1x1 PixelGAN, or a whole-image D."""
    if model.discriminator == "patch":
        return PatchDiscriminator(base_features=model.d_features, num_layers=model.d_layers,
                                  norm=model.norm)
    if model.discriminator == "pixel":
        return PixelDiscriminator(base_features=model.d_features, norm=model.norm)
    return ImageDiscriminator(base_features=model.d_features, norm=model.norm)


def patch_losses(loss_cfg) -> losses.GANLoss:
    return losses.patch_losses(loss_cfg.gan_loss, focal_gamma=loss_cfg.focal_gamma)


def training_images(batch: dict, key: jax.Array, *, jitter: bool, together: bool) -> dict:
    """The batch's images in [-1, 1], jittered when `jitter` (the same crop and flip for the
    two images of a pair when `together`)."""
    images = {name: images_to_float(values) for name, values in batch.items()
              if name.startswith("image_")}
    return random_jitter(key, images, together=together) if jitter else images


def descend(network: Network, state: NetworkState, loss_fn):
    """One optimizer step on `loss_fn(params) -> (loss, (collections, aux))`: `(state, loss,
    aux)`."""
    (loss, (collections, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return apply_gradients(network, state, grads, collections), loss, aux


def run_network(network: Network, state: NetworkState, params, *inputs, key=None):
    """`(output, collections)` of a network in training mode, dropout drawn from `key`."""
    rngs = None if key is None else {"dropout": key}
    return apply_network(network.module, state.variables(params), *inputs, train=True,
                         rngs=rngs)


def as_rgb(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 images with `channels` channels (grey repeated to 3), to share one grid."""
    return np.repeat(images, channels, axis=-1) if images.shape[-1] < channels else images


@dataclasses.dataclass(frozen=True, kw_only=True)
class TranslationSetup(Setup):
    """A setup whose generators translate images: `generators` names the network of each
    direction (`{"AtoB": "g"}`, or both for CycleGAN), `shapes` the image shape of each side."""

    generators: dict[str, str]
    shapes: dict[str, tuple[int, int, int]]

    def translation_shape(self, direction: str) -> tuple[int, int, int]:
        if direction not in self.generators:
            raise UserError(f"this run translates {' and '.join(self.generators)}, not "
                            f"{direction}: pass --direction {self.directions[0]}")
        return self.shapes[direction[0]]

    def translate(self, state: TrainState, images, keys, *, direction: str):
        """Each image through G on its own, as a batch of one: dropout stays on and BatchNorm
        takes the image's own statistics, as Pix2Pix translates at test time (Isola et al.
        2017, Sec. 3.3), so no image depends on the others in its batch."""
        self.translation_shape(direction)
        name = self.generators[direction]
        network, net = self.networks[name], state.nets[name]

        def one(image, key):
            return run_network(network, net, None, image[None], key=key)[0][0]

        return jax.vmap(one)(images, keys)

    @functools.cached_property
    def translate_fn(self):
        return jax.jit(self.translate, static_argnames="direction")

    def sample_inputs(self, key, num, **conditions):
        raise UserError("this run translates images rather than drawing them: use python -m "
                        "jgan.translate RUN_DIR --input DIR --out DIR")

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        """The first `grid_size` images of each side of the held-out (or step 0's) batch, and
        one dropout key per column."""
        columns = min(grid_size, *(len(batch[f"image_{side}"]) for side in "AB"))
        images = {side: images_to_float(jnp.asarray(batch[f"image_{side}"][:columns]))
                  for side in "AB"}
        return images, jax.random.split(key, columns)

    def preview_rows(self, state: TrainState, fixed) -> list[np.ndarray]:
        """The grid's rows, top to bottom, as uint8 image batches."""
        raise NotImplementedError

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        rows = self.preview_rows(state, fixed)
        channels = max(row.shape[-1] for row in rows)
        grid = np.concatenate([as_rgb(row, channels) for row in rows])
        return {"": make_grid(grid, columns=len(rows[0]))}

    def translated(self, state: TrainState, images, keys, direction: str) -> np.ndarray:
        return to_uint8(self.translate_fn(state, images, keys, direction=direction))

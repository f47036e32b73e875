"""The Pix2Pix family (Isola et al. 2017): a conditional GAN from paired images, x -> G(x) ~ y.

G is a U-Net whose dropout is its only noise (Sec. 3.1), D a PatchGAN that judges (x, y) pairs
patch by patch (Sec. 3.2.2). G minimises the conditional GAN loss plus lambda * L1(y, G(x))
(Eq. 4, lambda = 100); `loss.gan_weight=0` trains the same U-Net with L1 alone. The update
follows the reference code's order: D steps on the pair (x, G(x)), then G steps against the
updated D. `model.direction` picks which side is x: facades' labels -> photo is BtoA.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jgan.config import Bounds, check_bounds
from jgan.families.pix2pix.step import make_pix2pix_train_step, sides
from jgan.families.translation import (DIRECTIONS, TranslationLossConfig, TranslationModelConfig,
                                       TranslationSetup, check_translation, make_discriminator,
                                       make_generator)
from jgan.images import to_uint8
from jgan.optim import make_optimizer
from jgan.train.setup import Family, check_choices
from jgan.train.state import Network, TrainState


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixModelConfig(TranslationModelConfig):
    direction: str = "AtoB"  # "AtoB": G maps image_A to image_B; "BtoA" the other way


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixLossConfig(TranslationLossConfig):
    lambda_l1: float = 100.0  # Eq. 4's lambda; the TensorFlow tutorial found 1000 better for maps
    gan_weight: float = 1.0  # 0: the L1-only baseline (D is neither trained nor used)


PIX2PIX_LOSS_BOUNDS = {"lambda_l1": Bounds(0), "gan_weight": Bounds(0, note="0: L1 alone")}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixSetup(TranslationSetup):
    source: str
    target: str

    def preview_rows(self, state: TrainState, fixed):
        """input | output | target, one held-out pair per column."""
        images, keys = fixed
        direction = f"{self.source}to{self.target}"
        return [to_uint8(images[self.source]),
                self.translated(state, images[self.source], keys, direction),
                to_uint8(images[self.target])]


def check(config, spec) -> dict:
    shapes = check_translation(config, spec, kinds=("paired",), family="pix2pix")
    check_choices({"model.direction": (config.model.direction, DIRECTIONS)})
    check_bounds("loss", config.loss, PIX2PIX_LOSS_BOUNDS)
    return shapes


def build(config, spec) -> Pix2PixSetup:
    shapes = check(config, spec)
    model, optim_cfg = config.model, config.optim
    source, target = sides(model.direction)
    (height, width, in_channels), out_channels = shapes[source], shapes[target][-1]
    networks = {"g": Network(make_generator(model, out_channels),
                             make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr))}
    example_inputs = {"g": (jnp.zeros((1, height, width, in_channels)),),
                      "d": (jnp.zeros((1, height, width, in_channels + out_channels)),)}
    step = make_pix2pix_train_step(config, networks["g"], networks["d"])
    return Pix2PixSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                        directions=(model.direction,), generators={model.direction: "g"},
                        shapes=shapes, source=source, target=target)


FAMILY = Family(name="pix2pix", model_config=Pix2PixModelConfig, loss_config=Pix2PixLossConfig,
                build=build, network_names={"g": "generator", "d": "discriminator"},
                description="paired image-to-image translation: U-Net G, PatchGAN D, GAN + L1")

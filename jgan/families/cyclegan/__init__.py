"""The CycleGAN family (Zhu et al. 2017): two mappings G_A: A -> B and G_B: B -> A from unpaired
images, each judged by a PatchGAN (D_A scores B images, D_B scores A images).

G minimises the adversarial losses (LSGAN by default, Sec. 4), the cycle-consistency loss
lambda_A |G_B(G_A(a)) - a| + lambda_B |G_A(G_B(b)) - b| (Eq. 2, lambda = 10) and the identity loss
lambda_idt * (lambda_B |G_A(b) - b| + lambda_A |G_B(a) - a|) (Sec. 5.2, lambda_idt = 0.5). Each D
is trained on a history of generated images, an image pool of 50 (Shrivastava et al. 2017), kept
in the train state so that a resumed run continues exactly. The update follows the reference
code's order: both G step together against the current D, then each D steps on the pool's fakes.
Names follow the reference: real_A, fake_B, rec_A, idt_A; metrics loss/D_A, loss/G_A, ...
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jgan.config import Bounds, check_bounds
from jgan.errors import UserError
from jgan.families.cyclegan.step import make_cyclegan_train_step
from jgan.families.translation import (TranslationLossConfig, TranslationModelConfig,
                                       TranslationSetup, check_translation, make_discriminator,
                                       make_generator)
from jgan.images import to_uint8
from jgan.optim import make_optimizer
from jgan.train.image_pool import init_image_pool
from jgan.train.setup import Family
from jgan.train.state import Network, TrainState


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANModelConfig(TranslationModelConfig):
    generator: str = "resnet_9blocks"
    norm: str = "instance"
    dropout: float = 0.0  # the reference's --no_dropout


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANLossConfig(TranslationLossConfig):
    gan_loss: str = "least_squares"
    lambda_A: float = 10.0  # cycle A -> B -> A
    lambda_B: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity weight, relative to lambda_A and lambda_B; 0: off
    pool_size: int = 50  # generated images kept per D; 0: D sees only the newest fakes


CYCLEGAN_LOSS_BOUNDS = {"lambda_A": Bounds(0), "lambda_B": Bounds(0),
                        "lambda_identity": Bounds(0, note="0: off"),
                        "pool_size": Bounds(0, note="0: no pool")}
# The networks by state name: the reference's G_A, G_B, D_A, D_B.
GENERATORS = {"AtoB": "g_A", "BtoA": "g_B"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANSetup(TranslationSetup):
    pool_size: int = 0

    def init_state(self, key: jax.Array) -> TrainState:
        """The networks and, unless `pool_size` is 0, the two image pools (a state holds no
        empty arrays: checkpoints cannot store them)."""
        state = super().init_state(key)
        if not self.pool_size:
            return state
        pools = {f"fake_{side}_pool": init_image_pool(self.pool_size, self.shapes[side])
                 for side in "AB"}
        return state.replace(extra=pools)

    def preview_rows(self, state: TrainState, fixed):
        """real_A | fake_B | rec_A over real_B | fake_A | rec_B, one held-out image per column."""
        images, keys = fixed
        rows = []
        for source, there, back in (("A", "AtoB", "BtoA"), ("B", "BtoA", "AtoB")):
            fake = self.translate_fn(state, images[source], keys, direction=there)
            rec = self.translate_fn(state, fake, keys, direction=back)
            rows += [to_uint8(images[source]), to_uint8(fake), to_uint8(rec)]
        return rows


def check(config, spec) -> dict:
    shapes = check_translation(config, spec, kinds=("unpaired", "paired"), family="cyclegan")
    check_bounds("loss", config.loss, CYCLEGAN_LOSS_BOUNDS)
    channels = {side: shapes[side][-1] for side in "AB"}
    if config.loss.lambda_identity > 0 and channels["A"] != channels["B"]:
        # The reference asserts input_nc == output_nc when lambda_identity > 0: the identity
        # loss feeds B images to G_A, which takes A images (and the reverse).
        raise UserError(
            f"A images have {channels['A']} channel(s) and B images {channels['B']}, and the "
            f"identity loss (loss.lambda_identity={config.loss.lambda_identity}) feeds each "
            "G the other side's images, so it needs as many on both: add --set "
            "loss.lambda_identity=0, or --set data.channels=3 to read both sides as RGB")
    return shapes


def build(config, spec) -> CycleGANSetup:
    shapes = check(config, spec)
    model, optim_cfg = config.model, config.optim
    height, width = shapes["A"][:2]
    channels = {side: shapes[side][-1] for side in "AB"}
    networks = {
        "g_A": Network(make_generator(model, channels["B"]),
                       make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "g_B": Network(make_generator(model, channels["A"]),
                       make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "d_A": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr)),
        "d_B": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr)),
    }

    def image(side):
        return (jnp.zeros((1, height, width, channels[side])),)

    example_inputs = {"g_A": image("A"), "g_B": image("B"), "d_A": image("B"), "d_B": image("A")}
    return CycleGANSetup(networks=networks, example_inputs=example_inputs,
                         train_step=make_cyclegan_train_step(config, networks),
                         directions=("AtoB", "BtoA"), generators=GENERATORS, shapes=shapes,
                         pool_size=config.loss.pool_size)


FAMILY = Family(name="cyclegan", model_config=CycleGANModelConfig,
                loss_config=CycleGANLossConfig, build=build,
                network_names={"g_A": "generator A->B", "g_B": "generator B->A",
                               "d_A": "discriminator of B", "d_B": "discriminator of A"},
                description="unpaired image-to-image translation: two G, two PatchGAN D, "
                            "cycle and identity losses, image pools")

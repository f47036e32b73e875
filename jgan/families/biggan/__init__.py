"""The BigGAN family (Brock et al. 2019): class-conditional BatchNorm fed by a shared embedding
and skip-z, self-attention, spectral norm in G and D, a projection discriminator, the hinge
loss, orthogonal regularization (on by default), G's EMA sampled with standing statistics, and
the truncation trick.

The networks are `jgan.families.biggan.networks`, the step `jgan.families.biggan.step`. Sampling
takes class `labels` (int, or float class weights that mix the shared embeddings) and a `truncation`
threshold: z is drawn from a normal truncated to [-t, t] (Sec. 3.1; 0 draws the plain prior).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jgan import augment as augment_lib
from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.errors import UserError
from jgan.families.biggan.networks import (INITS, BigGANGenerator, ProjectionDiscriminator,
                                           discriminator_layout, generator_layout)
from jgan.families.biggan.step import make_biggan_train_step
from jgan.families.latent import LatentSetup, class_grid_inputs, single_image_shape, standing_inputs
from jgan.generate import check_truncation
from jgan.images import make_grid, to_uint8
from jgan.nn.conditional_norm import BATCH_MOMENTS
from jgan.optim import check_optim_config, make_optimizer
from jgan.train.setup import Family, check_choices, refuse_first
from jgan.train.state import Network, TrainState
from jgan.train.step_parts import prior

TRUNCATIONS = (0.0, 2.0, 1.0, 0.5, 0.25)  # the rows of the truncation grid; 0: none


@dataclasses.dataclass(frozen=True, kw_only=True)
class BigGANModelConfig:
    z_dim: int = 120  # split into equal chunks: one for G's input layer, one per G block
    shared_dim: int = 128  # the shared class embedding
    g_features: int = 64  # channels of every G block (BigGAN CIFAR-10: 4 ch = 256)
    d_features: int = 64  # channels of every D block
    attention: int = 14  # resolution of G's and D's self-attention block; 0: none
    spectral_norm: bool = True
    init: str = "ortho"  # weight init: "ortho" (BigGAN) or "N02" (N(0, 0.02), the CIFAR script)
    # Gradient accumulation: D's passes take the batch in this many micro-batches
    # (jgan.families.biggan.step); G's BatchNorm statistics stay those of the whole batch.
    micro_batches: int = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class BigGANLossConfig:
    gan_loss: str = "hinge"  # BigGAN's; any name of jgan.losses.LOSSES
    ortho_beta: float = 1e-4  # orthogonal regularization (Sec. 3.1); 0: off


MODEL_BOUNDS = {"z_dim": Bounds(1), "shared_dim": Bounds(1), "g_features": Bounds(1),
                "d_features": Bounds(1), "attention": Bounds(0, note="0: none"),
                "micro_batches": Bounds(1)}
LOSS_BOUNDS = {"ortho_beta": Bounds(0, note="0: off")}


def attention_resolutions(resolution: int) -> tuple[set[int], set[int]]:
    """The sides at which G's blocks end and at which D's downsampling blocks end."""
    bottom, blocks = generator_layout(resolution)
    g_sides = {bottom * 2 ** (index + 1) for index in range(blocks)}
    d_sides, side = set(), resolution
    for downsample in discriminator_layout(resolution):
        if downsample:
            side //= 2
            d_sides.add(side)
    return g_sides, d_sides


def check(config, spec) -> tuple[int, int, int]:
    """Refuse settings that cannot work, in one line each; returns the image shape."""
    model, train = config.model, config.train
    check_bounds("model", model, MODEL_BOUNDS)
    check_bounds("loss", config.loss, LOSS_BOUNDS)
    check_optim_config(config.optim)
    check_choices({"loss.gan_loss": (config.loss.gan_loss, losses.LOSS_NAMES)})
    shape = single_image_shape(spec, family="biggan")
    if spec.num_classes < 2:
        raise UserError(f"BigGAN is class-conditional, and {config.data.dataset} has no class "
                        "labels: choose a labelled dataset (mnist, fashion_mnist, cifar10) or "
                        "an image folder with one subfolder per class")
    side = shape[0]
    bottom, blocks = generator_layout(side) if len(shape) == 3 else (0, 0)
    g_sides, d_sides = attention_resolutions(side) if blocks else (set(), set())
    refuse_first([
        (len(shape) != 3 or shape[0] != shape[1] or not blocks,
         f"BigGAN draws square images whose side halves at least once to 4 or more, and these "
         f"are {'x'.join(map(str, shape[:2]))}: add --set data.image_size=32 (or 64, 128)"),
        (model.z_dim % (blocks + 1),
         f"model.z_dim={model.z_dim} does not split into {blocks + 1} equal chunks (one for the "
         f"input layer, one per block at {side}x{side}): use "
         f"{max(1, model.z_dim // (blocks + 1)) * (blocks + 1)}"),
        (model.attention and model.attention not in g_sides & d_sides,
         f"model.attention={model.attention} is not a resolution where both G and D have a "
         f"block at {side}x{side}: choose one of {sorted(g_sides & d_sides) or 'none'}, or 0"),
        (model.attention and (model.g_features % 8 or model.d_features % 8),
         "self-attention takes channels/8 keys: use model.g_features and model.d_features "
         "divisible by 8, or --set model.attention=0"),
        (model.init not in INITS,
         f"model.init={model.init!r} is unknown: choose one of {list(INITS)}"),
        (train.batch_size % model.micro_batches,
         f"train.batch_size={train.batch_size} does not split into model.micro_batches="
         f"{model.micro_batches} micro-batches: use a divisor of it"),
    ])
    return shape


def truncated_prior(key: jax.Array, num: int, z_dim: int, threshold: float) -> jax.Array:
    """z ~ N(0, I) with every value outside [-threshold, threshold] resampled (Sec. 3.1, the
    truncation trick); threshold 0 is the untruncated prior."""
    check_truncation("truncation", threshold, example=0.5, none=0)
    if not threshold:
        return prior(key, num, z_dim)
    return jax.random.truncated_normal(key, -threshold, threshold, (num, z_dim))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BigGANSetup(LatentSetup):
    """`state.nets["g"]` maps `(z, labels)` to images; samples come from G's EMA weights (when
    kept) with standing statistics (App. C.2), which `generate` and `preview` put in the state
    they sample (`LatentSetup.with_standing_statistics`); `sample` on a state without them uses
    G's running averages."""

    def sample_inputs(self, key: jax.Array, num: int, labels=None,
                      truncation: float = 0.0) -> dict:
        """`{"z": [num, z_dim] truncated at `truncation`, "labels": [num]}`."""
        if labels is None:
            raise UserError("BigGAN is conditional: pass labels, e.g. --labels 0,1,2")
        return {"z": truncated_prior(key, num, self.z_dim, truncation),
                "labels": jnp.asarray(labels)}

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        k_samples, k_grids = jax.random.split(key)
        return class_grid_inputs(k_samples, grid_size, self.z_dim, self.num_classes), k_grids

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        """The class grid (a row per class, a column per z), the truncation grid and the class
        interpolation grid."""
        (inputs, columns), k_grids = fixed
        state = self.with_standing_statistics(state)
        k_truncation, k_interpolation = jax.random.split(k_grids)
        return {"": make_grid(to_uint8(self.sample_fn(state, inputs)), columns=columns),
                "truncation_": self.truncation_grid(state, k_truncation),
                "interpolation_": self.interpolation_grid(state, k_interpolation)}

    def truncation_grid(self, state: TrainState, key: jax.Array, *,
                        thresholds=TRUNCATIONS) -> np.ndarray:
        """A row per threshold (none first), a column per class; column c draws its z from the
        same key in every row, so a column shows one sample narrowing towards the mode."""
        state = self.with_standing_statistics(state)
        keys = jax.random.split(key, self.num_classes)
        z = jnp.concatenate([
            jnp.concatenate([truncated_prior(k, 1, self.z_dim, t) for k in keys])
            for t in thresholds])
        labels = jnp.tile(jnp.arange(self.num_classes), len(thresholds))
        images = self.sample_fn(state, {"z": z, "labels": labels})
        return make_grid(to_uint8(images), columns=self.num_classes)

    def interpolation_grid(self, state: TrainState, key: jax.Array, *, pairs=None,
                           steps: int = 8) -> np.ndarray:
        """A row per class pair (a, b) with one z, the shared embedding moving from a's to b's
        in `steps` even steps (App. D): what lies between classes for the same z."""
        state = self.with_standing_statistics(state)
        k = self.num_classes
        pairs = pairs or [(a, (a + 1) % k) for a in range(0, k, 2)]
        mix = jnp.linspace(0.0, 1.0, steps)[:, None]
        weights = jnp.concatenate([
            (1 - mix) * jax.nn.one_hot(a, k) + mix * jax.nn.one_hot(b, k) for a, b in pairs])
        z = jnp.repeat(prior(key, len(pairs), self.z_dim), steps, axis=0)
        images = self.sample_fn(state, {"z": z, "labels": weights})
        return make_grid(to_uint8(images), columns=steps)


def batch_moments(setup: BigGANSetup, variables: dict, key: jax.Array) -> dict:
    """G's BatchNorm moments of one training-mode batch of fresh z and uniform labels, as its
    conditional BatchNorm sows them."""
    z, labels = standing_inputs(setup, key)
    _, collections = setup.networks["g"].module.apply(
        variables, z, labels, train=True, mutable=[*variables.keys() - {"params"}, BATCH_MOMENTS])
    return collections[BATCH_MOMENTS]


def build(config, spec) -> BigGANSetup:
    """G and D with their Adam rates, and the step."""
    shape = check(config, spec)
    model, optim_cfg, train = config.model, config.optim, config.train
    num_classes = spec.num_classes
    generator = BigGANGenerator(model.spectral_norm, model.init, image_shape=shape,
                                num_classes=num_classes, features=model.g_features,
                                shared_dim=model.shared_dim, attention=model.attention)
    discriminator = ProjectionDiscriminator(model.spectral_norm, model.init,
                                            num_classes=num_classes, features=model.d_features,
                                            attention=model.attention)
    networks = {"g": Network(generator, make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(discriminator, make_optimizer(
                    optim_cfg, optim_cfg.d_lr, updates_per_step=train.n_critic))}
    labels = jnp.zeros((1,), jnp.int32)
    example_inputs = {"g": (jnp.zeros((1, model.z_dim)), labels),
                      "d": (jnp.zeros((1, *shape)), labels)}
    augment = augment_lib.from_config(train)
    step = make_biggan_train_step(
        generator=networks["g"], discriminator=networks["d"], z_dim=model.z_dim,
        num_classes=num_classes, gan_loss=config.loss.gan_loss, n_critic=train.n_critic,
        micro_batches=model.micro_batches,
        ortho_beta=config.loss.ortho_beta, ema_kimg=train.ema_kimg,
        batch_size=train.batch_size, augment=augment)
    return BigGANSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                       z_dim=model.z_dim, num_classes=num_classes,
                       batches_per_step=train.n_critic, ema=train.ema_kimg > 0, augment=augment,
                       batch_moments=batch_moments,
                       # Eigen's convolutions: the step 164 -> 115 ms on 2 CPU cores
                       # (docs/performance.md).
                       cpu_convolutions="eigen")


FAMILY = Family(name="biggan", model_config=BigGANModelConfig, loss_config=BigGANLossConfig,
                build=build, network_names={"g": "generator", "d": "discriminator"},
                description="BigGAN: conditional BN with skip-z, self-attention, SN, projection "
                            "D, hinge, orthogonal regularization, EMA, truncation")

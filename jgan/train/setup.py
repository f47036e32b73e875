"""From a config to everything the host loop needs: networks, optimizers, the step, sampling.

A family adds its networks to `jgan.models` and, where it must, its step; the loop, data,
checkpoints, logging and sampling stay shared.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jgan import losses, optim
from jgan.errors import UserError
from jgan.models import ACTIVATIONS, ARCHS, BIGAN_ARCHS, CONDITIONINGS, FAMILIES, build_models
from jgan.models.dcgan import halves_down
from jgan.train.bigan_step import BIGAN_LOSSES, make_bigan_train_step
from jgan.train.gan_step import lazy_regularization_interval, make_gan_train_step
from jgan.train.state import Network, TrainState, apply_network, init_train_state

OPTIMIZERS = ("adam", "rmsprop")


@dataclasses.dataclass(frozen=True)
class GANSetup:
    networks: dict[str, Network]
    example_inputs: dict[str, tuple]  # per network: arguments for `module.init`
    train_step: Callable  # (state, batch, key) -> (state, metrics)
    z_dim: int
    num_classes: int = 0  # > 0: G takes labels
    real_batches_per_step: int = 1  # n_critic: the loader's batch is this many minibatches
    ema: bool = False  # the state keeps an EMA of G's weights in extra["g_ema"]

    def init_state(self, key: jax.Array) -> TrainState:
        state = init_train_state(self.networks, key, self.example_inputs)
        if self.ema:
            state = state.replace(extra={"g_ema": state.nets["g"].params})
        return state

    def sample(self, state: TrainState, z: jax.Array, labels: jax.Array | None = None):
        """Images in [-1, 1] from latents (and labels [B] if conditional).

        BatchNorm runs in inference mode (running statistics), and G's EMA weights are used when
        the run keeps them.
        """
        if self.num_classes and labels is None:
            raise UserError("this generator is conditional: pass labels, e.g. --labels 0,1,2")
        if not self.num_classes and labels is not None:
            raise UserError("this generator is unconditional: drop the labels")
        g = state.nets["g"]
        params = state.extra.get("g_ema", g.params)
        inputs = (z,) if labels is None else (z, labels)
        images, _ = apply_network(self.networks["g"].module, g.variables(params), *inputs,
                                  train=False)
        return images


@dataclasses.dataclass(frozen=True)
class BiGANSetup(GANSetup):
    """A GAN setup with an encoder: `state.nets["e"]` maps images to latents."""

    def encode(self, state: TrainState, images: jax.Array) -> jax.Array:
        """Latents [B, z_dim] of images [B, H, W, C] in [-1, 1], BatchNorm in inference mode."""
        e = state.nets["e"]
        codes, _ = apply_network(self.networks["e"].module, e.variables(), images, train=False)
        return codes

    def reconstruct(self, state: TrainState, images: jax.Array) -> jax.Array:
        """G(E(x)) for images in [-1, 1]."""
        return self.sample(state, self.encode(state, images))

    # Compiled once per setup: the training loop draws reconstructions at every sample step.
    @functools.cached_property
    def encode_fn(self):
        return jax.jit(self.encode)

    @functools.cached_property
    def reconstruct_fn(self):
        return jax.jit(self.reconstruct)


def check_config(config) -> None:
    """Refuse settings that cannot work together, in one line that says what to change."""
    model, loss_cfg, optim_cfg, train_cfg = config.model, config.loss, config.optim, config.train
    bigan = model.family == "bigan"
    choices = {"model.family": (model.family, FAMILIES),
               "model.arch": (model.arch, BIGAN_ARCHS if bigan else ARCHS),
               "model.conditioning": (model.conditioning, CONDITIONINGS),
               "model.d_norm": (model.d_norm, ("batch", "none")),
               "model.g_head": (model.g_head, ("dense", "conv")),
               "model.downsample": (model.downsample, ("stride", "mixed_pool")),
               "model.activation": (model.activation, tuple(ACTIVATIONS)),
               "optim.optimizer": (optim_cfg.optimizer, OPTIMIZERS),
               "loss.unroll_gradient": (loss_cfg.unroll_gradient, ("full", "stop")),
               "loss.g_objective": (loss_cfg.g_objective, ("adversarial", "feature_matching")),
               "loss.gan_loss": (loss_cfg.gan_loss, BIGAN_LOSSES if bigan else losses.LOSS_NAMES)}
    for field, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{field}={value!r} is unknown: choose one of {list(allowed)}")
    losses.get_losses(loss_cfg.gan_loss, real_label=loss_cfg.real_label,
                      focal_gamma=loss_cfg.focal_gamma)
    if bigan:
        check_bigan_config(config)
    else:
        bigan_only = [name for name, default in (("g_head", "dense"), ("g_crop", 0), (
            "downsample", "stride"), ("unary", False)) if getattr(model, name) != default]
        if bigan_only:
            raise UserError(f"model.{bigan_only[0]} applies to the bigan family only: add --set "
                            "model.family=bigan, or drop it")
    check_mode_collapse_options(config)
    if model.conditioning != "none" and model.num_classes < 2:
        raise UserError(f"model.num_classes={model.num_classes}: a conditional GAN needs 2 or "
                        "more classes")
    if not bigan and model.arch == "mlp" and (model.conditioning == "auxiliary" or model.spectral_norm
                                or model.d_norm != "batch"):
        raise UserError("the mlp arch has no auxiliary head, spectral norm or d_norm option: "
                        "use --set model.arch=dcgan")
    if train_cfg.n_critic < 1:
        raise UserError(f"train.n_critic={train_cfg.n_critic}: use 1 or more")
    if loss_cfg.reg_interval < 1:
        raise UserError(f"loss.reg_interval={loss_cfg.reg_interval}: use 1 or more")
    penalties = [name for name in ("gp_weight", "r1_gamma", "r2_gamma")
                 if getattr(loss_cfg, name) < 0]
    if penalties:
        raise UserError(f"loss.{penalties[0]} is negative: use 0 (off) or more")
    if (loss_cfg.gp_weight or loss_cfg.r1_gamma or loss_cfg.r2_gamma) and (
            (bigan or model.arch == "dcgan") and model.d_norm == "batch"):
        raise UserError("gradient penalties need per-example gradients, which BatchNorm in D "
                        "mixes: add --set model.d_norm=none")
    if config.data.image_size < 0:
        raise UserError(f"data.image_size={config.data.image_size}: use 0 (as stored) or a size")
    if config.data.image_size and train_cfg.eval_every:
        raise UserError("--eval-every compares with the stored images, not resized ones: drop "
                        "--eval-every when data.image_size is set")
    if train_cfg.ema_kimg < 0:
        raise UserError(f"train.ema_kimg={train_cfg.ema_kimg}: use 0 (off) or a half-life > 0")


def refuse_first(refusals: list[tuple[bool, str]]) -> None:
    """Raise the message of the first `(refused, message)` pair that is refused."""
    for refused, message in refusals:
        if refused:
            raise UserError(message)


# Model fields that only the toy arch reads, with their defaults.
TOY_ONLY = {"g_layers": 2, "d_layers": 1, "activation": "relu", "minibatch_kernels": 0,
            "minibatch_kernel_dim": 5, "pack": 1}


def check_mode_collapse_options(config) -> None:
    """Unrolling, feature matching, minibatch discrimination and packing, in one line each."""
    model, loss_cfg, optim_cfg = config.model, config.loss, config.optim
    toy_only = [name for name, default in TOY_ONLY.items() if getattr(model, name) != default]
    if toy_only and model.arch != "toy":
        raise UserError(f"model.{toy_only[0]} applies to the toy arch only: add --set "
                        "model.arch=toy, or drop it")
    mixes_batch = model.minibatch_kernels > 0 or model.pack > 1
    refusals = [
        (loss_cfg.unroll_steps < 0, f"loss.unroll_steps={loss_cfg.unroll_steps}: use 0 (plain "
                                    "GAN) or more"),
        *((getattr(model, name) < 1, f"model.{name}={getattr(model, name)}: use 1 or more")
          for name in ("g_layers", "d_layers", "minibatch_kernel_dim", "pack")),
        (model.minibatch_kernels < 0,
         f"model.minibatch_kernels={model.minibatch_kernels}: use 0 (off) or more"),
        (mixes_batch and (loss_cfg.gp_weight or loss_cfg.r1_gamma or loss_cfg.r2_gamma),
         "gradient penalties need per-example gradients, which minibatch discrimination and "
         "packing mix across the batch: drop one of them"),
        (model.pack > 1 and config.train.batch_size % model.pack != 0,
         f"train.batch_size={config.train.batch_size} does not split into packs of "
         f"model.pack={model.pack}: use a multiple of it"),
        (optim_cfg.eps_root < 0, f"optim.eps_root={optim_cfg.eps_root}: use 0 or more"),
        (optim_cfg.eps_root > 0 and optim_cfg.optimizer != "adam",
         "optim.eps_root is Adam's: drop it, or use --set optim.optimizer=adam"),
    ]
    refuse_first(refusals)


def check_bigan_config(config) -> None:
    """What the BiGAN family does not combine with, each in one line that says what to change."""
    model, loss_cfg, train_cfg = config.model, config.loss, config.train
    refusals = [
        (model.conditioning != "none", "the bigan family is unconditional: drop "
                                       "model.conditioning"),
        (train_cfg.n_critic != 1, "the bigan step updates D once per step: use train.n_critic=1"),
        (train_cfg.ema_kimg > 0, "the bigan step keeps no EMA of G: use train.ema_kimg=0"),
        (loss_cfg.r1_gamma > 0 or loss_cfg.r2_gamma > 0,
         "R1/R2 are not implemented for the joint D(x, z): use loss.gp_weight, which penalises "
         "the gradient on (x, z) jointly"),
        (model.arch == "mlp" and (model.g_head != "dense" or model.g_crop),
         "the mlp arch has no convolutional head to pad and crop: use --set model.arch=dcgan"),
        (model.arch != "dcgan" and model.downsample != "stride",
         "model.downsample chooses the dcgan arch's downsampling (the unet arch always uses "
         "mixed pooling): use --set model.arch=dcgan"),
        (model.arch == "unet" and model.spectral_norm,
         "the unet arch has no spectral norm: use --set model.arch=dcgan"),
        (model.g_crop < 0, f"model.g_crop={model.g_crop}: use 0 (off) or a margin in pixels"),
        (loss_cfg.unroll_steps > 0 or loss_cfg.g_objective != "adversarial",
         "the bigan step has no unrolling or feature matching: use the gan family"),
    ]
    refuse_first(refusals)
    weights = [name for name in ("e_spread_weight", "e_variance_weight", "e_variance_tolerance")
               if getattr(loss_cfg, name) < 0]
    if weights:
        raise UserError(f"loss.{weights[0]} is negative: use 0 (off) or more")
    if loss_cfg.e_variance_max_multiplier < 1:
        raise UserError(f"loss.e_variance_max_multiplier={loss_cfg.e_variance_max_multiplier}: "
                        "use 1 (a fixed multiplier) or more")


def make_optimizer(optim_cfg, learning_rate: float, *, updates_per_step: int = 1,
                   clip: float = 0.0, lazy_interval: int = 1) -> optax.GradientTransformation:
    """Adam or RMSprop for one network, with its own rate: G and D get one each (TTUR).

    `decay_steps` > 0 decays the rate linearly to 0 over that many steps (`updates_per_step`
    optimizer updates each); `clip` > 0 clips the weights after every update (WGAN);
    `lazy_interval` > 1 applies StyleGAN2's correction for the extra regularization updates.
    """
    b1, b2 = optim_cfg.b1, optim_cfg.b2
    if lazy_interval > 1:
        learning_rate, b1, b2 = optim.lazy_regularization(learning_rate, b1, b2, lazy_interval)
    schedule = learning_rate
    if optim_cfg.decay_steps:
        schedule = optax.linear_schedule(learning_rate, 0.0,
                                         optim_cfg.decay_steps * updates_per_step)
    if optim_cfg.optimizer == "adam":
        tx = optax.adam(schedule, b1=b1, b2=b2, eps_root=optim_cfg.eps_root)
    else:
        # PyTorch's RMSprop, as in the WGAN reference code: decay 0.99, eps added after the root.
        tx = optax.rmsprop(schedule, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    return optax.chain(tx, optim.clip_weights(clip)) if clip else tx


def check_image_shape(config, image_shape) -> None:
    """Convolutional networks need square images that halve down to 7 or less."""
    if config.model.arch in ("mlp", "toy"):
        return
    height, width = image_shape[:2]
    if height != width or not halves_down(height):
        raise UserError(f"{config.data.dataset} images are {height}x{width}, which the "
                        f"{config.model.arch} networks cannot take (they need square images "
                        "that halve down to 7 or less): add --set data.image_size=64 (or 32, "
                        "96, ...) to crop and resize them")


def build_gan(config, image_shape: tuple[int, int, int]) -> GANSetup:
    """Every GAN of the config's families: networks, optimizers and the step."""
    check_config(config)
    check_image_shape(config, image_shape)
    model, loss_cfg, optim_cfg = config.model, config.loss, config.optim
    models = build_models(model, tuple(image_shape))
    if model.family == "bigan":
        return build_bigan(config, models, image_shape)
    networks = {
        "g": Network(models["g"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "d": Network(models["d"], make_optimizer(
            optim_cfg, optim_cfg.d_lr, updates_per_step=config.train.n_critic,
            clip=optim_cfg.d_clip, lazy_interval=lazy_regularization_interval(loss_cfg))),
    }
    conditional = model.conditioning != "none"
    labels = (jnp.zeros((1,), jnp.int32),)
    example_inputs = {"g": (jnp.zeros((1, model.z_dim)), *(labels if conditional else ())),
                      "d": (jnp.zeros((1, *image_shape)),
                            *(labels if model.conditioning == "input" else ()))}
    step = make_gan_train_step(config, generator=networks["g"], discriminator=networks["d"])
    return GANSetup(networks, example_inputs, step, model.z_dim,
                    num_classes=model.num_classes if conditional else 0,
                    real_batches_per_step=config.train.n_critic,
                    ema=config.train.ema_kimg > 0)


def build_bigan(config, models: dict, image_shape: tuple[int, int, int]) -> BiGANSetup:
    """BiGAN and BigBiGAN: E shares G's optimizer settings (they are trained as one player)."""
    optim_cfg, z_dim = config.optim, config.model.z_dim
    networks = {"g": Network(models["g"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "e": Network(models["e"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(models["d"], make_optimizer(optim_cfg, optim_cfg.d_lr,
                                                         clip=optim_cfg.d_clip))}
    images, z = jnp.zeros((1, *image_shape)), jnp.zeros((1, z_dim))
    example_inputs = {"g": (z,), "e": (images,), "d": (images, z)}
    step = make_bigan_train_step(config, generator=networks["g"], encoder=networks["e"],
                                 discriminator=networks["d"])
    return BiGANSetup(networks, example_inputs, step, z_dim)

"""The BiGAN family: BiGAN (Donahue et al. 2017) and BigBiGAN (Donahue & Simonyan 2019).

G(z) maps the prior to images, an encoder E(x) maps images to latents, and a joint D(x, z) tells
encoder pairs (x, E(x)) from generator pairs (G(z), z); `model.unary` adds BigBiGAN's unary
scores s_x and s_z. The update is `jgan.families.bigan.step`; the preview shows samples and, under
them, G(E(x)) for fixed real images. `jgan.tools.evaluate_bigan` measures the encoder.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jgan import augment as augment_lib
from jgan import losses
from jgan.config import check_bounds
from jgan.encoding import reconstruction_grid
from jgan.families.bigan.networks import (BIGAN_ARCHS, BiGANEncoder, BiGANGenerator,
                                          JointDiscriminator)
from jgan.families.bigan.step import BIGAN_LOSSES, ENCODER_REGULARIZERS, make_bigan_train_step
from jgan.families.gan.dcgan import COMPUTE_DTYPES
from jgan.families.latent import (ADVERSARIAL_LOSS_BOUNDS, AdversarialLossConfig, LatentModelConfig,
                                  LatentSetup, check_convolutional_image, check_latent_model,
                                  single_image_shape)
from jgan.optim import check_optim_config, make_optimizer
from jgan.train.setup import Family, check_choices, refuse_first
from jgan.train.state import Network, TrainState, apply_network


@dataclasses.dataclass(frozen=True, kw_only=True)
class BiGANModelConfig(LatentModelConfig):
    g_head: str = "dense"  # "dense", or "conv": a fully convolutional G
    g_crop: int = 0  # > 0: pad-then-crop, G draws a canvas this much wider per side, cut to size
    downsample: str = "stride"  # dcgan E and D: "stride", or "mixed_pool" (jgan.nn.MixedPooling)
    unary: bool = False  # BigBiGAN's unary scores s_x and s_z beside the joint s_xz
    # mlp and dcgan: "bfloat16" computes G's, E's and D's activations in bf16, mixed precision
    # (float32 parameters, optimizer state, BatchNorm statistics, scores, latents and images)
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BiGANLossConfig(AdversarialLossConfig):
    # The encoder-collapse regularizer: the weight of -tanh(pairwise MSE), the base multiplier
    # of the variance term, its tolerance, and the cap of its adaptive multiplier. "batch" takes
    # tanh of the batch's mean pairwise MSE and the per-dimension variance across the batch;
    # "per_sample" is the first seed's form: tanh of each code's mean MSE to the others, and
    # each code's variance across its dimensions (jgan.losses.per_sample_*_penalty).
    e_regularizer: str = "batch"
    e_spread_weight: float = 0.0
    e_variance_weight: float = 0.0
    e_variance_tolerance: float = 0.1
    e_variance_max_multiplier: float = 10.0


def check(config, spec) -> None:
    """What the BiGAN family does not combine with, each in one line that says what to change."""
    model, loss_cfg, train_cfg = config.model, config.loss, config.train
    check_latent_model(model, archs=BIGAN_ARCHS)
    check_bounds("loss", loss_cfg, ADVERSARIAL_LOSS_BOUNDS)
    check_optim_config(config.optim)
    check_choices({"model.g_head": (model.g_head, ("dense", "conv")),
                   "model.downsample": (model.downsample, ("stride", "mixed_pool")),
                   "loss.gan_loss": (loss_cfg.gan_loss, BIGAN_LOSSES),
                   "loss.e_regularizer": (loss_cfg.e_regularizer, ENCODER_REGULARIZERS),
                   "model.dtype": (model.dtype, tuple(COMPUTE_DTYPES))})
    losses.get_losses(loss_cfg.gan_loss, real_label=loss_cfg.real_label)
    weights = [name for name in ("e_spread_weight", "e_variance_weight", "e_variance_tolerance")
               if getattr(loss_cfg, name) < 0]
    refuse_first([
        (train_cfg.n_critic != 1, "the bigan step updates D once per step: use train.n_critic=1"),
        (train_cfg.ema_kimg > 0, "the bigan step keeps no EMA of G: use train.ema_kimg=0"),
        (model.arch == "mlp" and (model.g_head != "dense" or model.g_crop),
         "the mlp arch has no convolutional head to pad and crop: use --set model.arch=dcgan"),
        (model.arch != "dcgan" and model.downsample != "stride",
         "model.downsample chooses the dcgan arch's downsampling (the unet arch always uses "
         "mixed pooling): use --set model.arch=dcgan"),
        (model.arch == "unet" and model.dtype != "float32",
         f"model.dtype={model.dtype!r} applies to the mlp and dcgan archs: the unet arch "
         "computes in float32, drop --set model.dtype"),
        (model.arch == "unet" and model.spectral_norm,
         "the unet arch has no spectral norm: use --set model.arch=dcgan"),
        (model.g_crop < 0, f"model.g_crop={model.g_crop}: use 0 (off) or a margin in pixels"),
        (bool(weights), f"loss.{weights[0] if weights else ''} is negative: use 0 (off) or more"),
        (loss_cfg.e_variance_max_multiplier < 1,
         f"loss.e_variance_max_multiplier={loss_cfg.e_variance_max_multiplier}: use 1 (a fixed "
         "multiplier) or more"),
        (loss_cfg.gp_weight > 0 and model.d_norm == "batch",
         "gradient penalties need per-example gradients, which BatchNorm in D mixes: add --set "
         "model.d_norm=none"),
    ])
    shape = single_image_shape(spec, family="bigan")
    if model.arch != "mlp":
        check_convolutional_image(shape, dataset=config.data.dataset, arch=model.arch)


def build_networks(model, image_shape: tuple[int, ...]) -> dict:
    """`{"g": G(z), "e": E(x), "d": D(x, z)}`."""
    common = dict(arch=model.arch, base_features=model.base_features, hidden=model.hidden,
                  dtype=COMPUTE_DTYPES[model.dtype])
    return {"g": BiGANGenerator(image_shape, head=model.g_head, crop=model.g_crop, **common),
            "e": BiGANEncoder(model.z_dim, downsample=model.downsample, **common),
            "d": JointDiscriminator(norm=model.d_norm, spectral_norm=model.spectral_norm,
                                    downsample=model.downsample, unary=model.unary, **common)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class BiGANSetup(LatentSetup):
    """A latent setup with an encoder: `state.nets["e"]` maps images to latents."""

    def encode(self, state: TrainState, images: jax.Array) -> jax.Array:
        """Latents [B, z_dim] of images [B, H, W, C] in [-1, 1], BatchNorm in inference mode."""
        e = state.nets["e"]
        codes, _ = apply_network(self.networks["e"].module, e.variables(), images, train=False)
        return codes

    def reconstruct(self, state: TrainState, images: jax.Array) -> jax.Array:
        """G(E(x)) for images in [-1, 1]."""
        return self.sample(state, {"z": self.encode(state, images)})

    # Compiled once per setup: the training loop draws reconstructions at every sample step.
    @functools.cached_property
    def encode_fn(self):
        return jax.jit(self.encode)

    @functools.cached_property
    def reconstruct_fn(self):
        return jax.jit(self.reconstruct)

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        inputs, columns = super().preview_inputs(key, grid_size, batch)
        return inputs, columns, np.asarray(batch["image"][:grid_size])

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        """The sample grid, and real images (odd rows) over their reconstructions G(E(x))."""
        inputs, columns, real = fixed
        return {**super().preview(state, (inputs, columns)),
                "reconstruction_": reconstruction_grid(self, state, real, columns=columns)}


def build(config, spec) -> BiGANSetup:
    """G, E and D; E shares G's optimizer settings (they are trained as one player)."""
    check(config, spec)
    model, optim_cfg = config.model, config.optim
    image_shape = single_image_shape(spec, family="bigan")
    modules = build_networks(model, image_shape)
    networks = {"g": Network(modules["g"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "e": Network(modules["e"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(modules["d"], make_optimizer(optim_cfg, optim_cfg.d_lr,
                                                          clip=optim_cfg.d_clip))}
    images, z = jnp.zeros((1, *image_shape)), jnp.zeros((1, model.z_dim))
    augment = augment_lib.from_config(config.train)
    step = make_bigan_train_step(config, generator=networks["g"], encoder=networks["e"],
                                 discriminator=networks["d"], augment=augment)
    return BiGANSetup(networks=networks, example_inputs={"g": (z,), "e": (images,),
                                                          "d": (images, z)},
                      train_step=step, z_dim=model.z_dim, augment=augment)


FAMILY = Family(name="bigan", model_config=BiGANModelConfig, loss_config=BiGANLossConfig,
                build=build, network_names={"g": "generator", "e": "encoder",
                                            "d": "discriminator"},
                description="G(z), an encoder E(x) and a joint D(x, z): BiGAN, BigBiGAN")

"""The GAN family: one generator G(z[, y]) against one discriminator D(x[, y]).

It covers the 2014 GAN (Goodfellow et al., `arch=mlp`), DCGAN (Radford et al. 2016), CGAN (Mirza &
Osindero 2014, `conditioning=input`), ACGAN (Odena et al. 2017, `conditioning=auxiliary`), WGAN
(Arjovsky et al. 2017, weight clipping), WGAN-GP (Gulrajani et al. 2017), SNGAN (Miyato et al.
2018) and the 2-D networks of the mode-collapse benchmark (`arch=toy`). Its remedies for mode
collapse are options of every arch: Unrolled GAN, feature matching and minibatch discrimination
(Salimans et al. 2016) on the toy, mlp and dcgan Ds; packing (PacGAN) on the toy D only. The
update is `jgan.families.gan.step`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jgan import augment as augment_lib
from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.errors import UserError
from jgan.families.gan.dcgan import COMPUTE_DTYPES, DCGANDiscriminator, DCGANGenerator
from jgan.families.gan.mlp import (ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                                   MLPDiscriminator, MLPGenerator)
from jgan.families.gan.step import lazy_regularization_interval, make_gan_train_step
from jgan.families.gan.toy import ACTIVATIONS, ToyDiscriminator, ToyGenerator
from jgan.families.latent import (ADVERSARIAL_LOSS_BOUNDS, AdversarialLossConfig, LatentModelConfig,
                                  LatentSetup, check_convolutional_image, check_latent_model,
                                  single_image_shape, standing_inputs)
from jgan.optim import check_optim_config, make_optimizer
from jgan.train.setup import Family, check_choices, refuse_first
from jgan.train.state import Network, apply_network

ARCHS = ("dcgan", "mlp", "toy")
CONDITIONINGS = ("none", "input", "auxiliary")
# Standing statistics of the EMA G over 64 batches of 64: over BigGAN's 16 the estimate moved the
# quick start's classifier-FID by a point (61.7 at seed 0, step 5000, against 60.5 at 64 and 256).
STANDING_BATCHES = 64


@dataclasses.dataclass(frozen=True, kw_only=True)
class GANModelConfig(LatentModelConfig):
    # "none"; "input": the label is fed to G and D (CGAN); "auxiliary": fed to G and predicted
    # by a class head on D (ACGAN)
    conditioning: str = "none"
    num_classes: int = 10  # used when conditioning is not "none"
    # toy only (jgan.families.gan.toy): depth and activation of G and D
    g_layers: int = 2
    d_layers: int = 1
    activation: str = "relu"
    # every arch: minibatch discrimination (Salimans et al. 2016, Sec. 3.2) before D's real/fake
    # output, with this many kernels (0: off) of this dimension
    minibatch_kernels: int = 0
    minibatch_kernel_dim: int = 5
    # toy only: PacGAN's packing of this many samples per D input
    pack: int = 1
    # dcgan and mlp: "bfloat16" computes G's and D's activations in bf16, mixed precision: float32
    # parameters, optimizer state, BatchNorm statistics, losses and images
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GANLossConfig(AdversarialLossConfig):
    focal_gamma: float = 2.0  # gan_loss "focal" only
    r1_gamma: float = 0.0  # R1 on reals (Mescheder et al. 2018)
    r2_gamma: float = 0.0  # R2 on fakes
    reg_interval: int = 1  # > 1: lazy R1/R2, a separate D update every reg_interval steps
    class_weight: float = 1.0  # ACGAN: weight of the auxiliary classification loss
    # Unrolled GAN (Metz et al. 2017): G's loss is taken against D after this many more updates
    # on the step's batch, differentiated through them ("full") or not ("stop")
    unroll_steps: int = 0
    unroll_gradient: str = "full"
    # G's objective: "adversarial" (loss.gan_loss), or "feature_matching" (Salimans et al. 2016)
    g_objective: str = "adversarial"


# Model fields that only the toy arch reads, with their defaults. Packing stays here: an image D
# would need its input and ACGAN's class head rebuilt around packs.
TOY_ONLY = {"g_layers": 2, "d_layers": 1, "activation": "relu", "pack": 1}
# The ranges of this family's own numeric fields. num_classes counts only when conditional, and
# real_label and focal_gamma only for some losses: `check` and jgan.losses refuse those.
GAN_MODEL_BOUNDS = {"g_layers": Bounds(1), "d_layers": Bounds(1), "pack": Bounds(1),
                    "minibatch_kernels": Bounds(0, note="0: off"),
                    "minibatch_kernel_dim": Bounds(1)}
GAN_LOSS_BOUNDS = {**ADVERSARIAL_LOSS_BOUNDS, "r1_gamma": Bounds(0, note="0: off"),
                   "r2_gamma": Bounds(0, note="0: off"), "reg_interval": Bounds(1),
                   "class_weight": Bounds(0), "unroll_steps": Bounds(0, note="0: a plain GAN")}


def check(config, spec) -> None:
    """Refuse settings that cannot work together, in one line that says what to change."""
    model, loss_cfg = config.model, config.loss
    check_latent_model(model, archs=ARCHS)
    check_bounds("model", model, GAN_MODEL_BOUNDS)
    check_bounds("loss", loss_cfg, GAN_LOSS_BOUNDS)
    check_optim_config(config.optim)
    check_choices({"model.conditioning": (model.conditioning, CONDITIONINGS),
                   "model.activation": (model.activation, tuple(ACTIVATIONS)),
                   "loss.unroll_gradient": (loss_cfg.unroll_gradient, ("full", "stop")),
                   "loss.g_objective": (loss_cfg.g_objective, ("adversarial",
                                                               "feature_matching")),
                   "loss.gan_loss": (loss_cfg.gan_loss, losses.LOSS_NAMES),
                   "model.dtype": (model.dtype, tuple(COMPUTE_DTYPES))})
    losses.get_losses(loss_cfg.gan_loss, real_label=loss_cfg.real_label,
                      focal_gamma=loss_cfg.focal_gamma)
    check_mode_collapse_options(config)
    refuse_first([
        (model.arch == "toy" and model.dtype != "float32",
         f"model.dtype={model.dtype!r} applies to the dcgan and mlp archs: the toy arch "
         "computes in float32, drop --set model.dtype"),
        (model.conditioning != "none" and model.num_classes < 2,
         f"model.num_classes={model.num_classes}: a conditional GAN needs 2 or more classes"),
        (model.arch == "mlp" and (model.conditioning == "auxiliary" or model.spectral_norm
                                  or model.d_norm != "batch"),
         "the mlp arch has no auxiliary head, spectral norm or d_norm option: use --set "
         "model.arch=dcgan"),
        ((loss_cfg.gp_weight or loss_cfg.r1_gamma or loss_cfg.r2_gamma)
         and model.arch == "dcgan" and model.d_norm == "batch",
         "gradient penalties need per-example gradients, which BatchNorm in D mixes: add --set "
         "model.d_norm=none"),
    ])
    shape = single_image_shape(spec, family="gan")
    refuse_first([
        (model.arch == "toy" and config.train.augment != "none",
         f"train.augment={config.train.augment!r} augments images, and the toy arch's D sees "
         "2-D points: drop train.augment"),
        (model.arch == "toy" and len(shape) != 1,
         "the toy arch draws 2-D points, not images: run python -m experiments.mode_collapse, "
         "or use --set model.arch=dcgan"),
        (model.arch != "toy" and len(shape) == 1,
         f"model.arch={model.arch!r} draws images, and this data is 2-D points: add --set "
         "model.arch=toy"),
    ])
    if model.arch == "dcgan":
        check_convolutional_image(shape, dataset=config.data.dataset, arch=model.arch)
    check_labels(model, spec, config.data.dataset)


def check_mode_collapse_options(config) -> None:
    """Unrolling, feature matching, minibatch discrimination and packing, in one line each.

    Minibatch discrimination and packing make each D output depend on other rows, so they refuse
    gradient penalties; under data parallelism those rows are the global batch.
    """
    model, loss_cfg = config.model, config.loss
    toy_only = [name for name, default in TOY_ONLY.items() if getattr(model, name) != default]
    if toy_only and model.arch != "toy":
        raise UserError(f"model.{toy_only[0]} applies to the toy arch only: add --set "
                        "model.arch=toy, or drop it")
    mixes_batch = model.minibatch_kernels > 0 or model.pack > 1
    refuse_first([
        (mixes_batch and (loss_cfg.gp_weight or loss_cfg.r1_gamma or loss_cfg.r2_gamma),
         "gradient penalties need per-example gradients, which minibatch discrimination and "
         "packing mix across the batch: drop one of them"),
        (model.pack > 1 and config.train.batch_size % model.pack != 0,
         f"train.batch_size={config.train.batch_size} does not split into packs of "
         f"model.pack={model.pack}: use a multiple of it"),
    ])


def check_labels(model, spec, dataset: str) -> None:
    """A conditional GAN needs class labels, and at least as many classes as the data has."""
    if model.conditioning == "none":
        return
    if spec.num_classes == 0:
        raise UserError(f"dataset {dataset} has no class labels, which a conditional GAN needs: "
                        "choose a labelled dataset or --set model.conditioning=none")
    if spec.num_classes > model.num_classes:
        raise UserError(f"dataset {dataset} has {spec.num_classes} classes but "
                        f"model.num_classes is {model.num_classes}: add --set "
                        f"model.num_classes={spec.num_classes}")


def build_networks(model, image_shape: tuple[int, ...]) -> dict:
    """The modules by their state names: `{"g": generator, "d": discriminator}`.

    A conditional G (and, for conditioning "input", D) takes labels [B] after its image or z.
    """
    num_classes = model.num_classes if model.conditioning != "none" else 0
    minibatch = dict(minibatch_kernels=model.minibatch_kernels,
                     minibatch_kernel_dim=model.minibatch_kernel_dim)
    dtype = COMPUTE_DTYPES[model.dtype]
    if model.arch == "dcgan":
        return {"g": DCGANGenerator(image_shape, model.base_features, num_classes, dtype=dtype),
                "d": DCGANDiscriminator(model.base_features, norm=model.d_norm,
                                        spectral_norm=model.spectral_norm,
                                        conditioning=model.conditioning,
                                        num_classes=num_classes, dtype=dtype, **minibatch)}
    if model.arch == "mlp":
        if model.conditioning == "input":
            return {"g": ConditionalMLPGenerator(image_shape, num_classes, dtype=dtype),
                    "d": ConditionalMLPDiscriminator(num_classes, dtype=dtype, **minibatch)}
        return {"g": MLPGenerator(image_shape, model.hidden, dtype=dtype),
                "d": MLPDiscriminator(dtype=dtype, **minibatch)}
    return {"g": ToyGenerator(model.hidden, model.g_layers, model.activation,
                              out_dim=image_shape[-1]),
            "d": ToyDiscriminator(model.hidden, model.d_layers, model.activation,
                                  pack=model.pack, **minibatch)}


def batch_moments(setup: LatentSetup, variables: dict, key: jax.Array) -> dict:
    """DCGAN G's BatchNorm moments of one training-mode batch of fresh z (and uniform labels if
    conditional): G with momentum 0 writes them as its running statistics."""
    z, labels = standing_inputs(setup, key)
    module = setup.networks["g"].module.clone(bn_momentum=0.0)
    _, collections = apply_network(module, variables, z, *(() if labels is None else (labels,)),
                                   train=True)
    return collections["batch_stats"]


def build(config, spec) -> LatentSetup:
    """G and D with their optimizers (one rate each: TTUR) and the alternating step.

    G's EMA samples with standing statistics where G has BatchNorm (dcgan): the live G's
    running averages do not describe the averaged weights' activations. Without an EMA they
    do, and sampling keeps them.
    """
    check(config, spec)
    model, loss_cfg, optim_cfg = config.model, config.loss, config.optim
    image_shape = single_image_shape(spec, family="gan")
    modules = build_networks(model, image_shape)
    networks = {
        "g": Network(modules["g"], make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "d": Network(modules["d"], make_optimizer(
            optim_cfg, optim_cfg.d_lr, updates_per_step=config.train.n_critic,
            clip=optim_cfg.d_clip, lazy_interval=lazy_regularization_interval(loss_cfg))),
    }
    conditional = model.conditioning != "none"
    labels = (jnp.zeros((1,), jnp.int32),)
    example_inputs = {"g": (jnp.zeros((1, model.z_dim)), *(labels if conditional else ())),
                      "d": (jnp.zeros((model.pack, *image_shape)),  # one pack
                            *(labels if model.conditioning == "input" else ()))}
    augment = augment_lib.from_config(config.train)
    step = make_gan_train_step(config, generator=networks["g"], discriminator=networks["d"],
                               augment=augment)
    ema = config.train.ema_kimg > 0
    return LatentSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                       z_dim=model.z_dim, num_classes=model.num_classes if conditional else 0,
                       batches_per_step=config.train.n_critic, ema=ema, augment=augment,
                       batch_moments=batch_moments if ema and model.arch == "dcgan" else None,
                       standing_batches=STANDING_BATCHES,
                       # Eigen's convolutions: DCGAN's step 81 -> 74 ms, WGAN-GP's 319 -> 287
                       # on 2 CPU cores (docs/performance.md).
                       cpu_convolutions="eigen")


FAMILY = Family(name="gan", model_config=GANModelConfig, loss_config=GANLossConfig, build=build,
                network_names={"g": "generator", "d": "discriminator"},
                description="G(z[, y]) against D(x[, y]): GAN, DCGAN, CGAN, ACGAN, WGAN(-GP), "
                            "SNGAN, the 2-D benchmark")

"""The semi-supervised GAN (Salimans et al. 2016, Sec. 5): D is a K-class classifier with an
implicit (K+1)-th "fake" class, trained on a few labelled examples and all the unlabelled ones;
G is trained by feature matching (Sec. 3.1). What counts is D's test error as a classifier.

The networks are the paper's MNIST model (`jgan.families.ssgan.networks`), the step
`jgan.families.ssgan.step`. The paper's other techniques are options: minibatch discrimination
(`model.minibatch_kernels`), historical averaging (`loss.historical_weight`,
`jgan.optim.historical_averaging`), one-sided label smoothing (`loss.real_label`), virtual batch
normalization in G (`model.g_norm`), weight normalization (`model.weight_norm`, on: the MNIST
model's), Gaussian noise in D (`model.input_noise`, `model.hidden_noise`, on) and dropout
(`model.dropout`).

The labelled subset, `loss.num_labels` examples balanced over the classes, is chosen from the
run's seed (`jgan.data.labelled`) and read here from the training split when the setup is built:
the shared loop's batches are the unlabelled stream, their labels unread. `loss.supervised_only`
is the baseline: the same D trained on the labelled subset alone.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.config import Bounds, check_bounds
from jgan.data.labelled import read_balanced_subset, read_first_in_order
from jgan.data.sources import find_dataset
from jgan.errors import UserError
from jgan.families.latent import LatentSetup, single_image_shape
from jgan.families.ssgan.networks import G_NORMS, SSGANDiscriminator, SSGANGenerator
from jgan.families.ssgan.step import make_ssgan_train_step, pixels_to_unit, uniform_prior
from jgan.optim import check_optim_config, historical_averaging, make_optimizer
from jgan.train.setup import Family, check_choices, refuse_first
from jgan.train.state import Network, TrainState, apply_network

# The labelled subset's key: the run seed's key folded with this, apart from the loop's keys.
LABELLED_STREAM = 0x1ABE1
INIT_EXAMPLES = 500  # training images D's weight-norm init reads, as the authors' `trainx[:500]`
EVAL_CHUNK = 1000


@dataclasses.dataclass(frozen=True, kw_only=True)
class SSGANModelConfig:
    z_dim: int = 100  # z ~ U[0, 1]^z_dim
    g_hidden: int = 500
    g_norm: str = "batch"  # "batch", "virtual_batch" (Sec. 3.5) or "none"
    vbn_reference: int = 100  # g_norm "virtual_batch": size of the fixed reference batch
    weight_norm: bool = True  # in D, and on G's output layer
    input_noise: float = 0.3  # std of D's Gaussian input noise (training only)
    hidden_noise: float = 0.5  # std of the noise after each of D's hidden layers
    dropout: float = 0.0  # D's dropout rate after each hidden layer
    minibatch_kernels: int = 0  # minibatch discrimination before D's logits (Sec. 3.2); 0: off
    minibatch_kernel_dim: int = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class SSGANLossConfig:
    # The shared command line's --loss sets this field; D's loss here is the K+1 classifier's.
    gan_loss: str = "k_plus_one"
    num_labels: int = 100  # labelled training examples, balanced over the classes
    unlabelled_weight: float = 1.0  # weight of the unsupervised K+1 term in D's loss
    real_label: float = 1.0  # < 1: one-sided label smoothing of the unlabelled term (Sec. 3.4)
    historical_weight: float = 0.0  # historical averaging (Sec. 3.3) of G and D; 0: off
    supervised_only: bool = False  # the baseline: D on the labelled subset alone, no G


MODEL_BOUNDS = {"z_dim": Bounds(1), "g_hidden": Bounds(1), "vbn_reference": Bounds(1),
                "input_noise": Bounds(0), "hidden_noise": Bounds(0),
                "dropout": Bounds(0, 1, note="0: off"),
                "minibatch_kernels": Bounds(0, note="0: off"), "minibatch_kernel_dim": Bounds(1)}
LOSS_BOUNDS = {"num_labels": Bounds(1), "unlabelled_weight": Bounds(0),
               "real_label": Bounds(0.5, 1.0 + 1e-9, note="1: no smoothing"),
               "historical_weight": Bounds(0, note="0: off")}


def check(config, spec) -> tuple[int, ...]:
    """Refuse settings that cannot work, in one line each; returns the image shape."""
    model, loss_cfg = config.model, config.loss
    check_bounds("model", model, MODEL_BOUNDS)
    check_bounds("loss", loss_cfg, LOSS_BOUNDS)
    check_optim_config(config.optim)
    check_choices({"model.g_norm": (model.g_norm, G_NORMS),
                   "loss.gan_loss": (loss_cfg.gan_loss, ("k_plus_one",))})
    shape = single_image_shape(spec, family="ssgan")
    refuse_first([
        (config.data.images is not None or spec.num_classes < 2,
         f"the ssgan family learns a classifier from labels, and "
         f"{config.data.images or config.data.dataset} has no class labels: choose a labelled "
         "dataset (mnist, fashion_mnist)"),
        (len(shape) != 3, "the ssgan family takes images, and this data is points: choose "
                          "an image dataset such as mnist"),
        (config.train.n_critic != 1,
         "the ssgan step makes one D update per G update, as the paper's: drop train.n_critic"),
        (config.train.ema_kimg > 0, "the ssgan family keeps no EMA of G: drop train.ema_kimg"),
    ])
    return shape


def build_discriminator(model, num_classes: int) -> SSGANDiscriminator:
    return SSGANDiscriminator(num_classes=num_classes, input_noise=model.input_noise,
                              hidden_noise=model.hidden_noise, dropout=model.dropout,
                              weight_norm=model.weight_norm,
                              minibatch_kernels=model.minibatch_kernels,
                              minibatch_kernel_dim=model.minibatch_kernel_dim)


def build_generator(model, image_shape) -> SSGANGenerator:
    return SSGANGenerator(tuple(image_shape), hidden=model.g_hidden, norm=model.g_norm,
                          weight_norm=model.weight_norm, reference_size=model.vbn_reference)


def labelled_subset(config, num_classes: int):
    """`(images uint8 [L, H, W, C], labels [L], init images uint8 [INIT_EXAMPLES, H, W, C])`:
    the run's labelled subset of its split, and the first `INIT_EXAMPLES` training images of
    any class in the random order it was picked from, which D's data-dependent init reads (the
    authors' `init_param(trainx[:500])`; the labelled 100 alone give other initial scales)."""
    source = find_dataset(config.data.dataset, config.data.data_dir, split=config.data.split)
    split = source.open(config.data.split, image_size=config.data.image_size)
    key = jax.random.fold_in(jax.random.key(config.train.seed), LABELLED_STREAM)
    _, images, labels = read_balanced_subset(split, config.loss.num_labels, key, num_classes)
    return images, labels, read_first_in_order(split, INIT_EXAMPLES, key)


def optimizer(config, learning_rate: float) -> optax.GradientTransformation:
    tx = make_optimizer(config.optim, learning_rate)
    weight = config.loss.historical_weight
    return optax.chain(historical_averaging(weight), tx) if weight else tx


def classify(module: SSGANDiscriminator, d_variables: dict, images, *, chunk: int = EVAL_CHUNK):
    """D's class predictions [N] of uint8 images, in inference mode (no noise, no dropout)."""
    logits_fn = jax.jit(lambda variables, x: module.apply(variables, pixels_to_unit(x)))
    return np.concatenate([np.asarray(jnp.argmax(logits_fn(d_variables, images[i:i + chunk]), -1))
                           for i in range(0, len(images), chunk)])


def test_error(config, num_classes: int, state: TrainState, images, labels) -> float:
    """D's error rate as a classifier of `images` with true `labels`."""
    module = build_discriminator(config.model, num_classes)
    predictions = classify(module, jax.device_get(state.nets["d"].variables()), images)
    return float(np.mean(predictions != np.asarray(labels)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SSGANSetup(LatentSetup):
    """`state.nets["g"]` maps z ~ U[0, 1] to images in [0, 1]; samples are shown in [-1, 1]."""

    def sample_inputs(self, key: jax.Array, num: int, labels=None) -> dict:
        if labels is not None:
            raise UserError("this generator is unconditional: drop the labels")
        return {"z": uniform_prior(key, num, self.z_dim)}

    def sample(self, state: TrainState, inputs: dict) -> jax.Array:
        g = state.nets["g"]
        images, _ = apply_network(self.networks["g"].module, g.variables(), inputs["z"],
                                  train=False)
        return images * 2.0 - 1.0

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        return self.sample_inputs(key, grid_size), math.ceil(math.sqrt(grid_size))


def build(config, spec) -> SSGANSetup:
    """G and D with their Adam rates, the labelled subset, and the step."""
    shape = check(config, spec)
    model, loss_cfg, train = config.model, config.loss, config.train
    images, labels, init_images = labelled_subset(config, spec.num_classes)
    networks = {"g": Network(build_generator(model, shape),
                             optimizer(config, config.optim.g_lr)),
                "d": Network(build_discriminator(model, spec.num_classes),
                             optimizer(config, config.optim.d_lr))}
    # D's weight-norm layers take their initial scale and bias from real images (data-dependent
    # init, as the authors' `init_param`).
    example_inputs = {"g": (jnp.zeros((1, model.z_dim)),),
                      "d": (pixels_to_unit(jnp.asarray(init_images)),)}
    step = make_ssgan_train_step(
        generator=networks["g"], discriminator=networks["d"], labelled_images=images,
        labelled_labels=labels, z_dim=model.z_dim, batch_size=train.batch_size,
        unlabelled_weight=loss_cfg.unlabelled_weight, real_label=loss_cfg.real_label,
        supervised_only=loss_cfg.supervised_only)
    return SSGANSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                      z_dim=model.z_dim, batches_per_step=1 if loss_cfg.supervised_only else 2)


FAMILY = Family(name="ssgan", model_config=SSGANModelConfig, loss_config=SSGANLossConfig,
                build=build, network_names={"g": "generator", "d": "discriminator"},
                description="semi-supervised GAN: a K+1-class D on few labels, feature "
                            "matching G (Salimans et al. 2016)")

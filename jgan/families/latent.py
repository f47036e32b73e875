"""Pieces shared by families whose generator maps a latent z ~ N(0, I), and class labels, to images.

The GAN and BiGAN families (and StyleGAN or BigGAN after them) draw z from one prior, sample with
G in inference mode (BatchNorm running statistics, G's EMA weights when the run keeps them) and
show a grid of samples from a fixed `grid_z`. Each piece is written once here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgan.config import Bounds, check_bounds
from jgan.errors import UserError
from jgan.families.gan.dcgan import halves_down
from jgan.nn.conditional_norm import standing_statistics
from jgan.train.setup import Setup
from jgan.train.state import TrainState, apply_network
from jgan.train.step_parts import prior

# Standing statistics (Brock et al. 2019, App. C.2): G's BatchNorm statistics averaged over this
# many training-mode batches of fresh z (and uniform labels), drawn from a fixed key so sampling
# stays a function of the state alone.
STANDING_BATCHES = 16
STANDING_BATCH_SIZE = 64
STANDING_SEED = 20190225


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatentModelConfig:
    """Model fields of every latent-variable family."""

    arch: str = "dcgan"
    z_dim: int = 100
    base_features: int = 64  # dcgan: channels of D's first and G's last hidden layer
    hidden: int = 1200  # mlp: width of G's hidden layers; toy: of G's and D's
    d_norm: str = "batch"  # "batch", or "none" (critics under a gradient penalty)
    spectral_norm: bool = False  # spectral normalization of D's weights (Miyato et al. 2018)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdversarialLossConfig:
    """Loss fields of every adversarial family."""

    gan_loss: str = "nonsaturating"  # a name from jgan.losses.LOSSES
    real_label: float = 1.0  # < 1: one-sided label smoothing (Salimans et al. 2016)
    gp_weight: float = 0.0  # WGAN-GP's lambda


# The ranges of the fields that every latent family shares.
LATENT_MODEL_BOUNDS = {"z_dim": Bounds(1), "base_features": Bounds(1), "hidden": Bounds(1)}
ADVERSARIAL_LOSS_BOUNDS = {"gp_weight": Bounds(0, note="0: off")}


def check_latent_model(model, *, archs) -> None:
    if model.arch not in archs:
        raise UserError(f"model.arch={model.arch!r} is unknown: choose one of {list(archs)}")
    if model.d_norm not in ("batch", "none"):
        raise UserError(f"model.d_norm={model.d_norm!r} is unknown: choose one of "
                        "['batch', 'none']")
    check_bounds("model", model, LATENT_MODEL_BOUNDS)


def single_image_shape(spec, *, family: str) -> tuple[int, ...]:
    """The shape of one example's "image", refusing paired and unpaired data in one line."""
    if "image" not in spec.arrays:
        names = ", ".join(sorted(spec.arrays))
        raise UserError(f"the {family} family trains on single images, and this data holds "
                        f"{names}: train on one side with --images DIR/trainA (or a family "
                        "for paired or unpaired data)")
    return tuple(spec.arrays["image"][0])


def check_convolutional_image(shape, *, dataset: str, arch: str) -> None:
    """Convolutional networks need square images that halve down to 7 or less."""
    height, width = shape[:2]
    if height != width or not halves_down(height):
        raise UserError(f"{dataset} images are {height}x{width}, which the {arch} networks "
                        "cannot take (they need square images that halve down to 7 or less): "
                        "add --set data.image_size=64 (or 32, 96, ...) to crop and resize them")


def standing_inputs(setup, key: jax.Array):
    """`(z, labels)` of one standing-statistics batch: STANDING_BATCH_SIZE fresh z, and uniform
    labels for a conditional G (None otherwise)."""
    k_z, k_labels = jax.random.split(key)
    z = prior(k_z, STANDING_BATCH_SIZE, setup.z_dim)
    labels = (jax.random.randint(k_labels, (STANDING_BATCH_SIZE,), 0, setup.num_classes)
              if setup.num_classes else None)
    return z, labels


def class_grid_inputs(key: jax.Array, grid_size: int, z_dim: int, num_classes: int):
    """`(inputs, columns)` of a sample grid.

    Unconditional: grid_size latents in a square. Conditional: one row per class, each column
    one latent shared by all rows, so a column shows one z across the classes.
    """
    columns = math.ceil(math.sqrt(grid_size))
    if not num_classes:
        return {"z": prior(key, grid_size, z_dim), "labels": None}, columns
    z = prior(key, columns, z_dim)
    return ({"z": jnp.tile(z, (num_classes, 1)),
             "labels": jnp.repeat(jnp.arange(num_classes), columns)}, columns)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatentSetup(Setup):
    """A setup whose `state.nets["g"]` maps `(z, labels if conditional)` to images.

    With `batch_moments` set, `generate` and `preview` sample with standing statistics: G's
    BatchNorm statistics recomputed for the weights that sample (`with_standing_statistics`),
    not the running averages of the live G's training. An EMA of the weights needs them: its
    BatchNorm layers see other activations than the live G's averages describe.
    """

    z_dim: int
    ema: bool = False  # the state keeps an EMA of G's weights in extra["g_ema"]
    # `(setup, variables, key) -> batch_stats`: G's BatchNorm moments of one training-mode batch
    # of STANDING_BATCH_SIZE fresh draws from key; None: sample with the running averages.
    batch_moments: Callable | None = None
    standing_batches: int = STANDING_BATCHES  # how many such batches standing statistics average

    def init_state(self, key: jax.Array) -> TrainState:
        state = super().init_state(key)
        if self.ema:
            state = state.replace(extra={**state.extra, "g_ema": state.nets["g"].params})
        return state

    def sample_inputs(self, key: jax.Array, num: int, labels=None) -> dict:
        """`{"z": [num, z_dim], "labels": [num] or None}`; labels are needed if conditional."""
        if self.num_classes and labels is None:
            raise UserError("this generator is conditional: pass labels, e.g. --labels 0,1,2")
        if not self.num_classes and labels is not None:
            raise UserError("this generator is unconditional: drop the labels")
        return {"z": prior(key, num, self.z_dim), "labels": labels}

    def sampling_variables(self, state: TrainState) -> dict:
        """G's variables for sampling: its EMA weights when kept, standing statistics when the
        state holds them (`extra["g_standing"]`)."""
        g = state.nets["g"]
        variables = g.variables(state.extra.get("g_ema", g.params))
        if "g_standing" in state.extra:
            variables["batch_stats"] = state.extra["g_standing"]
        return variables

    def sample(self, state: TrainState, inputs: dict) -> jax.Array:
        """Images in [-1, 1], BatchNorm in inference mode, G's EMA weights when kept."""
        labels = inputs.get("labels")
        args = (inputs["z"],) if labels is None else (inputs["z"], labels)
        images, _ = apply_network(self.networks["g"].module, self.sampling_variables(state),
                                  *args, train=False)
        return images

    @functools.cached_property
    def batch_moments_fn(self):
        return jax.jit(lambda state, key: self.batch_moments(
            self, self.sampling_variables(state), key))

    def with_standing_statistics(self, state: TrainState) -> TrainState:
        """The state with `extra["g_standing"]`: the sampling G's BatchNorm statistics averaged
        over `standing_batches` batches (BigGAN-PyTorch's `accumulate_standing_stats`); the state
        unchanged without `batch_moments`."""
        if self.batch_moments is None or "g_standing" in state.extra:
            return state
        keys = jax.random.split(jax.random.key(STANDING_SEED), self.standing_batches)
        # Calls of one compiled program, once per sampled state: a lax.map over the keys
        # would be one dispatch, but XLA:CPU runs convolutions in a rolled loop body many times
        # slower (jgan.families.gan.step).
        moments = [self.batch_moments_fn(state, key) for key in keys]
        return state.replace(extra={**state.extra, "g_standing": standing_statistics(moments)})

    def generate(self, state: TrainState, key: jax.Array, num: int, **conditions) -> np.ndarray:
        return super().generate(self.with_standing_statistics(state), key, num, **conditions)

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        return super().preview(self.with_standing_statistics(state), fixed)

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        return class_grid_inputs(key, grid_size, self.z_dim, self.num_classes)

"""From a config to everything the host loop needs: networks, optimizers, the step, sampling.

A family adds a builder here; the loop, data, checkpoints, logging and sampling stay shared.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jgan.models import build_models
from jgan.train.gan_step import make_gan_train_step
from jgan.train.state import Network, TrainState, apply_network


@dataclasses.dataclass(frozen=True)
class GANSetup:
    networks: dict[str, Network]
    example_inputs: dict[str, tuple]  # per network: arguments for `module.init`
    train_step: Callable  # (state, batch, key) -> (state, metrics)
    z_dim: int

    def sample(self, state: TrainState, z: jax.Array) -> jax.Array:
        """Images in [-1, 1] from latents, with BatchNorm in inference mode (running statistics)."""
        images, _ = apply_network(self.networks["g"].module, state.nets["g"].variables(), z,
                                  train=False)
        return images


def build_gan(config, image_shape: tuple[int, int, int]) -> GANSetup:
    """The 2014 GAN (arch "mlp") or DCGAN (arch "dcgan") with Adam for G and D."""
    models = build_models(config.model, tuple(image_shape))
    optim = config.optim
    networks = {
        "g": Network(models["g"], optax.adam(optim.g_lr, b1=optim.b1, b2=optim.b2)),
        "d": Network(models["d"], optax.adam(optim.d_lr, b1=optim.b1, b2=optim.b2)),
    }
    example_inputs = {"g": (jnp.zeros((1, config.model.z_dim)),),
                      "d": (jnp.zeros((1, *image_shape)),)}
    step = make_gan_train_step(generator=networks["g"], discriminator=networks["d"],
                               gan_loss=config.loss.gan_loss, z_dim=config.model.z_dim)
    return GANSetup(networks, example_inputs, step, config.model.z_dim)

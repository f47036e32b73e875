"""The pieces that the steps of several families share: the latent prior, images as floats,
critic batches, G's exponential moving average, and G and D as a GAN step calls them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jgan.augment import Augment
from jgan.train.state import Network, NetworkState, apply_network

# Losses whose D output is a logit of "real": their D/real metric is reported as a probability.
PROBABILITY_LOSSES = frozenset({"minimax", "nonsaturating", "logistic", "focal"})


def prior(key: jax.Array, num: int, z_dim: int) -> jax.Array:
    """z ~ N(0, I) [num, z_dim]: the latent prior of every latent-variable family here."""
    return jax.random.normal(key, (num, z_dim))


def images_to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [-1, 1]; float data (2-D toy points) passes unchanged."""
    if jnp.issubdtype(images.dtype, jnp.floating):
        return images
    return images.astype(jnp.float32) / 127.5 - 1.0


def split_critic_batches(batch: dict, n_critic: int) -> dict:
    """Leaves [n_critic * B, ...] -> [n_critic, B, ...]; row i * n_critic + j goes to update j.

    Interleaving (rather than taking blocks) keeps each device's rows on that device when the
    batch axis is sharded: the B axis stays split as the loaded axis was.
    """
    def split(x):
        return jnp.moveaxis(x.reshape(x.shape[0] // n_critic, n_critic, *x.shape[1:]), 1, 0)

    return jax.tree.map(split, batch)


def ema_decay(batch_size: int, ema_kimg: float) -> float:
    """Per-step EMA decay for a half-life of `ema_kimg` thousand generated images
    (StyleGAN2-ADA)."""
    return 0.5 ** (batch_size / (ema_kimg * 1000.0))


def ema_update(average, params, beta: float):
    """One step of G's exponential moving average: average <- params + beta (average - params)
    (Karras et al. 2018, Sec. 4; StyleGAN2-ADA's G_ema), leaf by leaf."""
    return jax.tree.map(lambda a, p: p + beta * (a - p), average, params)


@dataclasses.dataclass(frozen=True)
class GANPlayers:
    """G and D as the step calls them: class labels go where `model.conditioning` puts them
    (G and D for "input", CGAN; G, and a class head on D, for "auxiliary", ACGAN). Every image
    D sees passes through `augment` first (`jgan.augment`; none by default)."""

    generator: Network
    discriminator: Network
    z_dim: int
    conditioning: str = "none"
    num_classes: int = 0
    augment: Augment = Augment()

    def latents(self, key: jax.Array, batch_size: int):
        """`(z [B, z_dim], labels [B] or None)` for a batch of fakes."""
        k_z, k_label = jax.random.split(key)
        z = prior(k_z, batch_size, self.z_dim)
        labels = (jax.random.randint(k_label, (batch_size,), 0, self.num_classes)
                  if self.conditioning != "none" else None)
        return z, labels

    def generate(self, g: NetworkState, params, z, labels):
        """`(images, updated collections)` from G in training mode."""
        inputs = (z, labels) if self.conditioning != "none" else (z,)
        return apply_network(self.generator.module, g.variables(params), *inputs, train=True)

    def discriminate(self, d: NetworkState, params, images, labels, key, augment_keys=None):
        """`(logits [B], class logits [B, K] or None, updated collections)`. The images are
        augmented from `key`, or with `augment_keys` [B] (`Augment.image_keys`) when given."""
        images = self.augmented(images, key, augment_keys)
        inputs = (images, labels) if self.conditioning == "input" else (images,)
        out, collections = apply_network(self.discriminator.module, d.variables(params), *inputs,
                                         train=True, rngs={"dropout": key})
        logits, class_logits = out if self.conditioning == "auxiliary" else (out, None)
        return logits, class_logits, collections

    def features(self, d: NetworkState, images, labels, key):
        """D's last hidden features (`jgan.nn.sow_features`); D's collection updates are dropped."""
        images = self.augmented(images, key)
        inputs = (images, labels) if self.conditioning == "input" else (images,)
        return apply_network(self.discriminator.module, d.variables(), *inputs, train=True,
                             rngs={"dropout": key}, features=True)[2]

    def augmented(self, images, key, augment_keys=None):
        if augment_keys is None:
            return self.augment(key, images)
        return self.augment.apply(augment_keys, images)

    def at_step(self, extra: dict) -> "GANPlayers":
        """These players with the augmentation at the state's ADA probability."""
        return dataclasses.replace(self, augment=self.augment.with_p(extra))

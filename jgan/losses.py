"""Adversarial losses as pure, keyword-only functions of discriminator logits.

With D(x) = sigmoid(l(x)) (Goodfellow et al. 2014, Eq. 1), log D = -softplus(-l) and
log(1 - D) = -softplus(l). Every function returns the batch mean as a scalar.
"""

import jax
import jax.numpy as jnp


def minimax_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-log D(x) - log(1 - D(G(z))): the discriminator side of the minimax game (Eq. 1)."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


nonsaturating_d_loss = minimax_d_loss
"""The discriminator loss is the same binary cross-entropy for both generator losses."""


def minimax_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """log(1 - D(G(z))), minimised by G: the game as written, whose gradient vanishes early."""
    return -jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """-log D(G(z)): the 'non-saturating' generator loss of Goodfellow et al. 2014, Sec. 3."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


G_LOSSES = {"minimax": minimax_g_loss, "nonsaturating": nonsaturating_g_loss}
D_LOSSES = {"minimax": minimax_d_loss, "nonsaturating": nonsaturating_d_loss}


def get_losses(name: str):
    """The `(d_loss, g_loss)` pair for a loss name from the config."""
    if name not in G_LOSSES:
        raise ValueError(f"unknown loss {name!r}: choose one of {sorted(G_LOSSES)}")
    return D_LOSSES[name], G_LOSSES[name]

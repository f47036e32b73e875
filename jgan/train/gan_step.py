"""The alternating GAN update of Goodfellow et al. 2014 (Algorithm 1, k = 1), as one pure step.

One step: draw z, run G once (keeping its VJP), update D on real and G(z), then take G's loss
through the updated D and pull its gradient back through the saved VJP, so G's forward pass is
computed once per step, as in the reference PyTorch DCGAN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.train.state import Network, NetworkState, TrainState, apply_gradients, apply_network


def images_to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(jnp.float32) / 127.5 - 1.0


def make_gan_train_step(*, generator: Network, discriminator: Network, gan_loss: str,
                        z_dim: int, update_d: bool = True, update_g: bool = True):
    """The step `(state, batch, key) -> (state, metrics)` of an unconditional GAN.

    Args:
      generator, discriminator: the networks `state.nets["g"]` and `state.nets["d"]` belong to.
      gan_loss: a name from `jgan.losses.G_LOSSES` ("nonsaturating", "minimax").
      z_dim: latent size; z ~ N(0, I).
      update_d, update_g: turn either update off (a G-only step, a D-only step).
    The key is the run key: the step folds in `state.step`, so step k sees the same noise
    however the run was interrupted.
    """
    d_loss_fn, g_loss_fn = losses.get_losses(gan_loss)

    def discriminate(d: NetworkState, params, images, key):
        return apply_network(discriminator.module, d.variables(params), images, train=True,
                             rngs={"dropout": key})

    def d_update(d: NetworkState, real, fake, k_real, k_fake):
        def loss_fn(params):
            real_logits, collections = discriminate(d, params, real, k_real)
            # The fake pass sees the statistics the real pass left, as two calls of D in PyTorch.
            fake_logits, collections = discriminate(d.replace(collections=collections), params,
                                                    fake, k_fake)
            loss = d_loss_fn(real_logits=real_logits, fake_logits=fake_logits)
            return loss, (collections, real_logits, fake_logits)

        (loss, (collections, real_logits, fake_logits)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(d.params)
        if update_d:
            d = apply_gradients(discriminator, d, grads, collections)
        return d, {"loss/d": loss, "d/real": jnp.mean(jax.nn.sigmoid(real_logits)),
                   "d/fake": jnp.mean(jax.nn.sigmoid(fake_logits))}

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        k_z, k_drop_real, k_drop_fake, k_drop_g = jax.random.split(key, 4)
        g, d = state.nets["g"], state.nets["d"]
        real = images_to_float(batch["image"])
        z = jax.random.normal(k_z, (real.shape[0], z_dim))

        def generate(params):
            return apply_network(generator.module, g.variables(params), z, train=True)

        fake, g_vjp, g_collections = jax.vjp(generate, g.params, has_aux=True)
        d, metrics = d_update(d, real, fake, k_drop_real, k_drop_fake)

        def g_loss_of_fake(fake):
            # D's statistics from this pass are discarded: D was updated on this batch already.
            logits, _ = discriminate(d, d.params, fake, k_drop_g)
            return g_loss_fn(fake_logits=logits)

        g_loss, fake_grad = jax.value_and_grad(g_loss_of_fake)(fake)
        if update_g:
            (g_grads,) = g_vjp(fake_grad)
            g = apply_gradients(generator, g, g_grads, g_collections)
        metrics["loss/g"] = g_loss
        nets = {**state.nets, "g": g, "d": d}
        return state.replace(step=state.step + 1, nets=nets), metrics

    return train_step

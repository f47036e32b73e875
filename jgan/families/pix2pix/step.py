"""The Pix2Pix step (Isola et al. 2017, Eq. 4): D on real and fake (x, y) pairs, then G on the
conditional GAN loss against the updated D plus lambda * L1, in the reference code's order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.families.translation import descend, patch_losses, run_network, training_images
from jgan.train.state import Network, TrainState, apply_gradients


def sides(direction: str) -> tuple[str, str]:
    """`(source, target)` sides of `direction`: ("A", "B") for AtoB."""
    return (direction[0], direction[-1])


def make_pix2pix_train_step(config, generator: Network, discriminator: Network):
    """`(state, batch, key) -> (state, metrics)`: D's update on real and fake pairs, then G's on
    the conditional GAN loss against the updated D plus lambda * L1."""
    model, loss_cfg = config.model, config.loss
    source, target = sides(model.direction)
    gan = patch_losses(loss_cfg)
    adversarial = loss_cfg.gan_weight > 0

    def step(state: TrainState, batch: dict, run_key: jax.Array):
        k_jitter, k_dropout, k_d_real, k_d_fake, k_d_g = jax.random.split(
            jax.random.fold_in(run_key, state.step), 5)
        images = training_images(batch, k_jitter, jitter=model.jitter, together=True)
        x, y = images[f"image_{source}"], images[f"image_{target}"]
        g, d = state.nets["g"], state.nets["d"]

        def g_forward(params):
            return run_network(generator, g, params, x, key=k_dropout)

        # G's forward pass is kept as a VJP and pulled back from the gradient in G(x), so G runs
        # once per step, as in the reference code.
        fake, g_pullback, g_collections = jax.vjp(g_forward, g.params, has_aux=True)
        metrics = {}
        if adversarial:
            def d_loss(params):
                real_logits, collections = run_network(discriminator, d, params,
                                                       jnp.concatenate([x, y], -1), key=k_d_real)
                fake_logits, collections = run_network(
                    discriminator, d.replace(collections=collections), params,
                    jnp.concatenate([x, jax.lax.stop_gradient(fake)], -1), key=k_d_fake)
                loss = gan.d(real_logits=real_logits, fake_logits=fake_logits)
                return loss, (collections, (real_logits, fake_logits))

            d, metrics["loss/d"], (real_logits, fake_logits) = descend(discriminator, d, d_loss)
            metrics["d/real"] = jnp.mean(real_logits)
            metrics["d/fake"] = jnp.mean(fake_logits)

        def g_loss(fake):
            terms = {"loss/g_l1": loss_cfg.lambda_l1 * losses.l1_loss(prediction=fake, target=y)}
            collections = d.collections
            if adversarial:
                logits, collections = run_network(discriminator, d, None,
                                                  jnp.concatenate([x, fake], -1), key=k_d_g)
                terms["loss/g_gan"] = loss_cfg.gan_weight * gan.g(fake_logits=logits)
            return sum(terms.values()), (terms, collections)

        (loss, (terms, d_collections)), fake_grad = jax.value_and_grad(g_loss, has_aux=True)(fake)
        (g_grads,) = g_pullback(fake_grad)
        nets = {"g": apply_gradients(generator, g, g_grads, g_collections),
                "d": d.replace(collections=d_collections)}
        metrics.setdefault("loss/d", jnp.zeros(()))
        metrics.update({"loss/g": loss, **terms})
        return state.replace(step=state.step + 1, nets=nets), metrics

    return step

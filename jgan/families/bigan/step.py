"""The BiGAN update (Donahue et al. 2017, Sec. 3; BigBiGAN, Donahue & Simonyan 2019, Sec. 2).

D(x, z) learns to tell encoder pairs (x, E(x)), labelled real, from generator pairs (G(z), z),
labelled fake. E and G play against it jointly with the labels flipped: G wants its pairs called
real and E wants its pairs called fake. For a loss pair (d, g) of `jgan.losses` that is

    L_D  = d(real_logits=s(x, E(x)), fake_logits=s(G(z), z))
    L_EG = g(fake_logits=s(G(z), z)) + g(fake_logits=-s(x, E(x)))

since flipping a label is negating a logit for the symmetric losses allowed here (non-saturating,
minimax, hinge, Wasserstein). With hinge this is BigBiGAN's loss: hinge for D, linear for E and G.
With unary scores, the sum runs over s_xz, s_x and s_z (BigBiGAN, Sec. 2).

One step: G and E run forward once (kept as VJPs); D takes one update on the pairs; then E and G
take one joint update through the updated D, as the gan family's step does for G. E's loss may add
the encoder-collapse regularizer; D's may add a gradient penalty on (x, z) jointly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.augment import Augment
from jgan.train.state import Network, TrainState, apply_gradients, apply_network
from jgan.train.step_parts import PROBABILITY_LOSSES, images_to_float, prior

# Losses whose E/G objective is the D objective with labels flipped by negating logits.
BIGAN_LOSSES = ("nonsaturating", "minimax", "logistic", "hinge", "wasserstein")


# The encoder-collapse regularizer's forms (`loss.e_regularizer`): "batch" reads the batch's
# mean pairwise MSE and per-dimension variances; "per_sample" (the first seed's) each code's.
ENCODER_REGULARIZERS = ("batch", "per_sample")


def encoder_regularizer(codes: jax.Array, loss_cfg) -> tuple[dict, dict]:
    """`(terms of E's loss, values to log)`: the encoder-collapse penalties, and the adaptive
    multiplier of the variance term."""
    per_sample = loss_cfg.e_regularizer == "per_sample"
    spread = losses.per_sample_spread_penalty if per_sample else losses.latent_spread_penalty
    variance = (losses.per_sample_variance_penalty if per_sample
                else losses.latent_variance_penalty)
    terms, logged = {}, {}
    if loss_cfg.e_spread_weight:
        terms["loss/e/spread"] = spread(codes, weight=loss_cfg.e_spread_weight)
    if loss_cfg.e_variance_weight:
        multiplier = losses.adaptive_variance_multiplier(
            codes, base=loss_cfg.e_variance_weight,
            max_multiplier=loss_cfg.e_variance_max_multiplier)
        terms["loss/e/variance"] = variance(codes, multiplier=multiplier,
                                            tolerance=loss_cfg.e_variance_tolerance)
        logged["e/variance_multiplier"] = multiplier
    return terms, logged


def make_bigan_train_step(config, *, generator: Network, encoder: Network,
                          discriminator: Network, augment: Augment = Augment()):
    """The step `(state, batch, key) -> (state, metrics)` over `state.nets` g, e and d.

    The batch holds `batch_size` real images; the key is the run key, with `state.step` folded in.
    `augment` (`jgan.augment`) is applied to the x of every pair D sees; E encodes the real
    image as it is.
    """
    loss_cfg = config.loss
    gan_loss = losses.get_losses(loss_cfg.gan_loss, real_label=loss_cfg.real_label)
    z_dim = config.model.z_dim
    to_score = jax.nn.sigmoid if loss_cfg.gan_loss in PROBABILITY_LOSSES else (lambda x: x)

    def d_update(discriminate, d, real, codes, fake, z, key):
        k_encoder_pairs, k_generator_pairs, k_gp_pairs, k_gp = jax.random.split(key, 4)

        def loss_fn(params):
            encoder_scores, collections = discriminate(d, params, real, codes, k_encoder_pairs)
            # The generator pass sees the statistics the encoder pass left, as in the gan
            # family's step.
            generator_scores, collections = discriminate(
                d.replace(collections=collections), params, fake, z, k_generator_pairs)
            terms = {f"loss/d/{name}": gan_loss.d(real_logits=encoder_scores[name],
                                                  fake_logits=generator_scores[name])
                     for name in encoder_scores}
            if loss_cfg.gp_weight:
                # The penalty is on the gradient with respect to x and z together, of the summed
                # scores, at pairs interpolated between (x, E(x)) and (G(z), z).
                def critic(pair):
                    scores, _ = discriminate(d, params, *pair, k_gp_pairs)
                    return sum(scores.values())

                terms["loss/d/gp"] = losses.gradient_penalty(
                    critic, real=(real, codes), fake=(fake, z), key=k_gp,
                    weight=loss_cfg.gp_weight)
            return sum(terms.values()), (collections, terms, encoder_scores, generator_scores)

        (loss, (collections, terms, encoder_scores, generator_scores)), grads = (
            jax.value_and_grad(loss_fn, has_aux=True)(d.params))
        d = apply_gradients(discriminator, d, grads, collections)
        metrics = {"loss/d": loss, "d/real": jnp.mean(to_score(encoder_scores["xz"])),
                   "d/fake": jnp.mean(to_score(generator_scores["xz"])),
                   **augment.r_t(encoder_scores["xz"])}
        if len(terms) > 1:
            metrics.update(terms)
        return d, metrics

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        k_z, k_d, k_encoder_pairs, k_generator_pairs = jax.random.split(key, 4)
        g, e, d = state.nets["g"], state.nets["e"], state.nets["d"]
        step_augment = augment.with_p(state.extra)

        def discriminate(d, params, x, z, key):
            return apply_network(discriminator.module, d.variables(params),
                                 step_augment(key, x), z, train=True, rngs={"dropout": key})

        real = images_to_float(batch["image"])
        z = prior(k_z, real.shape[0], z_dim)

        def forward(g_params, e_params):
            fake, g_collections = apply_network(generator.module, g.variables(g_params), z,
                                                train=True)
            codes, e_collections = apply_network(encoder.module, e.variables(e_params), real,
                                                 train=True)
            return (fake, codes), (g_collections, e_collections)

        (fake, codes), eg_vjp, (g_collections, e_collections) = jax.vjp(
            forward, g.params, e.params, has_aux=True)
        d, metrics = d_update(discriminate, d, real, codes, fake, z, k_d)

        def eg_loss(fake, codes):
            # D's statistics from these passes are discarded: D was updated on this batch already.
            generator_scores, _ = discriminate(d, d.params, fake, z, k_generator_pairs)
            encoder_scores, _ = discriminate(d, d.params, real, codes, k_encoder_pairs)
            terms = {f"loss/g/{name}": gan_loss.g(fake_logits=generator_scores[name])
                     + gan_loss.g(fake_logits=-encoder_scores[name])
                     for name in generator_scores}
            regularizer, logged = encoder_regularizer(codes, loss_cfg)
            terms.update(regularizer)
            return sum(terms.values()), {**terms, **logged}

        (eg_loss_value, eg_terms), cotangents = jax.value_and_grad(
            eg_loss, argnums=(0, 1), has_aux=True)(fake, codes)
        g_grads, e_grads = eg_vjp(cotangents)
        g = apply_gradients(generator, g, g_grads, g_collections)
        e = apply_gradients(encoder, e, e_grads, e_collections)
        # loss/g is E and G's joint loss; the loop reports it as G's.
        metrics["loss/g"] = eg_loss_value
        if len(eg_terms) > 1:
            metrics.update(eg_terms)
        metrics["e/pairwise_mse"] = losses.pairwise_mse(codes)
        extra, augment_metrics = augment.adapt(
            dict(state.extra), r_t=metrics.pop("augment/r_t", None), count=real.shape[0],
            step=state.step + 1)
        metrics.update(augment_metrics)
        nets = {**state.nets, "g": g, "e": e, "d": d}
        return state.replace(step=state.step + 1, nets=nets, extra=extra), metrics

    return train_step

"""BigGAN's update (Brock et al. 2019) as one pure, jitted step.

One step = `n_critic` D updates, each on its own real minibatch and fakes of fresh z and uniform
random labels, then one G update on fresh z and labels, as in BigGAN-PyTorch's
`GAN_training_function`. Both minimise the hinge loss (Lim & Ye 2017; Miyato et al. 2018,
Eq. 16-17). G's gradient gets orthogonal regularization (Sec. 3.1, `jgan.losses.
orthogonal_regularization`) on its raw weights, the shared embedding excepted, and an EMA of G's
weights moves after each G update.

G runs in training mode throughout (batch statistics, running averages updated), on the whole
batch: its BatchNorm statistics are those of the global batch however the batch is split.
With `micro_batches` > 1, D's passes (its update, and the gradient that G's fakes get through
it) run one micro-batch at a time (`jgan.train.accumulate`); D mixes no examples, so the
update equals the whole batch's to float rounding while D's activations are held for one
micro-batch only.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.augment import Augment
from jgan.train.accumulate import accumulated_value_and_grad
from jgan.train.state import Network, NetworkState, TrainState, apply_gradients
from jgan.train.step_parts import (GANPlayers, ema_decay, ema_update, images_to_float,
                                   split_critic_batches)

# Parameters that orthogonal regularization leaves alone: G's shared class embedding, as in
# BigGAN-PyTorch (`utils.ortho(G, ..., blacklist=G.shared.parameters())`).
ORTHO_EXCLUDED = ("shared_embedding",)


def make_biggan_train_step(*, generator: Network, discriminator: Network, z_dim: int,
                           num_classes: int, gan_loss: str = "hinge", n_critic: int = 1,
                           micro_batches: int = 1,
                           ortho_beta: float = 0.0, ema_kimg: float = 0.0,
                           batch_size: int = 64, augment: Augment = Augment()):
    """The step `(state, batch, key) -> (state, metrics)`; the batch holds `n_critic` real
    minibatches with labels. `gan_loss` names a loss of `jgan.losses` (BigGAN's: "hinge");
    `state.extra["g_ema"]` is kept when `ema_kimg` > 0. `augment` (`jgan.augment`) is applied
    to every image D sees, one key per image drawn for the whole batch, so that micro-batching
    never changes an image's draw."""
    run_players = GANPlayers(generator, discriminator, z_dim, "input", num_classes, augment)
    adversarial = losses.get_losses(gan_loss)
    ema_beta = ema_decay(batch_size, ema_kimg) if ema_kimg else None

    def image_keys(key, num):
        # Raw key data: micro-batching slices it like any other array.
        return jax.random.key_data(Augment.image_keys(key, num))

    def d_update(players, g: NetworkState, d: NetworkState, chunk, key):
        k_latents, k_real, k_fake = jax.random.split(key, 3)
        num = chunk["image"].shape[0]
        z, fake_labels = players.latents(k_latents, num)
        fake, g_collections = players.generate(g, g.params, z, fake_labels)

        def loss_fn(params, examples, augment_keys):
            real_logits, _, collections = players.discriminate(
                d, params, examples["real"], examples["real_labels"], k_real,
                jax.random.wrap_key_data(augment_keys["real"]))
            fake_logits, _, collections = players.discriminate(
                d.replace(collections=collections), params, examples["fake"],
                examples["fake_labels"], k_fake, jax.random.wrap_key_data(augment_keys["fake"]))
            loss = adversarial.d(real_logits=real_logits, fake_logits=fake_logits)
            return loss, (collections, {"d/real": jnp.mean(real_logits),
                                        "d/fake": jnp.mean(fake_logits),
                                        **players.augment.r_t(real_logits)})

        examples = {"real": images_to_float(chunk["image"]), "real_labels": chunk["label"],
                    "fake": jax.lax.stop_gradient(fake), "fake_labels": fake_labels}
        augment_keys = {"real": image_keys(k_real, num), "fake": image_keys(k_fake, num)}
        (loss, (collections, metrics)), grads = accumulated_value_and_grad(
            loss_fn, micro_batches)(d.params, examples, augment_keys)
        d = apply_gradients(discriminator, d, grads, collections)
        return g.replace(collections=g_collections), d, {"loss/d": loss, **metrics}

    def g_update(players, g: NetworkState, d: NetworkState, key):
        k_latents, k_drop = jax.random.split(key)
        z, labels = players.latents(k_latents, batch_size)
        fake, g_vjp, g_collections = jax.vjp(
            lambda params: players.generate(g, params, z, labels), g.params, has_aux=True)

        def loss_fn(_, fake, batch):
            # D's statistics from this pass are dropped: D was updated on this batch already.
            logits, _, _ = players.discriminate(d, d.params, fake, batch["labels"], k_drop,
                                                jax.random.wrap_key_data(batch["augment_keys"]))
            return adversarial.g(fake_logits=logits), (None, {})

        batch = {"labels": labels, "augment_keys": image_keys(k_drop, batch_size)}
        (g_loss, _), fake_grad = accumulated_value_and_grad(loss_fn, micro_batches,
                                                            wrt="inputs")(None, fake, batch)
        (grads,) = g_vjp(fake_grad)
        metrics = {"loss/g": g_loss}
        if ortho_beta:
            ortho, ortho_grads = jax.value_and_grad(functools.partial(
                losses.orthogonal_regularization, beta=ortho_beta, exclude=ORTHO_EXCLUDED))(
                g.params)
            grads = jax.tree.map(jnp.add, grads, ortho_grads)
            metrics["loss/g/ortho"] = ortho
        return apply_gradients(generator, g, grads, g_collections), metrics

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        k_critic, k_g = jax.random.split(key)
        g, d = state.nets["g"], state.nets["d"]
        players = run_players.at_step(state.extra)
        chunks = split_critic_batches(batch, n_critic)
        d_metrics = []
        # Unrolled in Python: XLA:CPU runs convolutions in a rolled loop body many times slower
        # (jgan.families.gan.step), and n_critic is small.
        for index, k_d in enumerate(jax.random.split(k_critic, n_critic)):
            g, d, metrics = d_update(players, g, d, jax.tree.map(lambda x: x[index], chunks),
                                     k_d)
            d_metrics.append(metrics)
        metrics = jax.tree.map(lambda *values: jnp.mean(jnp.stack(values)), *d_metrics)
        g, g_metrics = g_update(players, g, d, k_g)
        extra, augment_metrics = augment.adapt(
            dict(state.extra), r_t=metrics.pop("augment/r_t", None), count=n_critic * batch_size,
            step=state.step + 1)
        metrics.update(augment_metrics)
        if ema_beta is not None:
            extra["g_ema"] = ema_update(state.extra["g_ema"], g.params, ema_beta)
        return state.replace(step=state.step + 1, nets={**state.nets, "g": g, "d": d},
                             extra=extra), {**metrics, **g_metrics}

    return train_step

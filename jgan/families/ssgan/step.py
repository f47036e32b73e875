"""The semi-supervised GAN's update (Salimans et al. 2016, Sec. 5) as one pure, jitted step.

D is a K-class classifier whose logits also say "real" (D(x) = Z / (Z + 1), Z = sum exp(l)):
it minimises the supervised cross-entropy on a labelled minibatch plus `unlabelled_weight` x the
unsupervised K+1 loss on an unlabelled minibatch and G's samples (`jgan.losses.
k_plus_one_d_loss`). Then G, on fresh z, minimises feature matching against the updated D's
last hidden layer on a second unlabelled minibatch, as in the authors' code (two unlabelled
streams, `trainx_unl` and `trainx_unl2`): the loader's batch holds 2 x batch_size images, split
by `split_critic_batches`. `supervised_only` is the baseline: D on the labelled minibatch
alone, G left as it was.

The labelled set is small (100 images on MNIST), so it is a constant of the step rather than a
second data stream: each step draws its labelled minibatch from it with a key folded from the
step, without replacement when the set is at least a minibatch (with 100 labels and batch 100,
every labelled minibatch is the whole set in a fresh order, as the authors' tiled and permuted
copies give), so a resumed run replays it and the shared loop needs no second loader.

Pixels: the loop's uint8 images become [0, 1] (x / 255), the range of G's sigmoid output and of
the authors' MNIST data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.train.state import Network, NetworkState, TrainState, apply_gradients, apply_network
from jgan.train.step_parts import split_critic_batches


def uniform_prior(key: jax.Array, num: int, z_dim: int) -> jax.Array:
    """z ~ U[0, 1]^z_dim [num, z_dim]: the authors' MNIST prior."""
    return jax.random.uniform(key, (num, z_dim))


def pixels_to_unit(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float images pass unchanged."""
    if jnp.issubdtype(images.dtype, jnp.floating):
        return images
    return images.astype(jnp.float32) / 255.0


def labelled_minibatch(key: jax.Array, images: jax.Array, labels: jax.Array, batch_size: int):
    """`batch_size` labelled examples drawn by `key`: without replacement when there are enough."""
    num = labels.shape[0]
    index = jax.random.choice(key, num, (batch_size,), replace=num < batch_size)
    return images[index], labels[index]


def make_ssgan_train_step(*, generator: Network, discriminator: Network, labelled_images,
                          labelled_labels, z_dim: int, batch_size: int,
                          unlabelled_weight: float = 1.0, real_label: float = 1.0,
                          supervised_only: bool = False):
    """The step `(state, batch, key) -> (state, metrics)`.

    labelled_images: uint8 [L, H, W, C] and labelled_labels int [L]: the labelled subset.
    The batch holds 2 x batch_size unlabelled images (batch_size when `supervised_only`); its
    labels are never read.
    """
    labelled_images = pixels_to_unit(jnp.asarray(labelled_images))
    labelled_labels = jnp.asarray(labelled_labels, jnp.int32)

    def discriminate(d: NetworkState, params, images, key, **kwargs):
        return apply_network(discriminator.module, d.variables(params), images, train=True,
                             rngs={"dropout": key}, **kwargs)

    def generate(g: NetworkState, params, key):
        return apply_network(generator.module, g.variables(params),
                             uniform_prior(key, batch_size, z_dim), train=True)

    def d_update(g: NetworkState, d: NetworkState, unlabelled, key):
        k_lab, k_z, k_drop_lab, k_drop_unl, k_drop_fake = jax.random.split(key, 5)
        images, labels = labelled_minibatch(k_lab, labelled_images, labelled_labels, batch_size)
        if not supervised_only:
            fake, g_collections = generate(g, g.params, k_z)
            g = g.replace(collections=g_collections)

        def loss_fn(params):
            lab_logits, collections = discriminate(d, params, images, k_drop_lab)
            if supervised_only:
                supervised = losses.classification_loss(class_logits=lab_logits, labels=labels)
                return supervised, (collections, lab_logits, {"loss/d/supervised": supervised})
            unl_logits, collections = discriminate(d.replace(collections=collections), params,
                                                   unlabelled, k_drop_unl)
            fake_logits, collections = discriminate(d.replace(collections=collections), params,
                                                    fake, k_drop_fake)
            supervised, unsupervised = losses.k_plus_one_d_loss(
                labelled_logits=lab_logits, labels=labels, unlabelled_logits=unl_logits,
                fake_logits=fake_logits, real_label=real_label)
            terms = {"loss/d/supervised": supervised, "loss/d/unsupervised": unsupervised,
                     "d/real": jnp.mean(jnp.exp(losses.k_plus_one_log_d(unl_logits))),
                     "d/fake": jnp.mean(jnp.exp(losses.k_plus_one_log_d(fake_logits)))}
            return supervised + unlabelled_weight * unsupervised, (collections, lab_logits, terms)

        (loss, (collections, lab_logits, terms)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(d.params)
        d = apply_gradients(discriminator, d, grads, collections)
        metrics = {"loss/d": loss, **terms,
                   "d/labelled_accuracy": jnp.mean(jnp.argmax(lab_logits, -1) == labels)}
        return g, d, metrics

    def g_update(g: NetworkState, d: NetworkState, unlabelled, key):
        """Feature matching (Sec. 3.1) on D's last hidden layer, D in training mode (noise on)."""
        k_z, k_drop_real, k_drop_fake = jax.random.split(key, 3)
        real_features = discriminate(d, d.params, unlabelled, k_drop_real, features=True)[2]

        def loss_fn(params):
            fake, collections = generate(g, params, k_z)
            fake_features = discriminate(d, d.params, fake, k_drop_fake, features=True)[2]
            # The mean over features, not the sum, as the authors' `T.mean(T.square(...))`: with
            # Adam's epsilon inside the root, the loss's scale sets how far small gradients move.
            return losses.feature_matching_loss(
                real_features=real_features,
                fake_features=fake_features) / real_features.shape[-1], collections

        (loss, collections), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
        return apply_gradients(generator, g, grads, collections), loss

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        k_d, k_g = jax.random.split(key)
        g, d = state.nets["g"], state.nets["d"]
        if supervised_only:
            g, d, metrics = d_update(g, d, None, k_d)
            metrics["loss/g"] = jnp.zeros(())
        else:
            chunks = split_critic_batches({"image": batch["image"]}, 2)["image"]
            g, d, metrics = d_update(g, d, pixels_to_unit(chunks[0]), k_d)
            g, metrics["loss/g"] = g_update(g, d, pixels_to_unit(chunks[1]), k_g)
        return state.replace(step=state.step + 1, nets={**state.nets, "g": g, "d": d}), metrics

    return train_step

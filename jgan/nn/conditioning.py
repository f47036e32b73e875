"""Class labels as network inputs, for the conditional families (Mirza & Osindero 2014, Sec. 4).

G sees the label as a one-hot vector beside z; a convolutional D sees it as one constant plane per
class beside the image channels, the usual conditional DCGAN.
"""

import jax
import jax.numpy as jnp


def one_hot_labels(labels: jax.Array, num_classes: int) -> jax.Array:
    """int labels [B] -> float32 one-hot [B, num_classes]; refuses a missing label."""
    if labels is None:
        raise ValueError("this network is conditional: pass labels [B] with the inputs")
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def concat_label_vector(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """[B, D] -> [B, D + num_classes]."""
    return jnp.concatenate([x, one_hot_labels(labels, num_classes)], axis=-1)


def concat_label_planes(images: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """[B, H, W, C] -> [B, H, W, C + num_classes]: plane k is 1 where the label is k."""
    planes = one_hot_labels(labels, num_classes)[:, None, None, :]
    planes = jnp.broadcast_to(planes, (*images.shape[:3], num_classes))
    return jnp.concatenate([images, planes], axis=-1)

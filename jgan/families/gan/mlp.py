"""Multilayer-perceptron G and D (the `mlp` arch): the 2014 GAN's, and CGAN's conditional ones.

Goodfellow et al. 2014 (Sec. 5, the MNIST model): G has two ReLU layers of 1200 units, then a tanh
image (the paper used a sigmoid on [0, 1] images; jgan images live in [-1, 1]). D: dropout on the
input, two maxout layers of 240 units with 5 pieces and dropout, then one logit.

Mirza & Osindero 2014 (Sec. 4.1, MNIST): G maps z -> 200 ReLU units and the one-hot label -> 1000
ReLU units, joined, then 1200 ReLU units and a tanh image. D maps the image -> maxout of 240 units
with 5 pieces and the label -> maxout of 50 units with 5 pieces, joined into a maxout of 240 units
with 4 pieces, then one logit; dropout 0.5 on D's hidden layers.

Either D can add minibatch discrimination (Salimans et al. 2016, Sec. 3.2) before its logit:
`minibatch_kernels` > 0 kernels of `minibatch_kernel_dim` on the last hidden features, which are
also the ones feature matching reads.

`dtype` bfloat16 is mixed precision, as in `jgan.families.gan.dcgan`: float32 parameters, bf16
hidden activations, a float32 image out of G and float32 logits out of D. D's maxout layers promote
to their float32 kernels (`jgan.nn.Maxout` takes no dtype), so only G and D's input computes in
bf16.
"""

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jgan.nn import Maxout, MinibatchDiscrimination, one_hot_labels, sow_features


class MLPGenerator(nn.Module):
    image_shape: tuple[int, int, int]
    hidden: int = 1200
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, *, train: bool = True):
        del train  # no BatchNorm or dropout in G
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(z))
        x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
        x = nn.Dense(math.prod(self.image_shape), dtype=self.dtype)(x)
        return float32_image(x, self.image_shape)


def float32_image(x, image_shape):
    """G's last pre-activations [B, prod(image_shape)] -> float32 images [B, *image_shape]."""
    return jnp.tanh(x).astype(jnp.float32).reshape(x.shape[0], *image_shape)


def float32_logit(x):
    """D's real/fake unit on its last features [B, F], in float32 whatever their dtype."""
    return nn.Dense(1, dtype=jnp.float32)(x)[:, 0]


class MLPDiscriminator(nn.Module):
    hidden: int = 240
    pieces: int = 5
    input_dropout: float = 0.2
    hidden_dropout: float = 0.5
    minibatch_kernels: int = 0  # > 0: minibatch discrimination with this many kernels
    minibatch_kernel_dim: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = True):
        x = x.reshape(x.shape[0], -1).astype(self.dtype)
        x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
        for _ in range(2):
            x = Maxout(self.hidden, self.pieces)(x)
            x = nn.Dropout(self.hidden_dropout, deterministic=not train)(x)
        sow_features(self, x.astype(jnp.float32))
        if self.minibatch_kernels:
            x = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim)(x)
        return float32_logit(x)


class ConditionalMLPGenerator(nn.Module):
    image_shape: tuple[int, int, int]
    num_classes: int = 10
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = True):
        del train  # no BatchNorm or dropout in G
        z_branch = nn.relu(nn.Dense(200, dtype=self.dtype)(z))
        label_branch = nn.relu(nn.Dense(1000, dtype=self.dtype)(
            one_hot_labels(labels, self.num_classes)))
        x = nn.relu(nn.Dense(1200, dtype=self.dtype)(
            jnp.concatenate([z_branch, label_branch], axis=-1)))
        x = nn.Dense(math.prod(self.image_shape), dtype=self.dtype)(x)
        return float32_image(x, self.image_shape)


class ConditionalMLPDiscriminator(nn.Module):
    num_classes: int = 10
    dropout: float = 0.5
    minibatch_kernels: int = 0  # > 0: minibatch discrimination with this many kernels
    minibatch_kernel_dim: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = True):
        drop = nn.Dropout(self.dropout, deterministic=not train)
        image_branch = drop(Maxout(240, 5)(x.reshape(x.shape[0], -1).astype(self.dtype)))
        label_branch = drop(Maxout(50, 5)(
            one_hot_labels(labels, self.num_classes).astype(self.dtype)))
        x = drop(Maxout(240, 4)(jnp.concatenate([image_branch, label_branch], axis=-1)))
        sow_features(self, x.astype(jnp.float32))
        if self.minibatch_kernels:
            x = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim)(x)
        return float32_logit(x)

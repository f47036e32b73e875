"""The semi-supervised GAN's MNIST networks (Salimans et al. 2016, Sec. 5; openai/improved-gan,
mnist_svhn_cifar10/train_mnist_feature_matching.py).

G: z ~ U[0, 1]^100 -> 500 softplus -> 500 softplus (each after BatchNorm without a scale, or
virtual BatchNorm) -> 784 sigmoid, the output layer weight-normalized: images in [0, 1].
D: Gaussian noise 0.3 on the input, then dense layers of 1000, 500, 250, 250, 250 units (ReLU,
weight norm with data-dependent init, noise 0.5 after each), and K logits. D's logits are a
K-class classifier with an implicit (K+1)-th "fake" class; its last 250-unit layer (before its
noise) is what G's feature matching compares. Options beyond the paper's MNIST model: dropout
after each hidden layer, minibatch discrimination before the logits, no weight norm.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.nn import (GaussianNoise, MinibatchDiscrimination, VirtualBatchNorm, WeightNormDense,
                     sow_features)

D_WIDTHS = (1000, 500, 250, 250, 250)
G_NORMS = ("batch", "virtual_batch", "none")
# The virtual-batch reference latents come from this fixed key, so they are the same in every
# run and every call: part of the network, not of its state.
REFERENCE_SEED = 20160610


def reference_latents(num: int, z_dim: int) -> jax.Array:
    return jax.random.uniform(jax.random.key(REFERENCE_SEED), (num, z_dim))


class SSGANGenerator(nn.Module):
    """z [B, z_dim] -> images [B, H, W, C] in [0, 1]."""

    image_shape: tuple[int, ...]
    hidden: int = 500
    norm: str = "batch"  # one of G_NORMS
    weight_norm: bool = True
    reference_size: int = 100  # norm "virtual_batch": rows of the reference batch

    @nn.compact
    def __call__(self, z, *, train: bool = False):
        virtual = self.norm == "virtual_batch"
        h = jnp.concatenate([reference_latents(self.reference_size, z.shape[-1]), z]) if virtual \
            else z
        for _ in range(2):
            h = nn.Dense(self.hidden, use_bias=self.norm == "none")(h)
            if self.norm == "batch":
                # The authors' batch_norm(g=None): a bias, no scale.
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-6,
                                 use_scale=False)(h)
            elif virtual:
                h = VirtualBatchNorm(self.reference_size, use_scale=False)(h)
            h = nn.softplus(h)
        size = 1
        for side in self.image_shape:
            size *= side
        out = (WeightNormDense(size, data_init=False) if self.weight_norm else nn.Dense(size))(h)
        images = nn.sigmoid(out).reshape(-1, *self.image_shape)
        return images[self.reference_size:] if virtual else images


class SSGANDiscriminator(nn.Module):
    """Images [B, H, W, C] in [0, 1] -> class logits [B, num_classes]; sows its last hidden
    layer for feature matching."""

    num_classes: int = 10
    widths: tuple[int, ...] = D_WIDTHS
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    dropout: float = 0.0
    weight_norm: bool = True
    minibatch_kernels: int = 0
    minibatch_kernel_dim: int = 5

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        # The data-dependent init sees the noise too, as the authors' `init_param` does.
        train = train or self.is_initializing()
        h = GaussianNoise(self.input_noise)(x.reshape(x.shape[0], -1), deterministic=not train)
        for index, width in enumerate(self.widths):
            # Hidden layers keep their initial weight-norm scale, as in the authors' MNIST D.
            dense = (WeightNormDense(width, train_scale=False) if self.weight_norm
                     else nn.Dense(width))
            h = nn.relu(dense(h))
            if index == len(self.widths) - 1:
                sow_features(self, h)
            h = GaussianNoise(self.hidden_noise)(h, deterministic=not train)
            if self.dropout:
                h = nn.Dropout(self.dropout)(h, deterministic=not train)
        if self.minibatch_kernels:
            h = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim)(h)
        out = WeightNormDense(self.num_classes) if self.weight_norm else nn.Dense(self.num_classes)
        return out(h)

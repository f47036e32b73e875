"""Maxout units (Goodfellow et al. 2013), the discriminator nonlinearity of the 2014 GAN."""

import flax.linen as nn
import jax.numpy as jnp


class Maxout(nn.Module):
    """A dense layer of `features` units, each the max over `pieces` affine maps."""

    features: int
    pieces: int = 5
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):  # [B, D] -> [B, features]
        y = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init)(x)
        return jnp.max(y.reshape(*x.shape[:-1], self.features, self.pieces), axis=-1)

"""Self-attention over positions (SAGAN, Zhang et al. 2019, Sec. 3), as BigGAN uses it.

f = theta(x), g = maxpool(phi(x)), h = maxpool(g(x)) are 1x1 convolutions to C/8, C/8 and C/2
channels; beta = softmax(f g^T) over the pooled positions; o = v(beta h) back to C channels; the
output is x + gamma o with gamma starting at 0, so the block starts as the identity (Eq. 3). The
max-pooling of the keys and values is BigGAN-PyTorch's (4x fewer keys); all four convolutions
are spectrally normalized when `spectral_norm`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.nn.spectral_norm import maybe_spectral_norm


class SelfAttention(nn.Module):
    spectral_norm: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.orthogonal()

    @nn.compact
    def __call__(self, x, *, train: bool):
        batch, height, width, channels = x.shape

        def conv(features, name, inputs):
            layer = nn.Conv(features, (1, 1), use_bias=False, kernel_init=self.kernel_init,
                            name=name)
            return maybe_spectral_norm(layer, inputs, enabled=self.spectral_norm, train=train)

        def pool(inputs):
            return nn.max_pool(inputs, (2, 2), strides=(2, 2))

        queries = conv(channels // 8, "theta", x).reshape(batch, height * width, -1)
        keys = pool(conv(channels // 8, "phi", x)).reshape(batch, -1, channels // 8)
        values = pool(conv(channels // 2, "g", x)).reshape(batch, -1, channels // 2)
        attention = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", queries, keys), axis=-1)
        attended = jnp.einsum("bqk,bkc->bqc", attention, values)
        attended = attended.reshape(batch, height, width, channels // 2)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return x + gamma * conv(channels, "o", attended)

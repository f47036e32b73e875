"""Mixed max-average pooling (Lee, Gallagher & Tu 2016, "Generalizing Pooling Functions in CNNs").

f_mix(x) = a * max(x) + (1 - a) * mean(x) over each window (their Eq. 2), with one learned a per
channel. a = sigmoid(mix_logit) keeps it in [0, 1] without a hard clip, whose zero gradient past
the bounds would freeze it there; a starts at 0.5.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class MixedPooling(nn.Module):
    """[B, H, W, C] -> [B, H / s, W / s, C]: per channel, a learned blend of max and avg pooling."""

    window: int = 2
    stride: int = 2

    @nn.compact
    def __call__(self, x):
        mix_logit = self.param("mix_logit", nn.initializers.zeros, (x.shape[-1],), jnp.float32)
        mix = jax.nn.sigmoid(mix_logit).astype(x.dtype)
        window, strides = (self.window, self.window), (self.stride, self.stride)
        pooled_max = nn.max_pool(x, window, strides)
        pooled_avg = nn.avg_pool(x, window, strides)
        return mix * pooled_max + (1.0 - mix) * pooled_avg

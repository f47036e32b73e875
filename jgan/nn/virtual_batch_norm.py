"""Virtual batch normalization (Salimans et al. 2016, Sec. 3.5).

Each example is normalized with the statistics of a fixed reference batch together with itself,
so that, unlike BatchNorm, an output depends on its own input and the reference alone, never on
the other examples of the minibatch. The reference batch travels through the network with the
minibatch: the caller puts its `num_reference` rows first, the layer normalizes them with their
own statistics (as the authors' imagenet code does) and each following row x_i with the moments
of reference U {x_i}, weighted R/(R+1) and 1/(R+1).
"""

import flax.linen as nn
import jax.numpy as jnp


class VirtualBatchNorm(nn.Module):
    """[R + N, ..., F] -> same shape, the first R rows being the reference batch."""

    num_reference: int
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        axes = tuple(range(x.ndim - 1))  # every axis but the features
        reference = x[:self.num_reference]
        ref_mean = jnp.mean(reference, axis=axes)
        ref_square = jnp.mean(jnp.square(reference), axis=axes)
        rest = x[self.num_reference:]
        example_axes = tuple(range(1, x.ndim - 1))  # an example's own non-feature axes
        own = 1.0 / (self.num_reference + 1.0)
        mean = (1 - own) * ref_mean + own * jnp.mean(rest, axis=example_axes, keepdims=True)
        square = ((1 - own) * ref_square
                  + own * jnp.mean(jnp.square(rest), axis=example_axes, keepdims=True))
        normed_reference = (reference - ref_mean) / jnp.sqrt(
            ref_square - jnp.square(ref_mean) + self.epsilon)
        normed_rest = (rest - mean) / jnp.sqrt(square - jnp.square(mean) + self.epsilon)
        y = jnp.concatenate([normed_reference, normed_rest])
        features = x.shape[-1]
        if self.use_scale:
            y = y * self.param("scale", nn.initializers.ones, (features,))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (features,))
        return y

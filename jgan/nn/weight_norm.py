"""A dense layer with weight normalization and data-dependent init (Salimans & Kingma 2016).

W = g * v / ||v|| per output unit. At init, the layer scales and shifts its pre-activations on
the batch it is initialized with to zero mean and unit variance (g = 1/std, b = -mean/std,
Sec. 3 of the weight-norm paper), as the improved-GAN code's `nn.DenseLayer` does with
`init=True`; the initializing batch must be real data for that to mean anything. flax's
`nn.WeightNorm` wraps a layer's kernel but has no data-dependent init, hence this layer.
`train_scale=False` keeps g at its initial value (a "weight_norm" collection, not a parameter),
as the authors' MNIST D does for its hidden layers.
"""

import flax.linen as nn
import jax.numpy as jnp

SCALE_COLLECTION = "weight_norm"


class WeightNormDense(nn.Module):
    features: int
    data_init: bool = True  # False: g = 1, b = 0 (the authors' `l2normalize` on G's output)
    train_scale: bool = True
    init_scale: float = 1.0  # the std the pre-activations get on the initializing batch
    kernel_init: nn.initializers.Initializer = nn.initializers.normal(0.1)  # the authors'

    @nn.compact
    def __call__(self, x):
        v = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
        direction = v / jnp.sqrt(jnp.sum(jnp.square(v), axis=0) + 1e-12)
        t = x @ direction

        def moments():
            mean = jnp.mean(t, axis=tuple(range(t.ndim - 1)))
            std = jnp.sqrt(jnp.mean(jnp.square(t - mean), axis=tuple(range(t.ndim - 1))))
            # A unit that is constant on the batch (e.g. zero inputs) keeps g = 1, b = 0.
            live = std > 1e-6
            inverse = jnp.where(live, self.init_scale / jnp.where(live, std, 1.0), 1.0)
            return inverse, jnp.where(live, -mean * inverse, 0.0)

        def scale_init(*_):
            return moments()[0] if self.data_init else jnp.ones((self.features,))

        def bias_init(*_):
            return moments()[1] if self.data_init else jnp.zeros((self.features,))

        if self.train_scale:
            g = self.param("scale", scale_init, (self.features,))
        else:
            g = self.variable(SCALE_COLLECTION, "scale", scale_init).value
        b = self.param("bias", bias_init, (self.features,))
        return t * g + b

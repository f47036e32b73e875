"""Additive Gaussian noise, a regularizer of D (Salimans et al. 2016, Sec. 5; Rasmus et al. 2015).

The improved-GAN MNIST D adds N(0, 0.3^2) to its input and N(0, 0.5^2) after each hidden layer
in training, and nothing in inference. The noise is drawn from the "dropout" stream, which every
jgan step already passes to D.
"""

import flax.linen as nn
import jax


class GaussianNoise(nn.Module):
    """x + sigma * eps, eps ~ N(0, I), in training (`deterministic=False`); x itself otherwise."""

    sigma: float

    @nn.compact
    def __call__(self, x, *, deterministic: bool):
        if deterministic or self.sigma == 0:
            return x
        return x + self.sigma * jax.random.normal(self.make_rng("dropout"), x.shape, x.dtype)

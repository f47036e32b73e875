"""The multilayer-perceptron GAN of Goodfellow et al. 2014 (Sec. 5; the MNIST model of the paper).

G: two ReLU layers of 1200 units, then a tanh image (the paper used a sigmoid on [0, 1] images; jgan
images live in [-1, 1]). D: dropout on the input, two maxout layers of 240 units with 5 pieces and
dropout, then one logit.
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from jgan.nn import Maxout, sow_features


class MLPGenerator(nn.Module):
    image_shape: tuple[int, int, int]
    hidden: int = 1200

    @nn.compact
    def __call__(self, z, *, train: bool = True):
        del train  # no BatchNorm or dropout in G
        x = nn.relu(nn.Dense(self.hidden)(z))
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.Dense(math.prod(self.image_shape))(x)
        return jnp.tanh(x).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    hidden: int = 240
    pieces: int = 5
    input_dropout: float = 0.2
    hidden_dropout: float = 0.5

    @nn.compact
    def __call__(self, x, *, train: bool = True):
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
        for _ in range(2):
            x = Maxout(self.hidden, self.pieces)(x)
            x = nn.Dropout(self.hidden_dropout, deterministic=not train)(x)
        sow_features(self, x)
        return nn.Dense(1)(x)[:, 0]

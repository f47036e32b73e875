"""The MLPs of the 2-D mode-collapse benchmark (Metz et al. 2017, Appendix A).

G: `g_layers` ReLU layers of `hidden` units, then a linear map to the 2-D point. D: `d_layers`
ReLU layers of `hidden` units, then one logit. Options against mode collapse act on D's last
hidden features: minibatch discrimination (Salimans et al. 2016) and packing (PacGAN, Lin et al.
2018, which makes D judge `pack` samples at once). D sows those features for feature matching.
"""

from __future__ import annotations

import flax.linen as nn

from jgan.nn import MinibatchDiscrimination, pack_samples, sow_features

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "leaky_relu": nn.leaky_relu}


class ToyGenerator(nn.Module):
    hidden: int = 128
    layers: int = 2
    activation: str = "relu"
    out_dim: int = 2

    @nn.compact
    def __call__(self, z, *, train: bool = True):
        del train  # no BatchNorm or dropout
        x = z
        for _ in range(self.layers):
            x = ACTIVATIONS[self.activation](nn.Dense(self.hidden)(x))
        return nn.Dense(self.out_dim)(x)


class ToyDiscriminator(nn.Module):
    hidden: int = 128
    layers: int = 1
    activation: str = "relu"
    minibatch_kernels: int = 0  # > 0: minibatch discrimination with this many kernels
    minibatch_kernel_dim: int = 5
    pack: int = 1

    @nn.compact
    def __call__(self, x, *, train: bool = True):
        """Points [N, 2] -> logits [N / pack]."""
        del train
        x = pack_samples(x, self.pack) if self.pack > 1 else x
        for _ in range(self.layers):
            x = ACTIVATIONS[self.activation](nn.Dense(self.hidden)(x))
        sow_features(self, x)
        if self.minibatch_kernels:
            x = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim)(x)
        return nn.Dense(1)(x)[:, 0]

"""BiGAN (Donahue, Krähenbühl & Darrell 2017) and BigBiGAN (Donahue & Simonyan 2019) networks.

G(z) maps the prior N(0, I) to images; the encoder E(x) maps images back to latents, with a linear
output so that it can reach the whole support of the prior; the joint discriminator D(x, z) tells
pairs (x, E(x)) from pairs (G(z), z). D has an x pathway F, a z pathway H and a joint head J on
their concatenation, which gives the joint score s_xz. BigBiGAN adds the unary scores
s_x = w_x . F(x) and s_z = w_z . H(z) (Sec. 2), which each enter the loss.

Architectures (`arch`):
- "mlp": the paper's permutation-invariant MNIST model (the official code's `mnist_mlp`): 1024-unit
  layers, LeakyReLU(0.2) in E and D, BatchNorm from the second layer; ReLU and BatchNorm in G.
- "dcgan": DCGAN's G, and D's strided-convolution trunk for E and for D's x pathway.
- "unet": U-Net-style fully convolutional paths (`jgan.families.translation.unet`), for larger
  images such as 96x96 PatchCamelyon patches.

`dtype` bfloat16 (mlp and dcgan archs) is mixed precision, as in `jgan.families.gan.dcgan`: float32
parameters and BatchNorm statistics, bf16 hidden activations, and float32 images, latents and
scores, so the losses and the encoder's regularizers never see bf16.
"""

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jgan.families.gan.dcgan import (DCGANGenerator, _batch_norm, dcgan_init, downsampling_stages,
                                     halves_down, num_resolution_stages)
from jgan.families.translation.unet import contracting_path, expanding_path
from jgan.nn import maybe_spectral_norm

BIGAN_ARCHS = ("mlp", "dcgan", "unet")


def dense_stack(x, widths, *, activation, norm: str = "none", spectral_norm: bool = False,
                train: bool, dtype: Any = jnp.float32):
    """Dense layers inside a compact `__call__`; BatchNorm (norm "batch") from the second on."""
    for index, width in enumerate(widths):
        normalized = index > 0 and norm == "batch"
        layer = nn.Dense(width, use_bias=not normalized, kernel_init=dcgan_init, dtype=dtype)
        x = maybe_spectral_norm(layer, x, enabled=spectral_norm, train=train)
        if normalized:
            x = _batch_norm(train, dtype)(x)
        x = activation(x)
    return x


def image_features(x, *, arch: str, base_features: int, hidden: int, norm: str,
                   spectral_norm: bool, downsample: str, train: bool, dtype: Any = jnp.float32):
    """The shared x trunk of E and of D's x pathway: images [B, H, W, C] -> features [B, F]."""
    if arch == "mlp":
        x = x.reshape(x.shape[0], -1)
        return dense_stack(x, (hidden, hidden), activation=lambda y: nn.leaky_relu(y, 0.2),
                           norm=norm, spectral_norm=spectral_norm, train=train, dtype=dtype)
    if arch == "dcgan":
        x = downsampling_stages(x, base_features=base_features, norm=norm,
                                spectral_norm=spectral_norm, downsample=downsample, train=train,
                                dtype=dtype)
    elif arch == "unet":
        x = contracting_path(x, base_features=base_features, norm=norm, train=train)
    else:
        raise ValueError(f"unknown BiGAN arch {arch!r}: choose one of {list(BIGAN_ARCHS)}")
    return x.reshape(x.shape[0], -1)


def padded_size(size: int, crop: int) -> int:
    """The smallest size >= size + 2 * crop that halves down to 7 or less (28 + 2 * 2 -> 32)."""
    size += 2 * crop
    while not halves_down(size):
        size += 1
    return size


class BiGANGenerator(nn.Module):
    """z [B, z_dim] -> images [B, H, W, C] in [-1, 1].

    `crop` > 0 (pad-then-crop): the convolutional G draws a larger canvas, at least `crop` pixels
    wider on each side, and the centre is cut out, so that the image edges are not the edges of
    G's padded feature maps, where convolution artefacts gather. `head` "conv" makes G fully
    convolutional (see `DCGANGenerator`). `dtype`: the activations' (mlp and dcgan archs).
    """

    image_shape: tuple[int, int, int]
    arch: str = "dcgan"
    base_features: int = 64
    hidden: int = 1024
    head: str = "dense"
    crop: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, *, train: bool = True):
        height, width, channels = self.image_shape
        if self.arch == "mlp":
            x = dense_stack(z, (self.hidden, self.hidden), activation=nn.relu, norm="batch",
                            train=train, dtype=self.dtype)
            x = nn.Dense(math.prod(self.image_shape), kernel_init=dcgan_init, dtype=self.dtype)(x)
            return jnp.tanh(x).astype(jnp.float32).reshape(z.shape[0], *self.image_shape)
        canvas = (padded_size(height, self.crop), padded_size(width, self.crop), channels)
        if self.arch == "dcgan":
            images = DCGANGenerator(canvas, self.base_features, head=self.head,
                                    dtype=self.dtype)(z, train=train)
        else:
            stages = num_resolution_stages(canvas[0])
            start = canvas[0] >> stages
            features = self.base_features * 2 ** stages
            if self.head == "dense":
                x = nn.Dense(start * start * features, kernel_init=dcgan_init)(z)
            else:
                x = nn.ConvTranspose(features, (start, start), padding="VALID",
                                     kernel_init=dcgan_init)(z[:, None, None, :])
            x = nn.relu(_batch_norm(train)(x.reshape(z.shape[0], start, start, features)))
            images = expanding_path(x, stages=stages, channels=channels, train=train)
        top, left = (canvas[0] - height) // 2, (canvas[1] - width) // 2
        return images[:, top:top + height, left:left + width]


class BiGANEncoder(nn.Module):
    """images [B, H, W, C] -> latents [B, z_dim]: the x trunk, then a linear layer (float32)."""

    z_dim: int
    arch: str = "dcgan"
    base_features: int = 64
    hidden: int = 1024
    downsample: str = "stride"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = True):
        features = image_features(x, arch=self.arch, base_features=self.base_features,
                                  hidden=self.hidden, norm="batch", spectral_norm=False,
                                  downsample=self.downsample, train=train, dtype=self.dtype)
        return nn.Dense(self.z_dim, kernel_init=dcgan_init, dtype=jnp.float32)(features)


class JointDiscriminator(nn.Module):
    """(images [B, H, W, C], z [B, z_dim]) -> scores {"xz": [B]} (+ "x", "z" when `unary`).

    F: the x trunk; H: two LeakyReLU layers on z; J: one LeakyReLU layer on [F(x), H(z)], then a
    linear score. `unary` adds BigBiGAN's linear scores on F(x) and on H(z). The scores are
    float32 whatever `dtype`, the activations', is.
    """

    arch: str = "dcgan"
    base_features: int = 64
    hidden: int = 1024
    norm: str = "batch"  # of the x pathway; "none" under a gradient penalty
    spectral_norm: bool = False
    downsample: str = "stride"
    unary: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, z, *, train: bool = True):
        def leaky(y):
            return nn.leaky_relu(y, 0.2)

        def score(features):
            layer = nn.Dense(1, kernel_init=dcgan_init, dtype=jnp.float32)
            return maybe_spectral_norm(layer, features, enabled=self.spectral_norm,
                                       train=train)[:, 0]

        f_x = image_features(x, arch=self.arch, base_features=self.base_features,
                             hidden=self.hidden, norm=self.norm, spectral_norm=self.spectral_norm,
                             downsample=self.downsample, train=train, dtype=self.dtype)
        h_z = dense_stack(z, (self.hidden, self.hidden), activation=leaky,
                          spectral_norm=self.spectral_norm, train=train, dtype=self.dtype)
        joint = dense_stack(jnp.concatenate([f_x, h_z], axis=-1), (self.hidden,),
                            activation=leaky, spectral_norm=self.spectral_norm, train=train,
                            dtype=self.dtype)
        scores = {"xz": score(joint)}
        if self.unary:
            scores["x"] = score(f_x)
            scores["z"] = score(h_z)
        return scores

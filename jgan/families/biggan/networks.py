"""BigGAN's networks (Brock et al. 2019), after BigGAN-PyTorch's residual layouts.

G (Sec. 3, Fig. 15 (a) and (b)): z is split into one chunk for the input layer and one per
residual block, the hierarchical latent ("skip-z"). A shared class embedding, concatenated with
a block's chunk, gives that block's conditional-BatchNorm gains and biases. A block is BN, ReLU,
nearest 2x upsampling, 3x3 conv, BN, ReLU, 3x3 conv, plus an upsampled 1x1-conv shortcut. A
self-attention block (`jgan.nn.attention`) follows the block that reaches `attention`'s
resolution. Then BatchNorm, ReLU, a 3x3 conv to the image, and tanh.

D: residual blocks of ReLU, 3x3 conv, ReLU, 3x3 conv and 2x2 average pooling (the first block
without the leading ReLU, and with its shortcut pooled before its 1x1 conv), the same attention,
then ReLU, sum pooling over positions, and a linear output plus the projection term
<embed(y), phi(x)> (Miyato & Koyama 2018, Eq. 3). D halves the image down to 8x8 or less, then
runs two blocks at that size: the SNGAN/BigGAN CIFAR-10 layout, which at 28x28 is 28, 14, 7, 7.

Every weight of G and D is spectrally normalized (Sec. 4), except G's shared embedding, as in
the reference. Widths are constant across blocks, as in BigGAN's CIFAR-10 networks (4 ch).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jgan.nn.attention import SelfAttention
from jgan.nn.conditional_norm import ConditionalBatchNorm
from jgan.nn.spectral_norm import maybe_spectral_norm

INITS = {"ortho": nn.initializers.orthogonal(), "N02": nn.initializers.normal(0.02)}


def generator_layout(resolution: int) -> tuple[int, int]:
    """`(bottom width, upsampling blocks)`: the side halves while it is even and above 4, so 32
    starts at 4x4 with 3 blocks and 28 at 7x7 with 2. (0 blocks: G cannot draw this size.)"""
    bottom, blocks = resolution, 0
    while bottom % 2 == 0 and bottom > 4:
        bottom, blocks = bottom // 2, blocks + 1
    return bottom, blocks


def discriminator_layout(resolution: int) -> list[bool]:
    """Per D block, whether it downsamples: halvings down to 8x8 or less, then two more blocks."""
    downsamples, side = [], resolution
    while side > 8 and side % 2 == 0:
        downsamples.append(True)
        side //= 2
    return [*downsamples, False, False]


def upsample(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool(x):
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class SNLayers(nn.Module):
    """Base for modules whose convolutions and dense layers are spectrally normalized."""

    spectral_norm: bool = True
    weight_init: str = "ortho"

    def conv(self, x, features, size, name, *, train, use_bias=True):
        layer = nn.Conv(features, (size, size), padding=size // 2, use_bias=use_bias,
                        kernel_init=INITS[self.weight_init], name=name)
        return maybe_spectral_norm(layer, x, enabled=self.spectral_norm, train=train)

    def dense(self, x, features, name, *, train):
        layer = nn.Dense(features, kernel_init=INITS[self.weight_init], name=name)
        return maybe_spectral_norm(layer, x, enabled=self.spectral_norm, train=train)


class GeneratorBlock(SNLayers):
    features: int = 64
    # A bias right before BatchNorm has a zero gradient, and Adam turns the rounding noise of
    # that zero into full-size steps: conv1 has none, nor has the last block's output.
    output_bias: bool = True

    @nn.compact
    def __call__(self, x, conditioning, *, train):
        def norm(name, h):
            return ConditionalBatchNorm(self.spectral_norm,
                                        kernel_init=INITS[self.weight_init],
                                        name=name)(h, conditioning, train=train)

        h = upsample(nn.relu(norm("bn1", x)))
        h = self.conv(h, self.features, 3, "conv1", train=train, use_bias=False)
        h = self.conv(nn.relu(norm("bn2", h)), self.features, 3, "conv2", train=train,
                      use_bias=self.output_bias)
        return h + self.conv(upsample(x), self.features, 1, "shortcut", train=train,
                             use_bias=self.output_bias)


class DiscriminatorBlock(SNLayers):
    features: int = 64
    downsample: bool = True
    preactivation: bool = True

    @nn.compact
    def __call__(self, x, *, train):
        h = nn.relu(x) if self.preactivation else x
        h = self.conv(h, self.features, 3, "conv1", train=train)
        h = self.conv(nn.relu(h), self.features, 3, "conv2", train=train)
        if self.downsample:
            h = avg_pool(h)
        shortcut = x
        if self.downsample or x.shape[-1] != self.features:
            # The first block pools first: its input is the image, and pooling it is cheaper.
            if not self.preactivation and self.downsample:
                shortcut = avg_pool(shortcut)
            shortcut = self.conv(shortcut, self.features, 1, "shortcut", train=train)
            if self.preactivation and self.downsample:
                shortcut = avg_pool(shortcut)
        return h + shortcut


class BigGANGenerator(SNLayers):
    """G(z, labels) -> images [B, H, W, C] in [-1, 1].

    `labels` are int [B], or float class weights [B, num_classes] (rows summing to 1), which mix
    the shared embeddings: interpolation between classes (App. D's "class interpolation").
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    num_classes: int = 10
    features: int = 64  # every block's channels (BigGAN CIFAR-10: 4 ch = 256)
    shared_dim: int = 128
    attention: int = 0  # resolution of the self-attention block; 0: none

    @nn.compact
    def __call__(self, z, labels, *, train: bool):
        bottom, blocks = generator_layout(self.image_shape[0])
        chunks = jnp.split(z, blocks + 1, axis=-1)
        embedding = self.param("shared_embedding", INITS[self.weight_init],
                               (self.num_classes, self.shared_dim))
        if jnp.issubdtype(labels.dtype, jnp.integer):
            classes = jnp.take(embedding, labels, axis=0)
        else:
            classes = labels @ embedding
        x = self.dense(chunks[0], bottom * bottom * self.features, "input", train=train)
        x = x.reshape(-1, bottom, bottom, self.features)
        for index in range(blocks):
            conditioning = jnp.concatenate([classes, chunks[index + 1]], axis=-1)
            x = GeneratorBlock(self.spectral_norm, self.weight_init, self.features,
                               output_bias=index < blocks - 1, name=f"block{index}")(
                x, conditioning, train=train)
            if x.shape[1] == self.attention:
                x = SelfAttention(self.spectral_norm, INITS[self.weight_init],
                                  name="attention")(x, train=train)
        x = nn.relu(ConditionalBatchNorm(name="bn_out")(x, train=train))
        return jnp.tanh(self.conv(x, self.image_shape[-1], 3, "to_image", train=train))


class ProjectionDiscriminator(SNLayers):
    """D(x, labels) -> logits [B]: psi(phi(x)) + <embed(labels), phi(x)>."""

    num_classes: int = 10
    features: int = 64
    attention: int = 0

    @nn.compact
    def __call__(self, images, labels, *, train: bool):
        h = images
        for index, downsample in enumerate(discriminator_layout(images.shape[1])):
            h = DiscriminatorBlock(self.spectral_norm, self.weight_init, self.features,
                                   downsample, preactivation=index > 0, name=f"block{index}")(
                h, train=train)
            if downsample and h.shape[1] == self.attention:
                h = SelfAttention(self.spectral_norm, INITS[self.weight_init],
                                  name="attention")(h, train=train)
        features = jnp.sum(nn.relu(h), axis=(1, 2))
        logits = self.dense(features, 1, "linear", train=train)[:, 0]
        embed = nn.Embed(self.num_classes, self.features,
                         embedding_init=INITS[self.weight_init], name="embed")
        projection = maybe_spectral_norm(embed, labels, enabled=self.spectral_norm, train=train)
        return logits + jnp.sum(projection * features, axis=-1)

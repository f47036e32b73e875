"""StyleGAN's networks (Karras et al. 2019, "A Style-Based Generator Architecture for GANs").

G = synthesis(mapping(z)): an MLP maps the pixel-normed z to w (Sec. 2); synthesis starts from a
learned constant 4x4 input and, at every layer, adds per-pixel noise scaled per channel (Sec. 3.2)
and applies AdaIN with a style from w (Eq. 1). D is residual or plain, with ProGAN's
minibatch-stddev layer (Karras et al. 2018, Sec. 3). Every weight uses the equalized learning
rate (ProGAN Sec. 4.1): stored as N(0, 1) / lr_multiplier, scaled by He's constant at run time.

Progressive growing (ProGAN Sec. 2) runs in one static graph, as the reference's "linear"
structure does: G outputs every resolution and blends them by the level of detail `lod` (0 = full
resolution, 1 = half, fractions fade), and D reads the matching blend; so one compiled step serves
every phase, and `lod` is data, not structure.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2  # every hidden activation in StyleGAN is leaky ReLU(0.2)


def lrelu(x):
    return nn.leaky_relu(x, LRELU_SLOPE)


def num_levels(resolution: int) -> int:
    """Resolutions 4, 8, ..., `resolution`: log2(resolution) - 1 of them."""
    return int(math.log2(resolution)) - 1


def level_channels(resolution: int, base_features: int, max_features: int) -> tuple[int, ...]:
    """Channels at 4x4, 8x8, ..., resolution: `base_features` at the full resolution, doubling
    at every halving up to `max_features` (the reference's fmap_base / res rule)."""
    return tuple(min(max_features, base_features * resolution // 2 ** (level + 2))
                 for level in range(num_levels(resolution)))


def num_style_layers(resolution: int) -> int:
    """Layers that take a style: two per resolution (4x4: the constant's and one conv)."""
    return 2 * num_levels(resolution)


def lerp_clip(a, b, t):
    """a + (b - a) * clip(t, 0, 1): how growing fades a new resolution in."""
    return a + (b - a) * jnp.clip(t, 0.0, 1.0)


def upsample_nearest(x):  # [B, H, W, C] -> [B, 2H, 2W, C]
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample(x):  # [B, H, W, C] -> [B, H/2, W/2, C], 2x2 average pooling
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def blur(x):
    """The [1, 2, 1] / 4 binomial filter along H, then along W (Zhang 2019), per channel,
    zero-padded: StyleGAN's low-pass after nearest upsampling and before downsampling (Sec. 2,
    footnote). Written as shifted sums, not as a depthwise convolution: XLA:CPU ran the
    convolution 16-56x slower (fwd+bwd at 16x64x64x16: 79 against 4.8 ms)."""
    def along(x, axis: int):
        padding = [(0, 0)] * x.ndim
        padding[axis] = (1, 1)
        padded, size = jnp.pad(x, padding), x.shape[axis]

        def shifted(start: int):
            return jax.lax.slice_in_dim(padded, start, start + size, axis=axis)

        return (shifted(0) + shifted(2) + 2.0 * shifted(1)) * 0.25

    return along(along(x, 1), 2)


def upsample(x, mode: str):
    """2x: "bilinear", or "blur" (nearest; the conv after it is followed by `blur`)."""
    if mode == "bilinear":
        b, h, w, c = x.shape
        return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")
    return upsample_nearest(x)


def instance_norm(x, eps: float = 1e-8):
    """Each example's channels to zero mean and unit variance over H and W."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def adain(x, scale, bias):
    """AdaIN (Eq. 1): instance-normalize x [B, H, W, C], then scale and shift each channel by the
    style `scale`, `bias` [B, C]."""
    return instance_norm(x) * scale[:, None, None, :] + bias[:, None, None, :]


def pixel_norm(z, eps: float = 1e-8):
    """z / RMS(z) per example (ProGAN Sec. 4.2): the mapping network's input normalization."""
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + eps)


def layer_noise_keys(noise_keys, layer: int):
    """Each example's key for one layer's noise: its own key with the layer folded in."""
    return jax.vmap(lambda key: jax.random.fold_in(key, layer))(noise_keys)


class EqualizedDense(nn.Module):
    """A dense layer with the equalized learning rate: weights N(0, 1) / lr_multiplier, used as
    w * gain / sqrt(fan_in) * lr_multiplier, so Adam's step is the same for every layer."""

    features: int
    gain: float = SQRT2
    lr_multiplier: float = 1.0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_multiplier),
                            (fan_in, self.features))
        y = x @ (kernel * (self.gain / math.sqrt(fan_in) * self.lr_multiplier))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(),
                               (self.features,)) * self.lr_multiplier
        return y


class EqualizedConv(nn.Module):
    """A stride-1, "same" convolution with the equalized learning rate."""

    features: int
    kernel_size: int = 3
    gain: float = SQRT2
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.normal(1.0),
                            (k, k, x.shape[-1], self.features))
        kernel = kernel * (self.gain / math.sqrt(k * k * x.shape[-1]))
        y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return y


class MappingNetwork(nn.Module):
    """z [B, z_dim] -> w [B, w_dim]: pixel norm, then `layers` leaky-ReLU dense layers whose
    rate is lr_multiplier (0.01 in the paper, App. C) of the synthesis network's."""

    w_dim: int
    layers: int = 8
    lr_multiplier: float = 0.01

    @nn.compact
    def __call__(self, z):
        x = pixel_norm(z)
        for _ in range(self.layers):
            x = lrelu(EqualizedDense(self.w_dim, lr_multiplier=self.lr_multiplier)(x))
        return x


class NoiseInput(nn.Module):
    """x + per-pixel N(0, 1) noise, one map per example shared by the channels, scaled by a
    learned per-channel strength that starts at 0 (Sec. 3.2, Fig. 1b "B")."""

    @nn.compact
    def __call__(self, x, noise_keys):
        strength = self.param("strength", nn.initializers.zeros_init(), (x.shape[-1],))
        noise = jax.vmap(lambda key: jax.random.normal(key, (*x.shape[1:3], 1), x.dtype))(
            noise_keys)
        return x + noise * strength


class StyleLayer(nn.Module):
    """[upsample,] [3x3 conv,] [blur,] noise, bias, leaky ReLU, AdaIN with the style A(w)."""

    features: int
    conv: bool = True
    upsample: str | None = None  # None, "bilinear" or "blur"

    @nn.compact
    def __call__(self, x, w, noise_keys):
        if self.upsample:
            x = upsample(x, self.upsample)
        if self.conv:
            x = EqualizedConv(self.features, use_bias=False)(x)
        if self.upsample == "blur":
            x = blur(x)
        x = NoiseInput()(x, noise_keys)
        x = lrelu(x + self.param("bias", nn.initializers.zeros_init(), (self.features,)))
        # The affine "A" of Fig. 1b: scale = 1 + style, so a zero style is the identity.
        style = EqualizedDense(2 * self.features, gain=1.0)(w)
        return adain(x, 1.0 + style[:, :self.features], style[:, self.features:])


class SynthesisNetwork(nn.Module):
    """Per-layer styles ws [B, L, w_dim] and per-example noise keys [B] -> images [B, R, R, C].

    Without `progressive` only the last resolution has a toRGB layer and `lod` is ignored.
    """

    resolution: int
    channels: tuple[int, ...]  # per resolution, 4x4 first
    image_channels: int
    upsample: str = "bilinear"
    const_init: float = 1.0
    progressive: bool = False

    @nn.compact
    def __call__(self, ws, noise_keys, lod=0.0):
        levels = num_levels(self.resolution)
        # The seed's TF model collapsed less once the constant started at ones, not N(0, 1).
        const = self.param("const", nn.initializers.constant(self.const_init),
                           (4, 4, self.channels[0]))
        x = jnp.broadcast_to(const, (ws.shape[0], *const.shape)).astype(ws.dtype)
        images = None
        for level in range(levels):
            features = self.channels[level]
            first, second = 2 * level, 2 * level + 1
            x = StyleLayer(features, conv=level > 0, upsample=self.upsample if level else None,
                           name=f"layer{first}")(x, ws[:, first],
                                                 layer_noise_keys(noise_keys, first))
            x = StyleLayer(features, name=f"layer{second}")(x, ws[:, second],
                                                            layer_noise_keys(noise_keys, second))
            if self.progressive or level == levels - 1:
                rgb = EqualizedConv(self.image_channels, 1, gain=1.0, name=f"to_rgb{level}")(x)
                images = rgb if images is None else lerp_clip(
                    rgb, upsample_nearest(images), lod - (levels - 1 - level))
        return images


class StyleGenerator(nn.Module):
    """z [B, z_dim] -> images [B, R, R, C] in the data's model space (no output activation, as in
    the reference). `map` and `synthesize` are the two halves, for mixing and truncation."""

    resolution: int
    image_channels: int
    w_dim: int = 128
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    channels: tuple[int, ...] = ()
    upsample: str = "bilinear"
    const_init: float = 1.0
    progressive: bool = False

    def setup(self):
        self.mapping = MappingNetwork(self.w_dim, self.mapping_layers, self.mapping_lr_multiplier)
        self.synthesis = SynthesisNetwork(self.resolution, self.channels, self.image_channels,
                                          self.upsample, self.const_init, self.progressive)

    @property
    def num_layers(self) -> int:
        return num_style_layers(self.resolution)

    def map(self, z):
        return self.mapping(z)

    def synthesize(self, ws, noise_keys, lod=0.0):
        return self.synthesis(ws, noise_keys, lod)

    def __call__(self, z, noise_keys, lod=0.0, *, train: bool = False):
        w = self.mapping(z)
        return self.synthesis(jnp.repeat(w[:, None], self.num_layers, axis=1), noise_keys, lod)


def minibatch_stddev(x, group_size: int):
    """ProGAN's minibatch-stddev layer (Sec. 3): one more feature map, the mean over features of
    the standard deviation across each group of `group_size` examples (examples i, i + B/G, ...
    form a group, as in the reference)."""
    b, h, w, c = x.shape
    group = min(group_size, b)
    y = x.reshape(group, b // group, h, w, c)
    y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [B/G, H, W, C]
    y = jnp.mean(y, axis=(1, 2, 3))  # [B/G]
    y = jnp.tile(y, group)[:, None, None, None]  # example i gets its group's value
    return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, 1))], axis=-1)


class DiscriminatorBlock(nn.Module):
    """3x3 conv, blur, 3x3 conv, 2x average pool; "resnet" adds a 1x1 skip of the pooled input
    and scales the sum by 1/sqrt(2) (StyleGAN2's residual D, Karras et al. 2020, Fig. 7c)."""

    features: int
    out_features: int
    residual: bool = True

    @nn.compact
    def __call__(self, x):
        y = lrelu(EqualizedConv(self.features)(x))
        y = lrelu(downsample(EqualizedConv(self.out_features)(blur(y))))
        if not self.residual:
            return y
        skip = EqualizedConv(self.out_features, 1, gain=1.0, use_bias=False)(downsample(x))
        return (y + skip) * (1.0 / SQRT2)


class StyleDiscriminator(nn.Module):
    """images [B, R, R, C] -> logits [B]: fromRGB, blocks down to 4x4, minibatch stddev, a 3x3
    conv, a dense layer and the output. With `progressive`, every resolution has a fromRGB and
    the image's lower resolutions fade in by `lod` as G's do."""

    resolution: int
    channels: tuple[int, ...]  # per resolution, 4x4 first
    residual: bool = True
    mbstd_group: int = 4
    progressive: bool = False

    @nn.compact
    def __call__(self, images, lod=0.0, *, train: bool = False):
        levels = num_levels(self.resolution)
        top = levels - 1
        x = lrelu(EqualizedConv(self.channels[top], 1, name=f"from_rgb{top}")(images))
        for level in range(top, 0, -1):
            x = DiscriminatorBlock(self.channels[level], self.channels[level - 1],
                                   self.residual, name=f"block{level}")(x)
            if self.progressive:
                images = downsample(images)
                y = lrelu(EqualizedConv(self.channels[level - 1], 1,
                                        name=f"from_rgb{level - 1}")(images))
                x = lerp_clip(x, y, lod - (top - level))
        if self.mbstd_group > 1:
            x = minibatch_stddev(x, self.mbstd_group)
        x = lrelu(EqualizedConv(self.channels[0])(x))
        x = lrelu(EqualizedDense(self.channels[0])(x.reshape(x.shape[0], -1)))
        return EqualizedDense(1, gain=1.0)(x)[:, 0]


def fade_reals(images, lod, max_lod: int):
    """Real images [B, R, R, C] at level of detail `lod`, as G draws them: 2^k x 2^k average-
    pooled and nearest-upsampled back for k = floor(lod), blended towards k + 1 by the fraction
    (ProGAN's `process_reals`). Every level is computed, so `lod` can be traced."""
    pyramid, level = [images], images
    for k in range(1, max_lod + 1):
        level = downsample(level)
        up = level
        for _ in range(k):
            up = upsample_nearest(up)
        pyramid.append(up)
    weights = [jnp.clip(1.0 - jnp.abs(lod - k), 0.0, 1.0) for k in range(max_lod + 1)]
    return sum(w * p for w, p in zip(weights, pyramid))

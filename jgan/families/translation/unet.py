"""U-Net-style fully convolutional paths (Ronneberger, Fischer & Brox 2015, Fig. 1).

The contracting path: at each resolution two 3x3 convolutions, then 2x2 pooling (here
`MixedPooling`), features doubling as the resolution halves. The expanding path: a 2x2 "up-
convolution" halving the features, then two 3x3 convolutions. Without skip connections they make
BiGAN's encoder (and D's x pathway) and its generator for larger images, such as 96x96
PatchCamelyon patches; Pix2Pix's U-Net adds the skips.
"""

import flax.linen as nn
import jax.numpy as jnp

from jgan.families.gan.dcgan import _batch_norm, dcgan_init, num_resolution_stages
from jgan.nn import Conv, ConvTranspose, MixedPooling, conv_bias, norm_layer


def double_conv(x, features: int, *, norm: str, activation, train: bool):
    """Two 3x3 convolutions, each followed by BatchNorm (unless norm is "none") and `activation`."""
    for _ in range(2):
        x = Conv(features, (3, 3), padding=((1, 1), (1, 1)), use_bias=norm != "batch",
                 kernel_init=dcgan_init)(x)
        if norm == "batch":
            x = _batch_norm(train)(x)
        x = activation(x)
    return x


def contracting_path(x, *, base_features: int, norm: str = "batch", train: bool):
    """[B, H, W, C] -> [B, h, w, F] with h <= 7, LeakyReLU(0.2) as in DCGAN's D.

    The first block has no BatchNorm, as DCGAN's D has none on its input layer.
    """
    features = base_features
    for stage in range(num_resolution_stages(x.shape[1])):
        x = double_conv(x, features, norm=norm if stage else "none",
                        activation=lambda y: nn.leaky_relu(y, 0.2), train=train)
        x = MixedPooling()(x)
        features *= 2
    return x


def expanding_path(x, *, stages: int, channels: int, train: bool):
    """[B, h, w, F] -> [B, h * 2^stages, w * 2^stages, channels] in [-1, 1]: up-convolutions that
    halve the features, double convolutions with ReLU, a 1x1 convolution and tanh."""
    features = x.shape[-1]
    for _ in range(stages):
        features //= 2
        x = ConvTranspose(features, (2, 2), strides=(2, 2), padding=0, use_bias=False,
                          kernel_init=dcgan_init)(x)
        x = double_conv(x, features, norm="batch", activation=nn.relu, train=train)
    return nn.tanh(nn.Conv(channels, (1, 1), kernel_init=dcgan_init)(x))


def unet_features(depth: int, base_features: int) -> tuple[int, ...]:
    """The features of Pix2Pix's U-Net down convolutions: ngf, 2ngf, 4ngf, then 8ngf."""
    return tuple(base_features * min(2 ** level, 8) for level in range(depth))


def unet_skip_shapes(image_shape: tuple[int, int, int], depth: int,
                     base_features: int) -> dict[str, tuple[int, int, int]]:
    """The `[h, w, c]` shapes `UNetGenerator` sows: "skip_i" is the concatenation that level i
    (1 <= i < depth) hands up, [down input, up output] at 1/2^i resolution; "bottleneck" is the
    innermost down output at 1/2^depth."""
    height, width, _ = image_shape
    features = unet_features(depth, base_features)
    shapes = {f"skip_{level}": (height >> level, width >> level, 2 * features[level - 1])
              for level in range(1, depth)}
    shapes["bottleneck"] = (height >> depth, width >> depth, features[-1])
    return shapes


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net G (Isola et al. 2017, Sec. 3.1 and App. 6.1.1): images [B, H, W, C_in] ->
    [B, H, W, out_channels] in [-1, 1], with H and W divisible by 2^depth.

    Level i (0-based) is a 4x4 stride-2 convolution down and a 4x4 stride-2 transposed convolution
    up, the skip joining them concatenates the level's input with its up output. Down: LeakyReLU
    (0.2) before every convolution but the first, norm on all but the outermost and innermost. Up:
    ReLU before every transposed convolution, norm after all but the outermost, which ends in tanh.
    `depth` is the reference's num_downs: 8 is unet_256 and 7 unet_128 (a 1x1 bottleneck).

    Dropout is the paper's only noise (Sec. 2.1: "noise in the form of dropout, applied ... at
    both training and test time"): `dropout` after the norm of the depth - 5 up levels just outside
    the innermost, active whatever `train` says, drawing the "dropout" rng; 0 turns it off.
    """

    out_channels: int
    depth: int
    base_features: int = 64
    norm: str = "batch"
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x, *, train: bool):
        step = 2 ** self.depth
        if self.depth < 2 or x.shape[1] % step or x.shape[2] % step:
            raise ValueError(f"a U-Net of depth {self.depth} (>= 2) needs H and W divisible by "
                             f"2**depth = {step}, got {x.shape[1]}x{x.shape[2]}")
        features = unet_features(self.depth, self.base_features)
        innermost = self.depth - 1
        bias = conv_bias(self.norm)
        inputs = []
        for level, width in enumerate(features):
            inputs.append(x)
            if level > 0:
                x = nn.leaky_relu(x, 0.2)
            x = Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=bias,
                     kernel_init=dcgan_init)(x)
            if 0 < level < innermost:
                x = norm_layer(self.norm, train=train)(x)
        self.sow("intermediates", "bottleneck", x)
        for level in reversed(range(1, self.depth)):
            x = ConvTranspose(inputs[level].shape[-1], use_bias=bias,
                              kernel_init=dcgan_init)(nn.relu(x))
            x = norm_layer(self.norm, train=train)(x)
            if 4 <= level < innermost and self.dropout:
                x = nn.Dropout(self.dropout, deterministic=False)(x)
            x = jnp.concatenate([inputs[level], x], axis=-1)
            self.sow("intermediates", f"skip_{level}", x)
        x = ConvTranspose(self.out_channels, kernel_init=dcgan_init)(nn.relu(x))
        return jnp.tanh(x)

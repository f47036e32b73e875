"""CycleGAN's ResNet generator (Zhu et al. 2017, App. 7.2; Johnson et al. 2016's transform net).

c7s1-ngf, d2ngf, d4ngf, num_blocks x R4ngf, u2ngf, ungf, c7s1-out: a 7x7 convolution on a
reflection-padded image, two 3x3 stride-2 convolutions down, residual blocks of two 3x3
convolutions, two 3x3 stride-2 transposed convolutions up, a 7x7 convolution and tanh. The paper's
resnet_9blocks serves 256x256 images and resnet_6blocks 128x128. Images are NHWC in [-1, 1].
"""

import flax.linen as nn
import jax.numpy as jnp

from jgan.families.gan.dcgan import dcgan_init
from jgan.nn import Conv, conv_bias, conv_transpose, norm_layer
from jgan.nn.transposed_conv import apply_conv_layer


def reflect_pad(x, pad: int):  # [B, H, W, C] -> [B, H + 2 pad, W + 2 pad, C]
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


class DoublingConvTranspose(nn.Module):
    """PyTorch's `ConvTranspose2d(k, stride=2, padding=(k - 1) // 2, output_padding=1)` for odd
    k: exactly 2x.

    `jgan.nn.ConvTranspose` pads both sides alike, so it maps H to 2H - 1 here; output_padding
    is one more row and column of the dilated input's padding on the high side.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = dcgan_init
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):  # [B, H, W, C_in] -> [B, 2H, 2W, features]
        padding = tuple((k - 1 - (k - 1) // 2, k - (k - 1) // 2) for k in self.kernel_size)
        return apply_conv_layer(self, x, lambda x, kernel: conv_transpose(x, kernel, (2, 2),
                                                                          padding))


class ResNetBlock(nn.Module):
    """x + (reflect pad 1, 3x3 conv, norm, ReLU, reflect pad 1, 3x3 conv, norm)(x)."""

    norm: str = "instance"

    @nn.compact
    def __call__(self, x, *, train: bool):
        h = x
        for second in (False, True):
            h = Conv(x.shape[-1], (3, 3), use_bias=conv_bias(self.norm),
                     kernel_init=dcgan_init)(reflect_pad(h, 1))
            h = norm_layer(self.norm, train=train)(h)
            if not second:
                h = nn.relu(h)
        return x + h


class ResNetGenerator(nn.Module):
    """images [B, H, W, C_in] -> [B, H, W, out_channels] in [-1, 1], H and W divisible by 4."""

    out_channels: int
    num_blocks: int = 9
    base_features: int = 64
    norm: str = "instance"

    @nn.compact
    def __call__(self, x, *, train: bool):
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"the ResNet generator needs H and W divisible by 4, got "
                             f"{x.shape[1]}x{x.shape[2]}")
        bias = conv_bias(self.norm)
        x = Conv(self.base_features, (7, 7), use_bias=bias, kernel_init=dcgan_init)(
            reflect_pad(x, 3))
        x = nn.relu(norm_layer(self.norm, train=train)(x))
        for scale in (2, 4):
            x = Conv(scale * self.base_features, (3, 3), strides=(2, 2),
                     padding=((1, 1), (1, 1)), use_bias=bias, kernel_init=dcgan_init)(x)
            x = nn.relu(norm_layer(self.norm, train=train)(x))
        for _ in range(self.num_blocks):
            x = ResNetBlock(self.norm)(x, train=train)
        for scale in (2, 1):
            x = DoublingConvTranspose(scale * self.base_features, use_bias=bias)(x)
            x = nn.relu(norm_layer(self.norm, train=train)(x))
        x = Conv(self.out_channels, (7, 7), kernel_init=dcgan_init)(reflect_pad(x, 3))
        return jnp.tanh(x)

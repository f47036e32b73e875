"""U-Net-style fully convolutional paths (Ronneberger, Fischer & Brox 2015, Fig. 1).

The contracting path: at each resolution two 3x3 convolutions, then 2x2 pooling (here
`MixedPooling`), features doubling as the resolution halves. The expanding path: a 2x2 "up-
convolution" halving the features, then two 3x3 convolutions. Without skip connections they make
BiGAN's encoder (and D's x pathway) and its generator for larger images, such as 96x96
PatchCamelyon patches; Pix2Pix's U-Net adds the skips.
"""

import flax.linen as nn

from jgan.models.dcgan import _batch_norm, dcgan_init, num_resolution_stages
from jgan.nn import Conv, ConvTranspose, MixedPooling


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

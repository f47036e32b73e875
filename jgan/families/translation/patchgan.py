"""Discriminators of Pix2Pix (Isola et al. 2017, Sec. 2.2 and App. 6.1.2) and CycleGAN.

PatchGAN: a fully convolutional D that classifies each N x N patch as real or fake and so models
only high frequencies, leaving low ones to the L1 term; the default, 3 layers, scores 70x70
patches. PixelGAN (1x1 patches) and ImageGAN (the whole image) are the paper's two extremes
(Sec. 4.4, Table 3). `receptive_field` computes N from each network's (kernel, stride) list.
"""

import flax.linen as nn

from jgan.families.gan.dcgan import dcgan_init
from jgan.nn import Conv, conv_bias, norm_layer

_PAD = ((1, 1), (1, 1))


def receptive_field(layers) -> int:
    """The side of the input patch that one output unit sees, for (kernel, stride) layers in
    input-to-output order: each layer adds (kernel - 1) times the product of earlier strides."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def _check_num_layers(num_layers: int) -> None:
    if num_layers < 1:
        raise ValueError(f"a PatchGAN needs num_layers >= 1, got {num_layers}: "
                         "for 1x1 patches use PixelDiscriminator")


def _features(base_features: int, layer: int) -> int:
    return base_features * min(2 ** layer, 8)


def patch_layers(num_layers: int = 3) -> list[tuple[int, int]]:
    """`PatchDiscriminator`'s (kernel, stride) list: num_layers stride-2 and two stride-1 4x4.

    1, 3 and 5 layers see the paper's 16x16, 70x70 and 286x286 patches (Sec. 4.4).
    """
    _check_num_layers(num_layers)
    return [(4, 2)] * num_layers + [(4, 1)] * 2


def pixel_layers() -> list[tuple[int, int]]:
    """`PixelDiscriminator`'s (kernel, stride) list: three 1x1 convolutions."""
    return [(1, 1)] * 3


def image_layers(image_size: int) -> list[tuple[int, int]]:
    """`ImageDiscriminator`'s (kernel, stride) list on `image_size` squares: the stride-2 4x4
    convolutions, then the dense layer read as a convolution over the whole remaining map."""
    layers, size = [], image_size
    while size > 4:
        layers.append((4, 2))
        size = (size - 2) // 2 + 1
    return layers + [(size, 1)]


class PatchDiscriminator(nn.Module):
    """The reference's NLayerDiscriminator: images [B, H, W, C] -> logits [B, h, w, 1], one per
    overlapping patch (30x30 for 256x256 inputs, 14x14 for 128x128).

    4x4 convolutions with padding 1: base_features stride 2 without norm; num_layers - 1 more at
    stride 2 and one at stride 1, features min(2^n, 8) * base_features, each with norm; LeakyReLU
    (0.2) after each; then a stride-1 convolution to one logit.
    """

    base_features: int = 64
    num_layers: int = 3
    norm: str = "batch"

    @nn.compact
    def __call__(self, x, *, train: bool):
        _check_num_layers(self.num_layers)
        x = Conv(self.base_features, (4, 4), strides=(2, 2), padding=_PAD,
                 kernel_init=dcgan_init)(x)
        x = nn.leaky_relu(x, 0.2)
        for layer in range(1, self.num_layers + 1):
            stride = 2 if layer < self.num_layers else 1
            x = Conv(_features(self.base_features, layer), (4, 4), strides=(stride, stride),
                     padding=_PAD, use_bias=conv_bias(self.norm), kernel_init=dcgan_init)(x)
            x = nn.leaky_relu(norm_layer(self.norm, train=train)(x), 0.2)
        return Conv(1, (4, 4), padding=_PAD, kernel_init=dcgan_init)(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN, 1x1 patches: images [B, H, W, C] -> logits [B, H, W, 1]. 1x1 convolutions:
    base_features and LeakyReLU(0.2), 2 base_features with norm and LeakyReLU, one logit.

    The logit layer keeps its bias under BatchNorm (the reference drops it, as for the layer
    before a norm); it sees no norm after it.
    """

    base_features: int = 64
    norm: str = "batch"

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.leaky_relu(Conv(self.base_features, (1, 1), kernel_init=dcgan_init)(x), 0.2)
        x = Conv(2 * self.base_features, (1, 1), use_bias=conv_bias(self.norm),
                 kernel_init=dcgan_init)(x)
        x = nn.leaky_relu(norm_layer(self.norm, train=train)(x), 0.2)
        return Conv(1, (1, 1), kernel_init=dcgan_init)(x)


class ImageDiscriminator(nn.Module):
    """ImageGAN, one score per image: images [B, H, W, C] -> logits [B, 1, 1, 1], a 1x1 patch map
    so that the patch losses apply unchanged.

    PatchGAN's stride-2 4x4 convolutions (the first without norm, features min(2^n, 8) *
    base_features) until the map is at most 4x4, then a dense layer over the whole map.
    """

    base_features: int = 64
    norm: str = "batch"

    @nn.compact
    def __call__(self, x, *, train: bool):
        layer = 0
        while x.shape[1] > 4 or x.shape[2] > 4:
            x = Conv(_features(self.base_features, layer), (4, 4), strides=(2, 2), padding=_PAD,
                     use_bias=layer == 0 or conv_bias(self.norm), kernel_init=dcgan_init)(x)
            if layer > 0:
                x = norm_layer(self.norm, train=train)(x)
            x = nn.leaky_relu(x, 0.2)
            layer += 1
        logits = nn.Dense(1, kernel_init=dcgan_init)(x.reshape(x.shape[0], -1))
        return logits[:, None, None, :]

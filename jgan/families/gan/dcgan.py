"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016, Sec. 3 and Fig. 1).

The paper's guidelines: strided convolutions instead of pooling, transposed convolutions to
up-sample, BatchNorm in both networks except G's output and D's input layer, ReLU in G with tanh
output, LeakyReLU(0.2) in D, weights drawn from N(0, 0.02). Images are NHWC in [-1, 1].

The number of up-sampling stages follows the image size: 28 -> 7x7 start (MNIST), 32 and 64 -> 4x4.
D's convolutional trunk (`downsampling_stages`) is also BiGAN's encoder and the x pathway of its
joint discriminator.

The same networks serve the families built on DCGAN: conditional G and D (CGAN, ACGAN's class
head), a critic without BatchNorm (WGAN-GP, Gulrajani et al. 2017 Sec. 4), spectral
normalization of D's weights (SNGAN), and minibatch discrimination on D's flattened trunk features
(Salimans et al. 2016, Sec. 3.2, where their image D had it too).

Mixed precision (`dtype` bfloat16, as in the flax and big_vision examples): parameters stay
float32 and are cast where they meet bf16 activations. BatchNorm reduces its statistics in float32
(flax does), minibatch discrimination and D's output units compute in float32, and G returns a
float32 image, so losses, real data and metrics never see bf16. float32 is the default.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jgan.nn import (Conv, ConvTranspose, MinibatchDiscrimination, MixedPooling,
                     concat_label_planes, concat_label_vector, maybe_spectral_norm, sow_features)

dcgan_init = nn.initializers.normal(0.02)
# The activation dtypes by their config name (`model.dtype`): bfloat16 is mixed precision.
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * nn.initializers.normal(1.0)(key, shape, dtype)


# PyTorch's defaults (momentum 0.1 there), so the DCGAN twin in benchmarks/ is the same model.
BN_MOMENTUM = 0.9


def _batch_norm(train: bool, dtype: Any = jnp.float32, momentum: float = BN_MOMENTUM
                ) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5,
                        scale_init=_bn_scale_init, dtype=dtype)


def num_resolution_stages(image_size: int) -> int:
    """How many 2x steps separate the image from a start resolution of at most 7."""
    stages, size = 0, image_size
    while size > 7:
        if size % 2:
            raise ValueError(f"image size {image_size} does not halve down to 7 or less: "
                             "use a size such as 28, 32 or 64")
        size //= 2
        stages += 1
    return stages


def downsampling_stages(x, *, base_features: int, norm: str = "batch", spectral_norm: bool = False,
                        downsample: str = "stride", train: bool, dtype: Any = jnp.float32):
    """DCGAN D's trunk, inside a compact `__call__`: [B, H, W, C] -> [B, h, w, F] with h <= 7.

    Each stage halves the resolution and doubles the features, starting at `base_features`; the
    first stage has no normalization. `downsample` "stride" is DCGAN's 4x4 stride-2 convolution;
    "mixed_pool" is a 3x3 convolution followed by `MixedPooling`. The stages compute in `dtype`.
    """
    x = x.astype(dtype)
    features = base_features
    for stage in range(num_resolution_stages(x.shape[1])):
        normalized = stage > 0 and norm == "batch"
        if downsample == "stride":
            # jgan's Conv: the same layer, with a fast second-order pass for gradient penalties.
            conv = Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                        use_bias=not normalized, kernel_init=dcgan_init)
        else:
            conv = Conv(features, (3, 3), padding=((1, 1), (1, 1)), use_bias=not normalized,
                        kernel_init=dcgan_init)
        x = maybe_spectral_norm(conv, x, enabled=spectral_norm, train=train)
        if normalized:
            x = _batch_norm(train, dtype)(x)
        x = nn.leaky_relu(x, 0.2)
        if downsample == "mixed_pool":
            x = MixedPooling()(x)
        features *= 2
    return x


def halves_down(size: int) -> bool:
    """Whether a 2x-stage network can take this image size (28, 32, 64, 96: yes; 50: no)."""
    try:
        num_resolution_stages(size)
    except ValueError:
        return False
    return True


class DCGANGenerator(nn.Module):
    """z [B, z_dim] (and labels [B] if num_classes) -> images [B, H, W, C].

    Project, then 2x transposed-conv stages. A conditional G takes the one-hot label beside z.
    `head` "dense" projects z with a dense layer (DCGAN); "conv" makes G fully convolutional: z is
    a 1x1 map that a transposed convolution with an h x h kernel grows to the start resolution.
    `dtype`: the activations' (bfloat16: mixed precision); the image is float32 either way.
    `bn_momentum` 0 makes a training call write its batch's moments as the running statistics
    (`batch_moments`).
    """

    image_shape: tuple[int, int, int]
    base_features: int = 64
    num_classes: int = 0  # > 0: conditional
    head: str = "dense"
    dtype: Any = jnp.float32
    bn_momentum: float = BN_MOMENTUM

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = True):
        if self.num_classes:
            z = concat_label_vector(z, labels, self.num_classes)
        height, _, channels = self.image_shape
        stages = num_resolution_stages(height)
        start = height >> stages
        features = self.base_features * 2 ** (stages - 1)
        if self.head == "dense":
            x = nn.Dense(start * start * features, use_bias=False, kernel_init=dcgan_init,
                         dtype=self.dtype)(z)
        else:
            x = nn.ConvTranspose(features, (start, start), padding="VALID", use_bias=False,
                                 kernel_init=dcgan_init, dtype=self.dtype)(z[:, None, None, :])
        x = nn.relu(_batch_norm(train, self.dtype, self.bn_momentum)(x))
        x = x.reshape(z.shape[0], start, start, features)
        for _ in range(stages - 1):
            features //= 2
            # jgan's ConvTranspose computes in its input's dtype.
            x = ConvTranspose(features, use_bias=False, kernel_init=dcgan_init)(x)
            x = nn.relu(_batch_norm(train, self.dtype, self.bn_momentum)(x))
        x = ConvTranspose(channels, kernel_init=dcgan_init)(x)
        return jnp.tanh(x).astype(jnp.float32)


class DCGANDiscriminator(nn.Module):
    """images [B, H, W, C] -> logits [B]: stride-2 convolutions, then one linear unit.

    conditioning "input": label planes join the image channels (labels required).
    conditioning "auxiliary": a second head returns class logits, so the output is
    `(logits [B], class_logits [B, num_classes])` (Odena et al. 2017).
    minibatch_kernels > 0: the real/fake unit also reads `MinibatchDiscrimination` of the
    flattened trunk features, so each logit depends on the whole batch D is called on (under
    data parallelism, the global batch: the step is global-view code and XLA gathers the rows).
    Feature matching and ACGAN's class head (a class belongs to one image) read the per-example
    trunk features; spectral norm does not cover the minibatch kernel.
    `dtype`: the trunk's activations (bfloat16: mixed precision); the logits are float32.
    """

    base_features: int = 64
    norm: str = "batch"  # or "none"
    spectral_norm: bool = False
    conditioning: str = "none"
    num_classes: int = 0
    minibatch_kernels: int = 0  # > 0: minibatch discrimination with this many kernels
    minibatch_kernel_dim: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = True):
        if self.conditioning == "input":
            x = concat_label_planes(x, labels, self.num_classes)
        x = downsampling_stages(x, base_features=self.base_features, norm=self.norm,
                                spectral_norm=self.spectral_norm, train=train, dtype=self.dtype)
        x = x.reshape(x.shape[0], -1)
        sow_features(self, x.astype(jnp.float32))  # for feature matching's loss
        scored = x
        # Minibatch discrimination's float32 kernel promotes its product, and the output units
        # are float32 too: exp(-L1) distances and the logits that the losses read keep precision.
        if self.minibatch_kernels:
            # N(0, 0.02) like every DCGAN weight. The layer's own 0.05, over thousands of trunk
            # features, puts most pairs of rows so far apart that o(x) starts near its floor of
            # 1 (1.07 on an MNIST batch of 64 at init, against 2.7 with 0.02).
            scored = MinibatchDiscrimination(self.minibatch_kernels, self.minibatch_kernel_dim,
                                             kernel_init=dcgan_init)(x)
        output = nn.Dense(1, kernel_init=dcgan_init, dtype=jnp.float32)
        logits = maybe_spectral_norm(output, scored, enabled=self.spectral_norm, train=train)[:, 0]
        if self.conditioning != "auxiliary":
            return logits
        class_head = nn.Dense(self.num_classes, kernel_init=dcgan_init, dtype=jnp.float32)
        class_logits = maybe_spectral_norm(class_head, x, enabled=self.spectral_norm,
                                           train=train)
        return logits, class_logits

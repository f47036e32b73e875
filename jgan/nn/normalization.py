"""Normalization layers chosen by name, as the image-to-image networks of Isola et al. (2017) and
Zhu et al. (2017) choose them: BatchNorm for Pix2Pix, InstanceNorm (Ulyanov et al. 2016) for
CycleGAN."""

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

NORMS = ("batch", "instance", "none")


def _bn_scale_init(key, shape, dtype=jnp.float32):
    # The reference's init_weights draws BatchNorm scales from N(1, 0.02).
    return 1.0 + 0.02 * nn.initializers.normal(1.0)(key, shape, dtype)


def norm_layer(name: str, *, train: bool) -> Callable:
    """The normalization `name` ("batch", "instance" or "none"), to call on `[B, H, W, C]`.

    Call it inside a compact `__call__`. "batch" uses PyTorch's defaults (momentum 0.1 there) and
    running averages unless `train`; "instance" has no scale or bias and no running statistics,
    as `InstanceNorm2d(affine=False)`; "none" is the identity.
    """
    if name == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                            scale_init=_bn_scale_init)
    if name == "instance":
        return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False)
    if name == "none":
        return lambda x: x
    raise ValueError(f"norm={name!r} is unknown: choose one of {list(NORMS)}")


def conv_bias(norm: str) -> bool:
    """Whether a convolution before `norm` needs a bias: BatchNorm's mean subtraction cancels it."""
    return norm != "batch"

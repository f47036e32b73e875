"""A strided convolution whose input gradient differentiates fast: for gradient penalties.

WGAN-GP and R1 differentiate D's input gradient with respect to D's weights. The input gradient
of a stride-s convolution is a stride-s transposed convolution of the output gradient with the
flipped kernel, and XLA:CPU takes that transposed convolution's kernel gradient about 20x slower
than its forward pass. Here the input gradient is written with `jgan.nn.conv_transpose`, whose
kernel gradient is fast, so the penalty's second-order pass is too. First-order use is unchanged:
the same forward and the same input and kernel gradients as `flax.linen.Conv`. Large batches run
as micro-batches on XLA:CPU (`jgan.nn.micro_batch`).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jgan.nn import micro_batch
from jgan.nn.micro_batch import map_rows, sum_rows
from jgan.nn.transposed_conv import apply_conv_layer, conv_transpose

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _forward(x, kernel, strides, padding):
    return lax.conv_general_dilated(x, kernel, window_strides=strides, padding=padding,
                                    dimension_numbers=_DIMENSION_NUMBERS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def strided_conv(x, kernel, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]):
    """`lax.conv_general_dilated` in NHWC/HWIO with explicit padding; see the module docstring.

    Args:
      x: `[B, H, W, C_in]`; kernel: `[K_h, K_w, C_in, C_out]`; strides: `(s_h, s_w)`;
      padding: `((lo_h, hi_h), (lo_w, hi_w))`.
    """
    return map_rows(lambda rows: _forward(rows, kernel, strides, padding), x,
                    max_rows=micro_batch.FORWARD_ROWS)


def _strided_conv_fwd(x, kernel, strides, padding):
    return strided_conv(x, kernel, strides, padding), (x, kernel)


def _input_gradient(dy, kernel, input_shape, strides, padding):
    """dx = the transposed convolution of dy with the spatially flipped, in/out-swapped kernel."""
    flipped = jnp.flip(kernel, axis=(0, 1)).transpose(0, 1, 3, 2)
    transposed_padding = []
    for size, k, s, (lo, hi) in zip(input_shape[1:3], kernel.shape[:2], strides, padding):
        # Rows of x that no output window reached (when (size + lo + hi - k) % s != 0) get zeros.
        transposed_padding.append((k - 1 - lo, k - 1 - hi + (size + lo + hi - k) % s))
    return conv_transpose(dy, flipped, tuple(strides), tuple(transposed_padding))


def _strided_conv_bwd(strides, padding, residuals, dy):
    x, kernel = residuals

    def kernel_gradient(x_rows, dy_rows):
        _, kernel_vjp = jax.vjp(lambda k: _forward(x_rows, k, strides, padding), kernel)
        return kernel_vjp(dy_rows)[0]

    # The input gradient is a `conv_transpose`, which splits its batch itself.
    dkernel = sum_rows(kernel_gradient, x, dy, max_rows=micro_batch.GRADIENT_ROWS)
    return _input_gradient(dy, kernel, x.shape, strides, padding), dkernel


strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


class Conv(nn.Module):
    """A 2-D convolution, a drop-in for `flax.linen.Conv` with explicit padding (same parameter
    names, shapes and initial values), built on `strided_conv`."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[tuple[int, int], ...] = ((0, 0), (0, 0))
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):  # [B, H, W, C_in] -> [B, H', W', features]
        padding = tuple(tuple(p) for p in self.padding)
        return apply_conv_layer(
            self, x, lambda x, kernel: strided_conv(x, kernel, tuple(self.strides), padding))

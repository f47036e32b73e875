"""Transposed convolution with a fast kernel gradient (the up-sampling layer of DCGAN, Radford 2016).

XLA:CPU lowers the kernel gradient of a strided transposed convolution to a convolution over the
zero-dilated input, which runs about 20x slower than the forward pass. The layer here computes the
same function as `flax.linen.ConvTranspose` (and `jax.lax.conv_transpose`) with explicit padding,
keeps XLA's input gradient, and computes the kernel gradient directly: only every `stride`-th tap of
the dilated input is non-zero, so

    dW[kh, kw] = sum_{b, i, j} x[b, i, j, :]^T  dy[b, s*i + p_lo - kh, s*j + p_lo - kw, :],

one strided slice of the zero-padded output gradient per kernel tap, contracted with the input.
Large batches run as micro-batches on XLA:CPU (`jgan.nn.micro_batch`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jgan.nn import micro_batch
from jgan.nn.micro_batch import map_rows, sum_rows

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _forward(x, kernel, strides, padding):
    return lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding=padding, lhs_dilation=strides,
        dimension_numbers=_DIMENSION_NUMBERS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x, kernel, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]):
    """`lax.conv_transpose(x, kernel, strides, padding)` in NHWC/HWIO with a fast kernel gradient.

    Args:
      x: input `[B, H, W, C_in]`.
      kernel: `[K_h, K_w, C_in, C_out]`.
      strides: `(s_h, s_w)`.
      padding: `((lo_h, hi_h), (lo_w, hi_w))`, applied to the stride-dilated input as in
        `lax.conv_transpose`; the output height is `s_h * (H - 1) + 1 + lo_h + hi_h - K_h + 1`.
    """
    return map_rows(lambda rows: _forward(rows, kernel, strides, padding), x,
                    max_rows=micro_batch.FORWARD_ROWS)


def _conv_transpose_fwd(x, kernel, strides, padding):
    return conv_transpose(x, kernel, strides, padding), (x, kernel)


def _kernel_gradient(x, dy, kernel_shape, strides, padding):
    k_h, k_w, c_in, c_out = kernel_shape
    (s_h, s_w), ((lo_h, _), (lo_w, _)) = strides, padding
    _, in_h, in_w, _ = x.shape
    # Pad dy so that every index s*i + lo - k (possibly negative or past the end) is in range.
    pad_h, pad_w = (k_h, s_h * in_h + k_h), (k_w, s_w * in_w + k_w)
    dy = jnp.pad(dy, ((0, 0), pad_h, pad_w, (0, 0)))
    taps = []
    for kh in range(k_h):
        for kw in range(k_w):
            start_h, start_w = lo_h - kh + pad_h[0], lo_w - kw + pad_w[0]
            taps.append(lax.slice(
                dy, (0, start_h, start_w, 0),
                (dy.shape[0], start_h + s_h * (in_h - 1) + 1, start_w + s_w * (in_w - 1) + 1,
                 c_out),
                (1, s_h, s_w, 1)))
    # Taps side by side on the channel axis make one [C_in, K*K*C_out] matrix product, which
    # XLA:CPU runs 1.5x faster than a contraction over a stacked leading tap axis.
    taps = jnp.concatenate(taps, axis=-1)  # [B, H, W, K_h * K_w * C_out]
    grad = jnp.einsum("bhwi,bhwo->io", x, taps, preferred_element_type=jnp.float32)
    return grad.reshape(c_in, k_h, k_w, c_out).transpose(1, 2, 0, 3).astype(x.dtype)


def _conv_transpose_bwd(strides, padding, residuals, dy):
    x, kernel = residuals

    def input_gradient(x_rows, dy_rows):
        _, input_vjp = jax.vjp(lambda x_: _forward(x_, kernel, strides, padding), x_rows)
        return input_vjp(dy_rows)[0]

    dkernel = sum_rows(
        lambda x_rows, dy_rows: _kernel_gradient(x_rows, dy_rows, kernel.shape, strides, padding),
        x, dy, max_rows=micro_batch.GRADIENT_ROWS)
    dx = map_rows(input_gradient, x, dy, max_rows=micro_batch.GRADIENT_ROWS)
    return dx, dkernel.astype(kernel.dtype)


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


def torch_style_padding(kernel_size: Sequence[int], padding: int) -> tuple[tuple[int, int], ...]:
    """Explicit lax padding for a transposed conv written as in the papers (and PyTorch).

    `ConvTranspose2d(k, stride=s, padding=p)` maps H to `s * (H - 1) + k - 2p`; on the dilated
    input that is a padding of `k - 1 - p` on each side.
    """
    return tuple((k - 1 - padding, k - 1 - padding) for k in kernel_size)


def apply_conv_layer(layer: nn.Module, x, op):
    """`op(x, kernel) + bias` with the kernel and bias of a Flax convolution layer: the parameter
    names, shapes and initial values of `flax.linen.Conv` and `ConvTranspose`.

    Call it from the layer's compact `__call__`; `layer` has features, kernel_size, use_bias,
    kernel_init and bias_init.
    """
    kernel = layer.param("kernel", layer.kernel_init,
                         (*layer.kernel_size, x.shape[-1], layer.features), jnp.float32)
    y = op(x, kernel.astype(x.dtype))
    if layer.use_bias:
        # Cast like the kernel, so a bf16 map stays bf16 (mixed precision).
        y = y + layer.param("bias", layer.bias_init, (layer.features,), jnp.float32).astype(y.dtype)
    return y


class ConvTranspose(nn.Module):
    """A 2-D transposed convolution, parameter-compatible with `flax.linen.ConvTranspose`.

    `padding` is the paper/PyTorch convention: kernel 4, stride 2, padding 1 doubles H and W.
    """

    features: int
    kernel_size: tuple[int, int] = (4, 4)
    strides: tuple[int, int] = (2, 2)
    padding: int = 1
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):  # [B, H, W, C_in] -> [B, H', W', features]
        padding = torch_style_padding(self.kernel_size, self.padding)
        return apply_conv_layer(
            self, x, lambda x, kernel: conv_transpose(x, kernel, tuple(self.strides), padding))

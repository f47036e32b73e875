"""Layers shared by the model families."""

from jgan.nn.transposed_conv import ConvTranspose, conv_transpose, torch_style_padding
from jgan.nn.maxout import Maxout

__all__ = ["ConvTranspose", "Maxout", "conv_transpose", "torch_style_padding"]

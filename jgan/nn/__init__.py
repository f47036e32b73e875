"""Layers shared by the model families."""

from jgan.nn.attention import SelfAttention
from jgan.nn.conditional_norm import BATCH_MOMENTS, ConditionalBatchNorm, standing_statistics
from jgan.nn.conditioning import concat_label_planes, concat_label_vector, one_hot_labels
from jgan.nn.features import sow_features, sown_features
from jgan.nn.gradient_reversal import reverse_gradient
from jgan.nn.maxout import Maxout
from jgan.nn.minibatch import MinibatchDiscrimination, pack_samples
from jgan.nn.noise import GaussianNoise
from jgan.nn.normalization import NORMS, conv_bias, norm_layer
from jgan.nn.pooling import MixedPooling
from jgan.nn.spectral_norm import SPECTRAL_STATS, maybe_spectral_norm
from jgan.nn.strided_conv import Conv, strided_conv
from jgan.nn.transposed_conv import ConvTranspose, conv_transpose, torch_style_padding
from jgan.nn.virtual_batch_norm import VirtualBatchNorm
from jgan.nn.weight_norm import WeightNormDense

__all__ = ["BATCH_MOMENTS", "ConditionalBatchNorm", "Conv", "ConvTranspose", "GaussianNoise",
           "Maxout", "MinibatchDiscrimination", "MixedPooling", "NORMS", "SPECTRAL_STATS",
           "SelfAttention", "VirtualBatchNorm", "WeightNormDense", "concat_label_planes",
           "concat_label_vector", "conv_bias", "conv_transpose", "maybe_spectral_norm",
           "norm_layer", "one_hot_labels", "pack_samples", "reverse_gradient", "sow_features",
           "sown_features", "standing_statistics", "strided_conv", "torch_style_padding"]

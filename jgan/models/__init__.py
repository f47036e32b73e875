"""Networks by architecture, free of training logic: each family module builds its own."""

from jgan.models.bigan import BiGANEncoder, BiGANGenerator, JointDiscriminator
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.mlp import (ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                             MLPDiscriminator, MLPGenerator)
from jgan.models.patchgan import (ImageDiscriminator, PatchDiscriminator, PixelDiscriminator,
                                  image_layers, patch_layers, pixel_layers, receptive_field)
from jgan.models.resnet_generator import ResNetGenerator
from jgan.models.toy import ACTIVATIONS, ToyDiscriminator, ToyGenerator
from jgan.models.unet import UNetGenerator, unet_skip_shapes

__all__ = ["ACTIVATIONS", "BiGANEncoder", "BiGANGenerator", "ConditionalMLPDiscriminator",
           "ConditionalMLPGenerator", "DCGANDiscriminator", "DCGANGenerator",
           "ImageDiscriminator", "JointDiscriminator", "MLPDiscriminator", "MLPGenerator",
           "PatchDiscriminator", "PixelDiscriminator", "ResNetGenerator", "ToyDiscriminator",
           "ToyGenerator", "UNetGenerator", "image_layers", "patch_layers", "pixel_layers",
           "receptive_field", "unet_skip_shapes"]

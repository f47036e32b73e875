"""Networks by architecture, free of training logic: each family module builds its own."""

from jgan.models.bigan import BiGANEncoder, BiGANGenerator, JointDiscriminator
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.mlp import (ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                             MLPDiscriminator, MLPGenerator)
from jgan.models.toy import ACTIVATIONS, ToyDiscriminator, ToyGenerator

__all__ = ["ACTIVATIONS", "BiGANEncoder", "BiGANGenerator", "ConditionalMLPDiscriminator",
           "ConditionalMLPGenerator", "DCGANDiscriminator", "DCGANGenerator",
           "JointDiscriminator", "MLPDiscriminator", "MLPGenerator", "ToyDiscriminator",
           "ToyGenerator"]

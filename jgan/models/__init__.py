"""Model families. `build_models` turns a model config into the named Flax modules of a run."""

from jgan.models.bigan import (BIGAN_ARCHS, BiGANEncoder, BiGANGenerator,
                               JointDiscriminator)
from jgan.models.cgan import ConditionalMLPDiscriminator, ConditionalMLPGenerator
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.gan import MLPDiscriminator, MLPGenerator
from jgan.models.toy import ACTIVATIONS, ToyDiscriminator, ToyGenerator

FAMILIES = ("gan", "bigan")
ARCHS = ("dcgan", "mlp", "toy")
CONDITIONINGS = ("none", "input", "auxiliary")


def build_bigan_models(model_cfg, image_shape: tuple[int, int, int]) -> dict:
    """BiGAN's networks by their state names: `{"g": G(z), "e": E(x), "d": D(x, z)}`."""
    common = dict(arch=model_cfg.arch, base_features=model_cfg.base_features,
                  hidden=model_cfg.hidden)
    return {"g": BiGANGenerator(image_shape, head=model_cfg.g_head, crop=model_cfg.g_crop,
                                **common),
            "e": BiGANEncoder(model_cfg.z_dim, downsample=model_cfg.downsample, **common),
            "d": JointDiscriminator(norm=model_cfg.d_norm, spectral_norm=model_cfg.spectral_norm,
                                    downsample=model_cfg.downsample, unary=model_cfg.unary,
                                    **common)}


def build_models(model_cfg, image_shape: tuple[int, int, int]) -> dict:
    """The networks of a GAN, by their state names: `{"g": generator, "d": discriminator}`.

    A conditional G (and, for conditioning "input", D) takes labels [B] after its image or z.
    The bigan family adds the encoder `"e"` (see `build_bigan_models`).
    """
    if model_cfg.family == "bigan":
        return build_bigan_models(model_cfg, image_shape)
    conditional = model_cfg.conditioning != "none"
    num_classes = model_cfg.num_classes if conditional else 0
    if model_cfg.arch == "dcgan":
        return {"g": DCGANGenerator(image_shape, model_cfg.base_features, num_classes),
                "d": DCGANDiscriminator(model_cfg.base_features, norm=model_cfg.d_norm,
                                        spectral_norm=model_cfg.spectral_norm,
                                        conditioning=model_cfg.conditioning,
                                        num_classes=num_classes)}
    if model_cfg.arch == "mlp":
        if model_cfg.conditioning == "input":
            return {"g": ConditionalMLPGenerator(image_shape, num_classes),
                    "d": ConditionalMLPDiscriminator(num_classes)}
        return {"g": MLPGenerator(image_shape, model_cfg.hidden), "d": MLPDiscriminator()}
    if model_cfg.arch == "toy":
        return {"g": ToyGenerator(model_cfg.hidden, model_cfg.g_layers, model_cfg.activation,
                                  out_dim=image_shape[-1]),
                "d": ToyDiscriminator(model_cfg.hidden, model_cfg.d_layers, model_cfg.activation,
                                      minibatch_kernels=model_cfg.minibatch_kernels,
                                      minibatch_kernel_dim=model_cfg.minibatch_kernel_dim,
                                      pack=model_cfg.pack)}
    raise ValueError(f"unknown model.arch {model_cfg.arch!r}: choose one of {list(ARCHS)}")


__all__ = ["ACTIVATIONS", "ARCHS", "BIGAN_ARCHS", "BiGANEncoder", "BiGANGenerator", "CONDITIONINGS",
           "ConditionalMLPDiscriminator", "ConditionalMLPGenerator", "DCGANDiscriminator",
           "DCGANGenerator", "FAMILIES", "JointDiscriminator", "MLPDiscriminator", "MLPGenerator",
           "ToyDiscriminator", "ToyGenerator", "build_bigan_models", "build_models"]

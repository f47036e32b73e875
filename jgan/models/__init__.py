"""Model families. `build_models` turns a model config into the named Flax modules of a run."""

from jgan.models.cgan import ConditionalMLPDiscriminator, ConditionalMLPGenerator
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.gan import MLPDiscriminator, MLPGenerator

ARCHS = ("dcgan", "mlp")
CONDITIONINGS = ("none", "input", "auxiliary")


def build_models(model_cfg, image_shape: tuple[int, int, int]) -> dict:
    """The networks of a GAN, by their state names: `{"g": generator, "d": discriminator}`.

    A conditional G (and, for conditioning "input", D) takes labels [B] after its image or z.
    """
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
    raise ValueError(f"unknown model.arch {model_cfg.arch!r}: choose one of {list(ARCHS)}")


__all__ = ["ARCHS", "CONDITIONINGS", "ConditionalMLPDiscriminator", "ConditionalMLPGenerator",
           "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator",
           "build_models"]

"""Model families. `build_models` turns a model config into the named Flax modules of a run."""

from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.gan import MLPDiscriminator, MLPGenerator


def build_models(model_cfg, image_shape: tuple[int, int, int]) -> dict:
    """The networks of a GAN, by their state names: `{"g": generator, "d": discriminator}`."""
    if model_cfg.arch == "dcgan":
        return {"g": DCGANGenerator(image_shape, model_cfg.base_features),
                "d": DCGANDiscriminator(model_cfg.base_features)}
    if model_cfg.arch == "mlp":
        return {"g": MLPGenerator(image_shape, model_cfg.hidden),
                "d": MLPDiscriminator()}
    raise ValueError(f"unknown model.arch {model_cfg.arch!r}: choose 'dcgan' or 'mlp'")


__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator",
           "build_models"]

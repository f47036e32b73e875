import jax
import jax.numpy as jnp
import pytest

from jgan.config import ModelConfig
from jgan.models import build_models
from jgan.models.dcgan import num_resolution_stages


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_generator_and_discriminator_shapes(arch, image_shape):
    models = build_models(ModelConfig(arch=arch, z_dim=8, base_features=4, hidden=16),
                          image_shape)
    z = jnp.zeros((3, 8))
    images, _ = models["g"].init_with_output(jax.random.key(0), z, train=False)
    assert images.shape == (3, *image_shape)
    assert float(jnp.abs(images).max()) <= 1.0
    logits, _ = models["d"].init_with_output({"params": jax.random.key(1),
                                              "dropout": jax.random.key(2)}, images, train=False)
    assert logits.shape == (3,)


def test_dcgan_stages_follow_image_size():
    assert [num_resolution_stages(s) for s in (28, 32, 64)] == [2, 3, 4]
    with pytest.raises(ValueError, match="does not halve"):
        num_resolution_stages(30)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown model.arch"):
        build_models(ModelConfig(arch="resnet"), (28, 28, 1))

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import build, drawn_variables, tiny_bigan_config, tiny_config
from jgan import losses
from jgan.errors import UserError
from jgan.families.gan import GANModelConfig, build_networks
from jgan.families.gan.dcgan import num_resolution_stages


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_generator_and_discriminator_shapes(arch, image_shape):
    models = build_networks(GANModelConfig(arch=arch, z_dim=8, base_features=4, hidden=16),
                            image_shape)
    # G runs on drawn weights (compiling a random init takes seconds); D's shape is traced.
    g, d = models["g"], models["d"]
    z = jnp.zeros((3, 8))
    images = jax.jit(lambda v: g.apply(v, z, train=False))(drawn_variables(g, z, train=False))
    assert images.shape == (3, *image_shape)
    assert float(jnp.abs(images).max()) <= 1.0
    logits = jax.eval_shape(lambda keys: d.init_with_output(keys, images, train=False)[0],
                            {"params": jax.random.key(1), "dropout": jax.random.key(2)})
    assert logits.shape == (3,)


def test_dcgan_stages_follow_image_size():
    assert [num_resolution_stages(s) for s in (28, 32, 64)] == [2, 3, 4]
    with pytest.raises(ValueError, match="does not halve"):
        num_resolution_stages(30)


@pytest.mark.parametrize("tiny,archs", [(tiny_config, r"\['dcgan', 'mlp', 'toy'\]"),
                                        (tiny_bigan_config, r"\['mlp', 'dcgan', 'unet'\]")])
def test_unknown_architecture_is_refused(tiny, archs):
    with pytest.raises(UserError, match=r"^model.arch='resnet' is unknown: choose one of "
                                        + archs + "$"):
        build(tiny("resnet"))


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_conditional_generator_output_changes_with_the_label(arch):
    models = build_networks(GANModelConfig(arch=arch, z_dim=8, base_features=4,
                                           conditioning="input", num_classes=10), (28, 28, 1))
    z = jnp.tile(jax.random.normal(jax.random.key(0), (1, 8)), (3, 1))
    labels = jnp.array([0, 1, 0])
    variables = models["g"].init(jax.random.key(1), z, labels, train=False)
    images = models["g"].apply(variables, z, labels, train=False, mutable=["batch_stats"])[0]
    assert images.shape == (3, 28, 28, 1)
    assert float(jnp.abs(images[0] - images[1]).max()) > 1e-4  # same z, other label
    # Same z, same label. Rows 0 and 2 of one call, so to rounding: a matmul kernel may sum a
    # block's leftover rows in another order, and where the blocks end depends on the processor.
    np.testing.assert_allclose(images[0], images[2], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="pass labels"):
        models["g"].apply(variables, z, train=False, mutable=["batch_stats"])


@pytest.mark.slow
def test_conditional_discriminators_see_or_predict_the_label():
    images = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    same_image = jnp.concatenate([images[:1], images[:1]])
    d = build_networks(GANModelConfig(base_features=4, conditioning="input", num_classes=10),
                       (28, 28, 1))["d"]
    labels = jnp.array([2, 5])
    out = d.apply(drawn_variables(d, same_image, labels, train=False), same_image, labels,
                  train=False)
    assert out.shape == (2,) and float(jnp.abs(out[0] - out[1])) > 0  # one image, two labels
    # ACGAN's D predicts the class from the image, through the trunk its real/fake unit reads.
    d = build_networks(GANModelConfig(base_features=4, conditioning="auxiliary", num_classes=10),
                       (28, 28, 1))["d"]
    batch = jnp.concatenate([same_image, images[1:]])  # a, a, b
    variables = drawn_variables(d, batch, train=False)

    def class_loss(params, labels):
        _, class_logits = d.apply({**variables, "params": params}, batch, train=False)
        return losses.classification_loss(class_logits=class_logits, labels=labels)

    logits, class_logits = d.apply(variables, batch, train=False)
    assert logits.shape == (3,) and class_logits.shape == (3, 10)
    scale = float(jnp.abs(class_logits[0]).max())
    # One image in rows 0 and 1: equal to rounding (rows of one call, as for G above).
    np.testing.assert_allclose(class_logits[0], class_logits[1], rtol=1e-6, atol=1e-6 * scale)
    assert float(jnp.abs(class_logits[2] - class_logits[0]).max()) > 0.1 * scale
    # The class loss trains the shared features, not the class head alone.
    grads = jax.grad(class_loss)(variables["params"], jnp.array([2, 2, 7]))
    trunk = [name for name in grads if name.startswith("Conv")]
    assert trunk and all(float(jnp.abs(grads[name]["kernel"]).max()) > 0 for name in trunk)


@pytest.mark.parametrize("kernels", [0, 3])
def test_minibatch_discrimination_makes_each_dcgan_logit_see_the_batch(kernels):
    # Salimans et al. 2016, Sec. 3.2: with kernels, changing example 3 moves the logits of
    # examples 0-2; without, D judges each image alone (eval mode, no BatchNorm).
    d = build_networks(GANModelConfig(base_features=4, d_norm="none", minibatch_kernels=kernels,
                                      minibatch_kernel_dim=2), (28, 28, 1))["d"]
    images = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
    variables = drawn_variables(d, images, train=False)
    trunk = 7 * 7 * 8  # two stages of 4 and 8 features down to 7x7
    assert variables["params"]["Dense_0"]["kernel"].shape == (trunk + kernels, 1)
    if kernels:
        assert variables["params"]["MinibatchDiscrimination_0"]["kernel"].shape == (trunk, 3 * 2)
    apply = jax.jit(lambda x: d.apply(variables, x, train=False))
    before, after = apply(images), apply(images.at[3].set(-images[3]))
    if kernels:
        assert float(jnp.abs(after[:3] - before[:3]).min()) > 1e-5
    else:
        np.testing.assert_array_equal(after[:3], before[:3])


@pytest.mark.parametrize("arch, conditioning", [("dcgan", "input"), ("dcgan", "auxiliary"),
                                                ("mlp", "none"), ("mlp", "input")])
def test_conditional_and_mlp_discriminators_take_minibatch_kernels(arch, conditioning):
    d = build_networks(GANModelConfig(arch=arch, base_features=4, conditioning=conditioning,
                                      minibatch_kernels=3, minibatch_kernel_dim=2),
                       (28, 28, 1))["d"]
    images, labels = jnp.zeros((5, 28, 28, 1)), jnp.zeros((5,), jnp.int32)
    args = (images, labels) if conditioning == "input" else (images,)
    out, variables = jax.eval_shape(
        lambda keys: d.init_with_output(keys, *args, train=False),
        {"params": jax.random.key(1), "dropout": jax.random.key(2)})
    logits = out[0] if conditioning == "auxiliary" else out
    assert logits.shape == (5,)
    assert variables["params"]["MinibatchDiscrimination_0"]["kernel"].shape[-1] == 3 * 2

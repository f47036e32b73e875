"""The image-to-image networks of Pix2Pix and CycleGAN, at tiny widths: shapes, skips, dropout
noise, parameter counts and the PatchGAN's receptive field, from its geometry and measured."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.families.translation.patchgan import (ImageDiscriminator, PatchDiscriminator,
                                                PixelDiscriminator, image_layers, patch_layers,
                                                pixel_layers, receptive_field)
from jgan.families.translation.resnet_generator import (DoublingConvTranspose, ResNetBlock,
                                                        ResNetGenerator)
from jgan.families.translation.unet import UNetGenerator, unet_skip_shapes
from jgan.nn import ConvTranspose, norm_layer

KEYS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}


def images(shape, seed=2):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), jnp.float32)


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def host_variables(model, x, seed: int = 0):
    """`model`'s variables for input `x` with weights drawn by numpy: the shapes come from
    `jax.eval_shape`, which spares a busy CPU compiling a threefry program (seconds) per kernel.
    Kernels are scaled by 1/sqrt(fan in) so that signals keep their size through many layers."""
    shapes = jax.eval_shape(lambda x: model.init(KEYS, x, train=False), x)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("mean", "var", "scale"):
            return jnp.full(leaf.shape, float(name != "mean"))
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if name == "kernel" else 0.1
        return jnp.asarray(rng.normal(0.0, scale, leaf.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def forward(model, x, *, dropout_seed: int = 1, train: bool = False):
    """One jitted forward pass: the output and the shapes `model` sows ([h, w, c] by name)."""
    variables = host_variables(model, x)
    out, sown = jax.jit(lambda v, x, key: model.apply(
        v, x, train=train, rngs={"dropout": key}, mutable=["intermediates", "batch_stats"]))(
            variables, x, jax.random.key(dropout_seed))
    shapes = {name: tuple(value[0].shape[1:])
              for name, value in sown.get("intermediates", {}).items()}
    return out, shapes


def abstract_forward(model, x):
    """`forward` without computing: the output's and the sown arrays' shapes."""
    def run(x):
        variables = model.init(KEYS, x, train=False)
        return model.apply(variables, x, train=False, rngs={"dropout": KEYS["dropout"]},
                           mutable=["intermediates"])
    out, sown = jax.eval_shape(run, x)
    return out, {name: tuple(value[0].shape[1:]) for name, value in sown["intermediates"].items()}


def test_unet_skips_have_the_reference_shapes_at_every_level():
    model = UNetGenerator(out_channels=2, depth=5, base_features=4)
    out, shapes = forward(model, images((2, 32, 32, 3)))
    # Levels 1..4 concatenate [down input, up output]: 4, 8, 16, 32 channels twice over.
    assert shapes == {"skip_1": (16, 16, 8), "skip_2": (8, 8, 16), "skip_3": (4, 4, 32),
                      "skip_4": (2, 2, 64), "bottleneck": (1, 1, 32)}
    assert shapes == unet_skip_shapes((32, 32, 3), depth=5, base_features=4)
    assert out.shape == (2, 32, 32, 2)
    assert 0.0 < float(jnp.abs(out).max()) <= 1.0


def test_unet_skips_carry_their_level_s_encoder_activation_to_the_decoder():
    # Skip i concatenates the input of down level i (what level i - 1 ends with: its conv at
    # level 0, its norm at the others) with the output of up level i (its norm), and up level
    # i - 1's transposed convolution reads it through a ReLU. (The reference's in-place LeakyReLU makes
    # it concatenate the activated down input; behind that ReLU the two are the same.)
    depth = 5
    model = UNetGenerator(out_channels=2, depth=depth, base_features=4)
    x = images((2, 32, 32, 3))
    variables = host_variables(model, x)
    _, captured = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True,
                                                   mutable=["intermediates"]))(variables, x)
    # Module outputs by name: Conv_k is down level k; BatchNorm_0 .. depth - 3 are the norms of
    # down levels 1 .. depth - 2, the rest those of up levels depth - 1 .. 1; ConvTranspose_k
    # is up level depth - 1 - k, and ConvTranspose_(depth - 1) the outermost.
    out = {name: value["__call__"][0] if isinstance(value, dict) else value[0]
           for name, value in captured["intermediates"].items()}
    for level in range(1, depth):
        encoder = out["Conv_0"] if level == 1 else out[f"BatchNorm_{level - 2}"]
        decoder = out[f"BatchNorm_{2 * depth - 3 - level}"]
        skip = out[f"skip_{level}"]
        np.testing.assert_array_equal(skip, jnp.concatenate([encoder, decoder], axis=-1))
        reader = variables["params"][f"ConvTranspose_{depth - level}"]
        layer = ConvTranspose(reader["kernel"].shape[-1], use_bias="bias" in reader)
        np.testing.assert_allclose(out[f"ConvTranspose_{depth - level}"],
                                   layer.apply({"params": reader}, nn.relu(skip)),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size,depth", [(128, 7), (256, 8)])  # unet_128, unet_256
def test_unet_128_and_256_reach_a_1x1_bottleneck(size, depth):
    model = UNetGenerator(out_channels=3, depth=depth, base_features=2)
    out, shapes = abstract_forward(model, jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    assert shapes["bottleneck"] == (1, 1, 16)
    assert shapes == unet_skip_shapes((size, size, 3), depth=depth, base_features=2)
    assert out.shape == (1, size, size, 3)


def test_unet_refuses_a_size_that_does_not_halve_depth_times():
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 32, got 48x48"):
        abstract_forward(UNetGenerator(out_channels=3, depth=5, base_features=2),
                         jax.ShapeDtypeStruct((1, 48, 48, 3), jnp.float32))


def test_unet_dropout_is_noise_at_inference_and_off_at_zero():
    x = images((1, 64, 64, 3))
    noisy = UNetGenerator(out_channels=3, depth=6, base_features=4)  # one 8ngf dropout level
    variables = host_variables(noisy, x)

    def translator(model):  # one compiled inference pass, called with several dropout keys
        return jax.jit(lambda seed: model.apply(
            variables, x, train=False, rngs={"dropout": jax.random.key(seed)}))

    translate = translator(noisy)
    first, again, other = (translate(seed) for seed in (5, 5, 6))
    assert float(jnp.abs(first - other).max()) > 1e-3
    np.testing.assert_array_equal(first, again)
    translate = translator(noisy.clone(dropout=0.0))
    np.testing.assert_array_equal(translate(5), translate(6))


def test_doubling_transposed_conv_is_torchs_output_padding():
    x = images((1, 3, 4, 2))
    layer = DoublingConvTranspose(features=1, use_bias=False)
    variables = {"params": {"kernel": images((3, 3, 2, 1), seed=3)}}
    y = layer.apply(variables, x)
    kernel = np.asarray(variables["params"]["kernel"])[..., 0]  # [3, 3, C_in]
    # PyTorch's ConvTranspose2d(3, stride=2, padding=1, output_padding=1): x[i] lands on
    # out[2i - 1 + k]; jax's transposed convolution reads the kernel flipped.
    expected = np.zeros((6, 8))
    for i in range(3):
        for j in range(4):
            for kh in range(3):
                for kw in range(3):
                    oh, ow = 2 * i - 1 + kh, 2 * j - 1 + kw
                    if 0 <= oh < 6 and 0 <= ow < 8:
                        expected[oh, ow] += np.asarray(x)[0, i, j] @ kernel[2 - kh, 2 - kw]
    np.testing.assert_allclose(y[0, ..., 0], expected, rtol=1e-5, atol=1e-6)


def test_resnet_generator_keeps_the_image_shape():
    model = ResNetGenerator(out_channels=2, num_blocks=2, base_features=4)
    out, _ = forward(model, images((2, 32, 32, 3)))
    assert out.shape == (2, 32, 32, 2)
    assert 0.0 < float(jnp.abs(out).max()) <= 1.0
    with pytest.raises(ValueError, match="divisible by 4, got 30x30"):
        abstract_forward(model, jax.ShapeDtypeStruct((1, 30, 30, 3), jnp.float32))


def test_resnet_9_and_6_blocks_differ_by_three_blocks_of_parameters():
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)

    def params(model, x):
        return count(jax.eval_shape(lambda x: model.init(KEYS, x, train=False), x)["params"])

    nine, six = (params(ResNetGenerator(3, num_blocks=n, base_features=4), x) for n in (9, 6))
    width = 16  # 4 * base_features at the blocks' resolution
    block = params(ResNetBlock(), jax.ShapeDtypeStruct((1, 8, 8, width), jnp.float32))
    assert block == 2 * (3 * 3 * width * width + width)  # two biased convs, no affine norm
    assert nine - six == 3 * block


def test_patchgan_receptive_fields_from_the_geometry():
    assert receptive_field(patch_layers()) == 70
    assert [receptive_field(patch_layers(n)) for n in (1, 5)] == [16, 286]
    assert receptive_field(pixel_layers()) == 1
    assert receptive_field(image_layers(64)) >= 64
    with pytest.raises(ValueError, match="num_layers >= 1"):
        patch_layers(0)


def input_extent(model, size: int, position: int):
    """The rows and columns of the input that the output unit at (position, position) sees,
    from the gradient's non-zero support (BatchNorm with running statistics: no batch mixing)."""
    x = images((1, size, size, 3))
    variables = host_variables(model, x)
    grad = jax.jit(jax.grad(
        lambda x: model.apply(variables, x, train=False)[0, position, position, 0]))(x)
    support = np.abs(np.asarray(grad[0])).sum(-1) > 0
    rows, cols = np.nonzero(support.any(1))[0], np.nonzero(support.any(0))[0]
    return support, rows, cols


@pytest.mark.parametrize("num_layers,field", [(3, 70), (1, 16)])
def test_patchgan_receptive_field_measured_by_gradient(num_layers, field):
    model = PatchDiscriminator(base_features=4, num_layers=num_layers)
    # On 128x128 the 70x70 field of the middle output unit (7 of 14) lies inside the image.
    support, rows, cols = input_extent(model, 128, 7)
    assert rows[-1] - rows[0] + 1 == field and cols[-1] - cols[0] + 1 == field
    assert 0 < rows[0] and rows[-1] < 127
    assert support.sum() == field * field  # a full square, no holes


def test_pixel_discriminator_sees_one_pixel():
    model = PixelDiscriminator(base_features=4)
    support, rows, cols = input_extent(model, 8, 3)
    assert list(rows) == [3] and list(cols) == [3] and support.sum() == 1


@pytest.mark.parametrize("size,side", [(256, 30), (128, 14)])
def test_patchgan_output_map_matches_the_reference(size, side):
    x = jax.ShapeDtypeStruct((2, size, size, 6), jnp.float32)  # Pix2Pix's D sees (A, B) pairs
    out, _ = jax.eval_shape(
        lambda x: PatchDiscriminator().init_with_output(KEYS, x, train=False), x)
    assert out.shape == (2, side, side, 1)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_pixel_and_image_discriminators_output_shapes(norm):
    x = images((2, 16, 16, 3))
    pixel, _ = forward(PixelDiscriminator(base_features=4, norm=norm), x, train=True)
    assert pixel.shape == (2, 16, 16, 1)
    whole, _ = forward(ImageDiscriminator(base_features=4, norm=norm), x, train=True)
    assert whole.shape == (2, 1, 1, 1)
    assert float(jnp.abs(whole[0] - whole[1]).max()) > 0.0


class _Norm(nn.Module):
    norm: str

    @nn.compact
    def __call__(self, x, train):
        return norm_layer(self.norm, train=train)(x)


def test_norm_layers_by_name():
    x = 3.0 + images((2, 4, 4, 3))
    out, variables = _Norm("instance").init_with_output(KEYS, x, train=True)
    assert not variables  # affine=False, no running statistics
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    variables = jax.eval_shape(lambda x: _Norm("batch").init(KEYS, x, train=True), x)
    assert set(variables) == {"params", "batch_stats"}
    np.testing.assert_array_equal(_Norm("none").apply({}, x, train=True), x)
    with pytest.raises(ValueError, match=r"norm='layer' is unknown"):
        jax.eval_shape(lambda x: _Norm("layer").init(KEYS, x, train=True), x)

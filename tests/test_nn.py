import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.nn import SPECTRAL_STATS, Conv, ConvTranspose, Maxout, maybe_spectral_norm


@pytest.mark.parametrize("shape,features,kernel,stride,padding", [
    ((2, 7, 7, 16), 8, 4, 2, 1),  # DCGAN's 2x up-sampling
    ((2, 5, 6, 3), 4, 3, 2, 0),
    ((1, 4, 4, 8), 2, 5, 1, 2),
    # Inputs smaller than the kernel once dilated, which XLA:CPU convolves with its operands
    # swapped: the U-Net's innermost up-samplings, and a 1x1 projection.
    ((2, 2, 2, 16), 8, 4, 2, 1),
    ((2, 1, 3, 4), 3, 4, 2, 1),
    ((3, 1, 1, 6), 5, 4, 1, 0),
])
def test_conv_transpose_matches_flax_in_value_and_gradient(shape, features, kernel, stride,
                                                           padding):
    x = jax.random.normal(jax.random.key(0), shape)
    ours = ConvTranspose(features, (kernel, kernel), (stride, stride), padding)
    lax_pad = ((kernel - 1 - padding,) * 2,) * 2
    reference = nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride),
                                 padding=lax_pad)
    variables = reference.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == \
        jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x),
                               rtol=1e-5, atol=1e-5)

    def loss(module):
        return lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))

    grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
    expected = jax.grad(loss(reference), argnums=(0, 1))(variables, x)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_doubles_resolution_like_the_papers():
    y, _ = ConvTranspose(3).init_with_output(jax.random.key(0), jnp.zeros((2, 7, 7, 5)))
    assert y.shape == (2, 14, 14, 3)


def test_maxout_is_max_over_pieces():
    layer = Maxout(features=2, pieces=3)
    x = jax.random.normal(jax.random.key(0), (4, 5))
    variables = layer.init(jax.random.key(1), x)
    dense = variables["params"]["Dense_0"]
    affine = (x @ dense["kernel"] + dense["bias"]).reshape(4, 2, 3)
    np.testing.assert_allclose(layer.apply(variables, x), affine.max(-1), rtol=1e-6)


class _SpectralNormed(nn.Module):
    layer: nn.Module

    @nn.compact
    def __call__(self, x, *, train: bool):
        return maybe_spectral_norm(self.layer, x, enabled=True, train=train)


@pytest.mark.parametrize("layer,shape", [(nn.Dense(6), (4, 10)),
                                         (nn.Conv(5, (3, 3)), (2, 6, 6, 4))])
def test_spectral_norm_sigma_is_about_one_after_power_iterations(layer, shape):
    x = jax.random.normal(jax.random.key(0), shape)
    module = _SpectralNormed(layer)
    variables = module.init(jax.random.key(1), x, train=True)
    variables = {"params": jax.tree.map(lambda w: 3.0 * w, variables["params"]),
                 SPECTRAL_STATS: variables[SPECTRAL_STATS]}
    for _ in range(50):  # one power iteration per training call
        _, updates = module.apply(variables, x, train=True, mutable=[SPECTRAL_STATS])
        variables = {**variables, **updates}
    kernel = variables["params"]["layer"]["kernel"]
    matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
    (sigma,) = [v for path, v in jax.tree_util.tree_leaves_with_path(variables[SPECTRAL_STATS])
                if "sigma" in jax.tree_util.keystr(path)]
    true_sigma = np.linalg.svd(matrix, compute_uv=False)[0]
    np.testing.assert_allclose(sigma, true_sigma, rtol=1e-3)
    normalized = np.linalg.svd(matrix / np.asarray(sigma), compute_uv=False)[0]
    np.testing.assert_allclose(normalized, 1.0, rtol=1e-3)
    # The layer really uses W / sigma: its output is that of the normalized kernel.
    out = module.apply(variables, x, train=False)
    plain = layer.clone(parent=None).apply(
        {"params": {**variables["params"]["layer"],
                    "kernel": kernel / np.asarray(sigma)}}, x)
    np.testing.assert_allclose(out, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((2, 28, 28, 3), 4, 2, ((1, 1), (1, 1))),  # DCGAN's D
    ((2, 7, 7, 4), 3, 2, ((0, 0), (0, 0))),  # a row no window reaches
    ((2, 9, 9, 2), 4, 2, ((1, 2), (1, 2))),
    ((1, 8, 8, 3), 3, 1, ((1, 1), (1, 1))),
    ((2, 4, 4, 3), 4, 2, ((1, 1), (1, 1))),  # its input gradient up-samples a 2x2 map
])
def test_conv_matches_flax_to_second_order(shape, kernel, stride, padding):
    x = jax.random.normal(jax.random.key(0), shape)
    ours = Conv(5, (kernel, kernel), strides=(stride, stride), padding=padding)
    reference = nn.Conv(5, (kernel, kernel), strides=(stride, stride), padding=padding)
    variables = reference.init(jax.random.key(1), x)
    mine = ours.init(jax.random.key(1), x)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(mine),
                                                    jax.tree.leaves(variables)))
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x),
                               rtol=1e-5, atol=1e-5)

    def first_order(module):
        return lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))

    def penalty(module):  # a gradient penalty: the input gradient, differentiated by weights
        return lambda v: jnp.sum(jax.grad(first_order(module), argnums=1)(v, x) ** 2)

    for got, want in [(jax.grad(first_order(ours), argnums=(0, 1))(variables, x),
                       jax.grad(first_order(reference), argnums=(0, 1))(variables, x)),
                      (jax.grad(penalty(ours))(variables), jax.grad(penalty(reference))(variables))]:
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.nn import ConvTranspose, Maxout


@pytest.mark.parametrize("shape,features,kernel,stride,padding", [
    ((2, 7, 7, 16), 8, 4, 2, 1),  # DCGAN's 2x up-sampling
    ((2, 5, 6, 3), 4, 3, 2, 0),
    ((1, 4, 4, 8), 2, 5, 1, 2),
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

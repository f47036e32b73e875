"""Weight clipping as an optax transform; StyleGAN2's lazy-regularization correction."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.optim import clip_weights, lazy_regularization

LIMIT = 0.01


def _run(tx, params, grads_at, steps):
    state = tx.init(params)
    history = []
    for step in range(steps):
        updates, state = tx.update(grads_at(step), state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history


def _large_grads(params):
    def grads_at(step):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(0), step), 2)
        return {"moving": 1e3 * jax.random.normal(keys[0], params["moving"].shape),
                "kernel": 1e3 * jax.random.normal(keys[1], params["kernel"].shape),
                "still": jnp.zeros_like(params["still"])}
    return grads_at


PARAMS = {"moving": jnp.array([0.5, -2.0, 0.005, -0.003]),  # two start outside the range
          "kernel": jnp.full((3, 3), 3.0),
          "still": jnp.array([0.004, -0.0099, 0.0])}


def test_clip_weights_keeps_every_parameter_in_range():
    tx = optax.chain(optax.rmsprop(0.1), clip_weights(LIMIT))
    history = _run(tx, PARAMS, _large_grads(PARAMS), steps=6)
    # The first step jumps from |p| up to 3: one rounding of p + (clip - p) at that magnitude.
    for name, leaf in history[0].items():
        slack = np.spacing(np.float32(np.max(np.abs(PARAMS[name]))))
        assert np.max(np.abs(leaf)) <= LIMIT + slack, name
    for params in history[1:]:
        for name, leaf in params.items():
            assert np.max(np.abs(leaf)) <= LIMIT * (1 + 1e-6), (name, leaf)
    # clipping binds: the large gradients push parameters to the boundary
    np.testing.assert_allclose(np.max(np.abs(history[-1]["kernel"])), LIMIT, rtol=1e-6)


def test_without_clipping_the_same_run_leaves_the_range():
    history = _run(optax.rmsprop(0.1), PARAMS, _large_grads(PARAMS), steps=6)
    assert max(float(jnp.max(jnp.abs(leaf))) for leaf in history[-1].values()) > 10 * LIMIT


def test_clip_weights_leaves_in_range_parameters_without_gradient_unchanged():
    tx = optax.chain(optax.rmsprop(0.1), clip_weights(LIMIT))
    history = _run(tx, PARAMS, _large_grads(PARAMS), steps=6)
    for params in history:
        assert jnp.array_equal(params["still"], PARAMS["still"])


def test_clip_weights_refuses_missing_params():
    tx = clip_weights(LIMIT)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="clip_weights needs the parameters"):
        tx.update(PARAMS, state)
    with pytest.raises(ValueError, match="limit must be positive"):
        clip_weights(0.0)


def test_lazy_regularization_by_hand():
    # interval 16: c = 16 / 17; lr 0.002 -> 0.002 * 16 / 17, beta 0.99 -> 0.99 ** (16 / 17)
    lr, b1, b2 = lazy_regularization(0.002, 0.5, 0.99, interval=16)
    np.testing.assert_allclose(lr, 0.002 * 16 / 17, rtol=1e-12)
    np.testing.assert_allclose(b1, 0.5 ** (16 / 17), rtol=1e-12)
    np.testing.assert_allclose(b2, 0.99 ** (16 / 17), rtol=1e-12)
    assert lr < 0.002 and b1 > 0.5 and b2 > 0.99  # a shorter step, a longer memory per step


def test_lazy_regularization_identity_without_extra_steps():
    assert lazy_regularization(0.002, 0.0, 0.99, interval=1) == (0.002, 0.0, 0.99)
    assert lazy_regularization(0.002, 0.0, 0.99, interval=0) == (0.002, 0.0, 0.99)
    with pytest.raises(ValueError, match="interval must be >= 0"):
        lazy_regularization(0.002, 0.0, 0.99, interval=-1)

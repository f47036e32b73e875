"""Micro-batched convolutions equal the single-call ones: forward, VJP and second order."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgan.nn.micro_batch as micro_batch
from jgan.nn import conv_transpose, strided_conv
from jgan.nn.micro_batch import merge_rows, micro_batch_count, split_rows

from conftest import QUICK_COMPILE_FLAGS, REPO

STRIDED = (lambda x, k: strided_conv(x, k, (2, 2), ((1, 1), (1, 1))), (12, 8, 8, 3),
           (4, 4, 3, 5))
TRANSPOSED = (lambda x, k: conv_transpose(x, k, (2, 2), ((2, 2), (2, 2))), (12, 4, 4, 5),
              (4, 4, 5, 3))


def test_micro_batch_count_takes_the_fewest_equal_parts_of_at_most_max_rows():
    assert micro_batch_count(64, 32) == 1  # the paper's batch runs in one call, as before
    assert micro_batch_count(256, 64) == 4
    assert micro_batch_count(256, 32) == 8
    assert micro_batch_count(100, 64) == 2
    assert micro_batch_count(192, 64) == 3
    assert micro_batch_count(320, 64) == 5
    assert micro_batch_count(130, 64) == 5  # 3 does not divide 130: parts of 26
    assert micro_batch_count(67, 64) == 1  # no 2 to 4 equal parts: one call, as before


def test_micro_batches_interleave_rows_and_merge_back():
    x = jnp.arange(12).reshape(6, 2)
    parts = split_rows(x, 3)
    np.testing.assert_array_equal(parts[1], [[2, 3], [8, 9]])  # rows 1 and 4
    np.testing.assert_array_equal(merge_rows(parts), x)


def _split_above(monkeypatch, rows: int, forward_rows: int = 4, gradient_rows: int = 3):
    monkeypatch.setattr(micro_batch, "SPLIT_ABOVE", rows)
    monkeypatch.setattr(micro_batch, "FORWARD_ROWS", forward_rows)
    monkeypatch.setattr(micro_batch, "GRADIENT_ROWS", gradient_rows)


def _both_ways(fn, monkeypatch):
    """fn() with every batch in one call, then split into micro-batches of 4 rows for outputs
    and 3 for gradients (the batch of 12 runs as 3 and as 4 calls)."""
    _split_above(monkeypatch, 10**6)
    jax.clear_caches()  # the split is decided when a function is traced: trace it afresh
    whole = fn()
    _split_above(monkeypatch, 1)
    jax.clear_caches()
    return whole, fn()


def _inputs(x_shape, k_shape):
    x = jax.random.normal(jax.random.key(0), x_shape)
    return x, 0.3 * jax.random.normal(jax.random.key(1), k_shape)


@pytest.mark.slow
@pytest.mark.parametrize("op,x_shape,k_shape", [STRIDED, TRANSPOSED], ids=["strided", "transposed"])
def test_micro_batched_convolution_equals_one_call_in_value_and_vjp(op, x_shape, k_shape,
                                                                    monkeypatch):
    x, kernel = _inputs(x_shape, k_shape)

    def value_and_grads():
        loss = lambda x_, k_: jnp.sum(jnp.sin(op(x_, k_)))  # noqa: E731
        return op(x, kernel), jax.grad(loss, argnums=(0, 1))(x, kernel)

    whole, split = _both_ways(value_and_grads, monkeypatch)
    calls = _both_ways(lambda: str(jax.make_jaxpr(value_and_grads)()).count("conv_general"),
                       monkeypatch)
    assert calls[1] >= 3 * calls[0]  # the split really ran: 3 or 4 calls for each one
    for got, want in zip(jax.tree.leaves(split), jax.tree.leaves(whole)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_micro_batched_gradient_penalty_equals_one_call_to_second_order(monkeypatch):
    """WGAN-GP differentiates the input gradient by the weights: that passes through the
    micro-batched transposed convolution inside the strided convolution's VJP."""
    op, x_shape, k_shape = STRIDED
    x, kernel = _inputs(x_shape, k_shape)

    def penalty(k):
        input_grad = jax.grad(lambda x_: jnp.sum(jnp.tanh(op(x_, k))))(x)
        return jnp.mean((jnp.sqrt(jnp.sum(input_grad**2, axis=(1, 2, 3))) - 1.0) ** 2)

    whole, split = _both_ways(lambda: jax.value_and_grad(penalty)(kernel), monkeypatch)
    np.testing.assert_allclose(split[0], whole[0], rtol=1e-5)
    scale = float(jnp.max(jnp.abs(whole[1])))
    assert scale > 1e-3  # the penalty's gradient is not trivially 0
    # Summation order differs: entries that cancel to ~1e-3 of the scale keep absolute precision.
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-4, atol=1e-6 * scale)


@pytest.mark.slow
def test_micro_batches_over_8_devices_equal_one_device():
    """A batch split over devices in blocks: the interleaved micro-batches take an equal share
    from every device, and the jitted, sharded gradient equals the one-device one."""
    script = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        import jgan.nn.micro_batch as micro_batch
        from jgan.nn import strided_conv
        from jgan.train.parallel import batch_split, make_mesh, replicated
        micro_batch.SPLIT_ABOVE, micro_batch.FORWARD_ROWS, micro_batch.GRADIENT_ROWS = 1, 16, 8
        x = jax.random.normal(jax.random.key(0), (64, 8, 8, 3))
        k = 0.3 * jax.random.normal(jax.random.key(1), (4, 4, 3, 5))
        op = lambda x_, k_: strided_conv(x_, k_, (2, 2), ((1, 1), (1, 1)))
        grad = lambda x_, k_: jax.grad(lambda k2: jnp.sum(jnp.sin(op(x_, k2))))(k_)
        mesh = make_mesh()
        sharded = jax.jit(grad, in_shardings=(batch_split(mesh), replicated(mesh)))
        got = np.asarray(sharded(x, k))
        micro_batch.SPLIT_ABOVE = 10**6
        jax.clear_caches()
        want = np.asarray(jax.jit(grad)(jax.device_put(x, jax.devices()[0]), k))
        assert len(jax.devices()) == 8, jax.devices()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
        print("equal")
    """)
    env = {**os.environ,
           "XLA_FLAGS": f"--xla_force_host_platform_device_count=8 {QUICK_COMPILE_FLAGS}"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "equal" in result.stdout

"""The pure train step: learning, separation of the G and D updates, determinism, one trace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import build, tiny_config
from jgan.data import BatchLoader, find_dataset
from jgan.families.gan.step import make_gan_train_step


def _setup_and_batch(arch="dcgan", config=None):
    config = config or tiny_config(arch)
    setup = build(config)
    state = setup.init_state(jax.random.key(0))
    batch = BatchLoader(find_dataset("mnist").open("train"),
                        batch_size=16 * config.train.n_critic, data_key=jax.random.key(1)).batch(0)
    return config, setup, state, batch


def _step(setup, config, **flags):
    return jax.jit(make_gan_train_step(config, generator=setup.networks["g"],
                                       discriminator=setup.networks["d"], **flags))


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_one_step_lowers_both_losses_on_its_batch(arch):
    config, setup, state, batch = _setup_and_batch(arch)
    key = jax.random.key(2)
    new_state, metrics = jax.jit(setup.train_step)(state, batch, key)
    assert int(new_state.step) == 1
    # Re-evaluate at the same step (same z) without updating anything.
    evaluate = _step(setup, config, update_d=False, update_g=False)
    _, d_after = evaluate(new_state.replace(nets={**new_state.nets, "g": state.nets["g"]},
                                            step=state.step), batch, key)
    _, g_after = evaluate(new_state.replace(step=state.step), batch, key)
    if arch == "dcgan":  # the MLP's D uses dropout, so only G's loss is comparable there
        assert float(d_after["loss/d"]) < float(metrics["loss/d"])
    assert float(g_after["loss/g"]) < float(metrics["loss/g"])


@pytest.mark.slow
def test_g_step_leaves_d_unchanged_and_d_step_leaves_g_unchanged():
    config, setup, state, batch = _setup_and_batch()
    key = jax.random.key(2)
    after_g, _ = _step(setup, config, update_d=False)(state, batch, key)
    assert _same(after_g.nets["d"], state.nets["d"])
    assert not _same(after_g.nets["g"].params, state.nets["g"].params)
    after_d, _ = _step(setup, config, update_g=False)(state, batch, key)
    assert _same(after_d.nets["g"], state.nets["g"])
    assert not _same(after_d.nets["d"].params, state.nets["d"].params)


def test_same_key_same_bits_other_key_other_bits():
    _, setup, state, batch = _setup_and_batch()
    step = jax.jit(setup.train_step)
    runs = []
    for key in (jax.random.key(5), jax.random.key(5), jax.random.key(6)):
        s = state
        for _ in range(3):
            s, _ = step(s, batch, key)
        runs.append(s)
    assert _same(runs[0], runs[1])
    assert not _same(runs[0].nets["g"].params, runs[2].nets["g"].params)


def test_step_is_traced_once():
    _, setup, state, batch = _setup_and_batch()
    traces = []

    def counted(state, batch, key):
        traces.append(1)
        return setup.train_step(state, batch, key)

    step = jax.jit(counted)
    for _ in range(4):
        state, metrics = step(state, batch, jax.random.key(0))
    jax.block_until_ready(metrics)
    assert len(traces) == 1
    assert int(state.step) == 4


def test_batchnorm_statistics_move_with_training():
    _, setup, state, batch = _setup_and_batch()
    new_state, _ = jax.jit(setup.train_step)(state, batch, jax.random.key(0))
    for name in ("g", "d"):
        before = jax.tree.leaves(state.nets[name].collections["batch_stats"])
        after = jax.tree.leaves(new_state.nets[name].collections["batch_stats"])
        assert any(not jnp.array_equal(a, b) for a, b in zip(before, after))

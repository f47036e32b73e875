"""bf16 compute (`--set model.dtype=bfloat16`): mixed precision for the GAN family's dcgan arch.

Parameters, optimizer state and BatchNorm statistics stay float32, the convolutions run in bf16,
the step learns and keeps its bits; other archs and families refuse the option in one line.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (build, drawn_state, tiny_bigan_config, tiny_config,
                      tiny_translation_config)
from jgan.config import override
from jgan.data import BatchLoader, find_dataset
from jgan.errors import UserError


def _with_dtype(config, dtype: str):
    return dataclasses.replace(config, model=dataclasses.replace(config.model, dtype=dtype))


def _setup_state_batch(dtype: str):
    # drawn_state: the checks hold whatever the weights, and compiling init would cost seconds.
    setup = build(_with_dtype(tiny_config("dcgan"), dtype))
    batch = BatchLoader(find_dataset("mnist").open("train"), batch_size=16,
                        data_key=jax.random.key(1)).batch(0)
    return setup, drawn_state(setup), batch


@pytest.fixture(scope="module")
def bf16():
    return _setup_state_batch("bfloat16")


def _equations(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (custom VJPs, pjit, scans)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(inner, jax.extend.core.ClosedJaxpr):
                    yield from _equations(inner.jaxpr)
                elif isinstance(inner, jax.extend.core.Jaxpr):
                    yield from _equations(inner)


def _conv_operand_dtypes(setup, state, batch) -> set:
    """The dtypes that the train step's convolutions (forward and backward) take."""
    closed = jax.make_jaxpr(setup.train_step)(state, batch, jax.random.key(2))
    return {str(var.aval.dtype) for eqn in _equations(closed.jaxpr)
            if eqn.primitive.name == "conv_general_dilated" for var in eqn.invars}


def test_convolutions_run_in_the_chosen_dtype(bf16):
    assert _conv_operand_dtypes(*bf16) == {"bfloat16"}
    assert _conv_operand_dtypes(*_setup_state_batch("float32")) == {"float32"}


def test_bf16_activations_with_float32_image_logits_and_statistics(bf16):
    setup, state, batch = bf16
    g, d = state.nets["g"], state.nets["d"]

    @functools.partial(jax.jit, static_argnums=0)
    def apply(name, variables, x):  # every layer's output, and the updated BatchNorm statistics
        return setup.networks[name].module.apply(variables, x, train=True,
                                                 mutable=["batch_stats", "intermediates"],
                                                 capture_intermediates=True)

    images, g_inter = apply("g", g.variables(), jnp.zeros((2, setup.z_dim)))
    logits, d_inter = apply("d", d.variables(), batch["image"][:2])
    assert images.dtype == jnp.float32 and logits.dtype == jnp.float32
    for inter in (g_inter, d_inter):
        normalized = {name: out["__call__"][0].dtype
                      for name, out in inter["intermediates"].items()
                      if name.startswith("BatchNorm")}
        assert normalized and set(normalized.values()) == {jnp.dtype(jnp.bfloat16)}, normalized
        # flax reduces BatchNorm's statistics in float32 and keeps them so.
        stats = jax.tree.leaves(inter["batch_stats"])
        assert stats and all(leaf.dtype == jnp.float32 for leaf in stats)


@pytest.mark.slow
def test_bf16_steps_learn_keep_float32_state_and_repeat_bit_for_bit(bf16):
    setup, state, batch = bf16
    step = jax.jit(setup.train_step)
    key = jax.random.key(2)

    def run(state):
        losses = []
        for _ in range(3):
            state, metrics = step(state, batch, key)
            losses.append((float(metrics["loss/d"]), float(metrics["loss/g"])))
        return state, np.array(losses)

    first, losses = run(state)
    second, losses_again = run(state)
    assert np.all(np.isfinite(losses))
    # D learns to tell this batch from G's samples; G's loss moves with it.
    assert losses[0, 0] > losses[1, 0] > losses[2, 0] and len(set(losses[:, 1])) == 3, losses
    floats = [leaf for leaf in jax.tree.leaves(first.nets)
              if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert floats and {leaf.dtype for leaf in floats} == {jnp.dtype(jnp.float32)}
    np.testing.assert_array_equal(losses, losses_again)
    for a, b in zip(jax.tree.leaves(first.nets), jax.tree.leaves(second.nets)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("config, change, message", [
    (tiny_config("dcgan"), ["model.dtype=bf16"],
     "model.dtype='bf16' is unknown: choose one of ['float32', 'bfloat16']"),
    (tiny_config("toy"), ["model.dtype=bfloat16"],
     "model.dtype='bfloat16' applies to the dcgan and mlp archs"),
    (tiny_bigan_config("unet"), ["model.dtype=bfloat16"],
     "model.dtype='bfloat16' applies to the mlp and dcgan archs"),
], ids=["unknown", "toy", "bigan_unet"])
def test_refused_dtypes_say_what_is_allowed(config, change, message):
    with pytest.raises(UserError) as error:
        build(override(config, change), shape=(2,) if config.model.arch == "toy" else (32, 32, 1))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_families_without_bf16_refuse_it(tmp_path):
    config = tiny_translation_config("pix2pix", tmp_path)
    with pytest.raises(UserError, match="no field 'dtype' in Pix2PixModelConfig"):
        override(config, ["model.dtype=bfloat16"])

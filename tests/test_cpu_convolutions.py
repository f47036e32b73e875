"""Which library runs a train step's convolutions on XLA:CPU (`jgan.train.parallel`)."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from conftest import build, tiny_config
from jgan.train import family_trainer, parallel
from jgan.train.parallel import cpu_compiler_options, jit_data_parallel, make_mesh


def entry_convolutions(compiled) -> int:
    """Convolutions that XLA:CPU runs itself (with Eigen): those in its entry computation, not in
    a YNNPACK fusion's own computation."""
    hlo = compiled.as_text()
    return hlo[hlo.index("\nENTRY"):].count(" convolution(")


def conv_step(kernel, batch, key):
    # Its output unreduced: YNNPACK's reductions take in the convolution they reduce.
    return kernel, lax.conv_general_dilated(batch["image"], kernel, (2, 2), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))


def compiled_conv_step(choice: str):
    kernel, batch = jnp.ones((4, 4, 16, 32)), {"image": jnp.ones((8, 14, 14, 16))}
    return jit_data_parallel(conv_step, make_mesh(), cpu_convolutions=choice).lower(
        kernel, batch, jax.random.key(0)).compile()


@pytest.mark.parametrize("choice,eigen", [("eigen", 1), ("ynnpack", 0)])
def test_a_step_runs_its_convolutions_with_the_library_it_names(choice, eigen):
    assert entry_convolutions(compiled_conv_step(choice)) == eigen


def test_a_familys_step_compiles_with_the_familys_choice():
    """The gan family names Eigen (faster for DCGAN's step on the CPU); `jit_train_step`, which
    runs and benchmarks use, compiles with it."""
    config = tiny_config()
    # At 8 features YNNPACK takes none of the convolutions, so both choices compile alike.
    setup = build(dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                        base_features=16)))
    assert setup.cpu_convolutions == "eigen"
    mesh = make_mesh()
    state = family_trainer.initial_state(setup, jax.random.key(0), mesh)
    batch = {"image": jnp.zeros((16, 28, 28, 1), jnp.uint8)}

    def convolutions(setup):
        step = family_trainer.jit_train_step(setup, mesh, donate_state=False)
        return entry_convolutions(step.lower(state, batch, jax.random.key(1)).compile())

    assert convolutions(setup) > convolutions(dataclasses.replace(setup,
                                                                  cpu_convolutions="ynnpack"))


def test_options_that_this_xla_refuses_fall_back_to_its_defaults(monkeypatch):
    monkeypatch.setitem(parallel.CPU_CONVOLUTIONS, "eigen",
                        {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_RENAMED"})
    assert parallel.cpu_compiler_options("eigen") is None
    assert entry_convolutions(compiled_conv_step("eigen")) == 0


def test_an_unknown_library_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^cpu_convolutions='mkl': use one of 'ynnpack', "
                                         r"'eigen'$"):
        cpu_compiler_options("mkl")

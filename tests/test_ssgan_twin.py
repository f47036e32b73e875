"""The PyTorch twin of the semi-supervised K+1 GAN (benchmarks/ssgan_twin.py, issue 31) against
jgan's jitted step: fed the step's own draws, from the same initial variables, every loss and
every parameter and statistic agree step after step. Skipped without torch, an optional extra."""

import dataclasses
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from experiments.ssgan import get_config
from jgan.families.ssgan import build_discriminator, build_generator, optimizer
from jgan.families.ssgan.step import (labelled_minibatch, make_ssgan_train_step, pixels_to_unit,
                                      uniform_prior)
from jgan.nn import GaussianNoise
from jgan.train.state import Network, TrainState, init_network

torch = pytest.importorskip("torch")
sys.path.insert(0, str(REPO / "benchmarks"))
import ssgan_twin  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

SHAPE, CLASSES, LABELLED, BATCH, STEPS = (28, 28, 1), 10, 20, 8, 10
# Adam's first steps move a parameter by about lr x sign(gradient) (less where the gradient is
# under sqrt(eps_root) = 1e-4), so float32's rounding of small gradients shows in the parameters:
# the twin in float32 is up to 3e-4 (relative) from itself in float64 after one step. The two
# sides part by at most 0.75 x (1e-6 + 1e-4 |x|) in each of the first 20 steps, not growing:
# these bounds are twice that. A BatchNorm epsilon of 1e-5 in G, not 1e-6, fails them at step 0.
RTOL, ATOL = 2e-4, 2e-6


def small_config():
    """experiments/ssgan.py's config (Adam 3e-3, beta1 0.5, eps_root 1e-8, constant rate) with a
    narrow G, a short z and a small batch; D's widths are narrowed where the modules are built."""
    config = get_config()
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, z_dim=8, g_hidden=32),
        train=dataclasses.replace(config.train, batch_size=BATCH))


def flat_variables(state: TrainState) -> dict:
    """Every network's variables as `{"<net>/<collection>/<layer>/<name>": array}`."""
    flat = {}
    for net, network_state in state.nets.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(network_state.variables())[0]:
            flat["/".join([net, *(key.key for key in path)])] = np.asarray(leaf)
    return flat


def noise_recorder(module, variables):
    """A jitted `key -> [draw, ...]`: the draws (std included) that D's GaussianNoise layers add
    in a training pass whose "dropout" key is `key`, input layer first. They do not depend on
    the input, so D is run on zeros with each noise layer made to add to zero and tell."""
    def record(key):
        draws = []

        def intercept(next_fun, args, kwargs, context):
            if not isinstance(context.module, GaussianNoise):
                return next_fun(*args, **kwargs)
            draw = next_fun(jnp.zeros_like(args[0]), *args[1:], **kwargs)
            draws.append(draw)
            return args[0] + draw

        with nn.intercept_methods(intercept):
            module.apply(variables, jnp.zeros((BATCH, *SHAPE)), train=True, rngs={"dropout": key})
        return draws

    return jax.jit(record)


def draw_function(labelled: tuple, z_dim: int, noise):
    """A jitted `(key, step) -> (labelled minibatch, draws)`: the labelled minibatch, both z and
    D's noise of jgan's step `step`, drawn with the keys and functions of
    jgan/families/ssgan/step.py (`train_step`, `d_update`, `g_update`)."""
    def draw(key, step):
        key = jax.random.fold_in(key, step)
        k_d, k_g = jax.random.split(key)
        k_lab, k_z, k_drop_lab, k_drop_unl, k_drop_fake = jax.random.split(k_d, 5)
        k_z_g, k_drop_real, k_drop_fake_g = jax.random.split(k_g, 3)
        images, labels = labelled_minibatch(k_lab, *map(jnp.asarray, labelled), BATCH)
        draws = {"z_d": uniform_prior(k_z, BATCH, z_dim),
                 "z_g": uniform_prior(k_z_g, BATCH, z_dim),
                 **{name: noise(k) for name, k in (
                     ("d_lab", k_drop_lab), ("d_unl", k_drop_unl), ("d_fake", k_drop_fake),
                     ("g_real", k_drop_real), ("g_fake", k_drop_fake_g))}}
        return {"labelled": images, "labels": labels}, draws

    return jax.jit(draw)


def first_difference(step: int, jgan: dict, twin: dict) -> str | None:
    """The first quantity, losses before variables, where jgan and the twin part; None if none."""
    for name in jgan:
        if not np.allclose(twin[name], jgan[name], rtol=RTOL, atol=ATOL):
            gap = np.max(np.abs(np.asarray(twin[name]) - np.asarray(jgan[name])))
            return f"step {step}: {name} differs by up to {gap:.3g}"
    return None


def test_twin_follows_jgans_step_for_step():
    config = small_config()
    rng = np.random.default_rng(0)
    # The labelled set is unscaled uint8, as `labelled_subset` reads it; the step scales it.
    labelled = (rng.integers(0, 256, (LABELLED, *SHAPE), dtype=np.uint8),
                np.arange(LABELLED) % CLASSES)
    d_module = build_discriminator(config.model, CLASSES).clone(widths=(32, 16, 16))
    networks = {"g": Network(build_generator(config.model, SHAPE),
                             optimizer(config, config.optim.g_lr)),
                "d": Network(d_module, optimizer(config, config.optim.d_lr))}
    k_g, k_d = jax.random.split(jax.random.key(0))
    nets = jax.jit(lambda keys: {
        "g": init_network(networks["g"], keys[0], jnp.zeros((1, config.model.z_dim))),
        "d": init_network(networks["d"], keys[1], pixels_to_unit(jnp.asarray(labelled[0])))})(
        (k_g, k_d))
    state = TrainState(step=jnp.zeros((), jnp.int32), nets=nets)
    step = jax.jit(make_ssgan_train_step(
        generator=networks["g"], discriminator=networks["d"], labelled_images=labelled[0],
        labelled_labels=labelled[1], z_dim=config.model.z_dim, batch_size=BATCH,
        unlabelled_weight=config.loss.unlabelled_weight, real_label=config.loss.real_label))
    draw = draw_function(labelled, config.model.z_dim,
                         noise_recorder(d_module, nets["d"].variables()))
    initial = flat_variables(state)

    batches, noises, jgan_rows = [], [], []
    for index in range(STEPS):
        unlabelled = rng.integers(0, 256, (2 * BATCH, *SHAPE), dtype=np.uint8)
        # The loader's rows 2i go to D's update and 2i + 1 to G's (`split_critic_batches`).
        lab, draws = jax.tree.map(np.asarray, draw(jax.random.key(1), index))
        batches.append({**lab, "unlabelled_d": unlabelled[0::2], "unlabelled_g": unlabelled[1::2]})
        noises.append(draws)
        state, metrics = step(state, {"image": unlabelled}, jax.random.key(1))
        jgan_rows.append({**jax.tree.map(float, metrics), "variables": flat_variables(state)})

    twin_rows = ssgan_twin.run_twin(initial, batches, noises, config)
    for index, (jgan, twin) in enumerate(zip(jgan_rows, twin_rows)):
        assert twin.keys() == jgan.keys() and twin["variables"].keys() == jgan["variables"].keys()
        losses = {name: value for name, value in jgan.items() if name != "variables"}
        difference = (first_difference(index, losses, twin)
                      or first_difference(index, jgan["variables"], twin["variables"]))
        assert difference is None, difference

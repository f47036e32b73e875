"""jgan's jitted semi-supervised K+1 GAN step (Salimans et al. 2016, Sec. 5) against its PyTorch
twin (benchmarks/ssgan_twin.py) at experiments/ssgan.py's real setting, issue 31: full widths,
batch 100, the 100 labelled MNIST images that seed 0 chooses, real unlabelled batches in the
loader's order, both sides from jgan's own (data-dependent) initial state and fed jgan's own
random draws. Prints, per step, the largest gap over every loss and variable in units of the
tolerance, |twin - jgan| / (ATOL + RTOL |jgan|), and the first quantity past it, if any.

    python benchmarks/ssgan_twin_check.py --data-dir ../shared/datasets [--steps 100] [--float64]

The draws and comparisons here are shared with tests/test_ssgan_twin.py, which runs the same
check on a narrow model and synthetic data.

At this setting (seed 0, D's init from `trainx[:500]`) the two sides agree after steps 1 and 2
(0.07 and 0.18 x the tolerance) and part from step 3 (156 x, in D's first kernel); the gap then
grows about tenfold every few steps, as the GAN amplifies any rounding: jgan against itself
compiled at `--xla_backend_optimization_level=0` parts from step 7 and is 9000 x apart by step
20. With `--float64` both sides stay within 4e-8 of each other for 13 steps (at most 1,800 x the
float64 tolerance), the largest gaps in weights whose gradient is near zero, before the same
amplification: no difference in the procedure shows above float64's rounding (docs/ssgan.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import ssgan_twin  # benchmarks/ is the script's folder, on the path
import torch

from jgan.data import open_data
from jgan.experiments.ssgan import get_config
from jgan.families.ssgan import labelled_subset
from jgan.families.ssgan.step import labelled_minibatch, uniform_prior
from jgan.nn import GaussianNoise
from jgan.train.family_trainer import run_keys
from jgan.train.setup import build_setup
from jgan.train.state import TrainState

# Adam's first steps move a parameter by about lr x sign(gradient) (less where the gradient is
# under sqrt(eps_root) = 1e-4), so float32's rounding of small gradients shows in the parameters:
# the twin in float32 is up to 3e-4 (relative) from itself in float64 after one step. On the
# test's narrow model the two sides part by at most 0.75 x (1e-6 + 1e-4 |x|) in each of the
# first 20 steps, not growing: these bounds are twice that. A BatchNorm epsilon of 1e-5 in G, not
# 1e-6, fails them at step 0.
RTOL, ATOL = 2e-4, 2e-6
# `--float64`: both sides in float64, where rounding is 1e-16 and the same argument gives 1e-12.
RTOL_64, ATOL_64 = 1e-9, 1e-11


def flat_variables(state: TrainState) -> dict:
    """Every network's variables as `{"<net>/<collection>/<layer>/<name>": array}`."""
    flat = {}
    for net, network_state in state.nets.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(network_state.variables())[0]:
            flat["/".join([net, *(key.key for key in path)])] = np.asarray(leaf)
    return flat


def as_float64(tree):
    """Every floating array of `tree` in float64 (needs jax_enable_x64): a state made in
    float32, for both sides to start from in float64."""
    return jax.tree.map(
        lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def noise_recorder(module, variables, batch_size: int, shape: tuple):
    """A jitted `(key, dtype) -> [draw, ...]`: the draws (std included) that D's GaussianNoise
    layers add in a training pass on images of `dtype` whose "dropout" key is `key`, input layer
    first. They do not depend on the input, so D is run on zeros with each noise layer made to
    add to zero and tell. A layer draws in its input's dtype: the step's real images are float32
    (`pixels_to_unit`) and its fakes in G's dtype, so under `--float64` the first layer's draws
    on real images stay float32."""
    def record(key, dtype):
        draws = []

        def intercept(next_fun, args, kwargs, context):
            if not isinstance(context.module, GaussianNoise):
                return next_fun(*args, **kwargs)
            draw = next_fun(jnp.zeros_like(args[0]), *args[1:], **kwargs)
            draws.append(draw)
            return args[0] + draw

        with nn.intercept_methods(intercept):
            module.apply(variables, jnp.zeros((batch_size, *shape), dtype), train=True,
                         rngs={"dropout": key})
        return draws

    return jax.jit(record, static_argnums=1)


def draw_function(labelled: tuple, z_dim: int, batch_size: int, noise,
                  fake_dtype=jnp.float32):
    """A jitted `(key, step) -> (labelled minibatch, draws)`: the labelled minibatch, both z and
    D's noise of jgan's step `step` under run key `key`, drawn with the keys and functions of
    jgan/families/ssgan/step.py (`train_step`, `d_update`, `g_update`). `fake_dtype`: G's."""
    def draw(key, step):
        key = jax.random.fold_in(key, step)
        k_d, k_g = jax.random.split(key)
        k_lab, k_z, k_drop_lab, k_drop_unl, k_drop_fake = jax.random.split(k_d, 5)
        k_z_g, k_drop_real, k_drop_fake_g = jax.random.split(k_g, 3)
        images, labels = labelled_minibatch(k_lab, *map(jnp.asarray, labelled), batch_size)
        draws = {"z_d": uniform_prior(k_z, batch_size, z_dim),
                 "z_g": uniform_prior(k_z_g, batch_size, z_dim),
                 **{name: noise(k, fake_dtype if name.endswith("fake") else jnp.float32)
                    for name, k in (
                     ("d_lab", k_drop_lab), ("d_unl", k_drop_unl), ("d_fake", k_drop_fake),
                     ("g_real", k_drop_real), ("g_fake", k_drop_fake_g))}}
        return {"labelled": images, "labels": labels}, draws

    return jax.jit(draw)


def run_jgan(state: TrainState, step, draw, unlabelled: list, run_key) -> tuple[list, list, list]:
    """jgan's step on each loader batch of `unlabelled` (uint8 [2B, H, W, C]) from `state`:
    `(twin batches, twin draws, jgan rows)`, each row the step's metrics and `"variables"`."""
    batches, noises, rows = [], [], []
    for index, images in enumerate(unlabelled):
        # The loader's rows 2i go to D's update and 2i + 1 to G's (`split_critic_batches`).
        lab, draws = jax.tree.map(np.asarray, draw(run_key, index))
        batches.append({**lab, "unlabelled_d": images[0::2], "unlabelled_g": images[1::2]})
        noises.append(draws)
        state, metrics = step(state, {"image": images}, run_key)
        rows.append({**jax.tree.map(float, metrics), "variables": flat_variables(state)})
    return batches, noises, rows


def quantities(row: dict) -> dict:
    """A step's losses (and other metrics), then its variables, in one flat dict."""
    losses = {name: value for name, value in row.items() if name != "variables"}
    return {**losses, **row["variables"]}


def first_difference(step: int, jgan: dict, twin: dict, tolerance=(RTOL, ATOL)) -> str | None:
    """The first quantity, losses before variables, where jgan and the twin part beyond
    `tolerance` (rtol, atol); None if none."""
    rtol, atol = tolerance
    for name in jgan:
        if not np.allclose(twin[name], jgan[name], rtol=rtol, atol=atol):
            gap = np.max(np.abs(np.asarray(twin[name]) - np.asarray(jgan[name])))
            return f"step {step}: {name} differs by up to {gap:.3g}"
    return None


def largest_gap(jgan: dict, twin: dict, tolerance=(RTOL, ATOL)) -> tuple[float, str]:
    """The largest |twin - jgan| / (atol + rtol |jgan|) over all quantities, and where: 1 is
    the edge of `np.allclose`'s tolerance."""
    rtol, atol = tolerance
    gaps = {name: float(np.max(np.abs(np.asarray(twin[name], np.float64) - jgan[name])
                               / (atol + rtol * np.abs(np.asarray(jgan[name], np.float64)))))
            for name in jgan}
    name = max(gaps, key=gaps.get)
    return gaps[name], name


def real_run(data_dir: str, seed: int = 0):
    """experiments/ssgan.py's default run of `seed`: its config, jgan's initial state (D's
    weight-norm init reads 500 training images), jitted step, labelled subset, run key and the
    loader of its batches of 2 x 100 unlabelled images (`loader.batch(step)`, from step 0)."""
    config = get_config()
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, data_dir=data_dir),
        train=dataclasses.replace(config.train, seed=seed))
    data = open_data(config.data, log=lambda *args: None)
    setup = build_setup(config, data.spec)
    keys = run_keys(config.train.seed)
    state = jax.jit(setup.init_state)(keys["init"])
    labelled = labelled_subset(config, data.spec.num_classes)[:2]
    loader = data.loader(config.train.batch_size * setup.batches_per_step, keys["data"])
    return config, setup, state, labelled, keys["run"], loader


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding mnist/")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--float64", action="store_true",
                        help="both sides in float64 from the same (float32-made) initial state, "
                             "at float64 tolerances: separates rounding from a real difference")
    args = parser.parse_args(argv)
    tolerance = (RTOL_64, ATOL_64) if args.float64 else (RTOL, ATOL)
    if args.float64:
        jax.config.update("jax_enable_x64", True)
        torch.set_default_dtype(torch.float64)
    config, setup, state, labelled, run_key, loader = real_run(args.data_dir)
    unlabelled = [np.asarray(loader.batch(index)["image"]) for index in range(args.steps)]
    if args.float64:
        state = as_float64(state)
    batch_size, shape = config.train.batch_size, labelled[0].shape[1:]
    noise = noise_recorder(setup.networks["d"].module, state.nets["d"].variables(), batch_size,
                           shape)
    draw = draw_function(labelled, config.model.z_dim, batch_size, noise,
                         jnp.float64 if args.float64 else jnp.float32)
    initial = flat_variables(state)
    batches, noises, jgan_rows = run_jgan(state, jax.jit(setup.train_step), draw, unlabelled,
                                          run_key)
    twin_rows = ssgan_twin.run_twin(initial, batches, noises, config)
    worst, parted = 0.0, None
    for index, (jgan, twin) in enumerate(zip(jgan_rows, twin_rows), start=1):
        jgan, twin = quantities(jgan), quantities(twin)
        gap, name = largest_gap(jgan, twin, tolerance)
        difference = first_difference(index, jgan, twin, tolerance)
        parted = parted or difference
        worst = max(worst, gap)
        print(f"step {index:4d}: largest gap {gap:8.3f} x tolerance ({name})"
              + (f"; first past it: {difference}" if difference else ""), flush=True)
    print(f"{len(jgan_rows)} steps, largest gap {worst:.3f} x tolerance (rtol {tolerance[0]}, "
          f"atol {tolerance[1]}): " + (f"parted first at {parted}" if parted else
                                       "within tolerance"))
    return 0 if parted is None else 1


if __name__ == "__main__":
    sys.exit(main())

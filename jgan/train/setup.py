"""The family protocol: all that the shared loop, sampling, evaluation and checkpoints ask of a family.

A family (GAN, BiGAN, Pix2Pix, ...) is one module under `jgan.families` that registers a `Family`:
its config groups (`config.model`, `config.loss`) and `build(config, spec) -> Setup`. The `Setup`
holds its networks, optimizers, train step and state initialisation, and answers for sampling
and the preview grid. Shared code calls only what is defined here, never asks which family it
has, so adding a family touches no shared file beyond its registry line.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import numpy as np

from jgan.augment import Augment
from jgan.errors import UserError
from jgan.generate import per_image_inputs
from jgan.images import make_grid, to_uint8
from jgan.optim import decay_over_steps
from jgan.train.state import Network, TrainState, init_train_state

CHUNK = 256  # examples per sampling call, to bound memory


@dataclasses.dataclass(frozen=True)
class Family:
    """A family plug-in, registered by name in `jgan.families`.

    `model_config` and `loss_config` are frozen, keyword-only dataclasses with the family's
    defaults; `build` checks the config against the data (one-line UserErrors before anything
    compiles) and returns a `Setup`. `network_names` maps each network's state name to what it
    is ("g": "generator"), for component save and load.
    """

    name: str
    model_config: type
    loss_config: type
    build: Callable[[Any, Any], "Setup"]
    network_names: dict[str, str]
    description: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Setup:
    """A family's networks and step, and how it samples and previews.

    Families subclass it and define `sample_inputs` and `sample`; the rest has defaults that
    suit any family whose samples come from drawn inputs (latents, noise, a source image).

    networks: every network of the state by name, with its module and optimizer.
    example_inputs: per network, the arguments that `module.init` is called with.
    train_step: pure `(state, batch, key) -> (state, metrics)`; the key is the run key, and the
      step folds in `state.step`. Metrics are scalars with `loss/d` and `loss/g` among them.
    num_classes: > 0 when `sample_inputs` takes class `labels` (`jgan.tools.sample --labels`).
    batches_per_step: the loader's batch is this many minibatches of `train.batch_size`.
    directions: what `translate` takes, "AtoB" and/or "BtoA" (the first is the default); empty
      for a family that draws images from latents.
    takes_centred_data: the family feeds its networks through `jgan.data.preprocess`, so it can
      train on `data.center` (pixels in [0, 1] less the mean); the others take [-1, 1].
    augment: the augmentation the family's step applies to every image its D sees
      (`jgan.augment.from_config(config.train)`); None for a family whose D takes no images it
      can augment, which then refuses `train.augment`. An adaptive one keeps its p in
      `state.extra["ada"]`.
    cpu_convolutions: which library runs the step's convolutions on XLA:CPU, "ynnpack" (XLA's
      default) or "eigen": whichever runs the family's default step faster
      (`jgan.train.parallel.CPU_CONVOLUTIONS`). Other backends ignore it.
    """

    networks: dict[str, Network]
    example_inputs: dict[str, tuple]
    train_step: Callable
    num_classes: int = 0
    batches_per_step: int = 1
    directions: tuple[str, ...] = ()
    takes_centred_data: bool = False
    augment: Augment | None = None
    cpu_convolutions: str = "ynnpack"

    def init_state(self, key: jax.Array) -> TrainState:
        state = init_train_state(self.networks, key, self.example_inputs)
        if self.augment is not None:
            state = state.replace(extra=self.augment.init_extra())
        return state

    def sample_inputs(self, key: jax.Array, num: int, **conditions):
        """What `sample` maps to images: a pytree whose leaves have a leading axis of `num`."""
        raise NotImplementedError

    def sample(self, state: TrainState, inputs) -> jax.Array:
        """Images in [-1, 1] from `sample_inputs`; pure and jittable, inference mode."""
        raise NotImplementedError

    @functools.cached_property
    def sample_fn(self):
        """`sample`, compiled once per setup."""
        return jax.jit(self.sample)

    def generate(self, state: TrainState, key: jax.Array, num: int, **conditions) -> np.ndarray:
        """uint8 images [num, H, W, C], image i drawn from `fold_in(key, i)` alone, so the first
        k of n are the k of a call for k (`jgan.generate.per_image_inputs`); sampled CHUNK at a
        time. The preview grid keeps `sample_inputs`' draw of all at once."""
        inputs = per_image_inputs(self, key, num, **conditions)
        return np.concatenate([
            to_uint8(self.sample_fn(state, jax.tree.map(lambda x: x[i:i + CHUNK], inputs)))
            for i in range(0, num, CHUNK)])

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        """The fixed input of every preview grid, drawn once per run (`batch`: step 0's data)."""
        return self.sample_inputs(key, grid_size), math.ceil(math.sqrt(grid_size))

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        """uint8 grids by name: "" is `samples/step_N.png`, "NAME_" is `samples/NAME_step_N.png`."""
        inputs, columns = fixed
        return {"": make_grid(to_uint8(self.sample_fn(state, inputs)), columns=columns)}

    # Image-to-image families (Pix2Pix, CycleGAN) answer these two; `jgan.translate` and
    # `jgan.tools.evaluate_translation` use nothing else of them.

    def translation_shape(self, direction: str) -> tuple[int, int, int]:
        """`(H, W, C)` of the images that `translate` takes in `direction` ("AtoB" or "BtoA");
        a one-line UserError for a direction this setup does not translate."""
        raise UserError("this run's generator draws images from latents and translates none: "
                        "pass the run directory of a pix2pix or cyclegan run")

    def translate(self, state: TrainState, images: jax.Array, keys: jax.Array, *,
                  direction: str) -> jax.Array:
        """float [-1, 1] `[N, H, W, C]` -> `[N, H, W, C']` in [-1, 1]; image i depends on
        `images[i]` and `keys[i]` (its dropout) alone, so batching never changes a result. Pure
        and jittable with `direction` static."""
        raise UserError("this run's generator draws images from latents and translates none: "
                        "pass the run directory of a pix2pix or cyclegan run")


def refuse_first(refusals) -> None:
    """Raise the message of the first `(refused, message)` pair that is refused."""
    for refused, message in refusals:
        if refused:
            raise UserError(message)


def check_choices(choices: dict[str, tuple[Any, tuple]]) -> None:
    """`{"model.arch": (value, allowed)}`: refuse the first value that is not allowed."""
    for field, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{field}={value!r} is unknown: choose one of {list(allowed)}")


def check_run_settings(config) -> None:
    """Combinations of the shared loop's and data's settings that no family can take (each
    field's own range is `jgan.config.check`'s)."""
    train, data = config.train, config.data
    refuse_first([
        (data.image_size > 0 and train.eval_every > 0,
         "--eval-every compares with the stored images, not resized ones: drop --eval-every "
         "when data.image_size is set"),
    ])


def build_setup(config, spec) -> Setup:
    """The setup of `config.family` for data described by `spec` (`jgan.data.DataSpec`)."""
    from jgan.families import get_family

    check_run_settings(config)
    config = dataclasses.replace(config, optim=decay_over_steps(config.optim, config.train.steps))
    setup = get_family(config.family).build(config, spec)
    if config.data.center and not setup.takes_centred_data:
        raise UserError(f"data.center feeds centred pixels, which the {config.family} family "
                        "does not take: drop data.center (its networks read [-1, 1])")
    if config.train.augment != "none" and setup.augment is None:
        raise UserError(f"train.augment={config.train.augment!r}: the {config.family} family "
                        "does not augment its D's inputs; drop train.augment (the gan, biggan, "
                        "stylegan and bigan families take it)")
    return setup

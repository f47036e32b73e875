"""The StyleGAN family (Karras et al. 2019): mapping network, AdaIN synthesis, style mixing, the
truncation trick in W, and optional progressive growing (Karras et al. 2018).

The networks are `jgan.families.stylegan.networks`, the step `jgan.families.stylegan.step`. Images
go into the model through the data's preprocessing (`jgan.data.preprocess`): with `data.center` G
learns pixels in [0, 1] less the dataset mean, as the brain-MRI seed did, and `sample` maps them
back to [-1, 1] so grids, GIFs and metrics read them as they read every family's.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jgan import augment as augment_lib
from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.data.preprocess import Preprocessing
from jgan.errors import UserError
from jgan.families.latent import single_image_shape
from jgan.families.stylegan.networks import (StyleDiscriminator, StyleGenerator, level_channels,
                                             num_style_layers)
from jgan.families.stylegan.step import level_of_detail, make_stylegan_train_step, truncate
from jgan.images import make_grid, to_uint8
from jgan.optim import check_optim_config, make_optimizer
from jgan.train.setup import Family, Setup, check_choices, refuse_first
from jgan.train.state import Network, TrainState
from jgan.train.step_parts import prior

UPSAMPLES = ("bilinear", "blur")
DISCRIMINATORS = ("resnet", "plain")
TRUNCATION_PSIS = (0.0, 0.5, 0.7, 1.0)  # the rows of the truncation grid


@dataclasses.dataclass(frozen=True, kw_only=True)
class StyleGANModelConfig:
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01  # the mapping network's rate relative to synthesis'
    base_features: int = 16  # channels at the output resolution, doubling per halving ...
    max_features: int = 128  # ... up to this many
    upsample: str = "bilinear"  # or "blur": nearest, conv, [1, 2, 1] blur
    const_init: float = 1.0  # the constant 4x4 input starts here (the seed needed ones)
    discriminator: str = "resnet"  # or "plain"
    mbstd_group: int = 4  # minibatch-stddev group size; 1: off
    style_mixing: float = 0.9  # probability that a training example mixes two w's
    w_avg_beta: float = 0.995  # decay of the tracked mean w, per step
    # Progressive growing: start at start_resolution; each phase holds phase_steps steps, then
    # fades the next resolution in over phase_steps more
    progressive: bool = False
    start_resolution: int = 8
    phase_steps: int = 500


@dataclasses.dataclass(frozen=True, kw_only=True)
class StyleGANLossConfig:
    gan_loss: str = "nonsaturating"  # the softplus form; any logit loss of jgan.losses
    r1_gamma: float = 1.0  # R1 weight; 0: off
    reg_interval: int = 4  # lazy R1: on every reg_interval-th real image (the family's step)


MODEL_BOUNDS = {"z_dim": Bounds(1), "w_dim": Bounds(1), "mapping_layers": Bounds(1),
                "mapping_lr_multiplier": Bounds(1e-6), "base_features": Bounds(1),
                "max_features": Bounds(1), "mbstd_group": Bounds(1, note="1: off"),
                "style_mixing": Bounds(0, 1.000001, note="a probability"),
                "w_avg_beta": Bounds(0, 1), "start_resolution": Bounds(4),
                "phase_steps": Bounds(1)}
LOSS_BOUNDS = {"r1_gamma": Bounds(0, note="0: off"), "reg_interval": Bounds(1)}


def check(config, spec) -> tuple[int, int, int]:
    """Refuse settings that cannot work, in one line each; returns the image shape."""
    model, loss_cfg = config.model, config.loss
    check_bounds("model", model, MODEL_BOUNDS)
    check_bounds("loss", loss_cfg, LOSS_BOUNDS)
    check_optim_config(config.optim)
    check_choices({"model.upsample": (model.upsample, UPSAMPLES),
                   "model.discriminator": (model.discriminator, DISCRIMINATORS),
                   "loss.gan_loss": (loss_cfg.gan_loss, losses.LOSS_NAMES)})
    shape = single_image_shape(spec, family="stylegan")
    size = shape[0]
    refuse_first([
        (len(shape) != 3 or shape[0] != shape[1] or size < 8 or size & (size - 1),
         f"StyleGAN draws square images whose side is a power of two from 8 up, and these are "
         f"{'x'.join(map(str, shape[:2]))}: add --set data.image_size=64 (or 32, 128, 256)"),
        (any(batch % min(model.mbstd_group, batch) for batch in (
            config.train.batch_size, -(-config.train.batch_size // loss_cfg.reg_interval))),
         f"train.batch_size={config.train.batch_size} (and its 1/loss.reg_interval share that R1 "
         f"takes) do not split into minibatch-stddev groups of model.mbstd_group="
         f"{model.mbstd_group}: use a batch that does, e.g. 16 with reg_interval 4"),
        (model.progressive and (model.start_resolution & (model.start_resolution - 1)
                                or not model.start_resolution < size),
         f"model.start_resolution={model.start_resolution}: growing starts at a power of two "
         f"below the image size {size}, e.g. --set model.start_resolution=8"),
        (config.train.n_critic != 1,
         "StyleGAN takes one D update per G update: drop train.n_critic"),
    ])
    return shape


def max_level_of_detail(model, resolution: int) -> int:
    """How many halvings below the full resolution growing starts at (0 without growing)."""
    if not model.progressive:
        return 0
    return int(math.log2(resolution)) - int(math.log2(model.start_resolution))


@dataclasses.dataclass(frozen=True, kw_only=True)
class StyleGANSetup(Setup):
    """`state.nets["g"]` is a `StyleGenerator`; `state.extra` holds the tracked mean w, the
    level of detail and, with `train.ema_kimg`, G's EMA weights (used for sampling)."""

    z_dim: int
    w_dim: int
    num_layers: int
    max_lod: int
    phase_steps: int
    preprocessing: Preprocessing
    ema: bool = False
    takes_centred_data: bool = True

    def init_state(self, key: jax.Array) -> TrainState:
        state = super().init_state(key)
        extra = {**state.extra, "w_avg": jnp.zeros((self.w_dim,), jnp.float32),
                 "lod": level_of_detail(0, max_lod=self.max_lod, phase_steps=self.phase_steps)}
        if self.ema:
            extra["g_ema"] = state.nets["g"].params
        return state.replace(extra=extra)

    def sample_inputs(self, key: jax.Array, num: int, psi: float = 1.0,
                      cutoff: int | None = None) -> dict:
        """z, per-image noise keys, and the truncation `psi` applied to the layers before
        `cutoff` (all when None)."""
        cutoff = self.num_layers if cutoff is None else cutoff
        if not 0 <= cutoff <= self.num_layers:
            raise UserError(f"truncation cutoff {cutoff}: this generator has layers 0 to "
                            f"{self.num_layers}; 8 truncates the coarse styles (4x4 to 16x16)")
        k_z, k_noise = jax.random.split(key)
        return {"z": prior(k_z, num, self.z_dim), "noise_keys": jax.random.split(k_noise, num),
                "psi": jnp.full((num,), psi, jnp.float32),
                "cutoff": jnp.full((num,), cutoff, jnp.int32)}

    def styles(self, state: TrainState, z) -> jax.Array:
        """w [N, w_dim] of latents z, by the sampling weights."""
        return self._apply(state, z, method="map")

    def synthesize(self, state: TrainState, ws, noise_keys) -> jax.Array:
        """Images in [-1, 1] from per-layer styles ws [N, L, w_dim] at the run's level of
        detail."""
        images = self._apply(state, ws, noise_keys, state.extra["lod"], method="synthesize")
        return self.preprocessing.model_to_unit(images)

    @functools.cached_property
    def styles_fn(self):
        return jax.jit(self.styles)

    @functools.cached_property
    def synthesize_fn(self):
        return jax.jit(self.synthesize)

    def _apply(self, state, *args, method):
        g = state.nets["g"]
        params = state.extra.get("g_ema", g.params)
        return self.networks["g"].module.apply(g.variables(params), *args, method=method)

    def sample(self, state: TrainState, inputs: dict) -> jax.Array:
        w = self.styles(state, inputs["z"])
        ws = jnp.repeat(w[:, None], self.num_layers, axis=1)
        ws = truncate(ws, state.extra["w_avg"], inputs["psi"], inputs["cutoff"])
        return self.synthesize(state, ws, inputs["noise_keys"])

    def preview_inputs(self, key: jax.Array, grid_size: int, batch: dict):
        k_samples, k_grids = jax.random.split(key)
        return super().preview_inputs(k_samples, grid_size, batch), k_grids

    def preview(self, state: TrainState, fixed) -> dict[str, np.ndarray]:
        """The sample grid, and the style-mixing and truncation grids of a fixed key."""
        samples, k_grids = fixed
        k_mixing, k_truncation = jax.random.split(k_grids)
        return {**super().preview(state, samples),
                "mixing_": self.mixing_grid(state, k_mixing),
                "truncation_": self.truncation_grid(state, k_truncation)}

    def mixing_grid(self, state: TrainState, key: jax.Array, *, rows: int = 4, columns: int = 5,
                    crossover: int = 4) -> np.ndarray:
        """Fig. 3's layout: the top row are the column sources, the left column the row sources;
        cell (r, c) takes the styles of the layers before `crossover` (the coarse ones: 4 = 4x4
        and 8x8) from row image r and the rest from column image c. One noise key per cell's
        row."""
        if not 0 < crossover < self.num_layers:
            raise UserError(f"mixing crossover {crossover}: pick a layer in 1 to "
                            f"{self.num_layers - 1}")
        k_rows, k_columns, k_noise = jax.random.split(key, 3)
        w_rows = self.styles_fn(state, prior(k_rows, rows, self.z_dim))
        w_columns = self.styles_fn(state, prior(k_columns, columns, self.z_dim))
        noise = jax.random.split(k_noise, rows + columns)
        layers = jnp.arange(self.num_layers)[None, :, None]
        mixed = jnp.where(layers < crossover, jnp.repeat(w_rows, columns, 0)[:, None],
                          jnp.tile(w_columns, (rows, 1))[:, None])
        sources = jnp.repeat(jnp.concatenate([w_columns, w_rows])[:, None], self.num_layers, 1)
        # One call for the sources and the cells: one compiled shape per grid.
        images = self.synthesize_fn(state, jnp.concatenate([sources, mixed]), jnp.concatenate(
            [noise[rows:], noise[:rows], jnp.repeat(noise[:rows], columns, 0)]))
        tops, lefts = images[:columns], images[columns:columns + rows]
        cells = images[columns + rows:]
        table = [jnp.concatenate([-jnp.ones_like(tops[:1]), tops])]
        for r in range(rows):
            table.append(jnp.concatenate([lefts[r:r + 1], cells[r * columns:(r + 1) * columns]]))
        return make_grid(to_uint8(jnp.concatenate(table)), columns=columns + 1)

    def truncation_grid(self, state: TrainState, key: jax.Array, *, psis=TRUNCATION_PSIS,
                        columns: int = 8, cutoff: int | None = None) -> np.ndarray:
        """One row per psi (0 first: the mean-w image), one column per z and noise."""
        inputs = self.sample_inputs(key, columns, cutoff=cutoff)
        rows = len(psis)
        inputs = {**jax.tree.map(lambda x: jnp.concatenate([x] * rows), inputs),
                  "psi": jnp.repeat(jnp.asarray(psis, jnp.float32), columns)}
        return make_grid(to_uint8(self.sample_fn(state, inputs)), columns=columns)


def build(config, spec) -> StyleGANSetup:
    """G and D with their own Adam rates, and the step."""
    shape = check(config, spec)
    model, loss_cfg, optim_cfg, train_cfg = config.model, config.loss, config.optim, config.train
    resolution, image_channels = shape[0], shape[2]
    channels = level_channels(resolution, model.base_features, model.max_features)
    generator = StyleGenerator(resolution, image_channels, model.w_dim, model.mapping_layers,
                               model.mapping_lr_multiplier, channels, model.upsample,
                               model.const_init, model.progressive)
    discriminator = StyleDiscriminator(resolution, channels, model.discriminator == "resnet",
                                       model.mbstd_group, model.progressive)
    networks = {"g": Network(generator, make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(discriminator, make_optimizer(optim_cfg, optim_cfg.d_lr))}
    preprocessing = Preprocessing.from_spec(spec)
    num_layers = num_style_layers(resolution)
    max_lod = max_level_of_detail(model, resolution)
    augment = augment_lib.from_config(train_cfg)
    step = make_stylegan_train_step(
        generator=networks["g"], discriminator=networks["d"], to_model=preprocessing.to_model,
        z_dim=model.z_dim, num_layers=num_layers, style_mixing=model.style_mixing,
        r1_gamma=loss_cfg.r1_gamma, reg_interval=loss_cfg.reg_interval,
        w_avg_beta=model.w_avg_beta, max_lod=max_lod, phase_steps=model.phase_steps,
        gan_loss=loss_cfg.gan_loss, ema_kimg=train_cfg.ema_kimg, augment=augment)
    example_inputs = {"g": (jnp.zeros((1, model.z_dim)), jax.random.split(jax.random.key(0), 1)),
                      "d": (jnp.zeros((1, *shape)),)}
    return StyleGANSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                         z_dim=model.z_dim, w_dim=model.w_dim, num_layers=num_layers,
                         max_lod=max_lod, phase_steps=model.phase_steps,
                         preprocessing=preprocessing, ema=train_cfg.ema_kimg > 0,
                         augment=augment,
                         # Eigen's convolutions: the step 412 -> 315 ms on 2 CPU cores
                         # (docs/performance.md).
                         cpu_convolutions="eigen")


# The brain-MRI seed's run: 450 slices in batches of 16 make an epoch of 29 steps.
BRAIN_EPOCH_STEPS = 29
BRAIN_EPOCHS = 50


def brain_config():
    """The defaults of `python -m experiments.stylegan` and of `jgan.workflow.train`: the 450
    brain slices with the seed's preprocessing (grey, the border cropped, 64x64, centred),
    R1 on every 4th real image, Adam(2.5e-4 / 2e-4, betas 0 and 0.99), G's EMA, samples every
    epoch. In the library, not the experiment, because the library never imports a script."""
    from jgan.config import Config, DataConfig, OptimConfig, TrainConfig

    return Config(
        name="stylegan", family="stylegan",
        data=DataConfig(dataset="brain_mri_slices", channels=1, crop="auto", image_size=64,
                        center=True),
        model=StyleGANModelConfig(base_features=16, max_features=64),
        loss=StyleGANLossConfig(r1_gamma=1.0, reg_interval=4),
        optim=OptimConfig(g_lr=2.5e-4, d_lr=2e-4, b1=0.0, b2=0.99),
        train=TrainConfig(steps=BRAIN_EPOCHS * BRAIN_EPOCH_STEPS, batch_size=16, ema_kimg=1.0,
                          grid_size=36, log_every=BRAIN_EPOCH_STEPS,
                          sample_every=BRAIN_EPOCH_STEPS, checkpoint_every=5 * BRAIN_EPOCH_STEPS))


FAMILY = Family(name="stylegan", model_config=StyleGANModelConfig,
                loss_config=StyleGANLossConfig, build=build,
                network_names={"g": "generator", "d": "discriminator"},
                description="StyleGAN: mapping network, AdaIN, noise, style mixing, truncation, "
                            "optional progressive growing")

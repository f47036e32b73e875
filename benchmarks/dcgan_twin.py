"""The PyTorch twin of jgan's DCGAN run, trained from the jgan experiment's own config.

The networks are `train_step.torch_dcgan` (layer for layer `jgan/families/gan/dcgan.py`, DCGAN init);
the step is `jgan/families/gan/step.py` with n_critic 1: z ~ N(0, I), G runs once in training mode,
D is updated on real then fake (non-saturating loss, Goodfellow et al. 2014 Sec. 3), then G on
D's updated verdict of the same fakes. Around it, what jgan's config asks for:

- Adam per network with its own rate (`optim.g_lr`, `optim.d_lr`: TTUR, Heusel et al. 2017), b1, b2;
- the rate held for `optim.decay_start` steps, then linear to 0 over `optim.decay_steps`
  (`jgan.optim.learning_rate_schedule`, optax's `linear_schedule`);
- G's EMA with a half-life of `train.ema_kimg` thousand images (`jgan.train.step_parts.ema_decay`),
  sampled with the live G's BatchNorm statistics, as `jgan.families.latent.LatentSetup.sample`;
- the same batches in the same order: jgan's own loader, keyed by the run's data key.

`twin_settings` refuses, in one line, any config option the twin does not implement.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
# benchmarks/ is the script's folder, so its modules import by name
from train_step import FEATURES, Z_DIM, torch_dcgan  # noqa: E402

from jgan import config as config_lib
from jgan.errors import NonFiniteLossError, UserError
from jgan.images import to_uint8
from jgan.train.step_parts import ema_decay

# Options the twin implements only at these values.
REQUIRED = {
    "family": "gan",
    "model.arch": "dcgan",
    "model.z_dim": Z_DIM,
    "model.base_features": FEATURES,
    "model.conditioning": "none",
    "model.d_norm": "batch",
    "model.spectral_norm": False,
    "model.minibatch_kernels": 0,
    "loss.gan_loss": "nonsaturating",
    "loss.gp_weight": 0.0,
    "loss.r1_gamma": 0.0,
    "loss.r2_gamma": 0.0,
    "loss.unroll_steps": 0,
    "loss.g_objective": "adversarial",
    "optim.optimizer": "adam",
    "optim.eps_root": 0.0,
    "optim.d_clip": 0.0,
    "train.n_critic": 1,
    "train.seeds": 1,
    "data.image_size": 0,
    "data.images": None,
}
# Options the twin follows at any value, or that nothing it computes reads (other archs' fields,
# options of switched-off features, bookkeeping).
FOLLOWED = frozenset({
    "name", "data.dataset", "data.data_dir", "data.split",
    "optim.g_lr", "optim.d_lr", "optim.b1", "optim.b2", "optim.decay_steps", "optim.decay_start",
    "loss.real_label",
    "train.steps", "train.batch_size", "train.seed", "train.ema_kimg", "train.eval_every",
    "train.eval_num", "train.eval_features", "train.log_every", "train.sample_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.grid_size",
    "model.hidden", "model.num_classes", "model.g_layers", "model.d_layers", "model.activation",
    "model.pack", "model.minibatch_kernel_dim",
    "loss.focal_gamma", "loss.reg_interval", "loss.class_weight", "loss.unroll_gradient",
})


@dataclasses.dataclass(frozen=True)
class TwinSettings:
    steps: int
    batch_size: int
    seed: int
    g_lr: float
    d_lr: float
    betas: tuple[float, float]
    decay_start: int
    decay_steps: int
    real_label: float
    ema_beta: float | None  # per-step EMA decay of G's weights; None: no EMA


def twin_settings(config) -> TwinSettings:
    """What the twin reads from a jgan `Config`; a `UserError` for anything it cannot follow.

    An option is refused when it is in `REQUIRED` at another value, or, not being in `FOLLOWED`,
    differs from its dataclass default (so a field added to jgan later is refused until the twin
    learns it).
    """
    config_lib.check(config)
    values = _flatten(config_lib.to_dict(config))
    for path, required in REQUIRED.items():
        if values.get(path) != required:
            raise UserError(f"the PyTorch twin does not implement {path}={values.get(path)!r} "
                            f"(only {required!r}): teach benchmarks/dcgan_twin.py, or drop it")
    defaults = _flatten(config_lib.to_dict(config_lib.Config(family=config.family)))
    for path, value in values.items():
        if path not in REQUIRED and path not in FOLLOWED and value != defaults.get(path):
            raise UserError(f"the PyTorch twin does not implement {path}={value!r}: teach "
                            "benchmarks/dcgan_twin.py, or drop it")
    optim, train = config.optim, config.train
    return TwinSettings(
        steps=train.steps, batch_size=train.batch_size, seed=train.seed, g_lr=optim.g_lr,
        d_lr=optim.d_lr, betas=(optim.b1, optim.b2), decay_start=optim.decay_start,
        decay_steps=optim.decay_steps, real_label=config.loss.real_label,
        ema_beta=ema_decay(train.batch_size, train.ema_kimg) if train.ema_kimg else None)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def rate_factor(settings: TwinSettings, update: int) -> float:
    """The share of the base rate at optimizer update `update` (from 0): optax's
    `linear_schedule(lr, 0, decay_steps, decay_start)` as `jgan.optim` builds it."""
    if not settings.decay_steps:
        return 1.0
    done = min(max(update - settings.decay_start, 0), settings.decay_steps)
    return 1.0 - done / settings.decay_steps


class TwinTrainer:
    """G, D, their Adams and G's EMA; `step(images)` is one training step on a uint8 batch."""

    def __init__(self, settings: TwinSettings, torch):
        self.settings, self.torch = settings, torch
        torch.manual_seed(settings.seed)
        self.g, self.d = torch_dcgan(torch)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=settings.g_lr, betas=settings.betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=settings.d_lr, betas=settings.betas)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.g_ema = copy.deepcopy(self.g) if settings.ema_beta is not None else None
        self.updates = 0

    def step(self, images: np.ndarray) -> dict[str, float]:
        """One step on uint8 images `[B, H, W, 1]`, as `jgan.families.gan.step` with n_critic 1."""
        torch, g, d, bce = self.torch, self.g, self.d, self.bce
        factor = rate_factor(self.settings, self.updates)
        for optimizer, rate in ((self.opt_d, self.settings.d_lr), (self.opt_g, self.settings.g_lr)):
            for group in optimizer.param_groups:
                group["lr"] = rate * factor
        real = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        batch = len(real)
        # Fresh target tensors each step: B is fixed, but this keeps the step free of state.
        real_target = torch.full((batch,), self.settings.real_label)
        ones, zeros = torch.ones(batch), torch.zeros(batch)
        fake = g(torch.randn(batch, Z_DIM))
        d.zero_grad()
        loss_d = bce(d(real)[:, 0], real_target) + bce(d(fake.detach())[:, 0], zeros)
        loss_d.backward()
        self.opt_d.step()
        g.zero_grad()
        loss_g = bce(d(fake)[:, 0], ones)
        loss_g.backward()
        self.opt_g.step()
        self.updates += 1
        if self.g_ema is not None:
            with torch.no_grad():
                for average, param in zip(self.g_ema.parameters(), g.parameters()):
                    # average <- param + beta (average - param), jgan's order of terms
                    average.copy_(param + self.settings.ema_beta * (average - param))
        return {"loss/d": loss_d.detach().item(), "loss/g": loss_g.detach().item()}

    def sample(self, z: np.ndarray, chunk: int = 256) -> np.ndarray:
        """uint8 images `[N, H, W, 1]` from latents `[N, z_dim]`: inference-mode BatchNorm, and
        the EMA weights when kept (with the live G's BatchNorm statistics, as jgan samples)."""
        torch = self.torch
        g = self.g
        if self.g_ema is not None:
            for average, live in zip(self.g_ema.buffers(), self.g.buffers()):
                average.copy_(live)
            g = self.g_ema
        g.eval()
        try:
            with torch.no_grad():
                images = [g(torch.from_numpy(z[i:i + chunk])).permute(0, 2, 3, 1).numpy()
                          for i in range(0, len(z), chunk)]
        finally:
            g.train()
        return to_uint8(np.concatenate(images))


def check_finite(metrics: dict[str, float], step: int) -> None:
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        raise NonFiniteLossError(f"twin: {bad[0]} = {metrics[bad[0]]} at step {step}: run "
                                 "stopped")

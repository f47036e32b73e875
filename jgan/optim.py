"""Optimizer pieces for GANs: one optimizer per network, its rate schedule (held, then linear to 0
as in CycleGAN), WGAN weight clipping, StyleGAN2's lazy-regularization correction, historical
averaging (Salimans et al. 2016)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jgan.errors import UserError


def clip_weights(limit: float) -> optax.GradientTransformation:
    """WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1, line 7) as an optax transform.

    Put it last in a chain, e.g. `optax.chain(optax.rmsprop(5e-5), clip_weights(0.01))`: its
    update is clip(params + updates, -limit, limit) - params, so that after `optax.apply_updates`
    every parameter lies in [-limit, limit]. apply_updates adds that difference back in floating
    point, so a parameter that jumps a long way (from |p| >> limit) can land up to half an ulp of
    |p| outside; from inside the range the result is the clipped value, exact to an ulp of limit.
    `update` needs `params`.
    """
    if not limit > 0:
        raise ValueError(f"clip_weights: limit must be positive, got {limit}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("clip_weights needs the parameters: call "
                             "tx.update(grads, opt_state, params)")
        updates = jax.tree.map(lambda p, u: jnp.clip(p + u, -limit, limit) - p, params, updates)
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)


def lazy_regularization(lr: float, b1: float, b2: float,
                        interval: int) -> tuple[float, float, float]:
    """Adam's (lr, b1, b2) for a regularizer applied every `interval` steps (Karras et al. 2020,
    Appendix B, "lazy regularization").

    A separate regularization step every `interval` main steps makes interval + 1 optimizer
    steps where there were `interval`; with c = interval / (interval + 1) the learning rate
    becomes lr * c and the betas b ** c, so step size and momentum per main step stay as they
    were. Interval 1 (the regularizer added to every step's loss) or 0 (no regularizer) adds no
    steps, so the inputs come back unchanged; stylegan2-ada instead counts interval 1 as a
    separate step with c = 1/2.
    """
    if interval < 0:
        raise ValueError(f"lazy_regularization: interval must be >= 0, got {interval}")
    if interval <= 1:
        return lr, b1, b2
    c = interval / (interval + 1)
    return lr * c, b1 ** c, b2 ** c


OPTIMIZERS = ("adam", "rmsprop")


def check_optim_config(optim_cfg) -> None:
    """Refuse an optimizer that does not take the settings, in one line that says what to change.

    The ranges of the rates, betas and the rest are `jgan.config.BOUNDS["optim"]`.
    """
    if optim_cfg.optimizer not in OPTIMIZERS:
        raise UserError(f"optim.optimizer={optim_cfg.optimizer!r} is unknown: choose one of "
                        f"{list(OPTIMIZERS)}")
    if optim_cfg.eps_root > 0 and optim_cfg.optimizer != "adam":
        raise UserError("optim.eps_root is Adam's: drop it, or use --set optim.optimizer=adam")
    if optim_cfg.decay_start and not optim_cfg.decay_steps:
        raise UserError(f"optim.decay_start needs optim.decay_steps > 0: set how many steps the "
                        f"rates fall to 0 over after the first {optim_cfg.decay_start}, e.g. "
                        f"--set optim.decay_steps={optim_cfg.decay_start}, or drop decay_start")
    fraction = optim_cfg.decay_fraction
    if not 0 <= fraction <= 1:  # False for NaN
        raise UserError(f"optim.decay_fraction={fraction}: use a value in [0, 1] (the last part "
                        "of the run over which the rates fall to 0; 0: constant rates), e.g. "
                        "--set optim.decay_fraction=0.5")
    if fraction and (optim_cfg.decay_steps or optim_cfg.decay_start):
        raise UserError(f"optim.decay_fraction={fraction} and optim.decay_steps="
                        f"{optim_cfg.decay_steps}, decay_start={optim_cfg.decay_start} both say "
                        "when the rates fall: keep one (decay_fraction follows --steps)")


def decay_over_steps(optim_cfg, steps: int):
    """`optim_cfg` with its `decay_fraction` of a run of `steps` steps as `decay_start` and
    `decay_steps`, which `learning_rate_schedule` reads. Resolved when a run's networks are built,
    never stored: the run keeps the fraction, so a larger --steps continues it (the rates rise
    again and fall to 0 at the new end) instead of being refused as a changed decay_start."""
    if not optim_cfg.decay_fraction:
        return optim_cfg
    decay = round(steps * optim_cfg.decay_fraction)
    return dataclasses.replace(optim_cfg, decay_fraction=0.0, decay_steps=decay,
                               decay_start=steps - decay if decay else 0)


def decay_as_fraction(saved_cfg, optim_cfg, steps: int):
    """A run saved before `decay_fraction` existed stored its decay in steps: `saved_cfg` (its
    optim settings, `steps` its length) reads as `optim_cfg` where the fraction comes to those
    steps, so that such a run resumes under today's defaults and a larger --steps continues it;
    any other `saved_cfg` is returned as it is."""
    stored = dataclasses.replace(saved_cfg, decay_fraction=0.0)
    if (optim_cfg.decay_fraction and not saved_cfg.decay_fraction
            and decay_over_steps(optim_cfg, steps) == stored):
        return optim_cfg
    return saved_cfg


def learning_rate_schedule(optim_cfg, learning_rate: float,
                           updates_per_step: int = 1) -> float | optax.Schedule:
    """The rate of each optimizer update: constant, or held then decayed linearly to 0.

    With `decay_steps` > 0 the rate holds for `decay_start` steps, then falls linearly to 0 over
    `decay_steps` steps, each step being `updates_per_step` optimizer updates (D's n_critic).
    decay_start = decay_steps is CycleGAN's `lr_policy=linear` (Zhu et al. 2017, Sec. 4: 100
    epochs at 2e-4, then 100 decaying to 0). The reference's rate in epoch e (from 1) is
    lr * (1 - max(0, e - n_epochs) / (n_epochs_decay + 1)): already below lr in the first decay
    epoch and lr / (n_epochs_decay + 1) in the last, never 0. Ours is lr at update
    decay_start * updates_per_step and lr * (1 - k / K) k updates into the K of the decay, so it
    is exactly 0 at step decay_start + decay_steps, the end of a run of that length (its last
    update still moves, at lr / K). Without decay the rate is the float itself, for which optax
    keeps no update count in the optimizer state.
    """
    if not optim_cfg.decay_steps:
        return learning_rate
    return optax.linear_schedule(learning_rate, 0.0,
                                 transition_steps=optim_cfg.decay_steps * updates_per_step,
                                 transition_begin=optim_cfg.decay_start * updates_per_step)


def make_optimizer(optim_cfg, learning_rate: float, *, updates_per_step: int = 1,
                   clip: float = 0.0, lazy_interval: int = 1) -> optax.GradientTransformation:
    """Adam or RMSprop for one network, with its own rate: G and D get one each (TTUR).

    `decay_steps` > 0 decays the rate linearly to 0 over that many steps after `decay_start`
    steps at the full rate (`learning_rate_schedule`; `updates_per_step` optimizer updates each);
    `clip` > 0 clips the weights after every update (WGAN); `lazy_interval` > 1 applies
    StyleGAN2's correction for the extra regularization updates.
    """
    b1, b2 = optim_cfg.b1, optim_cfg.b2
    if lazy_interval > 1:
        learning_rate, b1, b2 = lazy_regularization(learning_rate, b1, b2, lazy_interval)
    schedule = learning_rate_schedule(optim_cfg, learning_rate, updates_per_step)
    if optim_cfg.optimizer == "adam":
        tx = optax.adam(schedule, b1=b1, b2=b2, eps_root=optim_cfg.eps_root)
    else:
        # PyTorch's RMSprop, as in the WGAN reference code: decay 0.99, eps added after the root.
        tx = optax.rmsprop(schedule, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    return optax.chain(tx, clip_weights(clip)) if clip else tx


class HistoricalAverageState(NamedTuple):
    count: jax.Array  # int32: parameter values averaged so far
    average: optax.Params  # the mean of the parameters before each past update


def historical_averaging(weight: float) -> optax.GradientTransformation:
    """Historical averaging (Salimans et al. 2016, Sec. 3.3) as an optax transform.

    Adds the gradient of weight * ||theta - (1/t) sum_i theta[i]||^2, the average of the t past
    parameter values, to the incoming gradient: put it first in a chain, before the optimizer,
    e.g. `optax.chain(historical_averaging(1e-3), optax.adam(3e-3))`. The running average lives
    in the optimizer state, so it is checkpointed with it. The first update (t = 0) adds nothing;
    then theta joins the average. `update` needs `params`.
    """
    if not weight >= 0:
        raise ValueError(f"historical_averaging: weight must be >= 0, got {weight}")

    def init_fn(params):
        return HistoricalAverageState(count=jnp.zeros((), jnp.int32),
                                      average=jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("historical_averaging needs the parameters: call "
                             "tx.update(grads, opt_state, params)")
        seen = (state.count > 0).astype(jnp.float32)
        updates = jax.tree.map(lambda u, p, a: u + seen * 2.0 * weight * (p - a).astype(u.dtype),
                               updates, params, state.average)
        count = state.count + 1
        average = jax.tree.map(lambda a, p: a + (p - a) / count.astype(a.dtype),
                               state.average, params)
        return updates, HistoricalAverageState(count=count, average=average)

    return optax.GradientTransformation(init_fn, update_fn)

"""Weight clipping as an optax transform; StyleGAN2's lazy-regularization correction; the rate
held for decay_start steps, then decayed linearly to 0."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.config import OptimConfig
from jgan.errors import UserError
from jgan.optim import (check_optim_config, clip_weights, lazy_regularization,
                        learning_rate_schedule, make_optimizer)

LIMIT = 0.01


def _run(tx, params, grads_at, steps):
    state = tx.init(params)
    history = []
    for step in range(steps):
        updates, state = tx.update(grads_at(step), state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    return history


def _large_grads(params):
    def grads_at(step):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(0), step), 2)
        return {"moving": 1e3 * jax.random.normal(keys[0], params["moving"].shape),
                "kernel": 1e3 * jax.random.normal(keys[1], params["kernel"].shape),
                "still": jnp.zeros_like(params["still"])}
    return grads_at


PARAMS = {"moving": jnp.array([0.5, -2.0, 0.005, -0.003]),  # two start outside the range
          "kernel": jnp.full((3, 3), 3.0),
          "still": jnp.array([0.004, -0.0099, 0.0])}


def test_clip_weights_keeps_every_parameter_in_range():
    tx = optax.chain(optax.rmsprop(0.1), clip_weights(LIMIT))
    history = _run(tx, PARAMS, _large_grads(PARAMS), steps=6)
    # The first step jumps from |p| up to 3: one rounding of p + (clip - p) at that magnitude.
    for name, leaf in history[0].items():
        slack = np.spacing(np.float32(np.max(np.abs(PARAMS[name]))))
        assert np.max(np.abs(leaf)) <= LIMIT + slack, name
    for params in history[1:]:
        for name, leaf in params.items():
            assert np.max(np.abs(leaf)) <= LIMIT * (1 + 1e-6), (name, leaf)
    # clipping binds: the large gradients push parameters to the boundary
    np.testing.assert_allclose(np.max(np.abs(history[-1]["kernel"])), LIMIT, rtol=1e-6)


def test_without_clipping_the_same_run_leaves_the_range():
    history = _run(optax.rmsprop(0.1), PARAMS, _large_grads(PARAMS), steps=6)
    assert max(float(jnp.max(jnp.abs(leaf))) for leaf in history[-1].values()) > 10 * LIMIT


def test_clip_weights_leaves_in_range_parameters_without_gradient_unchanged():
    tx = optax.chain(optax.rmsprop(0.1), clip_weights(LIMIT))
    history = _run(tx, PARAMS, _large_grads(PARAMS), steps=6)
    for params in history:
        assert jnp.array_equal(params["still"], PARAMS["still"])


def test_clip_weights_refuses_missing_params():
    tx = clip_weights(LIMIT)
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="clip_weights needs the parameters"):
        tx.update(PARAMS, state)
    with pytest.raises(ValueError, match="limit must be positive"):
        clip_weights(0.0)


def test_lazy_regularization_by_hand():
    # interval 16: c = 16 / 17; lr 0.002 -> 0.002 * 16 / 17, beta 0.99 -> 0.99 ** (16 / 17)
    lr, b1, b2 = lazy_regularization(0.002, 0.5, 0.99, interval=16)
    np.testing.assert_allclose(lr, 0.002 * 16 / 17, rtol=1e-12)
    np.testing.assert_allclose(b1, 0.5 ** (16 / 17), rtol=1e-12)
    np.testing.assert_allclose(b2, 0.99 ** (16 / 17), rtol=1e-12)
    assert lr < 0.002 and b1 > 0.5 and b2 > 0.99  # a shorter step, a longer memory per step


def test_lazy_regularization_identity_without_extra_steps():
    assert lazy_regularization(0.002, 0.0, 0.99, interval=1) == (0.002, 0.0, 0.99)
    assert lazy_regularization(0.002, 0.0, 0.99, interval=0) == (0.002, 0.0, 0.99)
    with pytest.raises(ValueError, match="interval must be >= 0"):
        lazy_regularization(0.002, 0.0, 0.99, interval=-1)


def test_schedule_holds_then_decays_linearly_to_zero():
    # CycleGAN's halves: 100 steps at 2e-4, then 100 down to 0; 2 updates a step (n_critic).
    cfg = OptimConfig(decay_start=100, decay_steps=100)
    schedule = learning_rate_schedule(cfg, 2e-4, updates_per_step=2)
    for update, rate in [(0, 2e-4), (199, 2e-4), (200, 2e-4), (300, 1e-4), (350, 0.5e-4),
                         (400, 0.0), (500, 0.0)]:
        np.testing.assert_allclose(schedule(update), rate, rtol=1e-6, atol=1e-12, err_msg=update)
    assert learning_rate_schedule(OptimConfig(), 2e-4) == 2e-4  # no decay: the float itself


def test_make_optimizer_steps_by_the_held_then_decayed_rate():
    # With a constant gradient Adam's bias-corrected step is the rate times g / |g| exactly, so
    # each update's size reads the schedule: decay_start 1 and decay_steps 2 at 2 updates a step
    # hold for updates 0-1, then fall over 4 updates, through 3/4, 1/2, 1/4 to 0.
    cfg = OptimConfig(decay_start=1, decay_steps=2)
    tx = make_optimizer(cfg, 0.1, updates_per_step=2)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    state, update = tx.init(params), jax.jit(tx.update)
    sizes = []
    for _ in range(7):
        updates, state = update(grads, state, params)
        sizes.append(-float(updates["w"][0]))
        np.testing.assert_allclose(updates["w"], -sizes[-1] * np.sign(grads["w"]), rtol=1e-5)
    np.testing.assert_allclose(sizes, [0.1, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0], rtol=1e-5,
                               atol=1e-9)


def test_decay_start_without_decay_steps_is_refused():
    with pytest.raises(UserError, match=r"^optim.decay_start needs optim.decay_steps > 0: .*"
                                        r"--set optim.decay_steps=100"):
        check_optim_config(OptimConfig(decay_start=100))
    check_optim_config(OptimConfig(decay_start=100, decay_steps=100))
    check_optim_config(OptimConfig(decay_steps=100))


def _experiment_config(name: str, steps: int):
    """The config `python -m experiments.NAME --steps STEPS` trains, its schedule resolved as
    `build_setup` resolves it."""
    import importlib

    from jgan import cli

    module = importlib.import_module(f"experiments.{name}")
    # The K+1 GAN's rate is constant by default (the authors'); its flag asks for the decay.
    argv = ["--steps", str(steps), *(["--decay-fraction", "0.5"] if name == "ssgan" else [])]
    parents = [module.own_flags()] if name == "ssgan" else []
    config, _ = cli.parse_config(module.get_config(), argv, description="", parents=parents)
    if name == "ssgan":
        config = module.with_schedule(config, module.own_flags().parse_known_args(argv)[0])
    return config


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan", "ssgan"])
def test_the_rate_decay_follows_steps_and_a_larger_steps_continues_the_run(name):
    """The decay over the last half of the run (docs/translation.md): --steps 200 used to keep
    Pix2Pix's and CycleGAN's at steps 1000-2000 and 750-1500, and the K+1 GAN's decay_start,
    derived from --steps, refused a finished 20-step run resumed with --steps 30."""
    from jgan.config import to_dict
    from jgan.optim import decay_over_steps
    from jgan.train.resume import config_changes

    config = _experiment_config(name, 200)
    schedule = learning_rate_schedule(decay_over_steps(config.optim, config.train.steps), 1.0)
    np.testing.assert_allclose([schedule(step) for step in (0, 100, 150, 200)],
                               [1.0, 1.0, 0.5, 0.0])
    assert config_changes(_experiment_config(name, 300), to_dict(config)) == []


@pytest.mark.parametrize("changes, message", [
    ({"decay_fraction": 1.5}, r"optim.decay_fraction=1.5: use a value in \[0, 1\]"),
    ({"decay_fraction": 0.5, "decay_steps": 100},
     r"optim.decay_fraction=0.5 and optim.decay_steps=100, decay_start=0 both say when the rates "
     r"fall: keep one"),
])
def test_a_decay_fraction_that_cannot_work_is_refused(changes, message):
    with pytest.raises(UserError, match=f"^{message}"):
        check_optim_config(OptimConfig(**changes))


@pytest.mark.parametrize("name, steps, start", [("pix2pix", 2000, 1000), ("cyclegan", 1500, 750)])
def test_a_run_saved_before_decay_fraction_resumes_and_goes_on(name, steps, start):
    """Such a run stored its decay in steps (and no decay_fraction); today's defaults give the
    same schedule, so it resumes, also with a larger --steps. Another stored decay is a change."""
    from jgan.config import to_dict
    from jgan.train.resume import config_changes

    saved = to_dict(_experiment_config(name, steps))
    del saved["optim"]["decay_fraction"]
    saved["optim"].update(decay_start=start, decay_steps=steps - start)
    assert config_changes(_experiment_config(name, steps), saved) == []
    assert config_changes(_experiment_config(name, 2 * steps), saved) == []
    saved["optim"]["decay_start"] = start + 1
    assert [field for field, _, _ in config_changes(_experiment_config(name, steps), saved)] == [
        "optim.decay_fraction", "optim.decay_start", "optim.decay_steps"]

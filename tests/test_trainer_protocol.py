"""The trainer protocol: a model that is no GAN, written entirely here, on the shared loop.

A least-squares line (y = 3x + 1) fitted by SGD is a `jgan.train.trainer.Trainer` in a few
lines, and `jgan.train.loop.run` keeps every promise of a run for it, as for a GAN family, DANN
and the 2-D benchmark: learning, resume bit for bit, the damaged newest checkpoint moved aside,
changed settings refused, a non-finite metric naming its step, and a signal stopping after the
step in flight, also while the results are computed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

from jgan import config as config_lib
from jgan.errors import Interrupted, NonFiniteLossError, UserError
from jgan.files import write_text
from jgan.train.loop import run
from jgan.train.resume import write_config
from jgan.train.state import Network, apply_gradients, init_train_state
from jgan.train.trainer import Schedule, Trainer

SILENT = {"log": lambda _: None}


class Line(nn.Module):
    """y = w x + b; jgan's networks take `train`."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        return nn.Dense(1)(x)


@dataclasses.dataclass(frozen=True)
class LineConfig:
    name: str = "line"
    steps: int = 6
    lr: float = 0.1
    batch_size: int = 16
    seed: int = 0
    nan_at: int = 0  # > 0: the loss turns NaN from this step on
    log_every: int = 1
    checkpoint_every: int = 2


class LineTrainer(Trainer):
    """Fits y = 3x + 1 on batches drawn from (run key, step)."""

    def __init__(self, config: LineConfig, signal_at: dict | None = None):
        self.config, self.name = config, config.name
        self.schedule = Schedule(steps=config.steps, log_every=config.log_every,
                                 checkpoint_every=config.checkpoint_every, keep_checkpoints=5)
        self.signal_at = signal_at or {}  # {"step": k} or {"results": True}: SIGTERM then

    def prepare(self, workdir, log):
        self.workdir = workdir
        self.network = Network(Line(), optax.sgd(self.config.lr))
        self.init = jax.jit(lambda key: init_train_state({"line": self.network}, key,
                                                         {"line": (jnp.zeros((1, 1)),)}))
        self.step_fn = jax.jit(self.train_step)

    def train_step(self, state, batch, key):
        del batch  # drawn here from the key and the step
        x = jax.random.uniform(jax.random.fold_in(key, state.step), (self.config.batch_size, 1))
        net = state.nets["line"]

        def loss_fn(params):
            return jnp.mean((self.network.module.apply({"params": params}, x) - (3 * x + 1)) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(net.params)
        if self.config.nan_at:
            loss = jnp.where(state.step + 1 >= self.config.nan_at, jnp.nan, loss)
        nets = {"line": apply_gradients(self.network, net, grads, net.collections)}
        return state.replace(step=state.step + 1, nets=nets), {"loss": loss}

    def setting_changes(self, config, saved):
        return [d for d in config_lib.differences(saved, dataclasses.asdict(config))
                if d[0] != "steps"]  # nothing here depends on the last step

    def read_config(self, path):
        return LineConfig(**json.loads(path.read_text()))

    def config_dict(self):
        return dataclasses.asdict(self.config)

    def write_config(self, workdir):
        write_config(self.config, workdir, save=lambda config, path: write_text(
            path, json.dumps(dataclasses.asdict(config))))

    def abstract_state(self):
        return jax.eval_shape(self.init, jax.random.key(self.config.seed))

    def initial(self):
        init_key, run_key = jax.random.split(jax.random.key(self.config.seed))
        return self.init(init_key), run_key

    def advance(self, state, run_key, step, count):
        if self.signal_at.get("step") == step + 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.step_fn(state, None, run_key)

    def log_row(self, state, done, means, measured, *, steps, seconds, wall_s):
        return {"step": done, **means, "wall_s": wall_s}, {"loss": f"{means['loss']:.3f}"}

    def final_results(self, state):
        if self.signal_at.get("results"):
            os.kill(os.getpid(), signal.SIGTERM)
        return {"kernel": float(state.nets["line"].params["Dense_0"]["kernel"][0, 0]),
                "bias": float(state.nets["line"].params["Dense_0"]["bias"][0])}

    def write_results(self, state, final, history, *, trained, wall_s, log):
        write_text(self.workdir / "results.json", json.dumps(final))
        return {**final, "rows": len(history.rows())}


def history_losses(workdir):
    return [line.split(",")[:2] for line in (workdir / "history.csv").read_text().splitlines()]


def test_a_line_learns_and_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    learned = run(LineTrainer(LineConfig(steps=300, log_every=100, checkpoint_every=300)),
                  tmp_path / "long", **SILENT)
    assert abs(learned["kernel"] - 3) < 0.05 and abs(learned["bias"] - 1) < 0.05, learned

    straight = run(LineTrainer(LineConfig()), tmp_path / "straight", **SILENT)
    assert straight["rows"] == 6
    run(LineTrainer(LineConfig(steps=4)), tmp_path / "resumed", **SILENT)
    # checkpoint 4 is damaged: the run falls back to 2 and replays steps 3 and 4
    (tmp_path / "resumed" / "checkpoints" / "4" / "meta" / "metadata").write_text('{"con')
    messages = []
    resumed = run(LineTrainer(LineConfig()), tmp_path / "resumed", log=messages.append)
    assert messages[0].startswith("warning: checkpoint 4 in") and "resuming" in messages[1]
    assert resumed == straight
    assert history_losses(tmp_path / "resumed") == history_losses(tmp_path / "straight")

    with pytest.raises(UserError, match="holds a run with lr=0.1, not 0.2"):
        run(LineTrainer(LineConfig(lr=0.2)), tmp_path / "straight", **SILENT)
    messages = []
    assert run(LineTrainer(LineConfig()), tmp_path / "straight", log=messages.append) == straight
    assert "is at step 6 of 6: nothing to do" in messages[-1]


def test_a_non_finite_metric_stops_the_run_at_its_step(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"^loss = nan at step 5: run stopped; its last "
                                                 r"good checkpoint is step 4 in "):
        run(LineTrainer(LineConfig(nan_at=5)), tmp_path, **SILENT)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2", "4"]


def test_a_signal_stops_after_the_step_in_flight_and_the_run_resumes(tmp_path):
    # The signal comes while step 3 is dispatched: step 3 is finished and saved, not dropped.
    with pytest.raises(Interrupted, match=r"^stopped by SIGTERM after step 3 of 6; checkpoint 3 "):
        run(LineTrainer(LineConfig(), signal_at={"step": 3}), tmp_path / "run", **SILENT)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["2", "3"]
    resumed = run(LineTrainer(LineConfig()), tmp_path / "run", **SILENT)
    assert resumed == run(LineTrainer(LineConfig()), tmp_path / "straight", **SILENT)


def test_a_signal_while_the_results_are_computed_stops_before_they_are_written(tmp_path):
    with pytest.raises(Interrupted, match=r"^stopped by SIGTERM after step 6 of 6"):
        run(LineTrainer(LineConfig(), signal_at={"results": True}), tmp_path, **SILENT)
    assert not (tmp_path / "results.json").exists()
    results = run(LineTrainer(LineConfig()), tmp_path, **SILENT)
    assert json.loads((tmp_path / "results.json").read_text()) == {
        name: results[name] for name in ("kernel", "bias")}


"""What the shared loop (`jgan.train.loop.run`) asks of a model trained by pure steps on batches.

Three kinds of run are trainers: a GAN family's (`jgan.train.family_trainer`, any family of the
registry), DANN's (`jgan.domain_adaptation`) and the N-seed 2-D benchmark's (`jgan.mode_collapse`).
The loop keeps every promise of a run for all of them: the run directory's lock, one-line
refusals before the directory is made, signals (before the first step and after any step),
resume from the newest intact checkpoint with the damaged ones moved aside, the settings
compared on resume, config.json, the progress bar, history.csv, the check for non-finite
metrics, checkpoints and the step on which every process of a job stops. A trainer answers only
for what differs: its data, state and step, its log row, its pictures and its results.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from jgan import config as config_lib
from jgan.train.resume import config_changes, write_config


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schedule:
    """When the loop logs, checkpoints and samples: at multiples of these, and at `steps`."""

    steps: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    sample_every: int = 0  # 0: the trainer draws no samples of its own at fixed steps


class Trainer:
    """A model trained by a pure, jitted step, as the shared loop runs it.

    The loop calls, in order: `prepare` (before the run directory exists: everything that can
    refuse or fail, data and compiling included), then with the directory locked
    `abstract_state` and `initial` or `resumed`, `begin`, then `chunk` and `advance` per call of
    the step, `logs_at`, `measure` and `log_row` on log steps, `save_samples`, `checkpoint_meta`,
    `on_stop` on a signal, and at the end `close`, `final_results` and `write_results`.

    name: the run's name on the progress bar.
    config: its settings, stored in every checkpoint's meta and compared on resume.
    schedule: when to log, checkpoint and sample.
    meta_keys: what a checkpoint's meta must hold besides the config, or it is damaged.
    num_keys: the run key's leading axis, where one checkpoint holds several runs (seeds).
    overlap: the next call of the step is dispatched before the last one's metrics are read, so
      the host's work overlaps the device's; off where one call is long and a log step's
      `measure` would wait behind the next call, which then times the wrong call.
    """

    name: str
    config: Any
    schedule: Schedule
    meta_keys: tuple[str, ...] = ()
    num_keys: int | None = None
    overlap: bool = True

    # ---- before the run directory ---------------------------------------------------------

    def prepare(self, workdir: Path, log) -> None:
        """Open the data, build and compile for the run in `workdir` (not made yet); a
        one-line `UserError` for what cannot run."""

    # ---- the settings and the state -------------------------------------------------------

    def setting_changes(self, config, saved: dict) -> list[tuple]:
        """`[(field, saved value, value now)]` where `config` and a checkpoint's differ in a
        setting that a resumed run may not change (`jgan.train.resume.restore_latest`)."""
        return config_changes(config, saved)

    def read_config(self, path: Path):
        """The settings in a run directory's config.json (an error when it is unreadable)."""
        return config_lib.load(path)

    def config_dict(self) -> dict:
        """The settings as a checkpoint's meta holds them."""
        return config_lib.to_dict(self.config)

    def write_config(self, workdir: Path) -> None:
        """config.json, the record of the settings for people and tools."""
        write_config(self.config, workdir)

    def abstract_state(self):
        """The state's shapes, dtypes and shardings (`jax.ShapeDtypeStruct`s)."""
        raise NotImplementedError

    def initial(self) -> tuple[Any, Any]:
        """`(state, run key)` of a new run."""
        raise NotImplementedError

    def resumed(self, state, meta: dict, workdir: Path) -> None:
        """Check a restored checkpoint against this run's data (a `UserError` if it differs)."""

    def begin(self, start: int, state, run_key, history, log) -> None:
        """Before the first step of this session (`history` is None on processes other than 0)."""

    # ---- the steps ------------------------------------------------------------------------

    def chunk(self, step: int) -> int:
        """How many steps the next call of `advance` takes, from `step` on."""
        return 1

    def advance(self, state, run_key, step: int, count: int):
        """`(state, metrics)` after steps `step + 1 .. step + count`: each metric the mean over
        them, a scalar or one value per run (seed)."""
        raise NotImplementedError

    def label(self, name: str, index: int) -> str:
        """How an error names entry `index` of metric `name` (`name` for a scalar)."""
        return name

    def logs_at(self, done: int) -> bool:
        """Whether step `done` writes a history row besides the log steps and the last step,
        which always do (an evaluation's step, say)."""
        return False

    def measure(self, state, done: int) -> dict:
        """Metrics of the state itself on a step that writes a row (the 2-D benchmark's mode
        coverage), checked for non-finite values as the step's are, and given to `log_row`."""
        return {}

    def log_row(self, state, done: int, means: dict, measured: dict, *, steps: int,
                seconds: float, wall_s: float) -> tuple[dict, dict]:
        """`(history row, progress postfix)` at step `done`: `means` are the metrics' means over
        the `steps` steps since the last row, which took `seconds`; `measured` is `measure`'s."""
        raise NotImplementedError

    def save_samples(self, state, done: int) -> None:
        """Pictures at `schedule.sample_every` steps and at the last step."""

    def checkpoint_meta(self, done: int, wall_s: float) -> dict:
        """What a checkpoint's meta holds: the settings and the training wall time at least."""
        return {"wall_s": wall_s, "config": self.config_dict()}

    def on_stop(self, done: int) -> None:
        """A signal stops the run after step `done`, whose checkpoint is saved."""

    # ---- the end --------------------------------------------------------------------------

    def close(self) -> None:
        """Release what `begin` opened; called however the steps end."""

    def final_results(self, state):
        """What `write_results` writes, computed after the last step (a signal meanwhile
        stops the run before anything is written)."""

    def write_results(self, state, final, history, *, trained: bool, wall_s: float, log):
        """Write the run's results; what `jgan.train.loop.run` returns. `trained` is False
        when the run was already at its last step."""
        return state


def first_nonfinite(metrics: dict) -> tuple[str, int] | None:
    """`(name, flat index)` of the first non-finite value among `metrics`' arrays, or None."""
    for name, value in metrics.items():
        bad = np.flatnonzero(~np.isfinite(np.asarray(value)))
        if bad.size:
            return name, int(bad[0])
    return None

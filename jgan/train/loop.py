"""The shared loop: every run, of any trainer (`jgan.train.trainer.Trainer`), goes through `run`.

`run` refuses bad settings before the run directory exists, locks it, resumes from its newest
intact checkpoint, dispatches the steps, logs, samples, checkpoints, and stops on a signal after
the step in flight with a checkpoint. `train(config, workdir)` runs a GAN family's config
(`jgan.train.family_trainer`); DANN and the 2-D benchmark are trainers of their own.

Step k+1 is dispatched before step k's metrics are read (unless the trainer turns `overlap`
off), so the host's work (reading them, the next batch) overlaps the device's. A step whose
state is read (logged, sampled, checkpointed, or stopped after) is finished first: the next
call may donate the state's buffers to its own (`jit_data_parallel(donate_state=True)`), which
keeps one state in memory instead of two. A step is checked for non-finite metrics before its
state is ever saved.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from jgan.errors import Interrupted, NonFiniteLossError
from jgan.train.distributed import is_primary, to_host
from jgan.train.faults import fault_point
from jgan.train.history import History
from jgan.train.lock import LOCK_FILE, check_run_directory, hold_run_directory
from jgan.train.resume import CHECKPOINTS, CONFIG_FILE, open_run_directory, restore_latest
from jgan.train.stopping import stop_requests
from jgan.train.trainer import Trainer, first_nonfinite

HISTORY = "history.csv"


def train(config, workdir, *, log=print):
    """Train (or resume) the GAN family run in `workdir` up to `config.train.steps`. Returns the
    final state.

    In a multi-process job (`jgan.train.distributed`) every process calls this with the same
    arguments; process 0 alone logs and writes files other than checkpoints.
    """
    from jgan.train.family_trainer import FamilyTrainer

    return run(FamilyTrainer(config), workdir, log=log)


def run(trainer: Trainer, workdir, *, log=print):
    """Train (or resume) `trainer`'s run in `workdir` up to its last step; returns its
    `write_results`."""
    workdir = Path(workdir)
    if not is_primary():
        log = _silent
    check_run_directory(workdir)
    made = not workdir.exists()  # and so removed again if a signal comes before the first step
    with stop_requests(before_start=lambda signal_name: stopped_before_start(
            signal_name, workdir, made)) as stop:
        trainer.prepare(workdir, log)
        # Only settings that passed every check get a run directory (and its config.json).
        with hold_run_directory(workdir):
            return _run(trainer, workdir, stop, log)


def stopped_before_start(signal_name: str, workdir: Path, made: bool) -> str:
    """The line for a signal before the first step, after removing a run directory that this
    run made and that holds nothing yet (its lock, config.json, empty checkpoints/)."""
    if made and workdir.is_dir():
        for name in (CONFIG_FILE, LOCK_FILE):
            (workdir / name).unlink(missing_ok=True)
        for name in (CHECKPOINTS, "samples", ""):
            try:
                (workdir / name).rmdir()
            except OSError:  # not made yet, or holds what this line must not remove
                pass
    if not made:
        where = f"{workdir} keeps what it held"
    elif workdir.exists():
        where = f"{workdir} holds no step yet"
    else:
        where = "no run directory is left"
    return (f"stopped by {signal_name} before the first step: {where}; run again with: "
            f"{shlex.join(sys.orig_argv)}")


def _silent(*args, **kwargs):
    """The log of a process other than process 0."""


def _run(trainer: Trainer, workdir: Path, stop, log):
    schedule = trainer.schedule
    primary = is_primary()
    checkpointer = open_run_directory(workdir, keep=schedule.keep_checkpoints)
    restored = restore_latest(checkpointer, workdir, trainer.config, trainer.abstract_state(),
                              num_keys=trainer.num_keys, meta_keys=trainer.meta_keys,
                              changes=trainer.setting_changes, read_config=trainer.read_config,
                              log=log)
    trainer.write_config(workdir)
    if restored is None:
        (state, run_key), wall_offset = trainer.initial(), 0.0
    else:
        state, run_key, meta = restored
        trainer.resumed(state, meta, workdir)
        wall_offset = float(meta.get("wall_s", 0.0))
    start = step_of(state)
    history = History(workdir / HISTORY, resume_step=start, log=log) if primary else None
    if start >= schedule.steps:
        checkpointer.close()
        log(f"{workdir} is at step {start} of {schedule.steps}: nothing to do (raise --steps to "
            "go on)")
        stop.started()
        return _finish(trainer, state, history, workdir, stop, trained=False, wall_s=wall_offset,
                       log=log)

    trainer.begin(start, state, run_key, history, log)
    session_start = tick_start = time.perf_counter()
    tick_sums, tick_steps = {}, 0
    wall_s = wall_offset
    progress = tqdm(total=schedule.steps, initial=start, desc=trainer.name, unit="step",
                    dynamic_ncols=True, file=sys.stdout, disable=not primary,
                    mininterval=0.5 if sys.stdout.isatty() else 30.0)

    def save_checkpoint(state, done):
        checkpointer.save(done, state, run_key, trainer.checkpoint_meta(done, wall_s))

    def due(done):
        """What step `done` writes: `(logging, sampling, saving, stopping)`. Asked once per step
        and before the next call is dispatched, which may take (donate) step `done`'s state."""
        logging = (done % schedule.log_every == 0 or done == schedule.steps
                   or trainer.logs_at(done))
        sampling = bool(schedule.sample_every) and (done % schedule.sample_every == 0
                                                   or done == schedule.steps)
        saving = done % schedule.checkpoint_every == 0 or done == schedule.steps
        stopping = stop.requested(done) and done < schedule.steps
        return logging, sampling, saving, stopping

    def finish(done, count, metrics, state, plan):
        """Check, log, sample and checkpoint the steps up to `done`, as `plan` (`due`'s) says.
        `state` is step `done`'s where the plan reads it, else None: the next call, dispatched
        already where the trainer overlaps them, may have taken its buffers."""
        nonlocal tick_sums, tick_steps, tick_start, wall_s
        logging, sampling, saving, stopping = plan
        # float64 sums of `count` times the mean give back the mean exactly for one call
        metrics = {name: np.asarray(value, np.float64) for name, value in to_host(metrics).items()}
        measured = trainer.measure(state, done) if logging else {}
        bad = first_nonfinite({**metrics, **measured})
        if bad:
            checkpointer.wait()
            name, index = bad
            value = {**metrics, **measured}[name].flat[index]
            raise NonFiniteLossError(
                f"{trainer.label(name, index)} = {value} at step {done}: run stopped; "
                f"{last_good(checkpointer, workdir, schedule)}")
        for name, value in metrics.items():
            tick_sums[name] = tick_sums.get(name, 0.0) + value * count
        tick_steps += count
        progress.update(count)
        wall_s = wall_offset + time.perf_counter() - session_start
        if logging:
            means = {name: total / tick_steps for name, total in tick_sums.items()}
            row, postfix = trainer.log_row(state, done, means, measured, steps=tick_steps,
                                           seconds=time.perf_counter() - tick_start,
                                           wall_s=wall_s)
            if primary:
                history.append(row)
            fault_point("history", done)
            progress.set_postfix(postfix, refresh=False)
            tick_sums, tick_steps, tick_start = {}, 0, time.perf_counter()
        if sampling:
            trainer.save_samples(state, done)
            fault_point("samples", done)
        if saving:
            save_checkpoint(state, done)
            fault_point("checkpoint", done)
        if stopping:
            if not saving:
                save_checkpoint(state, done)
            checkpointer.wait()
            trainer.on_stop(done)
            raise stopped(stop, done, schedule.steps, workdir)

    previous, step = None, start
    stop.started()
    try:
        while True:
            if previous is not None:
                done, count, metrics, state = previous
                plan = due(done)
                # A step whose state is read is finished before the next call can take it.
                if not trainer.overlap or any(plan):
                    finish(done, count, metrics, state, plan)
                    previous = None
            if step < schedule.steps:
                count = trainer.chunk(step)
                state, metrics = trainer.advance(state, run_key, step, count)
                fault_point("step", step + count)
            if previous is not None:
                finish(*previous[:3], None, plan)
            if step >= schedule.steps:
                break
            step += count
            previous = (step, count, metrics, state)
    finally:
        progress.close()
        checkpointer.wait()
        checkpointer.close()
        trainer.close()
    return _finish(trainer, state, history, workdir, stop, trained=True, wall_s=wall_s, log=log)


def _finish(trainer: Trainer, state, history, workdir: Path, stop, *, trained: bool,
            wall_s: float, log):
    """The results after the last step; a signal while they are computed stops the run before
    they are written, and the same command writes them."""
    final = trainer.final_results(state)
    if stop.signal is not None:
        step = step_of(state)
        raise stopped(stop, step, step, workdir)
    return trainer.write_results(state, final, history, trained=trained, wall_s=wall_s, log=log)


def step_of(state) -> int:
    """The completed steps of a state (of its first run, where it holds several)."""
    return int(np.asarray(to_host(state.step)).flat[0])


def stopped(stop, done: int, steps: int, workdir: Path) -> Interrupted:
    return Interrupted(stop.signal, f"stopped by {stop.name} after step {done} of {steps}; "
                                    f"checkpoint {done} is in {workdir / CHECKPOINTS}")


def last_good(checkpointer, workdir: Path, schedule) -> str:
    """Where a stopped run can go on from, for its error message."""
    latest = checkpointer.latest_step()
    if latest is None:
        first_due = min(schedule.checkpoint_every, schedule.steps)
        return (f"no checkpoint was written yet (the first was due at step {first_due}):"
                " lower the learning rates and start again")
    return (f"its last good checkpoint is step {latest} in {workdir / CHECKPOINTS} (lower the "
            "learning rates, or resume from there)")

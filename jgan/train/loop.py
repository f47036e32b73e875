"""The host loop of every family: data, the jitted step, progress, history, samples, checkpoints.

Keys: `jax.random.key(seed)` is split once into named keys for init, the run (passed unchanged to
every step, which folds in the step), the data order and the sample grid. A run resumed from its
last checkpoint therefore replays exactly the steps an uninterrupted run would take.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from jgan import config as config_lib
from jgan.checkpoint import Checkpointer, DamagedCheckpointError
from jgan.data import open_data
from jgan.errors import Interrupted, NonFiniteLossError, UserError
from jgan.images import save_png, write_gif
from jgan.memory import compiled_memory, device_memory, size_text
from jgan.metrics.evaluation import make_evaluator
from jgan.train.distributed import (broadcast, global_batch, is_primary, local_copy, on_primary,
                                    process_rows, to_host)
from jgan.train.faults import fault_point
from jgan.train.history import History, plot_history
from jgan.train.lock import LOCK_FILE, check_run_directory, hold_run_directory
from jgan.train.parallel import (batch_split, check_batch_size, jit_data_parallel, make_mesh,
                                 replicated)
from jgan.train.resume import (CHECKPOINTS, CONFIG_FILE, open_run_directory, restore_latest,
                               write_config)
from jgan.train.setup import build_setup
from jgan.train.stopping import stop_requests

LOSS_CURVE = "loss_curve.png"
TRAINING_GIF = "training.gif"  # the preview grids over training, written when the run ends
# loss_curve.png is redrawn with the sample grids at most this often, and when the run ends or
# stops: a redraw costs about half a second, most of a short run's host time.
CURVE_EVERY_S = 60.0
BEST_DIR = "best"  # the best checkpoint by FID, kept beside checkpoints/ when evaluating
# What a resume reads from a checkpoint's metadata besides its config: a checkpoint without
# them is damaged.
META_KEYS = ("data", "wall_s")


def run_keys(seed: int) -> dict[str, jax.Array]:
    k_init, k_run, k_data, k_grid = jax.random.split(jax.random.key(seed), 4)
    return {"init": k_init, "run": k_run, "data": k_data, "grid": k_grid}


def abstract_train_state(setup, key, mesh):
    """Shapes, dtypes and shardings of the initial state, without computing it."""
    shapes = jax.eval_shape(setup.init_state, key)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated(mesh)),
                        shapes)


def train(config, workdir, *, log=print):
    """Train (or resume) the run in `workdir` up to `config.train.steps`. Returns the final state.

    In a multi-process job (`jgan.train.distributed`) every process calls this with the same
    arguments; process 0 alone logs and writes files other than checkpoints.
    """
    workdir = Path(workdir)
    tc = config.train
    primary = is_primary()
    if not primary:
        log = _silent
    config_lib.check(config)
    check_run_directory(workdir)
    if tc.seeds != 1:
        raise UserError("train.seeds trains several seeds at once in the 2-D benchmark: run "
                        "python -m experiments.mode_collapse, or drop train.seeds")
    made = not workdir.exists()  # and so removed again if a signal comes before the first step
    with stop_requests(before_start=lambda signal_name: stopped_before_start(
            signal_name, workdir, made)) as stop:
        return _prepare_and_train(config, workdir, stop, log)


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


def _prepare_and_train(config, workdir, stop, log):
    tc = config.train
    data = open_data(config.data, log=log)
    log(f"data: {data.description}")
    fault_point("data")
    if data.folder and tc.eval_every > 0:
        raise UserError(f"--eval-every measures FID against a TFDS dataset's test split, and "
                        f"{data.name} is an image folder: drop --eval-every")
    mesh = make_mesh()
    check_batch_size(tc.batch_size, mesh)
    keys = run_keys(tc.seed)
    setup = build_setup(config, data.spec)
    check_state_fits(setup, keys["init"])
    evaluator = None
    if tc.eval_every > 0:
        evaluator = on_primary(lambda: make_evaluator(
            dataset=config.data.dataset, num_classes=setup.num_classes, num=tc.eval_num,
            features=tc.eval_features, data_dir=config.data.data_dir, log=log),
            "preparing the evaluation")
    # The loader refuses a batch larger than the data, and the compiled step one larger than
    # the memory, so both are made before the run directory.
    images_per_step = tc.batch_size * setup.batches_per_step
    loader = data.loader(images_per_step, keys["data"],
                         rows=process_rows(batch_split(mesh), images_per_step))
    step_fn = compile_step(setup, mesh, keys, global_batch(loader.batch(0), batch_split(mesh),
                                                           images_per_step), log=log)
    # Only a config that passed every check gets a run directory (and its config.json).
    with hold_run_directory(workdir):
        return _train(config, workdir, data, loader, setup, step_fn, evaluator, mesh, keys, stop,
                      log)


def compile_step(setup, mesh, keys, batch, *, log, memory: int | None = None):
    """The data-parallel train step, compiled for the state's shapes and `batch`'s, or a
    one-line refusal where XLA's buffer plan for it (state, batch and the activations the
    backward pass keeps) exceeds `memory` (default: the device's, or this machine's RAM)."""
    fault_point("compiling")
    start = time.perf_counter()
    run_key = jax.ShapeDtypeStruct(keys["run"].shape, keys["run"].dtype,
                                   sharding=replicated(mesh))
    compiled = jit_data_parallel(setup.train_step, mesh).lower(
        abstract_train_state(setup, keys["init"], mesh), batch, run_key).compile()
    need, memory = compiled_memory(compiled), memory or device_memory()
    if need > memory:
        images = len(next(iter(batch.values())))
        raise UserError(f"one train step on batches of {images} needs {size_text(need)} (the state "
                        f"and the activations XLA planned), more than the {size_text(memory)} of "
                        "memory here: lower --batch-size or data.image_size, or use a "
                        "smaller model")
    log(f"devices: {mesh.devices.size} x {jax.devices()[0].platform}"
        f"{f' over {jax.process_count()} processes' if jax.process_count() > 1 else ''}; "
        f"train step compiled in {time.perf_counter() - start:.1f} s ({size_text(need)} planned)")
    fault_point("compiled")
    return compiled


def check_state_fits(setup, init_key, *, memory: int | None = None) -> None:
    """Refuse, before anything is compiled, a train state that with its gradients (the same
    size as the parameters) would not fit in `memory` (default: the device's, or this machine's
    for a CPU). Activations come on top, so passing is no promise; refusing is one."""
    state = jax.eval_shape(setup.init_state, init_key)
    count = sum(leaf.size for net in state.nets.values() for leaf in jax.tree.leaves(net.params))
    need = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state))
    need += sum(leaf.size * leaf.dtype.itemsize
                for net in state.nets.values() for leaf in jax.tree.leaves(net.params))
    memory = memory or device_memory()
    if need > memory:
        raise UserError(f"the train state holds {count:,} parameters, {size_text(need)} with their "
                        f"gradients, more than the {size_text(memory)} of "
                        "memory here: lower model.z_dim, model.base_features or "
                        "data.image_size")


def _silent(*args, **kwargs):
    """The log of a process other than process 0."""


def _train(config, workdir, data, loader, setup, step_fn, evaluator, mesh, keys, stop, log):
    tc = config.train
    primary = is_primary()
    checkpointer = open_run_directory(workdir, config)
    images_per_step = tc.batch_size * setup.batches_per_step
    rows_sharding = batch_split(mesh)

    def device_batch(batch):
        return global_batch(batch, rows_sharding, images_per_step)

    restored = restore_latest(checkpointer, workdir, config,
                              abstract_train_state(setup, keys["init"], mesh),
                              meta_keys=META_KEYS, log=log)
    write_config(config, workdir)
    if restored is None:
        init = jax.jit(setup.init_state, out_shardings=replicated(mesh))
        # The run key is a global array too, so that every process can join its save.
        run_key = jax.jit(lambda key: key, out_shardings=replicated(mesh))(keys["run"])
        state, wall_offset = init(keys["init"]), 0.0
    else:
        state, run_key, meta = restored
        latest = int(to_host(state.step))
        if meta["data"] != loader.position(latest):
            raise UserError(f"checkpoint {latest} in {workdir} was written at data position "
                            f"{meta['data']}, not {loader.position(latest)} (another dataset?): "
                            "resume with the run's own data, or use a new --workdir")
        wall_offset = meta["wall_s"]
    start = int(to_host(state.step))
    if start >= tc.steps:
        log(f"{workdir} is at step {start} of {tc.steps}: nothing to do (raise --steps to go on)")
        checkpointer.close()
        return state

    history = History(workdir / "history.csv", resume_step=start, log=log) if primary else None
    best_checkpointer, best_fid = None, math.inf
    if tc.eval_every > 0:
        best_checkpointer, best_fid = open_best(workdir, start, log)
    # The previews show the held-out examples when the data sets some aside, else step 0's.
    preview_batch = data.held_out or (loader.global_batch(0) if primary else None)
    preview_inputs = (setup.preview_inputs(keys["grid"], tc.grid_size, preview_batch)
                      if primary else None)

    curve_due = time.perf_counter() + CURVE_EVERY_S

    def draw_curve():
        nonlocal curve_due
        if primary:
            plot_history(history.rows(), workdir / LOSS_CURVE)
            curve_due = time.perf_counter() + CURVE_EVERY_S

    def save_samples(state, step):
        if primary:
            for name, grid in setup.preview(local_copy(state), preview_inputs).items():
                save_png(grid, workdir / "samples" / f"{name}step_{step:06d}.png")
        if step == tc.steps or time.perf_counter() >= curve_due:
            draw_curve()

    def save_checkpoint(state, step, wall_s, *, to=checkpointer, **meta):
        to.save(step, state, run_key,
                {"data": loader.position(step), "wall_s": wall_s,
                 "data_spec": data.spec.to_json(), "config": config_lib.to_dict(config), **meta})

    def evaluate(state):
        """Process 0's scores (None elsewhere), and FID, which every process needs."""
        scores = evaluator(setup, local_copy(state)) if primary else None
        return scores, broadcast(np.float64(scores["fid"] if primary else 0.0))

    session_start = tick_start = time.perf_counter()
    tick_sums, tick_steps = {}, 0
    progress = tqdm(total=tc.steps, initial=start, desc=config.name, unit="step",
                    dynamic_ncols=True, file=sys.stdout, disable=not primary,
                    mininterval=0.5 if sys.stdout.isatty() else 30.0)

    def finish(done, metrics, state):
        """Check, log, evaluate, sample and checkpoint a step whose successor is dispatched."""
        nonlocal tick_sums, tick_steps, tick_start, best_fid
        metrics = {name: float(value) for name, value in to_host(metrics).items()}
        bad = [name for name, value in metrics.items() if not np.isfinite(value)]
        if bad:
            checkpointer.wait()
            raise NonFiniteLossError(
                f"{bad[0]} = {metrics[bad[0]]} at step {done}: run stopped; "
                f"{last_good(checkpointer, workdir, min(tc.checkpoint_every, tc.steps))}")
        for name, value in metrics.items():
            tick_sums[name] = tick_sums.get(name, 0.0) + value
        tick_steps += 1
        progress.update(1)
        wall_s = wall_offset + time.perf_counter() - session_start
        evaluating = tc.eval_every > 0 and (done % tc.eval_every == 0 or done == tc.steps)
        if done % tc.log_every == 0 or done == tc.steps or evaluating:
            img_per_s = tick_steps * images_per_step / (time.perf_counter() - tick_start)
            means = {name: total / tick_steps for name, total in tick_sums.items()}
            row = {"step": done, "kimg": done * images_per_step / 1000, **means,
                   "img_per_s": img_per_s, "wall_s": wall_s}
            postfix = {"D": f"{means['loss/d']:.3f}", "G": f"{means['loss/g']:.3f}",
                       "img/s": f"{img_per_s:.0f}"}
            if "augment/p" in means:  # ADA's probability (jgan.augment)
                postfix["p"] = f"{metrics['augment/p']:.3f}"
            if evaluating:
                scores, fid = evaluate(state)
                if primary:
                    row.update({f"eval/{name}": value for name, value in scores.items()})
                    postfix["FID"] = f"{fid:.3f}"
                if fid < best_fid:
                    best_fid = fid
                    save_checkpoint(state, done, wall_s, to=best_checkpointer, eval=scores)
            if primary:
                history.append(row)
            fault_point("history", done)
            progress.set_postfix(postfix, refresh=False)
            tick_sums, tick_steps, tick_start = {}, 0, time.perf_counter()
        if done % tc.sample_every == 0 or done == tc.steps:
            save_samples(state, done)
            fault_point("samples", done)
        saved = done % tc.checkpoint_every == 0 or done == tc.steps
        if saved:
            save_checkpoint(state, done, wall_s)
            fault_point("checkpoint", done)
        if stop.requested(done) and done < tc.steps:
            if not saved:
                save_checkpoint(state, done, wall_s)
            checkpointer.wait()
            draw_curve()
            raise Interrupted(stop.signal, f"stopped by {stop.name} after step {done} of "
                              f"{tc.steps}; checkpoint {done} is in {workdir / 'checkpoints'}")

    # Step k+1 is dispatched before step k's metrics are read, so the host's work (reading them,
    # the next batch, PNGs, checkpoints) overlaps the device's. A step is checked for NaN before
    # its state is ever saved.
    previous = None
    stop.started()
    try:
        for step, batch in loader.iterate(start):
            if step < tc.steps:
                state, metrics = step_fn(state, device_batch(batch), run_key)
                fault_point("step", step + 1)
            if previous is not None:
                finish(*previous)
            if step >= tc.steps:
                break
            previous = (step + 1, metrics, state)
    finally:
        progress.close()
        for manager in (checkpointer, best_checkpointer):
            if manager is not None:
                manager.wait()
                manager.close()
    # Only now, after the last checkpoint: a picture never stops a run from finishing.
    if primary:
        write_gif(sorted((workdir / "samples").glob("step_*.png")), workdir / TRAINING_GIF,
                  log=log)
    log(f"done: step {int(to_host(state.step))}, samples in {workdir / 'samples'} and "
        f"{workdir / TRAINING_GIF}, curves in {workdir / LOSS_CURVE}")
    return state


def open_best(workdir: Path, start: int, log) -> tuple[Checkpointer, float]:
    """The best checkpoint's manager and its FID (inf when there is none) for a run resumed at
    `start`. A damaged one is moved aside with a warning, as in checkpoints/: it only records
    the best so far, and the evaluations to come choose a new one."""
    best = Checkpointer(workdir / BEST_DIR, keep=1)
    # A best checkpoint newer than the resumed step is the interrupted run's; the replayed
    # steps evaluate to the same numbers and write it again.
    for stale in best.all_steps():
        if stale > start:
            best.delete(stale)
    kept = best.latest_step()
    if kept is None:
        return best, math.inf
    try:
        meta = best.restore_meta(kept)
        try:
            return best, float(meta["eval"]["fid"])
        except (KeyError, TypeError, ValueError):
            raise best.damaged(kept, "its meta item holds no eval FID") from None
    except DamagedCheckpointError as error:
        log(f"warning: the best checkpoint {error.step} in {best.directory} is damaged "
            f"({error.problem}); moved it to {best.set_aside(error.step)}: the evaluations "
            "from here on choose a new best")
        return best, math.inf


def last_good(checkpointer, workdir: Path, first_due: int) -> str:
    """Where a stopped run can go on from, for its error message."""
    latest = checkpointer.latest_step()
    if latest is None:
        return (f"no checkpoint was written yet (the first was due at step {first_due}):"
                " lower the learning rates and start again")
    return (f"its last good checkpoint is step {latest} in {workdir / 'checkpoints'} (lower the "
            "learning rates, or resume from there)")

"""A GAN family's run as a trainer of the shared loop: data, the jitted step, previews, FID.

Keys: `jax.random.key(seed)` is split once into named keys for init, the run (passed unchanged to
every step, which folds in the step), the data order and the sample grid. A run resumed from its
last checkpoint therefore replays exactly the steps an uninterrupted run would take.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jgan import config as config_lib
from jgan.checkpoint import Checkpointer, DamagedCheckpointError
from jgan.data import open_data
from jgan.errors import UserError
from jgan.images import save_png, write_gif
from jgan.memory import compiled_memory, device_memory, size_text
from jgan.metrics.evaluation import make_evaluator
from jgan.train.distributed import (broadcast, global_batch, is_primary, local_copy, on_primary,
                                    process_rows, to_host)
from jgan.train.faults import fault_point
from jgan.train.history import plot_history
from jgan.train.parallel import (abstract_replicated, batch_split, check_batch_size,
                                 jit_data_parallel, make_mesh, replicated)
from jgan.train.setup import build_setup
from jgan.train.trainer import Schedule, Trainer

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
    return abstract_replicated(setup.init_state, key, mesh=mesh)


def initial_state(setup, key: jax.Array, mesh):
    """A run's first state, replicated over `mesh`. It is made outside jit, network by network
    (jgan.train.state.init_train_state), so that one network's init program is in memory at a
    time, then copied onto the mesh in one program. The copy also parts the arrays that a
    family's extras share with a network (an EMA starts as G's parameters), which the donated
    step must not be given twice."""
    state = setup.init_state(key)
    return jax.jit(lambda s: jax.tree.map(jnp.copy, s), out_shardings=replicated(mesh))(state)


class FamilyTrainer(Trainer):
    """The run of a `jgan.config.Config` whose `family` is one of the registry's."""

    meta_keys = META_KEYS

    def __init__(self, config):
        config_lib.check(config)
        if config.train.seeds != 1:
            raise UserError("train.seeds trains several seeds at once in the 2-D benchmark: run "
                            "python -m experiments.mode_collapse, or drop train.seeds")
        tc = config.train
        self.config, self.name = config, config.name
        self.schedule = Schedule(steps=tc.steps, log_every=tc.log_every,
                                 checkpoint_every=tc.checkpoint_every,
                                 keep_checkpoints=tc.keep_checkpoints,
                                 sample_every=tc.sample_every)
        self.primary = is_primary()
        self.best = None  # the best checkpoint's manager, when evaluating

    # ---- before the run directory ---------------------------------------------------------

    def prepare(self, workdir, log) -> None:
        config, tc = self.config, self.config.train
        self.workdir, self.log = workdir, log
        data = self.data = open_data(config.data, log=log)
        log(f"data: {data.description}")
        fault_point("data")
        if data.folder and tc.eval_every > 0:
            raise UserError(f"--eval-every measures FID against a TFDS dataset's test split, and "
                            f"{data.name} is an image folder: drop --eval-every")
        mesh = self.mesh = make_mesh()
        check_batch_size(tc.batch_size, mesh)
        keys = self.keys = run_keys(tc.seed)
        setup = self.setup = build_setup(config, data.spec)
        check_state_fits(setup, keys["init"])
        self.evaluator = None
        if tc.eval_every > 0:
            self.evaluator = on_primary(lambda: make_evaluator(
                dataset=config.data.dataset, num_classes=setup.num_classes, num=tc.eval_num,
                features=tc.eval_features, data_dir=config.data.data_dir, log=log),
                "preparing the evaluation")
        # The loader refuses a batch larger than the data, and the compiled step one larger than
        # the memory, so both are made before the run directory.
        self.images_per_step = tc.batch_size * setup.batches_per_step
        self.loader = data.loader(self.images_per_step, keys["data"],
                                  rows=process_rows(batch_split(mesh), self.images_per_step))
        self.step_fn = compile_step(setup, mesh, keys, self.device_batch(self.loader.batch(0)),
                                    log=log)

    def device_batch(self, batch):
        return global_batch(batch, batch_split(self.mesh), self.images_per_step)

    # ---- the state ------------------------------------------------------------------------

    def abstract_state(self):
        return abstract_train_state(self.setup, self.keys["init"], self.mesh)

    def initial(self):
        # The run key is a global array too, so that every process can join its save.
        run_key = jax.jit(lambda key: key, out_shardings=replicated(self.mesh))(self.keys["run"])
        return initial_state(self.setup, self.keys["init"], self.mesh), run_key

    def resumed(self, state, meta, workdir):
        latest = int(to_host(state.step))
        if meta["data"] != self.loader.position(latest):
            raise UserError(f"checkpoint {latest} in {workdir} was written at data position "
                            f"{meta['data']}, not {self.loader.position(latest)} (another "
                            "dataset?): resume with the run's own data, or use a new --workdir")

    def begin(self, start, state, run_key, history, log):
        tc = self.config.train
        self.run_key, self.history = run_key, history
        self.best, self.best_fid = None, math.inf
        if tc.eval_every > 0:
            self.best, self.best_fid = open_best(self.workdir, start, log)
        # The previews show the held-out examples when the data sets some aside, else step 0's.
        preview_batch = self.data.held_out or (self.loader.global_batch(0) if self.primary
                                               else None)
        self.preview_inputs = (self.setup.preview_inputs(self.keys["grid"], tc.grid_size,
                                                         preview_batch)
                               if self.primary else None)
        self.curve_due = time.perf_counter() + CURVE_EVERY_S
        self.batches = self.loader.iterate(start)

    # ---- the steps ------------------------------------------------------------------------

    def advance(self, state, run_key, step, count):
        at, batch = next(self.batches)
        assert at == step, (at, step)
        return self.step_fn(state, self.device_batch(batch), run_key)

    def evaluating(self, done: int) -> bool:
        every = self.config.train.eval_every
        return every > 0 and (done % every == 0 or done == self.schedule.steps)

    def logs_at(self, done):
        return self.evaluating(done)

    def log_row(self, state, done, means, measured, *, steps, seconds, wall_s):
        img_per_s = steps * self.images_per_step / seconds
        row = {"step": done, "kimg": done * self.images_per_step / 1000, **means,
               "img_per_s": img_per_s, "wall_s": wall_s}
        postfix = {"D": f"{means['loss/d']:.3f}", "G": f"{means['loss/g']:.3f}",
                   "img/s": f"{img_per_s:.0f}"}
        if "augment/p" in means:  # ADA's probability (jgan.augment)
            postfix["p"] = f"{means['augment/p']:.3f}"
        if self.evaluating(done):
            # Process 0's scores (None elsewhere), and FID, which every process needs.
            scores = self.evaluator(self.setup, local_copy(state)) if self.primary else None
            fid = broadcast(np.float64(scores["fid"] if self.primary else 0.0))
            if self.primary:
                row.update({f"eval/{name}": value for name, value in scores.items()})
                postfix["FID"] = f"{fid:.3f}"
            if fid < self.best_fid:
                self.best_fid = fid
                self.best.save(done, state, self.run_key,
                               {**self.checkpoint_meta(done, wall_s), "eval": scores})
        return row, postfix

    def save_samples(self, state, done):
        if self.primary:
            for name, grid in self.setup.preview(local_copy(state), self.preview_inputs).items():
                save_png(grid, self.workdir / "samples" / f"{name}step_{done:06d}.png")
        if done == self.schedule.steps or time.perf_counter() >= self.curve_due:
            self.draw_curve()

    def draw_curve(self):
        if self.primary:
            plot_history(self.history.rows(), self.workdir / LOSS_CURVE)
            self.curve_due = time.perf_counter() + CURVE_EVERY_S

    def checkpoint_meta(self, done, wall_s):
        return {"data": self.loader.position(done), "wall_s": wall_s,
                "data_spec": self.data.spec.to_json(), "config": self.config_dict()}

    def on_stop(self, done):
        self.draw_curve()

    # ---- the end --------------------------------------------------------------------------

    def close(self):
        if self.best is not None:
            self.best.wait()
            self.best.close()

    def write_results(self, state, final, history, *, trained, wall_s, log):
        if not trained:
            return state
        # Only now, after the last checkpoint: a picture never stops a run from finishing.
        if self.primary:
            write_gif(sorted((self.workdir / "samples").glob("step_*.png")),
                      self.workdir / TRAINING_GIF, log=log)
        log(f"done: step {int(to_host(state.step))}, samples in {self.workdir / 'samples'} and "
            f"{self.workdir / TRAINING_GIF}, curves in {self.workdir / LOSS_CURVE}")
        return state


def jit_train_step(setup, mesh, *, donate_state: bool = True):
    """`setup.train_step` jitted over `mesh` as a run compiles it: taking the state's buffers for
    the new one, with the family's choice of library for convolutions on the CPU."""
    return jit_data_parallel(setup.train_step, mesh, donate_state=donate_state,
                             cpu_convolutions=setup.cpu_convolutions)


def compile_step(setup, mesh, keys, batch, *, log, memory: int | None = None):
    """The data-parallel train step, compiled for the state's shapes and `batch`'s (taking the
    state's buffers for the new one: the loop never reads a state it passed on), or a
    one-line refusal where XLA's buffer plan for it (state, batch and the activations the
    backward pass keeps) exceeds `memory` (default: the device's, or this machine's RAM)."""
    fault_point("compiling")
    start = time.perf_counter()
    run_key = jax.ShapeDtypeStruct(keys["run"].shape, keys["run"].dtype,
                                   sharding=replicated(mesh))
    compiled = jit_train_step(setup, mesh).lower(
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

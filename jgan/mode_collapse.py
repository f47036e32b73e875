"""The 2-D mode-collapse benchmark: N seeds of one GAN trained at once, measured by mode coverage.

`train_toy(config, workdir)` trains `train.seeds` independent GANs on a toy mixture
(`jgan.data.toy`) on the shared loop (`ToyTrainer`, `jgan.train.loop.run`), with one jitted,
vmapped step (`jgan.train.seeds`), `log_every` steps per call inside a `lax.scan`. At every log
step it measures each seed on a fixed set of 2500 latents (`jgan.metrics.modes`) and writes:

- `history.csv`: per log step, the mean and std over seeds of every metric (losses, D outputs,
  modes covered, high-quality share, KL to uniform), and `seeds.csv` with each seed's values;
- `samples/step_N.png`: each seed's samples over the true centres, and `training.gif` of them;
- `modes.png`: the mode metrics over training, mean +- std over seeds;
- `results.json` and `results.md`: the final step's table.

Keys: seed s uses `run_keys(s)` (init, run, data, and grid for the measuring latents), so its run
does not depend on the other seeds. Checkpoints (orbax, every `checkpoint_every` steps) hold all
seeds; a resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np

from jgan import config as config_lib
from jgan.data.spec import DataSpec
from jgan.data.toy import batch_at, toy_dataset
from jgan.errors import UserError
from jgan.files import write_text
from jgan.images import write_gif
from jgan.metrics.modes import NUM_SAMPLES, mode_statistics
from jgan.toy_figures import plot_mode_curves, plot_samples
from jgan.train.distributed import is_primary
from jgan.train.history import History
from jgan.train.loop import run
from jgan.train.parallel import make_mesh
from jgan.train.seeds import init_states, mean_and_std, seed_keys, seed_sharding, vmap_train_step
from jgan.train.setup import build_setup
from jgan.train.trainer import Schedule, Trainer

POINT_SPEC = DataSpec(arrays={"image": ((2,), "float32")})  # a batch of 2-D points
PLOTTED_SAMPLES = 500  # per seed and frame; all NUM_SAMPLES are measured
MODE_METRICS = ("modes/covered", "modes/high_quality", "modes/kl_uniform")
SEEDS_FILE = "seeds.csv"  # each seed's values at every log step


def check_toy_config(config) -> None:
    """The benchmark's own rules, after `jgan.config.check` has checked every field's range."""
    tc = config.train
    if tc.seeds < 1:
        raise UserError(f"--seeds {tc.seeds}: use 1 or more")
    if tc.checkpoint_every % tc.log_every:
        raise UserError(f"train.checkpoint_every={tc.checkpoint_every} must be a multiple of "
                        f"train.log_every={tc.log_every}: the benchmark saves only at log steps")
    if tc.ema_kimg or tc.eval_every:
        raise UserError("the 2-D benchmark keeps no EMA and has no FID evaluation: drop "
                        "train.ema_kimg and --eval-every")


def chunk_runner(setup, mixture, images_per_step: int, sharding):
    """`(states, run keys, data keys, steps) -> (states, metrics)`: `steps` steps of every seed.

    Metrics are each seed's means over the chunk ([N] per name).
    """
    step_all = vmap_train_step(setup.train_step)
    sample_all = jax.vmap(lambda key, step: batch_at(mixture, key, step, images_per_step))

    @functools.partial(jax.jit, static_argnums=3, in_shardings=(sharding,) * 3,
                       out_shardings=(sharding, sharding))
    def run(states, run_keys, data_keys, steps):
        def one(states, _):
            return step_all(states, sample_all(data_keys, states.step), run_keys)

        states, metrics = jax.lax.scan(one, states, length=steps)
        return states, jax.tree.map(lambda m: m.mean(axis=0), metrics)

    return run


def measurer(setup, mixture):
    """`(states, inputs [N, M, ...]) -> (mode metrics [N], samples [N, M, 2])`, jitted."""

    def measure(state, inputs):
        samples = setup.sample(state, inputs)
        return mode_statistics(samples, mixture.centres, mixture.std), samples

    return jax.jit(jax.vmap(measure))


def summary_table(summary: dict, *, config, step: int) -> str:
    """The final step's mean +- std over seeds, as a markdown table."""
    lines = [f"{config.name} on {config.data.dataset}, {config.train.seeds} seeds, step {step}",
             "", "| metric | mean | std |", "|---|---:|---:|"]
    for name, (mean, std) in summary.items():
        lines.append(f"| {name} | {mean:.4g} | {std:.3g} |")
    return "\n".join(lines) + "\n"


def train_toy(config, workdir, *, log=print) -> dict:
    """Train (or resume) every seed up to `train.steps` on the shared loop; returns the final
    `results.json` dict."""
    return run(ToyTrainer(config), workdir, log=log)


class ToyTrainer(Trainer):
    """`train.seeds` GANs on a 2-D mixture as one trainer of the shared loop
    (`jgan.train.loop.run`): each call of the step runs the steps up to the next log step in a
    `lax.scan`, and each log step measures every seed's modes."""

    overlap = False  # one call is a whole log interval: its measures must not wait for the next

    def __init__(self, config):
        config_lib.check(config)
        check_toy_config(config)
        tc = config.train
        self.config, self.name = config, config.name
        self.schedule = Schedule(steps=tc.steps, log_every=tc.log_every,
                                 checkpoint_every=tc.checkpoint_every,
                                 keep_checkpoints=tc.keep_checkpoints)
        self.seeds = list(range(tc.seed, tc.seed + tc.seeds))
        self.num_keys = len(self.seeds)
        self.per_seed = None

    def prepare(self, workdir, log):
        tc = self.config.train
        self.workdir = workdir
        self.mixture = toy_dataset(self.config.data.dataset)
        setup = self.setup = build_setup(self.config, POINT_SPEC)
        self.mesh = make_mesh()
        self.sharding = seed_sharding(len(self.seeds), self.mesh)
        self.keys = jax.device_put(seed_keys(self.seeds), self.sharding)
        self.init = jax.jit(functools.partial(init_states, setup), out_shardings=self.sharding)
        self.run_chunk = chunk_runner(setup, self.mixture, tc.batch_size * tc.n_critic,
                                      self.sharding)
        self.measurer = measurer(setup, self.mixture)
        self.inputs = jax.vmap(lambda key: setup.sample_inputs(key, NUM_SAMPLES))(
            self.keys["grid"])

    def abstract_state(self):
        return jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.sharding),
            jax.eval_shape(self.init, self.keys["init"]))

    def initial(self):
        return self.init(self.keys["init"]), self.keys["run"]

    def checkpoint_meta(self, done, wall_s):
        return {**super().checkpoint_meta(done, wall_s), "seeds": self.seeds}

    def begin(self, start, state, run_key, history, log):
        if is_primary():
            self.per_seed = History(self.workdir / SEEDS_FILE, resume_step=start, log=log)
        log(f"{len(self.seeds)} seeds ({self.seeds[0]}..{self.seeds[-1]}) of {self.config.name} "
            f"on {self.mixture.name} ({self.mixture.num_modes} modes), {self.mesh.devices.size} "
            "device(s)")

    def chunk(self, step):
        return min(self.schedule.log_every - step % self.schedule.log_every,
                   self.schedule.steps - step)

    def advance(self, states, run_key, step, count):
        return self.run_chunk(states, run_key, self.keys["data"], count)

    def label(self, name, index):
        return f"{name} for seed {self.seeds[index]}"

    def measure(self, states, done):
        modes, self.samples = self.measurer(states, self.inputs)
        return {name: np.asarray(value) for name, value in modes.items()}

    def log_row(self, states, done, means, measured, *, steps, seconds, wall_s):
        # The step's means are float32 per seed: back to float32 (exactly) for their statistics.
        values = {**{name: value.astype(np.float32) for name, value in means.items()},
                  **measured}
        summary = mean_and_std(values)
        row = {"step": done, **{f"{name}/mean": mean for name, (mean, _) in summary.items()},
               **{f"{name}/std": std for name, (_, std) in summary.items()},
               "steps_per_s": steps / seconds}
        if is_primary():
            for index, seed in enumerate(self.seeds):
                self.per_seed.append({"step": done, "seed": seed,
                                      **{name: float(v[index]) for name, v in values.items()}})
            plot_samples(np.asarray(self.samples[:, :PLOTTED_SAMPLES]), self.mixture.centres,
                         self.workdir / "samples" / f"step_{done:06d}.png",
                         title=f"{self.config.name}, step {done}", seeds=self.seeds,
                         covered=values["modes/covered"])
        postfix = {"D": f"{summary['loss/d'][0]:.3f}", "G": f"{summary['loss/g'][0]:.3f}",
                   "modes": f"{summary['modes/covered'][0]:.2f}",
                   "step/s": f"{steps / seconds:.0f}"}
        return row, postfix

    def write_results(self, states, final, history, *, trained, wall_s, log):
        if not is_primary():
            return None
        step = int(np.asarray(states.step)[0])
        per_seed = self.per_seed or History(self.workdir / SEEDS_FILE, resume_step=step, log=log)
        return write_results(self.config, self.workdir, self.mixture, self.seeds, step,
                             history=history, per_seed=per_seed, log=log)


def write_results(config, workdir: Path, mixture, seeds, step: int, *, history: History,
                  per_seed: History, log=print) -> dict:
    """The table (results.json, results.md), the curves (modes.png) and the GIF, from the CSVs."""
    rows = history.rows()
    steps = [int(row["step"]) for row in rows]
    summaries = [{name: (float(row[f"{name}/mean"]), float(row[f"{name}/std"]))
                  for name in MODE_METRICS} for row in rows]
    final_rows = [row for row in per_seed.rows() if int(row["step"]) == step]
    final = {name: [float(row[name]) for row in final_rows] for name in final_rows[0]
             if name not in ("step", "seed")}
    summary = mean_and_std(final)
    results = {"name": config.name, "dataset": mixture.name, "num_modes": mixture.num_modes,
               "step": step, "seeds": seeds,
               "mean": {name: mean for name, (mean, _) in summary.items()},
               "std": {name: std for name, (_, std) in summary.items()},
               "per_seed": final}
    write_text(workdir / "results.json", json.dumps(results, indent=2) + "\n")
    table = summary_table(summary, config=config, step=step)
    write_text(workdir / "results.md", table)
    plot_mode_curves(steps, summaries, workdir / "modes.png", num_modes=mixture.num_modes,
                     title=f"{config.name} on {mixture.name}, {len(seeds)} seeds")
    write_gif(sorted((workdir / "samples").glob("step_*.png")), workdir / "training.gif",
              log=log)
    log(table)
    log(f"wrote {workdir / 'results.md'}, {workdir / 'modes.png'} and "
        f"{workdir / 'training.gif'}")
    return results

"""The 2-D mode-collapse benchmark: N seeds of one GAN trained at once, measured by mode coverage.

`train_toy(config, workdir)` trains `train.seeds` independent GANs on a toy mixture
(`jgan.data.toy`) with one jitted, vmapped step (`jgan.train.seeds`), `log_every` steps per call
inside a `lax.scan`. At every log step it measures each seed on a fixed set of 2500 latents
(`jgan.metrics.modes`) and writes:

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
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from jgan import config as config_lib
from jgan.data.spec import DataSpec
from jgan.data.toy import batch_at, toy_dataset
from jgan.errors import Interrupted, NonFiniteLossError, UserError
from jgan.files import write_text
from jgan.images import write_gif
from jgan.metrics.modes import NUM_SAMPLES, mode_statistics
from jgan.toy_figures import plot_mode_curves, plot_samples
from jgan.train.history import History
from jgan.train.lock import hold_run_directory
from jgan.train.loop import last_good
from jgan.train.resume import open_run_directory, restore_latest, write_config
from jgan.train.parallel import make_mesh
from jgan.train.seeds import init_states, mean_and_std, seed_keys, seed_sharding, vmap_train_step
from jgan.train.setup import build_setup
from jgan.train.stopping import stop_requests

POINT_SPEC = DataSpec(arrays={"image": ((2,), "float32")})  # a batch of 2-D points
PLOTTED_SAMPLES = 500  # per seed and frame; all NUM_SAMPLES are measured
MODE_METRICS = ("modes/covered", "modes/high_quality", "modes/kl_uniform")


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
    """Train (or resume) every seed up to `train.steps`; returns the final `results.json` dict."""
    config_lib.check(config)
    check_toy_config(config)
    workdir = Path(workdir)
    mixture = toy_dataset(config.data.dataset)
    setup = build_setup(config, POINT_SPEC)
    with hold_run_directory(workdir), stop_requests() as stop:
        return _train_toy(config, workdir, mixture, setup, stop, log)


def _train_toy(config, workdir: Path, mixture, setup, stop, log) -> dict:
    tc = config.train
    checkpointer = open_run_directory(workdir, config)

    seeds = list(range(tc.seed, tc.seed + tc.seeds))
    mesh = make_mesh()
    sharding = seed_sharding(len(seeds), mesh)
    keys = jax.device_put(seed_keys(seeds), sharding)
    init = jax.jit(functools.partial(init_states, setup), out_shardings=sharding)
    abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                            jax.eval_shape(init, keys["init"]))
    restored = restore_latest(checkpointer, workdir, config, abstract, num_keys=len(seeds),
                              log=log)
    write_config(config, workdir)
    states = init(keys["init"]) if restored is None else restored[0]
    start = int(states.step[0])
    run_chunk = chunk_runner(setup, mixture, tc.batch_size * tc.n_critic, sharding)
    measure = measurer(setup, mixture)
    inputs = jax.vmap(lambda key: setup.sample_inputs(key, NUM_SAMPLES))(keys["grid"])
    history = History(workdir / "history.csv", resume_step=start, log=log)
    per_seed = History(workdir / "seeds.csv", resume_step=start, log=log)
    log(f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]}) of {config.name} on {mixture.name} "
        f"({mixture.num_modes} modes), {mesh.devices.size} device(s)")

    progress = tqdm(total=tc.steps, initial=start, desc=config.name, unit="step",
                    dynamic_ncols=True, file=sys.stdout,
                    mininterval=0.5 if sys.stdout.isatty() else 30.0)
    summary, step = None, start
    try:
        while step < tc.steps:
            chunk = min(tc.log_every - step % tc.log_every, tc.steps - step)
            tick = time.perf_counter()
            states, metrics = run_chunk(states, keys["run"], keys["data"], chunk)
            modes, samples = measure(states, inputs)
            values = {name: np.asarray(v) for name, v in {**metrics, **modes}.items()}
            elapsed = time.perf_counter() - tick
            step += chunk
            bad = [(name, index) for name, v in values.items()
                   for index in np.flatnonzero(~np.isfinite(v))]
            if bad:
                name, index = bad[0]
                raise NonFiniteLossError(
                    f"{name} = {values[name][index]} for seed {seeds[index]} by step {step}: run "
                    f"stopped; {last_good(checkpointer, workdir, min(tc.checkpoint_every, tc.steps))}")
            summary = mean_and_std(values)
            history.append({"step": step, **{f"{name}/mean": mean for name, (mean, _) in
                                             summary.items()},
                            **{f"{name}/std": std for name, (_, std) in summary.items()},
                            "steps_per_s": chunk / elapsed})
            for index, seed in enumerate(seeds):
                per_seed.append({"step": step, "seed": seed,
                                 **{name: float(v[index]) for name, v in values.items()}})
            plot_samples(np.asarray(samples[:, :PLOTTED_SAMPLES]), mixture.centres,
                         workdir / "samples" / f"step_{step:06d}.png",
                         title=f"{config.name}, step {step}", seeds=seeds,
                         covered=values["modes/covered"])
            progress.update(chunk)
            progress.set_postfix({"D": f"{summary['loss/d'][0]:.3f}",
                                  "G": f"{summary['loss/g'][0]:.3f}",
                                  "modes": f"{summary['modes/covered'][0]:.2f}",
                                  "step/s": f"{chunk / elapsed:.0f}"}, refresh=False)
            stopping = stop.requested(step) and step < tc.steps
            if stopping or step % tc.checkpoint_every == 0 or step == tc.steps:
                checkpointer.save(step, states, keys["run"],
                                  {"config": config_lib.to_dict(config), "seeds": seeds})
            if stopping:
                checkpointer.wait()
                raise Interrupted(stop.signal, f"stopped by {stop.name} after step {step} of "
                                  f"{tc.steps}; checkpoint {step} is in {workdir / 'checkpoints'}")
    finally:
        progress.close()
        checkpointer.wait()
        checkpointer.close()
    if summary is None:
        log(f"{workdir} is at step {start} of {tc.steps}: nothing to train (raise --steps to go "
            "on)")
    return write_results(config, workdir, mixture, seeds, step, history=history,
                         per_seed=per_seed, log=log)


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

"""Quality per minute: classifier-FID against training seconds, jgan's DCGAN quick start beside its
PyTorch twin (`dcgan_twin.py`) trained with the same settings for the same time.

    nice -n 10 python benchmarks/quality_per_minute.py                  # 600 s a side, 1 core each
    nice -n 10 python benchmarks/quality_per_minute.py --seconds 60 --out runs/qpm_smoke \\
        --plot runs/qpm_smoke/curve.png -- --set optim.g_lr=1e-4   # after --: experiment flags

Both sides take their settings from `experiments.dcgan` as its command line resolves them
(flags after `--`, `--preset`, `--set`), and each stops at `--seconds` of training or at the
config's `train.steps`, whichever comes first.

- jgan: the experiment itself (`experiments.dcgan.main`, `--eval-every N`), in a process that
  times each evaluation; a point's training seconds are history.csv's `wall_s` (from the end of
  compilation; checkpoints and sample grids included) less the evaluations before it. When the
  budget is spent it gets SIGTERM, jgan's clean stop.
- PyTorch: every `--eval-seconds` of training (evaluation excluded) and at the end, it saves
  `train.eval_num` images of G (its EMA when `train.ema_kimg` > 0) from the latents jgan's
  evaluation draws; they are scored afterwards by the evaluator `--eval-every` builds
  (`jgan.metrics.evaluation.make_evaluator`: same feature network, reference and metrics).

Fairness: by default the two train at the same time, jgan pinned to core 0 (`taskset -c 0`, and
XLA's Eigen pool off: `--xla_cpu_multi_thread_eigen=false`), the twin to core 1 (`taskset -c 1`,
`torch.set_num_threads(1)`); `--sequential` runs them one after the other on every core, which
needs a quiet machine: on two busy cores PyTorch's two OpenMP threads spin (measured 2.8 s a step
against 0.28 s with one thread, at load 11). Each point also records the share of every digit
the classifier sees, which FID alone can hide. jgan's budget is checked at history.csv's rows
(every `train.log_every` steps), so its last point may pass `--seconds` by up to that many steps;
the checkpoint its stop writes is scored as its last point.

Writes OUT/{jgan.log, twin.log, jgan_run/, twin/}, the plot (`--plot`) and its points as JSON
beside it, and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np

from jgan.errors import UserError, reports_errors

HERE = Path(__file__).resolve()
CORES = {"jgan": "0", "pytorch": "1"}
LOGS = {"jgan": "jgan.log", "pytorch": "twin.log"}
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false"


def experiment_config(experiment_args: list[str]):
    """`(config, workdir)` that `python -m experiments.dcgan ARGS` would train with."""
    import jgan.experiments.dcgan as dcgan
    import jgan.train.loop

    captured = {}

    def capture(config, workdir, **kwargs):
        captured["config"], captured["workdir"] = config, workdir

    with mock.patch.object(jgan.train.loop, "train", capture):
        code = dcgan.main(experiment_args)
    if "config" not in captured:
        raise SystemExit(code)
    return captured["config"], captured["workdir"]


def digit_shares(logits) -> list[float]:
    """The share of images the classifier puts in each class, `[K]`."""
    logits = np.asarray(logits)
    counts = np.bincount(np.argmax(logits, axis=1), minlength=logits.shape[1])
    return [round(float(c) / len(logits), 4) for c in counts]


@dataclasses.dataclass
class RecordingNetwork:
    """A feature network that keeps the class shares of the last images it embedded."""

    inner: object
    shares: list | None = None

    def __call__(self, images):
        features, logits = self.inner(images)
        self.shares = digit_shares(logits)
        return features, logits


class TimedEvaluator:
    """jgan's evaluator, with each call's seconds and digit shares appended to a JSON-lines file."""

    def __init__(self, evaluator, path: Path):
        self.network = RecordingNetwork(evaluator.network)
        self.inner = dataclasses.replace(evaluator, network=self.network)
        self.path = path
        self.records: list[dict] = []

    def __call__(self, setup, state, **extra):
        start = time.perf_counter()
        scores = self.inner(setup, state)
        record = {"step": int(state.step), "eval_s": time.perf_counter() - start,
                  "scores": {name: float(value) for name, value in scores.items()},
                  "digit_shares": self.network.shares, **extra}
        self.records.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return scores

    def seconds_before(self, step: int) -> float:
        return sum(r["eval_s"] for r in list(self.records) if r["step"] < step)


def history_points(history_path: Path, eval_seconds_before) -> list[dict]:
    """history.csv rows with `train_s`: `wall_s` less the evaluation time before the row."""
    if not history_path.exists():
        return []
    with open(history_path, newline="") as f:
        rows = list(csv.DictReader(f))
    points = []
    for row in rows:
        try:
            step, wall_s = int(row["step"]), float(row["wall_s"])
        except (KeyError, TypeError, ValueError):  # a row being written
            continue
        points.append({"step": step, "wall_s": wall_s,
                       "train_s": wall_s - eval_seconds_before(step)})
    return points


def stop_at_budget(history_path: Path, evaluator_box: dict, seconds: float) -> None:
    """Watch history.csv; SIGTERM this process (jgan's clean stop) once training passed
    `seconds`. Runs on a daemon thread."""
    while True:
        time.sleep(0.5)
        evaluator = evaluator_box.get("evaluator")
        before = evaluator.seconds_before if evaluator else (lambda step: 0.0)
        points = history_points(history_path, before)
        if points and points[-1]["train_s"] >= seconds:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run_jgan_side(args, experiment_args: list[str]) -> int:
    """The experiment, its evaluations timed, stopped after `args.seconds` of training."""
    import jgan.experiments.dcgan as dcgan
    import jgan.train.family_trainer

    out = Path(args.out)
    make_evaluator, box = jgan.train.family_trainer.make_evaluator, {}

    def timed(**kwargs):
        box["evaluator"] = TimedEvaluator(make_evaluator(**kwargs), out / "jgan_evals.jsonl")
        return box["evaluator"]

    workdir = out / "jgan_run"
    threading.Thread(target=stop_at_budget, args=(workdir / "history.csv", box, args.seconds),
                     daemon=True).start()
    with mock.patch.object(jgan.train.family_trainer, "make_evaluator", timed):
        code = dcgan.main(jgan_args(args, experiment_args))
    if code != 128 + signal.SIGTERM:
        return code
    evaluate_last_checkpoint(workdir, box["evaluator"])
    return 0


def evaluate_last_checkpoint(workdir: Path, evaluator: TimedEvaluator) -> None:
    """Score the checkpoint a budget stop wrote, unless it was just evaluated: its training
    seconds are its `wall_s` less the evaluations before it, as history.csv's points."""
    from jgan.tools.sample import load_run, open_checkpoint

    with open_checkpoint(workdir) as (_, step, meta, _, _):
        wall_s = meta["wall_s"]
    if any(record["step"] == step for record in evaluator.records):
        return
    setup, state, _ = load_run(workdir, step)
    evaluator(setup, state, wall_s=wall_s)


def jgan_args(args, experiment_args: list[str]) -> list[str]:
    """The experiment's flags: ours for evaluation, the user's (which win), then the workdir."""
    return ["--eval-every", str(args.eval_every), *experiment_args,
            "--workdir", str(Path(args.out) / "jgan_run")]


def run_twin_side(args, experiment_args: list[str]) -> int:
    """Train the twin for `args.seconds` (or the config's steps), saving evaluation samples."""
    import jax
    import torch
    from dcgan_twin import TwinTrainer, check_finite, twin_settings

    from jgan.data import open_data
    from jgan.metrics.evaluation import make_evaluator
    from jgan.train.family_trainer import run_keys
    from jgan.train.step_parts import prior

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    config, _ = experiment_config(jgan_args(args, experiment_args))
    settings = twin_settings(config)
    data = open_data(config.data)
    if tuple(data.spec.arrays["image"][0]) != (28, 28, 1):
        raise UserError(f"the twin's networks take 28x28x1 images, and {data.name} has "
                        f"{data.spec.arrays['image'][0]}: use MNIST or Fashion-MNIST")
    loader = data.loader(settings.batch_size, run_keys(settings.seed)["data"])
    # The latents jgan's evaluation draws: key(seed) with make_evaluator's default seed.
    eval_seed = inspect.signature(make_evaluator).parameters["seed"].default
    eval_z = np.array(prior(jax.random.key(eval_seed), config.train.eval_num, config.model.z_dim))
    trainer = TwinTrainer(settings, torch)
    out = Path(args.out) / "twin"
    out.mkdir(parents=True)
    points, sums, tick = [], {}, 0
    paused, start = 0.0, time.perf_counter()
    next_eval = args.eval_seconds
    for step, batch in loader.iterate(0):
        metrics = trainer.step(batch["image"])
        check_finite(metrics, step + 1)
        sums = {name: sums.get(name, 0.0) + value for name, value in metrics.items()}
        tick += 1
        train_s = time.perf_counter() - start - paused
        done = step + 1 >= settings.steps or train_s >= args.seconds
        if train_s >= next_eval or done:
            eval_start = time.perf_counter()
            path = out / f"samples_step{step + 1:06d}.npy"
            np.save(path, trainer.sample(eval_z))
            point = {"step": step + 1, "train_s": round(train_s, 3), "samples": path.name,
                     **{name: total / tick for name, total in sums.items()}}
            points.append(point)
            print(json.dumps(point), flush=True)
            sums, tick = {}, 0
            next_eval = (int(train_s // args.eval_seconds) + 1) * args.eval_seconds
            paused += time.perf_counter() - eval_start
        if done:
            break
    (out / "points.json").write_text(json.dumps(points, indent=1))
    return 0


def launch(role: str, args, experiment_args: list[str], side_by_side: bool) -> subprocess.Popen:
    command = [sys.executable, str(HERE), "--role", role, "--out", args.out,
               "--seconds", str(args.seconds), "--eval-seconds", str(args.eval_seconds),
               "--eval-every", str(args.eval_every),
               "--threads", "1" if side_by_side else str(os.cpu_count()), "--", *experiment_args]
    env = dict(os.environ)
    if side_by_side:
        command = ["taskset", "-c", CORES[role], *command]
        if role == "jgan":
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {SINGLE_THREAD_XLA}".strip()
    with open(Path(args.out) / LOGS[role], "w") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def train_both(args, experiment_args: list[str]) -> None:
    roles = ("jgan", "pytorch")
    if args.sequential:
        codes = [launch(role, args, experiment_args, False).wait() for role in roles]
    else:
        processes = [launch(role, args, experiment_args, True) for role in roles]
        try:
            codes = [process.wait() for process in processes]
        finally:  # Ctrl-C here must not leave a side training on its own
            for process in processes:
                if process.poll() is None:
                    process.terminate()
    for role, code in zip(roles, codes):
        if code:
            raise SystemExit(f"the {role} side failed (exit {code}): see "
                             f"{Path(args.out) / LOGS[role]}")


def jgan_points(out: Path) -> tuple[list[dict], float | None]:
    """jgan's evaluated points, and its step's compile seconds (from its log)."""
    evals = out / "jgan_evals.jsonl"
    records = ([json.loads(line) for line in evals.read_text().splitlines()]
               if evals.exists() else [])
    walls = {point["step"]: point["wall_s"] for point in history_points(
        out / "jgan_run" / "history.csv", lambda step: 0.0)}
    points = []
    for record in records:
        wall_s = record.get("wall_s", walls.get(record["step"]))
        before = sum(r["eval_s"] for r in records if r["step"] < record["step"])
        points.append({"step": record["step"], "train_s": round(wall_s - before, 3),
                       "wall_s": wall_s, **record["scores"], "eval_s": round(record["eval_s"], 2),
                       "digit_shares": record["digit_shares"]})
    log = (out / "jgan.log").read_text()
    marker = "train step compiled in "
    compile_s = (float(log.split(marker, 1)[1].split(" s", 1)[0]) if marker in log else None)
    return points, compile_s


def twin_points(out: Path, config) -> list[dict]:
    """The twin's saved samples scored by the evaluator jgan's `--eval-every` builds."""
    from jgan.metrics.evaluation import compute_metrics, make_evaluator

    tc = config.train
    evaluator = make_evaluator(dataset=config.data.dataset, num_classes=0, num=tc.eval_num,
                               features=tc.eval_features, data_dir=config.data.data_dir)
    points = json.loads((out / "twin" / "points.json").read_text())
    for point in points:
        images = np.load(out / "twin" / point["samples"])
        features, logits = evaluator.network(images)
        point.update(compute_metrics(evaluator.reference, features, logits, evaluator.metrics))
        point["digit_shares"] = digit_shares(logits)
    return points


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for side, label in (("jgan", "jgan (JAX)"), ("pytorch", "PyTorch twin")):
        points = result[side]["points"]
        axis.plot([p["train_s"] for p in points], [p["fid"] for p in points], marker="o",
                  label=f"{label}: {points[-1]['step']} steps" if points else label)
    axis.set_yscale("log")
    axis.set_xlabel("training seconds (evaluation excluded)")
    axis.set_ylabel("classifier-FID (lower is better)")
    how = result["settings"]["mode"]
    axis.set_title(f"DCGAN quick start on MNIST, quality per minute ({how})", fontsize=10)
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def print_table(result: dict) -> None:
    print(f"{'side':8} {'step':>6} {'train_s':>8} {'FID':>8} {'digits min-max %':>17}")
    for side in ("jgan", "pytorch"):
        for p in result[side]["points"]:
            shares = p["digit_shares"]
            print(f"{side:8} {p['step']:>6} {p['train_s']:>8.1f} {p['fid']:>8.2f} "
                  f"{100 * min(shares):>8.1f}-{100 * max(shares):<8.1f}")


def parse_args(argv):
    if "--" in argv:
        cut = argv.index("--")
        argv, experiment_args = argv[:cut], argv[cut + 1:]
    else:
        experiment_args = []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Flags after -- go to python -m experiments.dcgan.")
    parser.add_argument("--seconds", type=float, default=600.0, help="training seconds a side")
    parser.add_argument("--eval-seconds", type=float, default=30.0,
                        help="the twin saves samples every this many training seconds")
    parser.add_argument("--eval-every", type=int, default=500,
                        help="jgan's --eval-every (steps)")
    parser.add_argument("--sequential", action="store_true",
                        help="one side after the other on every core (default: side by side, "
                             "one core each)")
    parser.add_argument("--out", default="runs/quality_per_minute",
                        help="run folder (its jgan_run/ and twin/ are replaced)")
    parser.add_argument("--plot", default="docs/dcgan_quality_per_minute.png",
                        help="the figure; its points go beside it as .json")
    parser.add_argument("--score-only", action="store_true",
                        help="score and plot the runs already in --out")
    parser.add_argument("--role", choices=("jgan", "pytorch"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv), experiment_args


@reports_errors
def main(argv=None) -> int:
    args, experiment_args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.role == "jgan":
        return run_jgan_side(args, experiment_args)
    if args.role == "pytorch":
        return run_twin_side(args, experiment_args)
    from dcgan_twin import twin_settings

    out = Path(args.out)
    config, _ = experiment_config(jgan_args(args, experiment_args))
    twin_settings(config)  # refuse what the twin cannot follow before anything runs
    if not args.score_only:
        if importlib.util.find_spec("torch") is None:
            raise UserError("the twin needs PyTorch, an optional extra: pip install torch")
        out.mkdir(parents=True, exist_ok=True)
        for stale in (out / "jgan_run", out / "twin"):
            shutil.rmtree(stale, ignore_errors=True)
        (out / "jgan_evals.jsonl").unlink(missing_ok=True)
        load_before = os.getloadavg()
        train_both(args, experiment_args)
        (out / "load.json").write_text(json.dumps({"before": load_before,
                                                   "after": os.getloadavg()}))
    points, compile_s = jgan_points(out)
    from jgan import config as config_lib

    result = {
        "settings": {"mode": "one after the other, all cores" if args.sequential
                     else "side by side, one core each", "seconds": args.seconds,
                     "eval_seconds": args.eval_seconds, "eval_every": args.eval_every,
                     "experiment_args": experiment_args, "cpus": os.cpu_count(),
                     "load_average": json.loads((out / "load.json").read_text()),
                     "config": config_lib.to_dict(config)},
        "jgan": {"compile_s": compile_s, "points": points},
        "pytorch": {"points": twin_points(out, config)},
    }
    plot_path = Path(args.plot)
    plot(result, plot_path)
    plot_path.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"plot: {plot_path}; points: {plot_path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""BigGAN on Fashion-MNIST against CGAN and ACGAN at equal CPU time, and BigGAN's truncation
curve, as docs/results.md reports them.

    bash benchmarks/biggan_runs.sh runs/biggan_cmp            # the four trainings
    python benchmarks/biggan_quality.py --time                # s/step of each, alone
    python benchmarks/biggan_quality.py runs/biggan_cmp \\
        --steps biggan=2000,biggan_no_ortho=2000,cgan=7000,acgan=7500

`--time` times each experiment's jitted train step alone (compiled first, then the median of
5 rounds of 20 steps on a fixed batch), from which the equal-time steps follow.

For each run, at the checkpoint `--steps` names (its equal-time step; default the latest):
10,000 images, 1,000 per class, from seed 0, scored by jgan's Fashion classifier against the
10,000 test images: FID, intra-class FID (the mean and the worst of the per-class FIDs), IS
and class accuracy. Then the truncation curve of the first run: the same measures with z
truncated at each of `--thresholds` (0: none). Numbers go to RUN_ROOT/quality_RUNS.json and
two markdown tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from jgan.metrics.evaluation import compute_metrics
from jgan.metrics.features import classifier_network
from jgan.metrics.reference import reference
from jgan.tools.sample import load_run

RUNS = ("biggan", "biggan_no_ortho", "cgan", "acgan")
METRICS = ("fid", "ifid", "is", "acc")
COLUMNS = ("fid", "ifid", "ifid_max", "is", "class_accuracy")


def measure(setup, state, net, ref, num: int, **conditions) -> dict[str, float]:
    labels = np.repeat(np.arange(setup.num_classes), num // setup.num_classes)
    images = setup.generate(state, jax.random.key(0), num, labels=labels, **conditions)
    return compute_metrics(ref, *net(images), METRICS, labels)


def step_seconds(experiment, num_classes: int = 10) -> float:
    """Median seconds per train step of `experiment`'s default config on 28x28 data."""
    from jgan.data import DataSpec
    from jgan.train.setup import build_setup

    config = experiment.get_config()
    setup = build_setup(config, DataSpec.from_image_shape((28, 28, 1), num_classes=num_classes))
    state = setup.init_state(jax.random.key(0))
    rng = np.random.default_rng(0)
    rows = config.train.batch_size * setup.batches_per_step
    batch = {"image": rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8),
             "label": rng.integers(0, num_classes, rows).astype(np.int32)}
    step = jax.jit(setup.train_step)
    state, _ = step(state, batch, jax.random.key(1))
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            state, _ = step(state, batch, jax.random.key(1))
        jax.block_until_ready(state)
        rounds.append((time.perf_counter() - start) / 20)
    return float(np.median(rounds))


def time_steps() -> None:
    from jgan.experiments import acgan, biggan, cgan

    for name, experiment in ("biggan", biggan), ("cgan", cgan), ("acgan", acgan):
        seconds = step_seconds(experiment)
        print(f"{name}: {1000 * seconds:.1f} ms/step, {900 / seconds:.0f} steps in 15 min",
              flush=True)


def row(name: str, values: dict) -> str:
    return f"| {name} | " + " | ".join(f"{values[column]:.3f}" if column == "class_accuracy"
                                       else f"{values[column]:.1f}" for column in COLUMNS) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, nargs="?", help="the folder of the runs")
    parser.add_argument("--time", action="store_true", help="time the three steps instead")
    parser.add_argument("--steps", default="", help="RUN=STEP,...: the checkpoint of each run")
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--thresholds", default="0,2,1,0.5,0.25",
                        help="the truncation curve's thresholds ('': no curve)")
    parser.add_argument("--num", type=int, default=10_000)
    parser.add_argument("--data-dir", default="../shared/datasets")
    args = parser.parse_args()
    if args.time:
        return time_steps()
    steps = dict(item.split("=") for item in args.steps.split(",") if item)
    net = classifier_network("fashion_mnist")
    ref = reference(net, "fashion_mnist", data_dir=args.data_dir)
    results = {"runs": {}, "truncation": {}}
    print("| run | step | FID | intra-FID | worst class FID | IS | class acc. |")
    for name in args.runs.split(","):
        start = time.time()
        step = int(steps[name]) if name in steps else None
        setup, state, _ = load_run(args.root / name, step)
        values = measure(setup, state, net, ref, args.num)
        results["runs"][name] = {"step": int(state.step), **values}
        print(row(f"{name} | {int(state.step)}", values), f"({time.time() - start:.0f} s)",
              flush=True)
    first = args.runs.split(",")[0]
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    if thresholds:
        setup, state, _ = load_run(args.root / first, int(steps[first]) if first in steps
                                   else None)
        print(f"\ntruncation curve of {first}:")
    for threshold in thresholds:
        values = measure(setup, state, net, ref, args.num, truncation=threshold)
        results["truncation"][str(threshold)] = values
        print(row(str(threshold) if threshold else "none", values), flush=True)
    out = args.root / f"quality_{'_'.join(args.runs.split(','))}.json"
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

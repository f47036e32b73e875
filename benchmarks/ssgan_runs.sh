#!/usr/bin/env bash
# The runs of docs/ssgan.md: the semi-supervised GAN with 100 MNIST labels and its
# supervised-only baseline (the same D on the same labels, same steps), for seeds 0, 1, 2.
# Each writes RUN/results.json with D's test error every 500 steps. About 12 min per
# semi-supervised run and 4 per baseline on 2 idle cores.
set -euo pipefail
root=${1:-runs/ssgan_cmp}
data=${DATA_DIR:-../shared/datasets}
# The table's setting: 4000 steps, the rate falling over the second half (the default before
# 2026-12-07; the default today is 30 epochs at a constant rate: benchmarks/ssgan_epochs_runs.sh).
short="--steps 4000 --decay-fraction 0.5 --test-every 500"
for seed in ${SEEDS:-0 1 2}; do
    # shellcheck disable=SC2086
    python -m experiments.ssgan --num-labels 100 --data-dir "$data" --seed "$seed" $short \
        --workdir "$root/ssgan_seed$seed"
    # shellcheck disable=SC2086
    python -m experiments.ssgan --num-labels 100 --data-dir "$data" --seed "$seed" $short \
        --supervised-only --workdir "$root/supervised_seed$seed"
done
python - "$root" <<'PY'
import json, pathlib, statistics, sys
root = pathlib.Path(sys.argv[1])
for kind in ("ssgan", "supervised"):
    runs = [json.loads(p.read_text()) for p in sorted(root.glob(f"{kind}_seed*/results.json"))]
    errors = [100 * run["test_error"] for run in runs]
    spread = statistics.stdev(errors) if len(errors) > 1 else 0.0
    print(f"{kind}: test error {statistics.mean(errors):.2f}% +- {spread:.2f} over "
          f"{len(errors)} seeds; training {statistics.mean(r['train_wall_s'] for r in runs):.0f} s")
PY

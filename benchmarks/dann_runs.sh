#!/usr/bin/env bash
# The trainings of docs/dann.md: DANN and its source-only baseline, MNIST -> MNIST-M, at the
# default 12000 steps, for each seed given (default 0), then a picture of the pair (curves,
# features). About 9 min of CPU (530 s) per run; 13 min wall on 2 shared cores.
#   benchmarks/dann_runs.sh [ROOT] [SEED...]
set -euo pipefail
root=${1:-runs/dann}
shift || true
seeds=("${@:-0}")
data=${DATA_DIR:-../shared/datasets}
for seed in "${seeds[@]}"; do
    python -m experiments.dann --data-dir "$data" --seed "$seed" --workdir "$root/dann_s$seed"
    python -m experiments.dann --data-dir "$data" --seed "$seed" --source-only \
        --workdir "$root/source_only_s$seed"
    python -c "import sys; from jgan.domain_adaptation import compare_runs; \
compare_runs(sys.argv[1:3], sys.argv[3])" "$root/source_only_s$seed" "$root/dann_s$seed" \
        "$root/compare_s$seed.png"
done

#!/usr/bin/env bash
# The four trainings of docs/results.md's "BigGAN on Fashion-MNIST": BigGAN's default with
# orthogonal regularization on and off, and CGAN and ACGAN on the same data, every checkpoint
# kept so each can be measured at the step that matches BigGAN's CPU time
# (benchmarks/biggan_quality.py). About 70 min on 2 cores when run one after another.
set -euo pipefail
root=${1:-runs/biggan_cmp}
data=${DATA_DIR:-../shared/datasets}
keep="--set train.keep_checkpoints=100"
python -m experiments.biggan --data-dir "$data" --workdir "$root/biggan" $keep
python -m experiments.biggan --data-dir "$data" --workdir "$root/biggan_no_ortho" \
    --set loss.ortho_beta=0 $keep
for gan in cgan acgan; do
    python -m experiments.$gan --data-dir "$data" --dataset fashion_mnist --steps 14000 \
        --workdir "$root/$gan" $keep
done

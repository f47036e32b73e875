#!/usr/bin/env bash
# Issue 31's error-against-epochs runs (docs/ssgan.md): the semi-supervised GAN with 100 MNIST
# labels at the authors' constant rate (--decay-fraction 0), D's test error every epoch (600
# steps of 100 unlabelled images), for EPOCHS epochs (30, the experiment's default) and SEEDS.
# About 17 min per 30 epochs on 2 idle cores. Resume is exact: the same command with a larger
# EPOCHS trains a run on. Then `python benchmarks/ssgan_curves.py ROOT --figure
# docs/ssgan_error_epochs.png` draws the curve.
set -euo pipefail
root=${1:-runs/ssgan_epochs}
data=${DATA_DIR:-../shared/datasets}
epochs=${EPOCHS:-30}
for seed in ${SEEDS:-0 1 2}; do
    python -m experiments.ssgan --num-labels 100 --data-dir "$data" --seed "$seed" \
        --steps $((600 * epochs)) --decay-fraction 0 --test-every 600 --workdir "$root/s$seed"
done

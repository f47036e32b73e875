#!/usr/bin/env bash
# StyleGAN on the 450 brain slices with DiffAugment and the faster rates that a probe measured
# about 2.5x ahead (G 1e-3, D 8e-4), in stages: the same command with a larger STEPS goes on
# from the last checkpoint, bit for bit as if it had never stopped. Measure each stage with
# `python benchmarks/stylegan_quality.py` (docs/results.md, "StyleGAN on brain MRI slices").
#
# AUGMENT=ada trains the ADA run instead (runs/quality/stylegan_ada). AUGMENT=none trains the
# same networks at the same faster rates without augmentation (runs/quality/stylegan_none_fast),
# the fair baseline for the augmented runs.
# OPS picks DiffAugment's ops. The default keeps the geometric ones: the colour op shifts the
# brightness of every image D sees, and on black-backed MRI G's brightness then drifts (the
# first stage, OPS=color,translation,cutout, in runs/quality/stylegan_diffaugment).
set -euo pipefail
data=${DATA_DIR:-../shared/datasets}
steps=${STEPS:-8700}  # 300 epochs of 29 steps
ops=${OPS:-translation,cutout}
if [ "${AUGMENT:-diffaugment}" = ada ]; then
    # ADA with all its ops: p starts at 0 and moves by 1 per 100k images (the paper's 500k is
    # about 31,000 steps of 16 here, more than the run), so D still sees untranslated corners.
    python -m experiments.stylegan --data-dir "$data" --workdir "${1:-runs/quality/stylegan_ada}" \
        --augment ada --set train.ada_kimg=100 \
        --set optim.g_lr=1e-3 --set optim.d_lr=8e-4 --steps "$steps"
    exit
fi
if [ "${AUGMENT:-diffaugment}" = none ]; then
    python -m experiments.stylegan --data-dir "$data" --workdir "${1:-runs/quality/stylegan_none_fast}" \
        --augment none \
        --set optim.g_lr=1e-3 --set optim.d_lr=8e-4 --steps "$steps"
    exit
fi
python -m experiments.stylegan --data-dir "$data" --workdir "${1:-runs/quality/stylegan_geometric}" \
    --augment diffaugment --set "train.augment_ops=$ops" \
    --set optim.g_lr=1e-3 --set optim.d_lr=8e-4 --steps "$steps"

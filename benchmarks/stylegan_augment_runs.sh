#!/usr/bin/env bash
# StyleGAN on the 450 brain slices with DiffAugment and the faster rates that a probe measured
# about 2.5x ahead (G 1e-3, D 8e-4), in stages: the same command with a larger STEPS goes on
# from the last checkpoint, bit for bit as if it had never stopped. Measure each stage with
# `python benchmarks/stylegan_quality.py` (docs/results.md, "StyleGAN on brain MRI slices").
set -euo pipefail
data=${DATA_DIR:-../shared/datasets}
steps=${STEPS:-2900}  # 100 epochs of 29 steps
python -m experiments.stylegan --data-dir "$data" --workdir "${1:-runs/quality/stylegan_diffaugment}" \
    --augment diffaugment --set optim.g_lr=1e-3 --set optim.d_lr=8e-4 --steps "$steps"

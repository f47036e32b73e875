#!/usr/bin/env bash
# The runs behind docs/mode_collapse.md's "Measured" tables: every method of
# experiments/mode_collapse.py at its default (Metz et al. 2017's settings: D's rate 1e-4, G's
# 1e-3, 25,000 steps), on the ring of 8 and then on the 5x5 grid, one after another.
#   bash benchmarks/mode_collapse_runs.sh [OUT_DIR] [SEEDS]
# SEEDS (e.g. 8, the default's count) replaces the seed counts below, which are those that were
# run: on the 2-core CPU shared with other jobs the ring's gan, feature_matching, pacgan,
# unrolled_stop, unrolled and wgan_gp had time for all 8 (feature_matching, pacgan and
# unrolled_stop 8 to 13 min each on 2026-12-07, wgan_gp about 40 min alone). A run of fewer
# seeds is not the first seeds of an 8-seed run: the seed count changes XLA's rounding, and the
# runs drift apart.
# experiments/mode_collapse.py's pacgan needs D initialised on a batch of model.pack points
# (jgan/families/gan/__init__.py's example input); the measured run had that one-line fix.
set -euo pipefail
out="${1:-runs/mode_collapse}"
all_seeds="${2:-}"
mkdir -p "$out"
train() {  # NAME SEEDS FLAGS...
  local name="$1" seeds="${all_seeds:-$2}"; shift 2
  local start=$SECONDS
  python -m experiments.mode_collapse --seeds "$seeds" --workdir "$out/$name" "$@" \
    > "$out/$name.log" 2>&1
  echo "$name $seeds seeds $((SECONDS - start)) s" >> "$out/wall_seconds.txt"
}
train ring_gan 8 --method gan
train ring_unrolled 8 --method unrolled
train ring_unrolled_stop 8 --method unrolled_stop
train ring_feature_matching 8 --method feature_matching
train ring_pacgan 8 --method pacgan
train ring_wgan_gp 8 --method wgan_gp
# Gulrajani et al.'s toy networks and batch (3 ReLU layers of 512, z of 2, batch 256): about
# 1 step/s for 8 seeds, so the measured run is 2 seeds, 5,000 steps.
train ring_wgan_gp_gulrajani 2 --method wgan_gp_gulrajani --steps 5000
# Minibatch discrimination at its default (10 kernels of 5) ran at 0.23 steps/s for 8 seeds until
# issue 31 (1.5 now): the measured run is 5 kernels of 3, 5,000 steps, from before the fix.
train ring_minibatch 1 --method minibatch --steps 5000 --set model.minibatch_kernels=5 \
  --set model.minibatch_kernel_dim=3
train grid_gan 8 --method gan --dataset grid
train grid_unrolled 8 --method unrolled --dataset grid
train grid_unrolled_stop 8 --method unrolled_stop --dataset grid
train grid_pacgan 8 --method pacgan --dataset grid
train grid_feature_matching 8 --method feature_matching --dataset grid
train grid_wgan_gp 8 --method wgan_gp --dataset grid

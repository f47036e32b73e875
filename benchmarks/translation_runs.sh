#!/usr/bin/env bash
# The trainings behind docs/results.md's Pix2Pix and CycleGAN tables: each default, and the
# variants the issue compares, on ../shared/datasets. About 70 minutes on a 2-core CPU; then
#   python benchmarks/translation_quality.py runs/quality --docs
# measures them. Usage: bash benchmarks/translation_runs.sh [OUT_DIR] (default runs/quality).
set -euo pipefail
out="${1:-runs/quality}"
data="${JGAN_DATA_DIR:-../shared/datasets}"
mkdir -p "$out"
train() {  # NAME EXPERIMENT FLAGS...
  local name="$1" experiment="$2"; shift 2
  local start=$SECONDS
  python -m "experiments.$experiment" --data-dir "$data" --workdir "$out/$name" "$@"
  echo "$name $((SECONDS - start))" >> "$out/wall_seconds.txt"
}
train pix2pix pix2pix
train cyclegan cyclegan
train pix2pix_lambda1000 pix2pix --set loss.lambda_l1=1000
train pix2pix_l1_only pix2pix --set loss.gan_weight=0
train cyclegan_no_pool cyclegan --set loss.pool_size=0
train cyclegan_focal cyclegan --loss focal

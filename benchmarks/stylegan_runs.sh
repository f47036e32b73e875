#!/usr/bin/env bash
# The two brain-MRI runs of docs/results.md: StyleGAN's default, and the seed's failing setting
# (Adam's defaults, no R1, no style mixing) on the same networks and data, both at once on the
# 2-core CPU; then the default trained on to 4,060 steps. Score them with
# benchmarks/stylegan_quality.py.
#   bash benchmarks/stylegan_runs.sh [OUT_DIR] [DATA_DIR]
set -euo pipefail
out=${1:-runs/quality}
data=${2:-../shared/datasets}
mkdir -p "$out"
/usr/bin/time -v python -m experiments.stylegan --data-dir "$data" \
  --workdir "$out/stylegan_brain" > "$out/stylegan_brain.log" 2>&1 &
/usr/bin/time -v python -m experiments.stylegan --preset seed --data-dir "$data" \
  --workdir "$out/stylegan_seed" > "$out/stylegan_seed.log" 2>&1 &
wait
# The default trained on from its step-1,450 checkpoint: the shipped generator
# (python -c "from jgan import workflow; workflow.export_pretrained('$out/stylegan_brain_long')").
cp -r "$out/stylegan_brain" "$out/stylegan_brain_long"
/usr/bin/time -v python -m experiments.stylegan --data-dir "$data" \
  --workdir "$out/stylegan_brain_long" --steps 4060 > "$out/stylegan_brain_long.log" 2>&1

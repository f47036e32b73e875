#!/usr/bin/env bash
# Tiny runs of every experiment from the checkout in $1 into $2, for benchmarks/compare_runs.py:
# a port that must keep the bits (a module move, a shared piece) is run on the old and the new
# checkout and compared array by array. About 5 minutes on 2 cores.
set -euo pipefail
checkout=$(cd "$1" && pwd); mkdir -p "$2"; out=$(cd "$2" && pwd)
data=${DATA_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/datasets}
cd "$checkout"
c=(--steps 4 --set train.checkpoint_every=4 --set train.sample_every=4 --set train.log_every=1
   --no-compile-cache)
run() { local name=$1; shift; python -m "$@" --workdir "$out/$name" > "$out/$name.log" 2>&1 ||
        { echo "$name failed: $out/$name.log" >&2; exit 1; }; }
for e in gan dcgan cgan acgan wgan wgan_gp sngan bigan bigbigan; do
    run $e experiments.$e --batch-size 8 "${c[@]}"
done
run dcgan_ema experiments.dcgan --batch-size 8 --set train.ema_kimg=1 "${c[@]}"
run biggan experiments.biggan --data-dir "$data" --batch-size 8 "${c[@]}"
run stylegan experiments.stylegan --data-dir "$data" --batch-size 8 "${c[@]}"
run pix2pix experiments.pix2pix --data-dir "$data" --batch-size 2 "${c[@]}"
run cyclegan experiments.cyclegan --data-dir "$data" --batch-size 2 "${c[@]}"
run ssgan experiments.ssgan --data-dir "$data" --num-labels 100 --batch-size 16 "${c[@]}"
run mode_unrolled experiments.mode_collapse --method unrolled --seeds 2 --steps 20 \
    --set train.log_every=10 --set train.checkpoint_every=20 --no-compile-cache
run dann experiments.dann --data-dir "$data" --steps 20 --batch-size 16 --set log_every=10 \
    --set checkpoint_every=20
echo "runs in $out"

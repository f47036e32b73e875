#!/usr/bin/env bash
# The limited-data trainings of docs/results.md: each family on a small slice of its training
# set, without augmentation, with DiffAugment and with ADA, at the same steps (the
# CPU time of each is in its history.csv's wall_s), then measured by jgan.tools.evaluate
# against the whole test split. `bash benchmarks/limited_data_runs.sh dcgan500` runs one group;
# with no argument, all of them (about 3 h 30 min on 2 cores, one after another).
set -euo pipefail
data=${DATA_DIR:-../shared/datasets}
root=${ROOT:-runs/limited}
# ada100: ADA with p moving 5x faster than the paper's 500 kimg from 0 to 1, for runs of a few
# hundred kimg (the paper's run for millions of images)
variants=${VARIANTS:-none diffaugment ada ada100}
old_quick_start=(--steps 4000 --set train.ema_kimg=0 --set optim.d_lr=2e-4)

augment_flags() {
    case $1 in
        # all three of DiffAugment's ops, as these ran (the quick start leaves cutout out now)
        diffaugment) echo "--augment diffaugment --set train.augment_ops=color,translation,cutout" ;;
        ada100) echo "--augment ada --set train.ada_kimg=100" ;;
        *) echo "--augment $1" ;;
    esac
}

train_and_measure() {  # name, then the experiment's flags
    local name=$1; shift
    for variant in $variants; do
        # shellcheck disable=SC2046
        python -m "$@" --data-dir "$data" $(augment_flags "$variant") \
            --workdir "$root/${name}_$variant"
        python -m jgan.tools.evaluate "$root/${name}_$variant" --data-dir "$data"
    done
}

group() {
    case $1 in
        # The quick-start DCGAN (minibatch discrimination) on the first 500 / 2,000 MNIST digits,
        # as it was when these ran: 4000 steps, no EMA, D at 2e-4 (the quick start has 5000
        # steps, an EMA and D at 1e-4 now)
        dcgan500) train_and_measure dcgan500 experiments.dcgan --set data.split='train[:500]' \
            "${old_quick_start[@]}" ;;
        dcgan2000) train_and_measure dcgan2000 experiments.dcgan --set data.split='train[:2000]' \
            "${old_quick_start[@]}" ;;
        # BigGAN's Fashion-MNIST default on the first 1,000 training images
        biggan1000) train_and_measure biggan1000 experiments.biggan --set data.split='train[:1000]' ;;
        *) echo "unknown group $1: dcgan500, dcgan2000 or biggan1000" >&2; exit 2 ;;
    esac
}

for name in "${@:-dcgan500 dcgan2000 biggan1000}"; do
    for one in $name; do group "$one"; done
done

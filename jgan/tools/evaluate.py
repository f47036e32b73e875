"""Measure a trained run: `python -m jgan.tools.evaluate RUN_DIR --num 10000 --metrics fid,kid`.

Draws `--num` images from the run's checkpoint (latest, `--step`, or `--best`) with latents from
`--seed`, embeds them and the first `--ref-num` images of the reference split with the feature
network, and writes `RUN_DIR/metrics.json` and a table. The defaults are jgan's FID protocol for
28x28 data: the classifier trained on the run's dataset, 10,000 generated images against the
whole test split, and with the classifier the share of the images it assigns to each class
(`class_shares` in metrics.json, their extremes as `class_share_min` / `class_share_max`), which
shows a class drawn too rarely that FID averages away. `--features inception --inception-weights
PATH` uses the FID InceptionV3.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from jgan.compile_cache import enable as enable_compile_cache
from jgan.errors import UserError, reports_errors
from jgan.files import write_text
from jgan.metrics.evaluation import (CLASS_SHARE_FEATURES, DEFAULT_METRICS, METRICS,
                                     check_image_counts, check_request, default_metrics,
                                     make_evaluator, parse_metrics)
from jgan.metrics.features import FEATURE_NETWORKS
from jgan.tools.sample import check_output_file, load_run_and_spec

# Values held per generated image while it is measured, at most: the image as float32, then its
# features and logits (InceptionV3's 2048 and 1008 are the largest of the feature networks).
FEATURE_VALUES = 2048 + 1008


def evaluate_run(run_dir, *, num: int = 10000, metrics=None, features: str = "classifier",
                 inception_weights=None, split: str = "test", ref_num: int | None = None,
                 data_dir=None, step: int | None = None, best: bool = False, seed: int = 0,
                 log=print) -> dict:
    """The metrics of a run's checkpoint as a JSON-ready dict (see the module docstring)."""
    start = time.perf_counter()
    check_image_counts(num, ref_num, metrics or DEFAULT_METRICS)

    def requested(setup):
        if metrics is not None:
            return metrics
        return default_metrics(setup.num_classes, intra_class=True,
                               class_shares=features == CLASS_SHARE_FEATURES)

    def check(setup):
        check_request(requested(setup), num_classes=setup.num_classes, num=num, ref_num=ref_num,
                      features=features)

    setup, state, config, spec = load_run_and_spec(run_dir, step, best=best, check=check)
    check_fits_memory(num, spec.shape("image"))
    metrics = requested(setup)
    evaluator = make_evaluator(
        dataset=config.data.dataset, num_classes=setup.num_classes, metrics=metrics,
        num=num, seed=seed, features=features, inception_weights=inception_weights, split=split,
        ref_num=ref_num, data_dir=data_dir or config.data.data_dir, log=log)
    values, shares = evaluator.measure(setup, state)
    return {"run_dir": str(run_dir), "step": int(state.step),
            "checkpoint": "best" if best else "latest" if step is None else "step",
            "features": evaluator.network.name, **evaluator.describe(), "metrics": values,
            **({} if shares is None else {"class_shares": shares}),
            "reference_metrics": evaluator.reference_metrics(),
            "seconds": round(time.perf_counter() - start, 1)}


def check_fits_memory(num: int, image_shape, *, memory: int | None = None) -> None:
    """Refuse a `num` whose images and features would take more than half of `memory` (default:
    this machine's), before any is drawn: all of them are held at once to compute the metrics."""
    memory = memory or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    per_image = 4 * (math.prod(image_shape) + FEATURE_VALUES)
    most = memory // 2 // per_image
    if num > most:
        raise UserError(f"--num {num} would hold about {num * per_image / 2**30:,.0f} GiB of "
                        "images and features, more than half of this machine's "
                        f"{memory / 2**30:.0f} GiB: use --num {most} at most (10000 is the "
                        "usual FID protocol)")


def format_table(result: dict) -> str:
    ref = result["reference"]
    lines = [f"{result['run_dir']} step {result['step']}: {result['num']} samples vs "
             f"{ref['num']} {ref['dataset']} {ref['split']} images, {result['features']} "
             "features",
             f"{'metric':<16}{'value':>12}"]
    lines += [f"{name:<16}{value:>12.6g}" for name, value in result["metrics"].items()]
    real = result["reference_metrics"]
    lines.append(f"{'is of real data':<16}{real['is']:>12.6g}")
    if "class_shares" in result:
        lines.append(format_class_shares(result["class_shares"]))
    return "\n".join(lines)


def format_class_shares(shares) -> str:
    """One line: each class's share of the generated images in percent, e.g. `0:9.8 1:11.2`."""
    return "class share %   " + " ".join(f"{label}:{100 * share:.1f}"
                                         for label, share in enumerate(shares))


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.tools.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a training run's --workdir")
    parser.add_argument("--num", type=int, default=10000, help="generated images (default 10000)")
    parser.add_argument("--metrics", default=None,
                        help=f"comma-separated, from {','.join(METRICS)} (default fid,kid,is,pr, "
                             "plus share with the classifier features and acc,ifid for "
                             "conditional runs)")
    parser.add_argument("--features", default="classifier", choices=FEATURE_NETWORKS,
                        help="feature network (default: the classifier of the run's dataset)")
    parser.add_argument("--inception-weights", default=None,
                        help="InceptionV3 FID weights (.pth of pytorch-fid, or .npz)")
    parser.add_argument("--split", default="test", help="reference split (default test)")
    parser.add_argument("--ref-num", type=int, default=None,
                        help="reference images: the first N of the split (default all)")
    parser.add_argument("--data-dir", default=None,
                        help="folder laid out as shared/datasets (default: the run's)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--best", action="store_true",
                        help="the best checkpoint by FID (runs trained with --eval-every)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    parser.add_argument("--out", default=None, help="JSON to write (default RUN_DIR/metrics.json)")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    enable_compile_cache()
    if args.best and args.step is not None:
        raise UserError("--best and --step both choose a checkpoint: give one of them")
    metrics = parse_metrics(args.metrics) if args.metrics is not None else None
    out = Path(args.out) if args.out else Path(args.run_dir) / "metrics.json"
    if args.out:  # the default lies in the run directory, which load_run checks
        check_output_file(out, "metrics.json")
    result = evaluate_run(args.run_dir, num=args.num, metrics=metrics,
                          features=args.features, inception_weights=args.inception_weights,
                          split=args.split, ref_num=args.ref_num, data_dir=args.data_dir,
                          step=args.step, best=args.best, seed=args.seed)
    write_text(out, json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

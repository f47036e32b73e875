"""DANN (Ganin et al. 2016): MNIST (labelled source) -> MNIST-M (unlabelled target).

    python -m experiments.dann --data-dir ../shared/datasets                 # DANN
    python -m experiments.dann --data-dir ../shared/datasets --source-only   # the baseline

The paper's MNIST network (conv 32, conv 48; label head fc 100-100-10; domain head fc 100-1),
SGD with momentum 0.9, rate 0.01 / (1 + 10 p)^0.75 and reversal weight 2 / (1 + exp(-10 p)) - 1
(p = step / steps), 32 source + 32 target images per step. MNIST-M is built once from MNIST and
the CIFAR-10 JPEGs of the data folder (mnist/ and cifar10_jpg/) and cached. Any field of
`jgan.domain_adaptation.DANNConfig`: --set field=value (e.g. --set lambda_gamma=5).

Writes history.csv, results.json/results.md (source, target and domain accuracy on the full test
sets), accuracy.png, predictions.png and features_pca.png under the workdir (default
runs/dann_mnist_m or runs/dann_source_only_mnist_m). The same workdir again resumes.
"""

import argparse
import dataclasses
import sys

from jgan.config import override
from jgan.errors import reports_errors


def get_config(source_only: bool = False):
    from jgan.domain_adaptation import DANNConfig

    if source_only:
        return DANNConfig(name="dann_source_only", adapt=False)
    return DANNConfig()


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    from jgan.train.distributed import launch_flags

    parser = argparse.ArgumentParser(description=__doc__, parents=[launch_flags()],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-only", action="store_true",
                        help="the baseline: the same network with no domain adaptation "
                             "(reversal weight 0)")
    parser.add_argument("--data-dir", help="folder holding mnist/ and cifar10_jpg/, laid out as "
                                           "shared/datasets (default: $JGAN_DATA_DIR)")
    parser.add_argument("--workdir", help="run directory; the same one again resumes")
    parser.add_argument("--steps", type=int, help="total steps (default 12000)")
    parser.add_argument("--batch-size", type=int, help="images per domain per step (default 32)")
    parser.add_argument("--seed", type=int, help="run seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any DANNConfig field (repeatable)")
    return parser


def parse_config(argv):
    """The config and run directory that `main(argv)` trains; nothing is read or run."""
    return _config(parser().parse_args(argv))


def _config(args):
    config = get_config(args.source_only)
    flags = {"data_dir": args.data_dir, "steps": args.steps, "batch_size": args.batch_size,
             "seed": args.seed}
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    config = override(config, args.set)
    return config, args.workdir or f"runs/{config.name}_mnist_m"


@reports_errors
def main(argv=None) -> int:
    from jgan.domain_adaptation import train_dann
    from jgan.train.distributed import initialize

    args = parser().parse_args(argv)
    config, workdir = _config(args)
    initialize(args.coordinator, args.num_processes, args.process_id)  # a multi-process job
    train_dann(config, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A run's networks one at a time: load one alone, combine networks of different runs, export one.

Every network of a checkpoint is a named orbax item (`g`, `d`, and BiGAN's `e`: each family
names its networks), so reading the encoder of a run opens only `e/`. A network can also be
exported weights-only (parameters and BatchNorm/spectral-norm statistics, no optimizer state) to
an npz file (`jgan.weights`):

    python -m jgan.tools.components export runs/bigan_mnist --network e --out encoder.npz

`read_network` takes either a run directory or such a file; `with_network` puts what it read into
another run's state, checking every array's shape first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from flax import traverse_util

from jgan import config as config_lib
from jgan.errors import UserError, reports_errors
from jgan.families import get_family
from jgan.tools.sample import check_output_file, open_checkpoint, run_data_spec
from jgan.train.family_trainer import abstract_train_state, run_keys
from jgan.train.parallel import make_mesh
from jgan.train.resume import CONFIG_FILE
from jgan.train.state import NetworkState, TrainState
from jgan.weights import first_mismatch, load_weights, save_weights


def variables_of(net: NetworkState) -> dict:
    """Flax variables of a network state: its parameters and non-trainable collections."""
    return {"params": net.params, **net.collections}


def read_network(source, name: str, *, step: int | None = None,
                 best: bool = False) -> tuple[dict, dict]:
    """`(variables, meta)` of network `name` (e.g. "g", "e", "d") from a run directory or an
    export.

    From a run directory only that network's checkpoint item is read (the latest checkpoint,
    `step`, or with `best` the best by FID). `meta` says where the weights came from: the run's
    config and data spec, the step and the network name.
    """
    source = Path(source)
    if source.is_file():
        variables, meta = load_weights(source)
        if meta.get("network") != name:
            raise UserError(f"{source} holds network {meta.get('network')!r}, not {name!r}: "
                            f"export {name!r} with python -m jgan.tools.components export RUN "
                            f"--network {name}")
        return variables, meta
    with open_checkpoint(source, step, best=best) as (checkpointer, step, meta, config, setup):
        if name not in setup.networks:
            raise UserError(f"{source} has no network {name!r} (it has "
                            f"{', '.join(sorted(setup.networks))}): a {config.family} run")
        abstract = abstract_train_state(setup, run_keys(config.train.seed)["init"], make_mesh())
        net = checkpointer.restore_networks(step, {name: abstract.nets[name]})[name]
    return variables_of(net), {"network": name, "source": str(source), "step": step,
                               "config": meta["config"],
                               "data_spec": run_data_spec(meta, config).to_json()}


def check_compatible(variables: dict, target: dict, *, name: str, source: str) -> None:
    """Raise one line naming the first array whose path or shape differs from the target's."""
    have = {"/".join(k): np.shape(v) for k, v in traverse_util.flatten_dict(variables).items()}
    want = {"/".join(k): np.shape(v) for k, v in traverse_util.flatten_dict(target).items()}
    mismatch = first_mismatch(have, want)
    if mismatch:
        kind, path = mismatch
        problem = (f"lacks {path}, which this model has" if kind == "missing" else
                   f"has {path}, which this model lacks" if kind == "unknown" else
                   f"has {path} of shape {list(have[path])}, this model needs "
                   f"{list(want[path])}")
        raise UserError(f"network {name!r} from {source} {problem}: the runs' model settings "
                        "differ (compare their config.json)")


def with_network(setup, state: TrainState, name: str, variables: dict, *,
                 source: str = "the given weights") -> TrainState:
    """`state` with network `name` replaced by `variables` (e.g. run A's encoder in run B).

    The optimizer state starts afresh for the new weights, as for a network just initialised.
    """
    if name not in state.nets:
        raise UserError(f"this run has no network {name!r} to replace (it has "
                        f"{', '.join(sorted(state.nets))})")
    check_compatible(variables, variables_of(state.nets[name]), name=name, source=source)
    params = variables["params"]
    collections = {key: value for key, value in variables.items() if key != "params"}
    net = NetworkState(params=params, opt_state=setup.networks[name].tx.init(params),
                       collections=collections)
    return state.replace(nets={**state.nets, name: net})


def export_network(run_dir, name: str, out, *, step: int | None = None,
                   best: bool = False) -> Path:
    """Write network `name` of a run, weights only, to the npz file `out`; returns its path."""
    variables, meta = read_network(run_dir, name, step=step, best=best)
    save_weights(out, variables, meta)
    return Path(out)


def network_title(run_dir, name: str) -> str:
    """What network `name` of a run is ("encoder"), as its family names it; else `name`."""
    try:
        family = config_lib.load(Path(run_dir) / CONFIG_FILE).family
    except Exception:  # missing or unreadable (JSON or config errors): read_network says more
        return name
    return get_family(family).network_names.get(name, name)


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.tools.components", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write one network's weights to an npz file")
    export.add_argument("run_dir", help="a training run's --workdir")
    export.add_argument("--network", required=True,
                        help="the network's name in the run: g (generator), d (discriminator), "
                             "e (BiGAN's encoder), ...")
    export.add_argument("--out", default=None, help="npz to write (default RUN_DIR/NAME.npz)")
    export.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    export.add_argument("--best", action="store_true", help="the best checkpoint by FID")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    title = network_title(args.run_dir, args.network)
    out = args.out or Path(args.run_dir) / f"{title}.npz"
    check_output_file(out, f"{title}.npz")
    path = export_network(args.run_dir, args.network, out, step=args.step, best=args.best)
    print(f"wrote the {title} of {args.run_dir} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

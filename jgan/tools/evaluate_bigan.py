"""Measure a BiGAN's encoder and generator together: `python -m jgan.tools.evaluate_bigan RUN_DIR`.

Writes to RUN_DIR (or `--out-dir`):
- `reconstructions.png`: test images x (odd rows) above their reconstructions G(E(x)) (even rows);
- `interpolations.png`: per row, x_a, then G of the encodings E(x_a) -> E(x_b) linearly
  interpolated, then x_b;
- `representation.json`: the reconstruction MSE over the test images (pixels in [-1, 1]), and
  linear-probe and 1-nearest-neighbour accuracy of E(x) features (train split -> test split),
  both for the trained encoder and for the same encoder at initialisation (the run's own init
  key, i.e. the run at step 0): the probes are only meaningful beside that baseline.

`--encoder SOURCE` and `--generator SOURCE` take E or G from another run directory or an export
of `jgan.tools.components`, so E from run A can be measured with G from run B.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from jgan.compile_cache import enable as enable_compile_cache
from jgan.data import find_dataset
from jgan.encoding import encode_images, interpolation_grid, reconstruction_grid, reconstruction_mse
from jgan.errors import UserError, reports_errors
from jgan.files import write_text
from jgan.images import save_png
from jgan.metrics.probes import linear_probe_accuracy, nearest_neighbour_accuracy
from jgan.metrics.reference import split_images
from jgan.tools.components import read_network, with_network
from jgan.tools.sample import load_run
from jgan.train.family_trainer import run_keys

# The interpolation grid pairs test images 0-7 with 8-15.
FEWEST_TEST_IMAGES = 16


def check_image_counts(num_train: int | None, num_test: int | None) -> None:
    """Refuse fewer images than the probes (1 training image) and the grids need."""
    if num_train is not None and num_train < 1:
        raise UserError(f"--num-train {num_train} is too few: the probes fit the training "
                        "images' codes, so use 1 or more (or leave it out for the whole split)")
    if num_test is not None and num_test < FEWEST_TEST_IMAGES:
        raise UserError(f"--num-test {num_test} is too few: the interpolation grid pairs test "
                        f"images 0-7 with 8-15, so use {FEWEST_TEST_IMAGES} or more")


def probe_encoder(setup, state, train, test) -> dict:
    """Linear-probe and 1-NN test accuracy of E(x); `train`/`test` are (images, labels)."""
    train_features = encode_images(setup, state, train[0])
    test_features = encode_images(setup, state, test[0])
    return {"linear_probe": linear_probe_accuracy(train_features, train[1], test_features,
                                                  test[1]),
            "nearest_neighbour": nearest_neighbour_accuracy(train_features, train[1],
                                                            test_features, test[1])}


def evaluate_bigan(run_dir, *, data_dir=None, num_train: int | None = None,
                   num_test: int | None = None, encoder=None, generator=None, step=None,
                   out_dir=None, log=print) -> dict:
    """The measurements of the module docstring, as a JSON-ready dict; writes the two grids."""
    start = time.perf_counter()
    check_image_counts(num_train, num_test)
    setup, state, config = load_run(run_dir, step)
    if "e" not in state.nets:
        raise UserError(f"{run_dir} is a {config.family} run with no encoder: pass a "
                        "BiGAN run (python -m experiments.bigan)")
    sources = {"e": str(run_dir), "g": str(run_dir)}
    for name, source in (("e", encoder), ("g", generator)):
        if source is not None:
            variables, _ = read_network(source, name)
            state = with_network(setup, state, name, variables, source=str(source))
            sources[name] = str(source)
    dataset = find_dataset(config.data.dataset, data_dir or config.data.data_dir)
    log(f"data: {dataset.description}")
    size = config.data.image_size
    train = split_images(dataset.open("train", image_size=size), num_train)
    test = split_images(dataset.open("test", image_size=size), num_test)
    if train[1] is None:
        raise UserError(f"{config.data.dataset} has no class labels for the probes: choose a "
                        "labelled dataset with --dataset")
    out_dir = Path(out_dir or run_dir)
    save_png(reconstruction_grid(setup, state, test[0][:64]), out_dir / "reconstructions.png")
    save_png(interpolation_grid(setup, state, test[0][:8], test[0][8:16]),
             out_dir / "interpolations.png")
    initial = setup.init_state(run_keys(config.train.seed)["init"])
    result = {
        "run_dir": str(run_dir), "step": int(state.step), "networks": sources,
        "dataset": config.data.dataset, "data": dataset.description,
        "num_train": len(train[0]), "num_test": len(test[0]),
        "reconstruction_mse": reconstruction_mse(setup, state, test[0]),
        "trained_encoder": probe_encoder(setup, state, train, test),
        "initial_encoder": probe_encoder(setup, initial, train, test)}
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_text(out_dir / "representation.json", json.dumps(result, indent=2) + "\n")
    return result


def format_table(result: dict) -> str:
    lines = [f"{'encoder':<22}{'linear probe':>14}{'1-NN':>10}"]
    for name in ("trained_encoder", "initial_encoder"):
        values = result[name]
        lines.append(f"{name.replace('_', ' '):<22}{values['linear_probe']:>14.2%}"
                     f"{values['nearest_neighbour']:>10.2%}")
    lines.append(f"reconstruction MSE (pixels in [-1, 1]): {result['reconstruction_mse']:.4f}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.tools.evaluate_bigan",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a BiGAN training run's --workdir")
    parser.add_argument("--data-dir", default=None,
                        help="folder laid out as shared/datasets (default: the run's)")
    parser.add_argument("--num-train", type=int, default=None,
                        help="training images for the probes (default: the whole split)")
    parser.add_argument("--num-test", type=int, default=None,
                        help="test images (default: the whole split)")
    parser.add_argument("--encoder", default=None,
                        help="take E from this run directory or exported .npz")
    parser.add_argument("--generator", default=None,
                        help="take G from this run directory or exported .npz")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--out-dir", default=None, help="where to write (default RUN_DIR)")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    enable_compile_cache()
    result = evaluate_bigan(args.run_dir, data_dir=args.data_dir, num_train=args.num_train,
                            num_test=args.num_test, encoder=args.encoder,
                            generator=args.generator, step=args.step, out_dir=args.out_dir)
    print(format_table(result))
    print(f"wrote representation.json, reconstructions.png and interpolations.png to "
          f"{args.out_dir or args.run_dir} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

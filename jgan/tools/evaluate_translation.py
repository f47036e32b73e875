"""Measure an image-to-image run: `python -m jgan.tools.evaluate_translation RUN_DIR`.

    python -m jgan.tools.evaluate_translation RUN_DIR [--split SPLIT] [--data-dir DIR] [--step N]
        [--seed S] [--batch N] [--out FILE.json] [--grid FILE.png]

The images: the examples the run held out from training (`data.holdout`), or with --split every
example of that split of the run's data (opened as the run opened its own, `data.image_size`
included, with no holdout; --data-dir replaces the run's `data.data_dir`).

Paired data (Pix2Pix; Isola et al. 2017, Sec. 4.2): for each direction the run translates, L1,
PSNR and SSIM of each translation against its target (`jgan.metrics.translation`), and the same
for the baseline that answers every input with the per-pixel mean of the training targets, and,
where A and B images have one size, for the identity (the input as the output): a run whose L1
is worse than the identity's gets a note.
Unpaired data (CycleGAN; Zhu et al. 2017): for each direction, the translation success rate, the
share of fake_B (from real A) that a domain classifier trained on the real training images
(`jgan.metrics.domain_classifier`) calls B, beside that classifier's accuracy on the real images
evaluated (under 0.75 on either side, the rates are marked with ? and a note: a classifier
near chance says little); and, when the run translates both ways, the cycle L1 |F(G(a)) - a|
of Eq. 2.

Scores compare uint8 images, as `python -m jgan.translate` writes them (the fake of a cycle goes
on unrounded). Example i's dropout key is `fold_in(key(seed), i)`, its cycle's second half
`fold_in` of that with 1. Writes RUN_DIR/evaluation.json (or --out), prints a table, and with
--grid a PNG of rows (input, translation, target or reconstruction).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from jgan.compile_cache import enable as enable_compile_cache
from jgan.data import open_data
from jgan.errors import UserError, reports_errors
from jgan.files import write_text
from jgan.images import make_grid, save_png, to_uint8
from jgan.metrics.domain_classifier import domain_accuracy, train_domain_classifier
from jgan.metrics.translation import image_metrics, l1_distance, mean_image_baseline
from jgan.tools.sample import check_output_file, load_run
from jgan.translate import Translator, resize, resolve_direction, to_channels, uint8_to_float

GRID_EXAMPLES = 4  # rows of the grid per direction
# Below this share of a side's real images called right, the domain classifier is too near
# chance (0.5) for the share of fakes it calls the target to mean much.
RELIABLE_ACCURACY = 0.75
SIDES = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}  # direction -> (source side, target side)


def _all_examples(data) -> dict[str, np.ndarray]:
    """uint8 `{"image_A", "image_B"}` of every example `data` trains on (none held out aside)."""
    if data.spec.kind == "unpaired":
        return {f"image_{side}": _take_all(data.streams[side])[f"image_{side}"]
                for side in ("A", "B")}
    return _take_all(data.dataset)


def _take_all(source) -> dict[str, np.ndarray]:
    indices = np.arange(len(source))
    if hasattr(source, "take"):
        return source.take(indices)
    examples = source.__getitems__(indices)
    return {name: np.stack([np.asarray(example[name]) for example in examples])
            for name in examples[0] if name.startswith("image_")}


def model_inputs(images: np.ndarray, shape: tuple[int, int, int], what: str) -> np.ndarray:
    """uint8 `images` with the generator's channels; a one-line UserError if their size differs
    (the run's `data.image_size` brings a split to the size the run trained at)."""
    height, width, channels = shape
    if images.shape[1:3] != (height, width):
        raise UserError(f"{what} are {images.shape[1]}x{images.shape[2]} but the generator takes"
                        f" {height}x{width}: evaluate data prepared as the run's was (its "
                        "data.image_size and folder)")
    return with_channels(images, channels)


def with_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 `[N, H, W, C]` -> `[N, H, W, channels]` (`jgan.translate.to_channels` per image)."""
    if images.shape[-1] == channels:
        return images
    return np.stack([to_channels(image, channels) for image in images])


def _grid_rows(*columns: np.ndarray) -> list[list[np.ndarray]]:
    """The first `GRID_EXAMPLES` examples: one row each, one image per column."""
    return [[column[i] for column in columns]
            for i in range(min(GRID_EXAMPLES, len(columns[0])))]


def grid_image(rows: list[list[np.ndarray]]) -> np.ndarray:
    """One uint8 RGB grid of rows of images; short rows end in black, and every image takes
    the first one's size (the two sides of a run may differ)."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    blank = np.zeros((height, width, 3), np.uint8)
    cells = [[resize(to_channels(image, 3), height, width) for image in row]
             + [blank] * (columns - len(row)) for row in rows]
    return make_grid(np.stack([cell for row in cells for cell in row]), columns=columns)


def _means(values: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(np.mean(per_image)) for name, per_image in values.items()}


def evaluate_paired(translator: Translator, examples: dict, train_examples: dict, *,
                    seed: int = 0) -> tuple[dict, list[list[np.ndarray]]]:
    """`({direction: {"count", "l1", "psnr", "ssim", "baseline": {...}}}, grid rows)` of
    aligned uint8 `examples` {"image_A", "image_B"}; the baseline's mean target is taken over
    `train_examples`."""
    results, grid = {}, []
    for direction in translator.setup.directions:
        source, target = (f"image_{side}" for side in SIDES[direction])
        shape = translator.setup.translation_shape(direction)
        inputs = model_inputs(examples[source], shape, f"the {source} images evaluated")
        fakes = to_uint8(translator(uint8_to_float(inputs), np.arange(len(inputs)),
                                    direction=direction, seed=seed))
        channels = fakes.shape[-1]
        targets = with_channels(examples[target], channels)
        train_targets = with_channels(train_examples[target], channels)
        results[direction] = {"count": len(inputs), **_means(image_metrics(fakes, targets)),
                              "baseline": _means(mean_image_baseline(train_targets, targets))}
        if inputs.shape[1:3] == targets.shape[1:3]:  # the input as the output: what to beat
            results[direction]["identity"] = _means(image_metrics(
                with_channels(inputs, channels), targets))
        grid += _grid_rows(inputs, fakes, targets)
    return results, grid


def evaluate_unpaired(translator: Translator, examples: dict, train_examples: dict, *,
                      seed: int = 0, classifier=None, classifier_options=None,
                      log=print) -> tuple[dict, list[list[np.ndarray]]]:
    """`({"directions": {direction: {"count", "success_rate", "cycle_l1"?}}, "classifier":
    {...}}, grid rows)` of uint8 `examples` {"image_A", "image_B"} (not aligned). The domain
    classifier is trained on `train_examples` (`classifier_options`: keyword arguments of
    `train_domain_classifier`) unless one is given."""
    setup = translator.setup
    if classifier is None:
        classifier = train_domain_classifier(train_examples["image_A"],
                                             train_examples["image_B"], log=log,
                                             **(classifier_options or {}))
    results = {"classifier": {
        "accuracy_A": domain_accuracy(classifier, examples["image_A"], "A"),
        "accuracy_B": domain_accuracy(classifier, examples["image_B"], "B"),
        "count_A": len(examples["image_A"]), "count_B": len(examples["image_B"]),
        "train_A": len(train_examples["image_A"]), "train_B": len(train_examples["image_B"]),
        "cache": str(classifier.cache)}, "directions": {}}
    results["classifier"]["near_chance"] = near_chance(results["classifier"])
    grid = []
    for direction in setup.directions:
        source, target = SIDES[direction]
        inputs = model_inputs(examples[f"image_{source}"], setup.translation_shape(direction),
                              f"the image_{source} images evaluated")
        ids = np.arange(len(inputs))
        fakes = translator(uint8_to_float(inputs), ids, direction=direction, seed=seed)
        entry = {"count": len(inputs),
                 "success_rate": domain_accuracy(classifier, to_uint8(fakes), target)}
        columns = [inputs, to_uint8(fakes)]
        back = f"{target}to{source}"
        if back in setup.directions:
            reconstructed = to_uint8(translator(fakes, ids, direction=back, seed=seed,
                                                fold=(1,)))
            reals = with_channels(inputs, reconstructed.shape[-1])
            entry["cycle_l1"] = float(np.mean(l1_distance(reconstructed, reals)))
            columns.append(reconstructed)
        results["directions"][direction] = entry
        grid += _grid_rows(*columns)
    return results, grid


def evaluate_translation(run_dir, *, split: str | None = None, data_dir=None,
                         step: int | None = None, seed: int = 0, batch: int = 8,
                         grid=None, classifier_options=None, log=print) -> dict:
    """The scores of a run's checkpoint as a JSON-ready dict (see the module docstring); with
    `grid`, also a PNG of the first examples there. `classifier_options`: keyword arguments of
    `train_domain_classifier` (tests train a tiny one)."""
    start = time.perf_counter()
    setup, state, config = load_run(run_dir, step)
    resolve_direction(setup, None)
    translator = Translator(setup, state, batch=batch)
    data_cfg = config.data if data_dir is None else dataclasses.replace(config.data,
                                                                        data_dir=data_dir)
    data = open_data(data_cfg, log=log)
    if data.spec.kind not in ("paired", "unpaired"):
        raise UserError(f"{run_dir} trained on {data.spec.kind} images, with no A and B sides: "
                        "evaluate a pix2pix or cyclegan run")
    if split is None:
        if not data.held_out:
            raise UserError(f"{run_dir} held out no example (data.holdout=0): pass --split test "
                            "(say) to evaluate on a split of its data")
        examples, which = data.held_out, "held_out"
    else:
        evaluated = open_data(dataclasses.replace(data_cfg, split=split, holdout=0), log=log)
        examples, which = _all_examples(evaluated), f"split {split}"
    train_examples = _all_examples(data)
    if data.spec.kind == "paired":
        directions, grid_rows = evaluate_paired(translator, examples, train_examples, seed=seed)
        scores = {"directions": directions}
    else:
        scores, grid_rows = evaluate_unpaired(translator, examples, train_examples, seed=seed,
                                              classifier_options=classifier_options, log=log)
    if grid is not None:
        save_png(grid_image(grid_rows), grid)
    return {"run_dir": str(run_dir), "step": int(state.step), "data": data.name,
            "kind": data.spec.kind, "examples": which, "seed": seed, **scores,
            "seconds": round(time.perf_counter() - start, 1)}


def near_chance(classifier: dict) -> bool:
    """Whether the domain classifier calls too few of either side's real images right for its
    success rates to say much (one that calls every image B gives B's fakes 100%)."""
    return min(classifier["accuracy_A"], classifier["accuracy_B"]) < RELIABLE_ACCURACY


def format_table(result: dict) -> str:
    """The scores as a few aligned lines, and a note under those that say little."""
    examples = "held-out" if result["examples"] == "held_out" else result["examples"]
    lines = [f"{result['run_dir']} step {result['step']}: {examples} {result['kind']} examples "
             f"of {result['data']}, seed {result['seed']}"]
    if result["kind"] == "paired":
        lines.append(f"{'direction':<22}{'count':>7}{'L1':>9}{'PSNR':>9}{'SSIM':>9}")
        notes = []
        for direction, entry in result["directions"].items():
            baselines = [("  mean-target baseline", entry["baseline"])]
            if "identity" in entry:
                baselines.append(("  identity baseline", entry["identity"]))
                if entry["l1"] > entry["identity"]["l1"]:
                    notes.append(f"note: {direction}'s L1 {entry['l1']:.4f} is worse than the "
                                 f"identity baseline's {entry['identity']['l1']:.4f} (the input "
                                 "as the output): the run has not learnt to translate yet")
            for name, values in ((direction, entry), *baselines):
                lines.append(f"{name:<22}{entry['count']:>7}{values['l1']:>9.4f}"
                             f"{values['psnr']:>9.3f}{values['ssim']:>9.4f}")
        return "\n".join(lines + notes)
    clf = result["classifier"]
    doubtful = near_chance(clf)
    lines.append(f"{'direction':<12}{'count':>7}{'success':>10}{'cycle L1':>10}")
    for direction, entry in result["directions"].items():
        cycle = f"{entry['cycle_l1']:>10.4f}" if "cycle_l1" in entry else f"{'-':>10}"
        success = f"{entry['success_rate']:.3f}{'?' if doubtful else ''}"
        lines.append(f"{direction:<12}{entry['count']:>7}{success:>10}{cycle}")
    lines.append(f"domain classifier on the real images: A {clf['accuracy_A']:.3f} "
                 f"({clf['count_A']}), B {clf['accuracy_B']:.3f} ({clf['count_B']}); trained on "
                 f"{clf['train_A']} A and {clf['train_B']} B")
    if doubtful:
        lines.append(f"note: the domain classifier is near chance on the real images (A "
                     f"{clf['accuracy_A']:.3f}, B {clf['accuracy_B']:.3f}; under "
                     f"{RELIABLE_ACCURACY} a side): the success rates say little")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.tools.evaluate_translation",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a pix2pix or cyclegan run's --workdir")
    parser.add_argument("--split", default=None,
                        help="evaluate every example of this split of the run's data (default: "
                             "the examples the run held out)")
    parser.add_argument("--data-dir", default=None,
                        help="folder laid out as shared/datasets (default: the run's)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout (default 0)")
    parser.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    parser.add_argument("--out", default=None,
                        help="JSON to write (default RUN_DIR/evaluation.json)")
    parser.add_argument("--grid", default=None, help="also write a PNG grid of examples here")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    enable_compile_cache()
    out = Path(args.out) if args.out else Path(args.run_dir) / "evaluation.json"
    check_output_file(out, "evaluation.json")
    if args.grid is not None:
        check_output_file(args.grid, "evaluation.png")
    if args.batch < 1:
        raise UserError(f"--batch {args.batch} is not positive: use --batch 8, say")
    result = evaluate_translation(args.run_dir, split=args.split, data_dir=args.data_dir,
                                  step=args.step, seed=args.seed, batch=args.batch,
                                  grid=args.grid)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"wrote {out}" + (f" and {args.grid}" if args.grid else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

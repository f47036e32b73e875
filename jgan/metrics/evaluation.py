"""Measure a generator: draw N images, embed them with a feature network, compare with a reference.

`Evaluator` is built once (feature network, cached reference features) and called on a train
state, by the training loop every `--eval-every` steps and by `python -m jgan.tools.evaluate` on a
checkpoint. Metric names, as flags and as keys of the result:

| flag  | keys                      | what |
|-------|---------------------------|------|
| fid   | fid                       | Frechet distance of features (Heusel et al. 2017) |
| kid   | kid, kid_std              | unbiased MMD^2 over subsets of 1000 (Binkowski et al. 2018) |
| is    | is, is_std                | Inception Score over 10 splits (Salimans et al. 2016) |
| pr    | precision, recall         | k-NN manifolds, k = 3 (Kynkaanniemi et al. 2019) |
| dc    | density, coverage         | k = 5 (Naeem et al. 2020) |
| acc   | class_accuracy            | conditional runs: share classified as the label asked for |
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jgan.errors import UserError
from jgan.metrics import distances
from jgan.metrics.features import FeatureNetwork, feature_network
from jgan.metrics.reference import Reference, reference
from jgan.generate import draw_samples, image_labels

METRICS = ("fid", "kid", "is", "pr", "dc", "acc")
DEFAULT_METRICS = ("fid", "kid", "is", "pr")

# The fewest generated and reference images that each metric is defined for
# (jgan.metrics.distances), and why; a metric not named needs 1. The reference always needs the
# Inception Score's: its IS is reported as the ceiling of the generated images'.
FEWEST_GENERATED = {"fid": 2, "kid": 2, "is": 10, "pr": 4}
FEWEST_REFERENCE = {**FEWEST_GENERATED, "dc": 6}
WHY_SO_MANY = {
    "fid": "FID takes the covariance of each set",
    "kid": "KID's unbiased estimate compares each image with another",
    "is": "the Inception Score (also reported for the reference) averages over 10 splits",
    "pr": "precision and recall take each image's 3rd nearest neighbour",
    "dc": "density and coverage take each reference image's 5th nearest neighbour",
}


def check_image_counts(num: int, ref_num: int | None = None, metrics=DEFAULT_METRICS, *,
                       flag: str = "--num") -> None:
    """Refuse fewer generated (`num`, set by `flag`) or reference images than a metric needs."""
    _refuse_too_few(num, flag, metrics, FEWEST_GENERATED)
    if ref_num is not None:
        _refuse_too_few(ref_num, "--ref-num", (*metrics, "is"), FEWEST_REFERENCE)


def _refuse_too_few(count: int, flag: str, metrics, fewest_by_metric: dict[str, int]) -> None:
    fewest, metric = max((fewest_by_metric.get(name, 1), name) for name in metrics)
    if count < fewest:
        why = f"{WHY_SO_MANY[metric]}, so " if metric in fewest_by_metric else ""
        raise UserError(f"{flag} {count} is too few: {why}use {fewest} or more")


KID_SUBSET_SIZE = 1000


def softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric {unknown[0] if unknown else '(none given)'!r}: choose "
                        f"from {','.join(METRICS)}, e.g. --metrics fid,kid,is,pr")
    return names


def compute_metrics(ref: Reference, features, logits, metrics, labels=None) -> dict[str, float]:
    """The requested metrics of generated `features`/`logits` against `ref`.

    `labels` are the classes the images were generated for (conditional runs), needed by "acc".
    """
    result = {}
    if "fid" in metrics:
        result["fid"] = distances.fid(ref.features, features)
    if "kid" in metrics:
        size = min(KID_SUBSET_SIZE, len(ref.features), len(features))
        result["kid"], result["kid_std"] = distances.kid(ref.features, features, subset_size=size)
    if "is" in metrics:
        # The splits must be samples of the whole distribution, and a conditional run's images
        # come in blocks of one label each: shuffle them in a fixed order first.
        order = np.random.default_rng(0).permutation(len(logits))
        result["is"], result["is_std"] = distances.inception_score(softmax(logits)[order])
    if "pr" in metrics:
        result["precision"], result["recall"] = distances.precision_recall(ref.features, features)
    if "dc" in metrics:
        result["density"], result["coverage"] = distances.density_coverage(ref.features, features)
    if "acc" in metrics:
        if labels is None:
            raise UserError("class accuracy needs a conditional generator: drop acc from "
                            "--metrics for this run")
        result["class_accuracy"] = float(np.mean(np.argmax(logits, axis=1) == labels))
    return result


@dataclasses.dataclass(frozen=True)
class Evaluator:
    network: FeatureNetwork
    reference: Reference
    metrics: tuple[str, ...]
    num: int  # generated images
    seed: int = 0  # their latents come from key(seed), the same at every evaluation

    def __call__(self, setup, state) -> dict[str, float]:
        images, labels = draw_samples(setup, state, self.num, seed=self.seed)
        features, logits = self.network(images)
        return compute_metrics(self.reference, features, logits, self.metrics, labels)

    def describe(self) -> dict:
        return {"num": self.num, "seed": self.seed, "metrics": list(self.metrics),
                "reference": self.reference.description}

    def reference_metrics(self) -> dict[str, float]:
        """The real split measured as if generated: the Inception-Score ceiling of this setup."""
        inception_score, std = distances.inception_score(softmax(self.reference.logits))
        return {"is": inception_score, "is_std": std}


def make_evaluator(*, dataset: str, num_classes: int, metrics=None, num: int = 10000,
                   seed: int = 0, features: str = "classifier", inception_weights=None,
                   split: str = "test", ref_num: int | None = None, data_dir=None,
                   log=print) -> Evaluator:
    """Check the request, build the feature network and load (or compute) the reference.

    `num_classes` is the generator's (0 if unconditional). Default metrics: fid, kid, is, pr, plus
    acc for a conditional run.
    """
    conditional = num_classes > 0
    image_labels(None, num, num_classes)  # a conditional run's images must split over classes
    if metrics is None:
        metrics = DEFAULT_METRICS + (("acc",) if conditional else ())
    metrics = tuple(metrics)
    if "acc" in metrics and not conditional:
        raise UserError("class accuracy (acc) needs a conditional generator: drop acc from "
                        "--metrics for this run")
    check_image_counts(num, ref_num, metrics)
    network = feature_network(features, dataset=dataset, inception_weights=inception_weights)
    ref = reference(network, dataset, split=split, num=ref_num, data_dir=data_dir, log=log)
    return Evaluator(network, ref, metrics, num, seed)

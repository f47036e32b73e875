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
| ifid  | ifid, ifid_max            | conditional runs: mean and max over classes of the FID of |
|       |                           | a class's images to its real ones (Miyato & Koyama 2018) |
| share | class_share_min,          | classifier features: the smallest and largest share of |
|       | class_share_max           | the images assigned to one class (`class_shares`: each's) |
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jgan.errors import UserError
from jgan.metrics import distances
from jgan.metrics.features import FeatureNetwork, feature_network
from jgan.metrics.reference import Reference, reference
from jgan.generate import draw_samples, image_labels

METRICS = ("fid", "kid", "is", "pr", "dc", "share", "acc", "ifid")
DEFAULT_METRICS = ("fid", "kid", "is", "pr")
# The feature network whose logits are the dataset's own classes, so that shares mean something.
CLASS_SHARE_FEATURES = "classifier"

# The fewest generated and reference images that each metric is defined for
# (jgan.metrics.distances), and why; a metric not named needs 1. The reference always needs the
# Inception Score's: its IS is reported as the ceiling of the generated images'.
FEWEST_GENERATED = {"fid": 2, "kid": 2, "is": 10, "pr": 4, "ifid": 2}
FEWEST_REFERENCE = {**FEWEST_GENERATED, "dc": 6}
WHY_SO_MANY = {
    "fid": "FID takes the covariance of each set",
    "kid": "KID's unbiased estimate compares each image with another",
    "is": "the Inception Score (also reported for the reference) averages over 10 splits",
    "pr": "precision and recall take each image's 3rd nearest neighbour",
    "dc": "density and coverage take each reference image's 5th nearest neighbour",
    "ifid": "intra-class FID takes the covariance of each class's images",
}


def check_image_counts(num: int, ref_num: int | None = None, metrics=DEFAULT_METRICS, *,
                       flag: str = "--num") -> None:
    """Refuse fewer generated (`num`, set by `flag`) or reference images than a metric needs."""
    _refuse_too_few(num, flag, metrics, FEWEST_GENERATED)
    if ref_num is not None:
        _refuse_too_few(ref_num, "--ref-num", (*metrics, "is"), FEWEST_REFERENCE)


def check_generated_classes(labels) -> None:
    """Refuse intra-class FID unless the generated `labels` `[N]` give each class 2 images.

    Conditional runs draw the same number of images of every class, so `--num` sets them all.
    """
    if labels is None:
        raise UserError("intra-class FID (ifid) needs a conditional generator: drop ifid from "
                        "--metrics for this run")
    classes = np.unique(labels)
    count, label = _fewest_of_a_class(labels, classes)
    if count < FEWEST_GENERATED["ifid"]:
        raise UserError(f"class {label} has {count} of the {len(labels)} generated images: "
                        f"{WHY_SO_MANY['ifid']}, so use --num "
                        f"{FEWEST_GENERATED['ifid'] * len(classes)} or more")


def check_reference_classes(labels, classes) -> None:
    """Refuse intra-class FID unless the reference `labels` `[M]` hold 2 images of each class."""
    if labels is None:
        raise UserError("intra-class FID (ifid) needs a reference split with class labels: drop "
                        "ifid from --metrics")
    count, label = _fewest_of_a_class(labels, classes)
    if count < FEWEST_REFERENCE["ifid"]:
        raise UserError(f"class {label} has {count} of the {len(labels)} reference images: "
                        f"{WHY_SO_MANY['ifid']}, so raise --ref-num or drop ifid from --metrics")


def _fewest_of_a_class(labels, classes) -> tuple[int, int]:
    """`(count, class)` of the class in `classes` with the fewest entries in `labels`."""
    labels = np.asarray(labels)
    return min((int(np.sum(labels == label)), int(label)) for label in classes)


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


def default_metrics(num_classes: int, *, intra_class: bool = False,
                    class_shares: bool = False) -> tuple[str, ...]:
    """fid, kid, is, pr; plus share when `class_shares` (the classifier features); plus acc for
    a conditional generator (`num_classes` > 0), and ifid too when `intra_class` (the evaluate
    tool asks for it; training does not, since it costs one FID per class at every
    evaluation)."""
    metrics = DEFAULT_METRICS + (("share",) if class_shares else ())
    if not num_classes:
        return metrics
    return metrics + (("acc", "ifid") if intra_class else ("acc",))


def class_shares(logits) -> np.ndarray:
    """float64 `[K]`: the share of the images whose largest of the `logits` `[N, K]` is class k.

    A generator can reach a fair FID while it under-draws a class (a DCGAN on MNIST blending 4
    into 9 drew 3% fours): the shares show what a distance between distributions averages away.
    """
    logits = np.asarray(logits)
    return np.bincount(np.argmax(logits, axis=1), minlength=logits.shape[1]) / len(logits)


def intra_class_fid(ref: Reference, features, labels) -> dict[str, float]:
    """Intra-class FID (Miyato & Koyama 2018, Sec. 5): the FID of each class's generated
    `features` `[N, D]` against that class's reference features, averaged over the classes in
    `labels` `[N]`; with the worst class's, which a mean over many classes can hide."""
    check_generated_classes(labels)
    check_reference_classes(ref.labels, np.unique(labels))
    per_class = list(distances.class_fids(ref.features, ref.labels, features, labels).values())
    return {"ifid": float(np.mean(per_class)), "ifid_max": float(np.max(per_class))}


def parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric {unknown[0] if unknown else '(none given)'!r}: choose "
                        f"from {','.join(METRICS)}, e.g. --metrics fid,kid,is,pr")
    return names


def compute_metrics(ref: Reference, features, logits, metrics, labels=None) -> dict[str, float]:
    """The requested metrics of generated `features`/`logits` against `ref`.

    `labels` are the classes the images were generated for (conditional runs), needed by "acc"
    and "ifid".
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
    if "share" in metrics:
        shares = class_shares(logits)
        result["class_share_min"], result["class_share_max"] = (float(shares.min()),
                                                                float(shares.max()))
    if "acc" in metrics:
        if labels is None:
            raise UserError("class accuracy needs a conditional generator: drop acc from "
                            "--metrics for this run")
        result["class_accuracy"] = float(np.mean(np.argmax(logits, axis=1) == labels))
    if "ifid" in metrics:
        result.update(intra_class_fid(ref, features, labels))
    return result


@dataclasses.dataclass(frozen=True)
class Evaluator:
    network: FeatureNetwork
    reference: Reference
    metrics: tuple[str, ...]
    num: int  # generated images
    seed: int = 0  # their latents come from key(seed), the same at every evaluation

    def __call__(self, setup, state) -> dict[str, float]:
        return self.measure(setup, state)[0]

    def measure(self, setup, state) -> tuple[dict[str, float], list[float] | None]:
        """The scores, and each class's share of the images (None unless "share" is measured)."""
        images, labels = draw_samples(setup, state, self.num, seed=self.seed)
        features, logits = self.network(images)
        scores = compute_metrics(self.reference, features, logits, self.metrics, labels)
        return scores, class_shares(logits).tolist() if "share" in self.metrics else None

    def describe(self) -> dict:
        return {"num": self.num, "seed": self.seed, "metrics": list(self.metrics),
                "reference": self.reference.description}

    def reference_metrics(self) -> dict[str, float]:
        """The real split measured as if generated: the Inception-Score ceiling of this setup."""
        inception_score, std = distances.inception_score(softmax(self.reference.logits))
        return {"is": inception_score, "is_std": std}


def check_request(metrics, *, num_classes: int, num: int, ref_num: int | None,
                  features: str) -> None:
    """Refuse `metrics` that a generator with `num_classes` (0 if unconditional) or these
    `features` cannot give, or image counts too small for them, before any image is drawn."""
    # A conditional run's images must split evenly over the classes.
    generated_labels = image_labels(None, num, num_classes)
    if "share" in metrics and features != CLASS_SHARE_FEATURES:
        raise UserError(f"class shares (share) need the dataset's classifier: drop share from "
                        f"--metrics or use --features {CLASS_SHARE_FEATURES}")
    if "acc" in metrics and not num_classes:
        raise UserError("class accuracy (acc) needs a conditional generator: drop acc from "
                        "--metrics for this run")
    check_image_counts(num, ref_num, metrics)
    if "ifid" in metrics:
        check_generated_classes(generated_labels)


def make_evaluator(*, dataset: str, num_classes: int, metrics=None, num: int = 10000,
                   seed: int = 0, features: str = "classifier", inception_weights=None,
                   split: str = "test", ref_num: int | None = None, data_dir=None,
                   log=print) -> Evaluator:
    """Check the request, build the feature network and load (or compute) the reference.

    `num_classes` is the generator's (0 if unconditional). Default metrics: fid, kid, is, pr, plus
    share with the classifier features and acc for a conditional run (`default_metrics`).
    """
    metrics = tuple(default_metrics(num_classes, class_shares=features == CLASS_SHARE_FEATURES)
                    if metrics is None else metrics)
    check_request(metrics, num_classes=num_classes, num=num, ref_num=ref_num, features=features)
    network = feature_network(features, dataset=dataset, inception_weights=inception_weights)
    ref = reference(network, dataset, split=split, num=ref_num, data_dir=data_dir, log=log)
    if "ifid" in metrics:
        check_reference_classes(ref.labels, range(num_classes))
    return Evaluator(network, ref, metrics, num, seed)

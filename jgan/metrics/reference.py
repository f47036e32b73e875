"""Reference features of a dataset split, computed once and cached.

The cache file is keyed by everything that changes the numbers: dataset, where its examples come
from, split, feature network (with its weights' hash) and N, the number of examples (the first N
of the split, in its stored order). It holds the features, the logits, and their mean and
covariance (the FID statistics):
`$JGAN_CACHE_DIR/reference/<dataset>-<source hash>/<split>-<network>-n<N>.npz`.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from jgan.data import find_dataset
from jgan.data.sources import cache_dir
from jgan.errors import UserError
from jgan.files import atomic_write
from jgan.metrics.distances import feature_statistics
from jgan.metrics.features import FeatureNetwork

READ_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class Reference:
    features: np.ndarray  # [N, D]
    logits: np.ndarray  # [N, K]
    labels: np.ndarray | None  # [N] class labels, if the dataset has them
    description: dict  # dataset, split, data source, feature network, N


def split_images(source, num: int | None, *, flag: str = "--ref-num", what: str = "reference"):
    """uint8 images `[N, H, W, C]` (and labels) of the first `num` examples of a split; `flag`
    is the option of the command that asked for `num`, named in its error."""
    num = len(source) if num is None else num
    if not 0 < num <= len(source):
        raise UserError(f"the {what} split has {len(source)} examples, not {num}: ask for "
                        f"{flag} {len(source)} or fewer")
    images, labels = [], []
    for start in range(0, num, READ_CHUNK):
        examples = source.__getitems__(list(range(start, min(num, start + READ_CHUNK))))
        images.extend(np.asarray(e["image"]) for e in examples)
        labels.extend(e.get("label", -1) for e in examples)
    images = np.stack(images)
    images = images[..., None] if images.ndim == 3 else images
    labels = np.asarray(labels, np.int32)
    return images, (labels if np.all(labels >= 0) else None)


def reference(network: FeatureNetwork, dataset: str, *, split: str = "test",
              num: int | None = None, data_dir=None, log=print) -> Reference:
    """Features of the first `num` (default all) examples of `dataset`'s `split`, cached."""
    source = find_dataset(dataset, data_dir)
    data = source.open(split)
    num = len(data) if num is None else num
    origin = hashlib.sha256(f"{source.name}:{source.tfds_data_dir}".encode()).hexdigest()[:8]
    path = (cache_dir() / "reference" / f"{dataset}-{origin}" /
            f"{split}-{network.name}-n{num}.npz")
    description = {"dataset": dataset, "split": split, "num": num, "features": network.name,
                   "data": source.description}
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            labels = cached["labels"] if "labels" in cached.files else None
            return Reference(cached["features"], cached["logits"], labels, description)
    log(f"reference: {network.name} features of {num} {split} images of {dataset} (cached in "
        f"{path.parent})")
    images, labels = split_images(data, num)
    features, logits = network(images)
    mean, cov = feature_statistics(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if labels is None else {"labels": labels}
    with atomic_write(path) as file:
        np.savez(file, features=features, logits=logits, mean=mean, cov=cov, **extra)
    return Reference(features, logits, labels, description)

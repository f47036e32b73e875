"""Pluggable feature networks: uint8 images in, `(features, logits)` out, named for caching.

- `classifier_network(dataset)`: jgan's own 28x28 classifier trained on `dataset` (shipped for
  MNIST and Fashion-MNIST); 128 penultimate features, 10 logits.
- `inception_network(weights)`: InceptionV3 as in the TF FID network (`jgan.metrics.inception`);
  2048 pool features, 1008 logits. Its weights come from a file the user gives.

A network's `name` holds a hash of its weights, so cached reference statistics of one set of
weights are never used with another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jgan.errors import UserError

FEATURE_NETWORKS = ("classifier", "inception")
INCEPTION_WEIGHTS_ENV = "JGAN_INCEPTION_WEIGHTS"


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
    name: str  # e.g. "classifier-mnist-1a2b3c4d": keys cached reference statistics
    apply: Callable  # jitted: uint8 [B, H, W, C] -> (features [B, D], logits [B, K])
    image_shape: tuple[int, int, int] | None  # None: any size (the network resizes)
    batch_size: int = 500

    def __call__(self, images) -> tuple[np.ndarray, np.ndarray]:
        """float32 `(features [N, D], logits [N, K])` of uint8 images `[N, H, W, C]`."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise UserError(f"{self.name} takes uint8 images [N, H, W, C], got {images.dtype} "
                            f"{images.shape}: convert with jgan.images.to_uint8")
        if self.image_shape is not None and images.shape[1:] != self.image_shape:
            raise UserError(f"{self.name} takes {self.image_shape} images, got "
                            f"{images.shape[1:]}: use --features inception for other sizes")
        outputs = [jax.device_get(self.apply(images[start:start + self.batch_size]))
                   for start in range(0, len(images), self.batch_size)]
        return tuple(np.concatenate([np.asarray(out[i], np.float32) for out in outputs])
                     for i in range(2))


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def classifier_network(dataset: str) -> FeatureNetwork:
    from jgan.metrics import classifier

    params, _ = classifier.shipped_weights(dataset)
    module = classifier.DigitClassifier()
    apply = jax.jit(lambda images: module.apply({"params": params},
                                                classifier.uint8_to_input(images)))
    return FeatureNetwork(f"classifier-{dataset}-{file_digest(classifier.weights_path(dataset))}",
                          apply, classifier.IMAGE_SHAPE)


def inception_network(weights=None) -> FeatureNetwork:
    from jgan.metrics import inception

    weights = weights or os.environ.get(INCEPTION_WEIGHTS_ENV)
    if not weights:
        raise UserError("InceptionV3 needs the FID network's weights, which jgan does not ship: "
                        f"pass --inception-weights PATH (or set {INCEPTION_WEIGHTS_ENV}) to "
                        "pytorch-fid's pt_inception-2015-12-05-6726825d.pth or its .npz "
                        "conversion")
    variables = inception.load_variables(weights)
    module = inception.FIDInceptionV3()
    apply = jax.jit(lambda images: module.apply(variables, inception.preprocess(images)))
    return FeatureNetwork(f"inception-{file_digest(weights)}", apply, None, batch_size=100)


def feature_network(kind: str, *, dataset: str, inception_weights=None) -> FeatureNetwork:
    """`kind` "classifier" (the one trained on `dataset`) or "inception"."""
    if kind == "classifier":
        return classifier_network(dataset)
    if kind == "inception":
        return inception_network(inception_weights)
    raise UserError(f"unknown feature network {kind!r}: use one of {', '.join(FEATURE_NETWORKS)}")

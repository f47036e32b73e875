"""Improved precision and recall (Kynkaanniemi et al. 2019) on features learnt from the real set.

Kynkaanniemi et al. 2019 ("Improved precision and recall metric for assessing generative
models", Eq. 1-2): the real manifold is the union of balls around each real feature vector with
radius its distance to its k-th nearest other real one (k = 3); precision is the share of fakes
inside it, recall the share of reals inside the fake manifold built the same way. Mode collapse
shows as high precision and low recall: the fakes are realistic but cover few real images.

The metric itself is `jgan.metrics.distances.precision_recall` (float64 numpy, distance blocks of
2048 rows); this module names its result and supplies a feature network for image folders that
no shipped classifier was trained on: `fit_features`, the single-layer k-means network of Coates,
Lee & Ng 2011 that `jgan.metrics.domain_classifier` uses, fitted without labels on the real
images alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jgan.errors import UserError
from jgan.metrics import distances
from jgan.metrics.domain_classifier import (_check_images, encode, fit_patch_encoder,
                                            to_input)


def precision_recall_scores(real_features, fake_features, *, k: int = 3) -> dict:
    """`{"precision", "recall"}` (floats in [0, 1]) of features `[N_real, D]` and `[N_fake, D]`:
    the share of fakes within some real's k-NN radius, and of reals within some fake's. A point
    on a ball's boundary is inside; each set needs more than `k` rows."""
    for name, features in (("real", real_features), ("fake", fake_features)):
        if len(features) <= k:
            raise ValueError(f"precision_recall_scores with k={k} needs more than {k} {name} "
                             f"rows, got {len(features)}")
    precision, recall = distances.precision_recall(real_features, fake_features, k=k)
    return {"precision": precision, "recall": recall}


@dataclasses.dataclass(frozen=True)
class PatchFeatures:
    """A fitted k-means patch encoder: call it on uint8 images `[N, H, W, 1 or 3]` of any size
    for float32 features `[N, width]`, width = 4 x centroids."""

    params: dict  # patch_mean [P], whitening [P, P], centroids [K, P]; P = patch^2 * 3
    size: int

    @property
    def width(self) -> int:
        return 4 * len(self.params["centroids"])

    def __call__(self, images) -> np.ndarray:
        images = _check_images(images, "the images to encode")
        return encode(to_input(images, self.size), self.params).astype(np.float32)


def fit_features(real_images, *, seed: int = 0, size: int = 32, patch: int = 5,
                 centroids: int = 100, samples: int = 20000) -> PatchFeatures:
    """An encoder learnt, without labels, from uint8 `real_images` `[N, H, W, 1 or 3]` only.

    Coates, Lee & Ng 2011 (Sec. 3): the images are resized to `size` x `size` (grey ones repeated
    to three channels, as `domain_classifier` does: the whitening's epsilon keeps the two
    redundant channels' null directions harmless), `samples` random `patch` x `patch` patches are
    ZCA-whitened and clustered by k-means into `centroids` centroids, and an image's feature is
    the triangle code max(0, mean_k d_k - d_j) of each of its patches, averaged over each quadrant:
    `4 * centroids` numbers. The codes are left unstandardised, so a rarely active centroid does
    not get the weight of a common one in the k-NN distances. Everything random is drawn by NumPy
    from `seed`: the same images and seed give the same encoder, bit for bit on one machine.

    Limits: these are low-level statistics (local contrast, edges and strokes at one scale, and
    where in the image they occur) learnt from this real set, not a semantic network such as
    Inception or VGG-16 (which Kynkaanniemi et al. use). Two images with the same strokes in
    another arrangement can be close here; precision and recall measured in this space are
    comparable only with other numbers from the same encoder (same real set, seed and settings),
    never with published ones. The default 100 centroids (400 features) suit a few hundred to a
    few thousand images; with far fewer real images than features, k-NN radii in 400 dimensions
    grow and precision and recall both drift towards 1.
    """
    real_images = _check_images(real_images, "real_images")
    if not (1 <= patch <= size and centroids >= 1 and samples >= centroids):
        raise UserError(f"fit_features size={size}, patch={patch}, centroids={centroids}, "
                        f"samples={samples}: use 1 <= patch <= size and samples >= centroids >= 1")
    params = fit_patch_encoder(to_input(real_images, size), patch=patch, centroids=centroids,
                               samples=samples, seed=seed, what="fit_features")
    return PatchFeatures(params, size)


def image_features(images, real_images, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`(features of images [N, D], features of real_images [N_real, D])`, both by the encoder
    `fit_features(real_images, seed=seed)`: pass them to `precision_recall_scores` as
    `precision_recall_scores(real, fake)`."""
    encoder = fit_features(real_images, seed=seed)
    return encoder(images), encoder(real_images)

"""A classifier that tells domain A from domain B, for CycleGAN's translation success rate.

Zhu et al. 2017 (Sec. 5.1.1) judge a translation A -> B by whether it passes for a real B. Where
no human study is at hand, a classifier trained on the real training images of both domains
stands in: the share of fake_B (from held-out A images) that it calls B is the success rate, and
its accuracy on real held-out A and B says how far to trust that share.

The classifier is the single-layer k-means feature network of Coates, Lee & Ng 2011 ("An
analysis of single-layer networks in unsupervised feature learning") under a logistic
regression: images are resized to `size` x `size` (grey ones repeated to three channels); every
`patch` x `patch` x 3 patch is ZCA-whitened (their Eq. 1-2) and coded by the "triangle" k-means
activation max(0, mean_k d_k - d_j) against `centroids` centroids learnt by k-means on patches of
the training images (their Sec. 3.2); the codes are averaged over the four quadrants of the image
and, standardised, fed to a class-balanced logistic regression with an L2 penalty `l2`, fitted
by Newton's method. On a few hundred images this beats a small convnet trained from scratch: the
cue (snow, bare rock, green or grey foliage) is in the colour and texture of small patches.

Measured on summer2winter_yosemite: its test split (the only one on disk) opened as
`jgan.tools.evaluate_translation` opens it, `open_data(DataConfig(dataset=
"summer2winter_yosemite", data_dir="../shared/datasets", split="test", image_size=128,
holdout=40))`; fitted on the 269 A and 198 B training images, scored on the 40 + 40 `held_out`
ones and by 5-fold cross-validation on the training images (fold = row % 5 within each domain);
times on a loaded 2-core CPU:

    classifier                                          held-out A  held-out B  CV A   CV B
    VERSION 1: 4 convs, 64 px, 1500 Adam steps (38 s)      0.675       0.525       -      -
    the same, GroupNorm, 32-128 wide, avg+max pool,
      AdamW, label smoothing, flip at test (~190 s)         0.800       0.600       -      -
    colour statistics, HSV histograms, snow fraction,
      3x3 colour grid, edges + logistic regression *        0.725       0.700     0.684  0.753
    k-means, 32 px, 6x6 patches, 100 centroids (11 s)       0.850       0.600     0.677  0.737
    k-means, 32 px, 5x5 patches, 200 centroids (9 s)        0.825       0.625     0.732  0.753
    the defaults: 32 px, 5x5 patches, 400 centroids,
      l2 = 1 (14 s)                                        0.850       0.625     0.743  0.747

(* its folds: row % 5 of A and B stacked.) About three real images in four are classified
right: success rates a few points apart are within the classifier's noise.

Everything random (the patches k-means sees, its initial centroids) is drawn by NumPy from
`seed`: same arrays, settings and seed, the same parameters, bit for bit on one machine. The
fitted parameters are cached under `cache_dir()/domain_classifiers/<sha256 of the arrays and
settings>.msgpack`, so evaluations of any number of runs on the same data share one classifier.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from jgan.data.sources import cache_dir
from jgan.errors import UserError

VERSION = 2  # bump when the features, their input or the fitting changes what a cache holds
DOMAINS = ("A", "B")
CHUNK = 128  # images resized per call
ENCODE_CHUNK = 32  # images coded at once: their patch-to-centroid distances stay a few MB
KMEANS_ITERATIONS = 10
WHITENING_EPSILON = 1e-3  # added to the patch covariance's eigenvalues (Coates et al. use 0.01
#                           on [0, 255] patches normalised per patch; these are raw [0, 1] ones)


def _check_images(images, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(f"{what} must be uint8 images [N, H, W, 1 or 3], not {images.dtype} "
                        f"{images.shape}: pass images as the data holds them (jgan.images.to_uint8 "
                        "turns [-1, 1] floats into them)")
    if len(images) == 0:
        raise UserError(f"{what} holds no image: pass at least one")
    return images


@functools.partial(jax.jit, static_argnames="size")
def _to_input_chunk(images: jax.Array, size: int) -> jax.Array:
    images = jnp.broadcast_to(images, (*images.shape[:3], 3)).astype(jnp.float32)
    resized = jax.image.resize(images, (images.shape[0], size, size, 3), "linear", antialias=True)
    return resized / 255.0


def to_input(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 `[N, H, W, C]` -> float32 `[N, size, size, 3]` in [0, 1], `CHUNK` at a time (the last
    chunk padded, so each image size compiles once)."""
    chunks = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], CHUNK - len(chunk), 0)])
        chunks.append(np.asarray(_to_input_chunk(jnp.asarray(padded), size))[:len(chunk)])
    return np.concatenate(chunks)


def patches(inputs: np.ndarray, patch: int) -> np.ndarray:
    """`[N, S, S, 3]` -> every `patch` x `patch` window, flattened: `[N, S', S', patch^2 * 3]`
    with S' = S - patch + 1."""
    windows = np.lib.stride_tricks.sliding_window_view(inputs, (patch, patch), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(*windows.shape[:3], -1)


def _squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.maximum((points ** 2).sum(1)[:, None] - 2 * points @ centroids.T
                      + (centroids ** 2).sum(1)[None], 0.0)


def encode(inputs: np.ndarray, params: dict) -> np.ndarray:
    """`[N, S, S, 3]` inputs -> `[N, 4 * K]` features: each patch's triangle code against the K
    centroids (Coates et al. 2011, Sec. 3.2), averaged over each quadrant of the image."""
    patch = int(round(np.sqrt(params["centroids"].shape[1] // 3)))
    features = []
    for start in range(0, len(inputs), ENCODE_CHUNK):
        windows = patches(inputs[start:start + ENCODE_CHUNK], patch)
        n, h, w, dim = windows.shape
        white = (windows.reshape(-1, dim) - params["patch_mean"]) @ params["whitening"]
        distances = np.sqrt(_squared_distances(white, params["centroids"]))
        codes = np.maximum(distances.mean(1, keepdims=True) - distances, 0.0)
        codes = codes.reshape(n, h, w, -1)
        top, left = (h + 1) // 2, (w + 1) // 2  # a 1-wide map: both halves see its one row
        features.append(np.concatenate(
            [codes[:, rows, cols].mean((1, 2)) for rows in (slice(0, top), slice(h // 2, h))
             for cols in (slice(0, left), slice(w // 2, w))], 1))
    return np.concatenate(features)


@dataclasses.dataclass(frozen=True)
class DomainClassifier:
    """A fitted k-means feature classifier; `cache` is where its parameters live, `trained` is
    False when they were read from there rather than fitted by this call."""

    params: dict
    size: int
    cache: Path
    trained: bool

    def logits(self, images) -> np.ndarray:
        """`[N]` logits of "domain B" for uint8 images `[N, H, W, C]` of any size."""
        images = _check_images(images, "the images to classify")
        features = encode(to_input(images, self.size), self.params)
        standard = (features - self.params["feature_mean"]) / self.params["feature_scale"]
        return (standard @ self.params["weights"] + self.params["bias"]).astype(np.float32)

    def prob_B(self, images) -> np.ndarray:
        """`[N]` probability that each uint8 image `[N, H, W, C]` comes from domain B."""
        return 1.0 / (1.0 + np.exp(-self.logits(images)))


def domain_accuracy(classifier: DomainClassifier, images, domain: str) -> float:
    """The share of uint8 `images` that `classifier` assigns to `domain` ("A" or "B")."""
    if domain not in DOMAINS:
        raise UserError(f"domain {domain!r} is not A or B: pass domain='A' or domain='B'")
    called_b = classifier.logits(images) > 0.0
    return float(np.mean(called_b if domain == "B" else ~called_b))


def _cache_path(images_A, images_B, settings: dict) -> Path:
    digest = hashlib.sha256(json.dumps({"version": VERSION, "jax": jax.__version__,
                                        "numpy": np.__version__, **settings},
                                       sort_keys=True).encode())
    for images in (images_A, images_B):
        digest.update(f"{images.shape}{images.dtype}".encode())
        digest.update(np.ascontiguousarray(images).data)
    return cache_dir() / "domain_classifiers" / f"{digest.hexdigest()}.msgpack"


def _write_atomically(path: Path, payload: bytes) -> None:
    """A temporary file beside `path`, then a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                     delete=False) as tmp:
        tmp.write(payload)
    os.replace(tmp.name, path)


def kmeans(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`[count, D]` centroids of `[P, D]` points: Lloyd's iterations from `count` distinct points
    drawn by `rng`; a centroid left without points keeps its place."""
    centroids = points[rng.choice(len(points), count, replace=False)]
    for _ in range(KMEANS_ITERATIONS):
        nearest = _squared_distances(points, centroids).argmin(1)
        members = (nearest[None] == np.arange(count)[:, None]).astype(points.dtype)
        sums = members @ points
        counts = members.sum(1, keepdims=True)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    return centroids


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float,
                 iterations: int = 50) -> tuple[np.ndarray, float]:
    """`(weights [D], bias)` minimising the class-balanced mean cross-entropy (each class weighs
    half) plus `l2 / 2 * |weights|^2` of standardised `[N, D]` features and 0/1 `labels`, by
    Newton's method (convex: it converges from zero in a few steps)."""
    design = np.concatenate([features, np.ones((len(features), 1))], 1)
    balance = np.where(labels == 1, 0.5 / labels.mean(), 0.5 / (1 - labels.mean()))
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (balance * (p - labels)) / len(labels) + penalty * theta
        hessian = ((design * (balance * p * (1 - p))[:, None]).T @ design / len(labels)
                   + np.diag(penalty + 1e-9))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])


def fit_patch_encoder(inputs, *, patch: int, centroids: int, samples: int, seed: int,
                      what: str) -> dict:
    """Coates et al. 2011's unsupervised encoder of `to_input` images: `samples` random patches,
    ZCA-whitened, clustered into `centroids` by k-means; `{"patch_mean", "whitening",
    "centroids"}` for `encode`. All randomness is NumPy's from `seed`."""
    all_patches = patches(inputs, patch).reshape(-1, patch * patch * 3)
    if len(all_patches) < centroids:
        raise UserError(f"{what}: {len(all_patches)} patches cannot make {centroids} "
                        "centroids: pass fewer centroids or more images")
    rng = np.random.default_rng(seed)
    sample = all_patches[np.sort(rng.choice(len(all_patches), min(samples, len(all_patches)),
                                            replace=False))].astype(np.float64)
    patch_mean = sample.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(sample - patch_mean, rowvar=False))
    whitening = (eigenvectors / np.sqrt(np.maximum(eigenvalues, 0) + WHITENING_EPSILON)
                 ) @ eigenvectors.T
    params = {"patch_mean": patch_mean.astype(np.float32),
              "whitening": whitening.astype(np.float32)}
    params["centroids"] = kmeans(((sample - patch_mean) @ whitening).astype(np.float32),
                                 centroids, rng)
    return params


def train_domain_classifier(images_A, images_B, *, seed: int = 0, size: int = 32,
                            patch: int = 5, centroids: int = 400, l2: float = 1.0,
                            samples: int = 40000, log=print) -> DomainClassifier:
    """A `DomainClassifier` of uint8 images `[N_A, H, W, C]` (domain A) and `[N_B, H', W', C']`
    (domain B): `centroids` k-means centroids of `samples` random `patch` x `patch` patches of
    the images resized to `size`, and a logistic regression (penalty `l2`) on their quadrant-
    pooled codes; or read from the cache when these arrays and settings fitted one before."""
    images_A = _check_images(images_A, "images_A")
    images_B = _check_images(images_B, "images_B")
    if not (1 <= patch <= size and centroids >= 1 and l2 > 0 and samples >= 1):
        raise UserError(f"domain classifier size={size}, patch={patch}, centroids={centroids}, "
                        f"l2={l2}, samples={samples}: use 1 <= patch <= size, centroids >= 1, "
                        "l2 > 0 and samples >= 1")
    settings = {"seed": seed, "size": size, "patch": patch, "centroids": centroids, "l2": l2,
                "samples": samples}
    cache = _cache_path(images_A, images_B, settings)
    if cache.is_file():
        log(f"domain classifier read from {cache}")
        params = flax.serialization.msgpack_restore(cache.read_bytes())
        return DomainClassifier(params, size, cache, trained=False)
    start = time.perf_counter()
    inputs = np.concatenate([to_input(images_A, size), to_input(images_B, size)])
    labels = np.concatenate([np.zeros(len(images_A)), np.ones(len(images_B))])
    params = fit_patch_encoder(inputs, patch=patch, centroids=centroids, samples=samples,
                               seed=seed, what="domain classifier")
    features = encode(inputs, params).astype(np.float64)
    params["feature_mean"] = features.mean(0)
    params["feature_scale"] = features.std(0) + 1e-6
    weights, bias = fit_logistic((features - params["feature_mean"]) / params["feature_scale"],
                                 labels, l2)
    params.update(weights=weights, bias=np.array(bias))
    _write_atomically(cache, flax.serialization.msgpack_serialize(params))
    log(f"domain classifier trained on {len(images_A)} A and {len(images_B)} B images "
        f"({centroids} k-means centroids of {patch}x{patch} patches at {size}x{size}, "
        f"{time.perf_counter() - start:.0f} s), cached in {cache}")
    return DomainClassifier(params, size, cache, trained=True)

"""Sample-quality metrics on feature arrays, as GAN papers report them.

Every function takes features `[N, D]` (numpy or JAX arrays) and works in float64 numpy, in
chunks, so 50k samples of 2048 features fit in memory:
- FID (Heusel et al. 2017, Eq. 6): |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
- Intra-class FID (Miyato & Koyama 2018, Sec. 5): that FID within each class, `class_fids`.
- KID (Binkowski et al. 2018, Eq. 3): the unbiased MMD^2 with the kernel (x.y / D + 1)^3,
  averaged over random subsets, with its standard deviation.
- Inception Score (Salimans et al. 2016, Sec. 4): exp E_x KL(p(y|x) || p(y)), over splits.
- Precision and recall (Kynkaanniemi et al. 2019, Eq. 1-2): the share of one set inside the
  other's k-NN balls.
- Density and coverage (Naeem et al. 2020, Eq. 3-4).
"""

from __future__ import annotations

import numpy as np

CHUNK = 2048  # rows of a pairwise-distance block: 2048 x 50k float64 is 800 MB at most


def _as_float64(features) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    return features


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[D]` and covariance `[D, D]` (unbiased, as numpy.cov) of features `[N, D]`."""
    features = _as_float64(features)
    if len(features) < 2:
        raise ValueError("feature statistics need at least 2 samples")
    mean = features.mean(axis=0)
    centered_sum = np.zeros((features.shape[1],) * 2)
    for start in range(0, len(features), CHUNK):
        block = features[start:start + CHUNK] - mean
        centered_sum += block.T @ block
    return mean, centered_sum / (len(features) - 1)


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """FID between two Gaussians. Tr((S_a S_b)^(1/2)) is the sum of the square roots of the
    eigenvalues of S_a S_b, which are real and non-negative for covariance matrices (rounding
    can leave tiny negative or imaginary parts, dropped here)."""
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    eigenvalues = np.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def fid(features_a, features_b) -> float:
    """FID between two feature sets `[N, D]`, `[M, D]`."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def class_fids(real_features, real_labels, fake_features, fake_labels) -> dict[int, float]:
    """FID of each class's fakes against that class's reals, for every class in `fake_labels`.

    Args:
      real_features, real_labels: `[N, D]` and `[N]`.
      fake_features, fake_labels: `[M, D]` and `[M]`; each class needs 2 rows of each set.
    """
    real, fake = _as_float64(real_features), _as_float64(fake_features)
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    if real_labels.shape != (len(real),) or fake_labels.shape != (len(fake),):
        raise ValueError(f"labels must be [N] beside features [N, D], got {real_labels.shape} "
                         f"for {real.shape} and {fake_labels.shape} for {fake.shape}")
    return {int(label): fid(real[real_labels == label], fake[fake_labels == label])
            for label in np.unique(fake_labels)}


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(features_a, features_b, *, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation over `num_subsets` random subsets of the unbiased MMD^2.

    Subsets of `min(subset_size, N, M)` rows are drawn without replacement from each set.
    """
    a, b = _as_float64(features_a), _as_float64(features_b)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), \
            _polynomial_kernel(x, y)
        off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy))
        estimates.append(off_diagonal / (size * (size - 1)) - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probabilities, *, num_splits: int = 10) -> tuple[float, float]:
    """IS: mean and standard deviation over `num_splits` splits of exp E KL(p(y|x) || p(y)).

    Args:
      probabilities: class probabilities `[N, K]` (softmax outputs) of the generated images.
    """
    probabilities = _as_float64(probabilities)
    scores = []
    for part in np.array_split(probabilities, num_splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _pairwise_distances(x, y) -> np.ndarray:
    squared = (np.sum(x ** 2, 1)[:, None] + np.sum(y ** 2, 1)[None, :] - 2 * x @ y.T)
    return np.sqrt(np.clip(squared, 0.0, None))


def _knn_radii(features, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    radii = np.empty(len(features))
    for start in range(0, len(features), CHUNK):
        block = _pairwise_distances(features[start:start + CHUNK], features)
        # Index k, not k - 1: the 0-th nearest is the row itself, at distance 0.
        radii[start:start + CHUNK] = np.partition(block, k, axis=1)[:, k]
    return radii


def _inside_counts(queries, centers, radii) -> np.ndarray:
    """For each query row, how many of the balls (centers, radii) contain it."""
    counts = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), CHUNK):
        block = _pairwise_distances(queries[start:start + CHUNK], centers)
        counts[start:start + CHUNK] = np.sum(block <= radii[None, :], axis=1)
    return counts


def precision_recall(real_features, fake_features, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall: the share of fakes inside the real k-NN manifold, and of
    reals inside the fake one."""
    real, fake = _as_float64(real_features), _as_float64(fake_features)
    precision = np.mean(_inside_counts(fake, real, _knn_radii(real, k)) > 0)
    recall = np.mean(_inside_counts(real, fake, _knn_radii(fake, k)) > 0)
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, *, k: int = 5) -> tuple[float, float]:
    """Density: (1 / k) x the mean number of real k-NN balls holding a fake. Coverage: the share
    of real balls holding at least one fake."""
    real, fake = _as_float64(real_features), _as_float64(fake_features)
    radii = _knn_radii(real, k)
    density = _inside_counts(fake, real, radii).mean() / k
    covered = np.zeros(len(real), bool)
    for start in range(0, len(real), CHUNK):
        nearest_fake = _pairwise_distances(real[start:start + CHUNK], fake).min(axis=1)
        covered[start:start + CHUNK] = nearest_fake <= radii[start:start + CHUNK]
    return float(density), float(covered.mean())

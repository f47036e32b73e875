"""Metrics against direct numpy/scipy references on random features, and on known cases."""

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from jgan import metrics
from jgan.errors import UserError
from jgan.metrics import distances
from jgan.metrics.probes import linear_probe_accuracy, nearest_neighbour_accuracy

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(300, 16))
FAKE = 0.8 * RNG.normal(size=(250, 16)) + 0.3


def _reference_fid(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)


def test_fid_matches_scipy_sqrtm():
    np.testing.assert_allclose(metrics.fid(REAL, FAKE), _reference_fid(REAL, FAKE), rtol=1e-6)


def test_fid_known_cases():
    assert abs(metrics.fid(REAL, REAL)) < 1e-8
    shift = np.arange(16) / 10.0
    np.testing.assert_allclose(metrics.fid(REAL, REAL + shift), np.sum(shift ** 2), rtol=1e-6)


def test_class_fids_are_the_fids_within_each_class():
    labels = np.arange(300) % 3
    shift = np.arange(16) / 10.0
    # Class 2's fakes are its reals shifted, so its FID is |shift|^2; the others' FID is 0.
    fake = np.where(labels[:, None] == 2, REAL + shift, REAL)
    got = distances.class_fids(REAL, labels, fake, labels)
    assert list(got) == [0, 1, 2]
    np.testing.assert_allclose([got[0], got[1]], 0.0, atol=1e-8)
    np.testing.assert_allclose(got[2], np.sum(shift ** 2), rtol=1e-6)
    # Only the classes generated are measured.
    assert list(distances.class_fids(REAL, labels, FAKE[:20], np.full(20, 1))) == [1]
    with pytest.raises(ValueError, match=r"labels must be \[N\]"):
        distances.class_fids(REAL, labels[:10], FAKE, np.zeros(len(FAKE)))


def test_statistics_in_chunks_equal_numpy(monkeypatch):
    monkeypatch.setattr(distances, "CHUNK", 7)
    mean, cov = metrics.feature_statistics(REAL)
    np.testing.assert_allclose(mean, REAL.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(REAL, rowvar=False), rtol=1e-10, atol=1e-12)


def _reference_mmd(x, y):
    d = x.shape[1]
    kernel = lambda p, q: (p @ q.T / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    return ((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * kernel(x, y).mean())


def test_kid_on_whole_sets_matches_the_direct_mmd():
    mean, std = metrics.kid(REAL[:250], FAKE, num_subsets=3, subset_size=250)
    np.testing.assert_allclose(mean, _reference_mmd(REAL[:250], FAKE), rtol=1e-10)
    assert std < 1e-10  # every subset is the whole set, reordered


def test_kid_is_near_zero_for_one_distribution_and_not_for_two():
    other = RNG.normal(size=(300, 16))
    same, _ = metrics.kid(REAL, other, num_subsets=20, subset_size=100)
    different, spread = metrics.kid(REAL, FAKE, num_subsets=20, subset_size=100)
    assert abs(same) < different / 5 and spread > 0


def test_inception_score_known_cases():
    assert metrics.inception_score(np.full((100, 10), 0.1), num_splits=2)[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(100) % 10]
    mean, std = metrics.inception_score(confident, num_splits=5)
    assert mean == pytest.approx(10.0, rel=1e-6) and std < 1e-6


def _reference_pr(real, fake, k):
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    precision = np.mean([(cdist(f[None], real)[0] <= real_radii).any() for f in fake])
    recall = np.mean([(cdist(r[None], fake)[0] <= fake_radii).any() for r in real])
    return precision, recall


def test_precision_recall_match_brute_force(monkeypatch):
    monkeypatch.setattr(distances, "CHUNK", 64)
    got = metrics.precision_recall(REAL, FAKE, k=3)
    np.testing.assert_allclose(got, _reference_pr(REAL, FAKE, 3), atol=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1
    assert metrics.precision_recall(REAL, REAL) == (1.0, 1.0)
    assert metrics.precision_recall(REAL, REAL + 100.0) == (0.0, 0.0)


def test_density_coverage_match_brute_force():
    k = 5
    radii = np.sort(cdist(REAL, REAL), axis=1)[:, k]
    distances_fake = cdist(FAKE, REAL)
    density = (distances_fake <= radii).sum() / (k * len(FAKE))
    coverage = np.mean(distances_fake.min(axis=0) <= radii)
    np.testing.assert_allclose(metrics.density_coverage(REAL, FAKE, k=k), (density, coverage),
                               atol=1e-12)
    assert metrics.density_coverage(REAL, REAL, k=k)[1] == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"must be \[N, D\]"):
        metrics.fid(np.zeros(5), np.zeros(5))


@pytest.mark.slow
def test_nearest_neighbour_and_linear_probe_on_hand_made_features():
    train = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    train_labels = np.array([0, 1, 2])
    test = np.array([[1.0, 1.0], [9.0, 2.0], [4.0, 6.0], [6.0, 4.0]])
    # Nearest rows: 0; 1; (4, 6) is 6.4 from row 0, 7.2 from row 1, 5.7 from row 2; (6, 4): row 1.
    assert nearest_neighbour_accuracy(train, train_labels, test, [0, 1, 2, 1]) == 1.0
    assert nearest_neighbour_accuracy(train, train_labels, test, [0, 1, 0, 0]) == 0.5
    # Two separable clusters: the probe gets them all; with labels that no line can split (XOR),
    # it cannot.
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(-2, 0.5, (50, 3)), rng.normal(2, 0.5, (50, 3))])
    labels = np.repeat([0, 1], 50)
    assert linear_probe_accuracy(points, labels, points, labels) == 1.0
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert linear_probe_accuracy(corners, [0, 0, 1, 1], corners, [0, 0, 1, 1]) < 1.0
    with pytest.raises(UserError, match="one label per row"):
        nearest_neighbour_accuracy(train, train_labels[:2], test, [0, 1, 2, 1])

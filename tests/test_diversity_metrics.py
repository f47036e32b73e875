"""MS-SSIM, nearest neighbours and k-NN precision/recall on known cases, computed by hand."""

import dm_pix
import jax
import numpy as np
import pytest

from jgan.metrics import diversity
from jgan.metrics.patch_features import fit_features, image_features, precision_recall_scores

RNG = np.random.default_rng(0)


def _smooth_images(count, side, seed=0):
    """uint8 `[count, side, side, 1]` random blobs: structure at every scale, unlike pure noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, side // 8, side // 8, 1))
    smooth = np.asarray(jax.image.resize(coarse, (count, side, side, 1), "cubic"))
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def test_scales_rule():
    assert [diversity.num_scales(s, s) for s in (10, 11, 21, 22, 32, 64, 175, 176, 512)] == [
        0, 1, 1, 2, 2, 3, 4, 5, 5]
    assert diversity.num_scales(64, 32) == 2  # the shorter side decides
    np.testing.assert_allclose(diversity.scale_weights(3),
                               np.array([0.0448, 0.2856, 0.3001]) / 0.6305, rtol=1e-6)
    np.testing.assert_allclose(diversity.scale_weights(5).sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("side", [64, 32])
def test_ms_ssim_is_one_for_the_same_image_and_falls_with_noise(side):
    clean = _smooth_images(3, side).astype(np.float32)
    np.testing.assert_allclose(diversity.ms_ssim(clean, clean), 1.0, atol=1e-5)
    noise = RNG.normal(size=clean.shape)
    scores = [np.asarray(diversity.ms_ssim(clean, np.clip(clean + sigma * noise, 0, 255)))
              for sigma in (4.0, 16.0, 64.0)]
    assert np.all(scores[0] < 0.999) and np.all(scores[-1] > 0.0)
    assert np.all(scores[0] > scores[1]) and np.all(scores[1] > scores[2])
    uint8_copy = np.clip(clean + 16.0 * noise, 0, 255).astype(np.uint8)
    np.testing.assert_allclose(diversity.ms_ssim(clean.astype(np.uint8), uint8_copy),
                               diversity.ms_ssim(uint8_copy, clean.astype(np.uint8)), rtol=1e-6)


def test_single_scale_equals_dm_pix_ssim():
    """At 16x16 there is one scale: MS-SSIM is SSIM (with dm_pix's own convolution filter)."""
    a = RNG.uniform(0, 255, (4, 16, 16, 1)).astype(np.float32)
    b = np.clip(a + RNG.normal(0, 30, a.shape), 0, 255).astype(np.float32)
    want = np.maximum(dm_pix.ssim(a, b, max_val=255.0), 0.0)
    np.testing.assert_allclose(diversity.ms_ssim(a, b), want, rtol=1e-5, atol=1e-6)


def test_luminance_counts_only_at_the_coarsest_scale():
    """b = a + 40 keeps every contrast-structure term at 1 and lowers only luminance; at 32x32
    (two scales) MS-SSIM is then SSIM of the pooled images to the power w2 / (w1 + w2)."""
    a = _smooth_images(2, 32).astype(np.float32) * 0.5
    b = a + 40.0
    pooled = [x.reshape(2, 16, 2, 16, 2, 1).mean((2, 4)) for x in (a, b)]
    coarse = np.asarray(dm_pix.ssim(*pooled, max_val=255.0))
    want = coarse ** (0.2856 / (0.0448 + 0.2856))
    assert np.all(want < 0.99)
    np.testing.assert_allclose(diversity.ms_ssim(a, b), want, rtol=1e-4)


def test_pair_indices_follow_triu_order():
    for count in (2, 7, 50):
        total = count * (count - 1) // 2
        rows, cols = diversity.pair_indices(np.arange(total), count)
        want_rows, want_cols = np.triu_indices(count, 1)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(cols, want_cols)


def test_mean_pairwise_ms_ssim_of_copies_is_one_and_of_noise_near_zero(monkeypatch):
    monkeypatch.setattr(diversity, "PAIR_BATCH", 64)  # 190 pairs: several batches, one padded
    copies = np.repeat(_smooth_images(1, 32), 6, 0)
    np.testing.assert_allclose(diversity.mean_pairwise_ms_ssim(copies), 1.0, atol=1e-5)
    noise = np.random.default_rng(5).integers(0, 256, (20, 64, 64, 1), dtype=np.uint8)
    everything = diversity.mean_pairwise_ms_ssim(noise)
    # Independent noise shares no structure: its cs terms scatter around 0, negative ones
    # clipped to 0. Seeds 0-2 gave 0.022-0.029 (500 images: 0.027); a collapsed set scores ~1.
    assert 0.0 < everything < 0.05
    single = np.asarray(diversity.ms_ssim(noise[:1], noise[1:2]))[0]
    assert diversity.mean_pairwise_ms_ssim(noise[:2]) == pytest.approx(single, rel=1e-6)
    sampled = diversity.mean_pairwise_ms_ssim(noise, num_pairs=100, key=jax.random.key(1))
    assert sampled == diversity.mean_pairwise_ms_ssim(noise, num_pairs=100, key=jax.random.key(1))
    assert abs(sampled - everything) < 0.02


def test_nearest_neighbours_find_planted_copies():
    references = RNG.integers(0, 256, (300, 16, 16, 1), dtype=np.uint8)
    strangers = RNG.integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    queries = np.concatenate([references[[7, 299, 123]], strangers])
    indices, distances = diversity.nearest_neighbours(queries, references)
    np.testing.assert_array_equal(indices[:3], [7, 299, 123])
    np.testing.assert_array_equal(distances[:3], 0.0)
    brute = np.linalg.norm(strangers.reshape(3, 1, -1).astype(np.float64)
                           - references.reshape(1, 300, -1), axis=-1)
    np.testing.assert_array_equal(indices[3:], brute.argmin(1))
    np.testing.assert_allclose(distances[3:], brute.min(1), rtol=1e-6)


def test_neighbour_strip_puts_each_query_beside_its_neighbour():
    references = RNG.integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
    queries = RNG.integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    strip = diversity.neighbour_strip(queries, references, np.array([5, 0, 9]), pairs_per_row=2,
                                      padding=1)
    assert strip.shape == (2 * 5 + 1, 4 * 5 + 1, 1) and strip.dtype == np.uint8
    cell = lambda row, col: strip[1 + 5 * row:5 + 5 * row, 1 + 5 * col:5 + 5 * col]  # noqa: E731
    np.testing.assert_array_equal(cell(0, 0), queries[0])
    np.testing.assert_array_equal(cell(0, 1), references[5])
    np.testing.assert_array_equal(cell(0, 3), references[0])
    np.testing.assert_array_equal(cell(1, 0), queries[2])
    np.testing.assert_array_equal(cell(1, 1), references[9])


def test_precision_recall_by_hand():
    """k = 1 on a line. Real 0, 1, 3, 7: nearest-other distances 1, 1, 2, 4, so balls [-1, 1],
    [0, 2], [1, 5], [3, 11]. Fake 0.3, 1.5, 12, 12.5: radii 1.2, 1.2, 0.5, 0.5, so balls
    [-0.9, 1.5], [0.3, 2.7], [11.5, 12.5], [12, 13]. Fakes 0.3 and 1.5 are in a real ball, 12
    and 12.5 in none: precision 2/4. Reals 0 and 1 are in a fake ball, 3 and 7 in none: recall
    2/4."""
    real = np.array([[0.0], [1.0], [3.0], [7.0]])
    fake = np.array([[0.3], [1.5], [12.0], [12.5]])
    assert precision_recall_scores(real, fake, k=1) == {"precision": 0.5, "recall": 0.5}
    # k = 2: real radii 3, 2, 3, 6, balls [-3, 3], [-1, 3], [0, 6], [1, 13] hold every fake;
    # fake radii 11.7, 10.5, 10.5, 11, balls [-11.4, 12], [-9, 12], [1.5, 22.5], [1.5, 23.5]
    # hold every real.
    assert precision_recall_scores(real, fake, k=2) == {"precision": 1.0, "recall": 1.0}


def test_precision_recall_identical_sets_and_mode_collapse():
    real = RNG.normal(size=(200, 8))
    assert precision_recall_scores(real, real) == {"precision": 1.0, "recall": 1.0}
    collapsed = np.repeat(real[17:18], 100, 0)  # every fake on one real point
    result = precision_recall_scores(real, collapsed)
    # Every fake sits on a real point, inside its ball; the fake balls have radius 0 and hold
    # that one real point at most (at most: float rounding may put it a hair outside).
    assert result["precision"] == 1.0 and result["recall"] <= 1 / 200
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall_scores(real, collapsed[:3])


def test_patch_features_on_grey_images_are_fixed_width_and_deterministic():
    real = _smooth_images(40, 28, seed=1)
    encoder = fit_features(real, seed=0, centroids=16, samples=2000)
    features = encoder(real)
    assert features.shape == (40, 64) == (40, encoder.width) and features.dtype == np.float32
    assert np.all(np.isfinite(features)) and features.std(0).max() > 0
    again = fit_features(real, seed=0, centroids=16, samples=2000)
    # Like with like: the same 40 images. BLAS rounds a batch of 5 and one of 40 differently on
    # some processors (2.4e-7 seen), so a sub-batch is compared with a tolerance.
    np.testing.assert_array_equal(again(real), features)
    np.testing.assert_allclose(again(real[:5]), features[:5], rtol=1e-5, atol=1e-5)
    other_size = encoder(_smooth_images(3, 64, seed=2))  # any image size: resized first
    assert other_size.shape == (3, 64)
    other_seed = fit_features(real, seed=1, centroids=16, samples=2000)
    assert np.abs(other_seed(real[:5]) - features[:5]).max() > 1e-3


def test_patch_features_show_mode_collapse():
    """A generator that returns one real image (with faint noise) for every latent: precision
    stays high, recall falls to a few percent; a held-out set of the same blobs keeps both up."""
    real = _smooth_images(60, 32, seed=3)
    held_out = _smooth_images(60, 32, seed=4)
    one = np.repeat(real[:1].astype(np.float64), 60, 0)
    collapsed = np.clip(one + RNG.normal(0, 2, one.shape), 0, 255).astype(np.uint8)
    fake_features, real_features = image_features(np.concatenate([collapsed, held_out]), real)
    collapse = precision_recall_scores(real_features, fake_features[:60])
    healthy = precision_recall_scores(real_features, fake_features[60:])
    assert collapse["precision"] >= 0.9 and collapse["recall"] <= 0.1
    assert healthy["recall"] >= 0.5

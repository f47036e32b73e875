"""pix2pix's random jitter: pairs jittered alike, unpaired domains apart, flips, range, purity."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jgan.data.augment import jitter_size, random_jitter

# Every test jitters 16 examples of 16x16 (jittered at 18x18) with 3 and 2 channels: two
# compilations, one per value of `together`.
paired = jax.jit(functools.partial(random_jitter, together=True))
unpaired = jax.jit(functools.partial(random_jitter, together=False))
BATCH = 16


def _pair(a: np.ndarray) -> dict:
    """A with B = -A's first two channels, a relation that any shared crop and flip keep."""
    return {"image_A": jnp.asarray(a, jnp.float32), "image_B": jnp.asarray(-a[..., :2])}


def _signs() -> dict:
    """Pixels of +-1 at random: sharp edges, where the bicubic kernel overshoots most."""
    rng = np.random.default_rng(0)
    return _pair(rng.choice([-1.0, 1.0], size=(BATCH, 16, 16, 3)))


def _ramp() -> dict:
    """Every image rises from -1 on the left to 1 on the right, so a mirrored one falls."""
    ramp = np.broadcast_to(np.linspace(-1.0, 1.0, 16)[None, None, :, None], (BATCH, 16, 16, 3))
    return _pair(ramp)


def test_jitter_size_scales_286_over_256():
    assert jitter_size(256) == 286
    assert jitter_size(128) == 143
    assert jitter_size(16) == 18  # 17.875
    assert jitter_size(64) == 72  # 71.5, rounded up


def test_paired_entries_share_crop_and_flip_and_stay_in_range():
    images = _signs()
    out = paired(jax.random.key(0), images)
    assert out["image_A"].shape == (BATCH, 16, 16, 3) and out["image_A"].dtype == jnp.float32
    assert out["image_B"].shape == (BATCH, 16, 16, 2) and out["image_B"].dtype == jnp.float32
    np.testing.assert_allclose(out["image_B"], -out["image_A"][..., :2], atol=1e-6)
    # Bicubic resizing of these edges leaves [-1, 1]; the jitter clips back into it.
    resized = jax.image.resize(images["image_A"][0], (18, 18, 3), method="bicubic")
    assert float(jnp.max(jnp.abs(resized))) > 1.05
    for image in out.values():
        assert float(jnp.min(image)) == -1.0 and float(jnp.max(image)) == 1.0


def test_unpaired_entries_get_their_own_crops():
    images = _signs()
    out = unpaired(jax.random.key(0), images)
    mismatch = jnp.max(jnp.abs(out["image_B"] + out["image_A"][..., :2]), axis=(1, 2, 3))
    assert int(jnp.sum(mismatch > 0.5)) >= BATCH // 2, mismatch
    assert float(jnp.max(jnp.abs(out["image_B"]))) <= 1.0
    # Each entry's draw follows its name, not the order of the dict.
    reordered = unpaired(jax.random.key(0), {"image_B": images["image_B"],
                                             "image_A": images["image_A"]})
    assert all(jnp.array_equal(out[name], reordered[name]) for name in out)


def test_some_examples_are_mirrored_and_others_not():
    out = paired(jax.random.key(1), _ramp())
    rise = out["image_A"][:, 8, -1, 0] - out["image_A"][:, 8, 0, 0]  # right edge minus left
    assert int(jnp.sum(rise > 1.0)) >= 2 and int(jnp.sum(rise < -1.0)) >= 2, rise
    assert int(jnp.sum(jnp.abs(rise) > 1.0)) == BATCH
    # The crop's offset moves the left edge along the ramp: flips alone would give two values.
    assert len(np.unique(np.round(np.asarray(out["image_A"][:, 8, 0, 0]), 4))) >= 3
    np.testing.assert_allclose(out["image_B"], -out["image_A"][..., :2], atol=1e-6)


def test_jitter_is_deterministic_from_its_key():
    images = _signs()
    first, again = paired(jax.random.key(2), images), paired(jax.random.key(2), images)
    other = paired(jax.random.key(3), images)
    assert all(jnp.array_equal(first[name], again[name]) for name in first)
    assert not jnp.array_equal(first["image_A"], other["image_A"])

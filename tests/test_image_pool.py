"""The image pool: fills in order, then swaps with probability 1/2; pure in its key; resumable."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.train.image_pool import ImagePool, init_image_pool, query_image_pool

# Every test queries through this one jit, with batches of 3 or 1000 images of one pixel: two
# compilations in all.
query = jax.jit(query_image_pool)


def _ids(first: int, count: int) -> jax.Array:
    """[count, 1, 1, 1] images whose one pixel is a distinct id, so each can be traced."""
    return jnp.arange(first, first + count, dtype=jnp.float32).reshape(count, 1, 1, 1)


# A full pool holding the ids 1 to 4.
FULL = ImagePool(images=_ids(1, 4), count=jnp.array(4, jnp.int32))


def _flat(images) -> list[float]:
    return np.asarray(images).reshape(len(images)).tolist()


def _replay(stored: list[float], new, out) -> tuple[list[float], list[int]]:
    """The reference's rule image by image on a copy of a full pool's ids: a returned image is
    the new one (nothing stored) or a stored one, whose slot the new one then takes. Returns the
    pool it implies and the slot of each swap."""
    mirror, slots = list(stored), []
    for image, returned in zip(_flat(new), _flat(out)):
        if returned != image:
            assert returned in mirror, returned
            slot = mirror.index(returned)
            mirror[slot] = image
            slots.append(slot)
    return mirror, slots


def test_pool_fills_in_order_returning_each_image():
    pool = init_image_pool(4, (1, 1, 1))
    assert pool.images.shape == (4, 1, 1, 1) and pool.images.dtype == jnp.float32
    assert pool.count.dtype == jnp.int32 and int(pool.count) == 0
    pool, out = query(pool, _ids(1, 3), jax.random.key(0))
    assert _flat(out) == [1, 2, 3]
    assert _flat(pool.images) == [1, 2, 3, 0] and int(pool.count) == 3
    # The fourth image fills the last slot and comes back as it is; the rest meet a full pool.
    pool, out = query(pool, _ids(4, 3), jax.random.key(1))
    assert _flat(out)[0] == 4 and int(pool.count) == 4
    mirror, _ = _replay([1, 2, 3, 4], _ids(5, 2), out[1:])
    assert _flat(pool.images) == mirror


def test_full_pool_swaps_half_the_time_with_a_stored_image_in_its_slot():
    new = _ids(100, 1000)
    pool, out = query(FULL, new, jax.random.key(7))
    mirror, slots = _replay(_flat(FULL.images), new, out)
    assert _flat(pool.images) == mirror and int(pool.count) == 4
    # Binomial(1000, 1/2) has standard deviation 16: 0.06 is almost 4 of them, with a fixed key.
    assert abs(len(slots) / 1000 - 0.5) < 0.06, len(slots)
    # Uniform slots: about 125 of some 500 swaps each.
    assert min(slots.count(slot) for slot in range(4)) > 80, slots


def test_query_is_deterministic_from_its_key():
    new = _ids(100, 1000)
    a_pool, a_out = query(FULL, new, jax.random.key(3))
    b_pool, b_out = query(FULL, new, jax.random.key(3))
    c_pool, c_out = query(FULL, new, jax.random.key(4))
    assert jnp.array_equal(a_out, b_out) and jnp.array_equal(a_pool.images, b_pool.images)
    assert not jnp.array_equal(a_out, c_out)


def test_size_zero_passes_images_through():
    pool = init_image_pool(0, (1, 1, 1))
    images = _ids(1, 3)
    after, out = query_image_pool(pool, images, jax.random.key(1))
    assert out is images
    assert after.images.shape == (0, 1, 1, 1) and int(after.count) == 0
    _, jitted = query(pool, images, jax.random.key(1))
    assert jnp.array_equal(jitted, images)


def test_query_refuses_images_of_another_shape():
    with pytest.raises(ValueError, match="do not match"):
        query_image_pool(init_image_pool(4, (1, 1, 1)), jnp.zeros((3, 2, 2, 1)),
                         jax.random.key(2))


def test_resume_from_serialized_pool_is_bitwise_the_uninterrupted_run():
    def batches(step):
        return _ids(10 * step + 1, 3)

    def run(pool, steps):
        outs = []
        for step in steps:
            pool, out = query(pool, batches(step), jax.random.fold_in(jax.random.key(9), step))
            outs.append(out)
        return pool, outs

    start = init_image_pool(4, (1, 1, 1))
    straight, straight_outs = run(start, range(6))
    paused, first_outs = run(start, range(3))
    restored = flax.serialization.from_bytes(start, flax.serialization.to_bytes(paused))
    assert isinstance(restored, ImagePool)
    resumed, later_outs = run(restored, range(3, 6))
    for a, b in zip(straight_outs, first_outs + later_outs):
        assert jnp.array_equal(a, b)
    assert jnp.array_equal(straight.images, resumed.images)
    assert int(straight.count) == int(resumed.count) == 4

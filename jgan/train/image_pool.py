"""The image pool (history buffer) of Shrivastava et al. 2017, Sec. 2.3, as CycleGAN uses it.

D is updated on a mix of the newest fakes and fakes from earlier generators, which damps the
oscillation of the two players (Zhu et al. 2017, Sec. 4). As in the reference
`util/image_pool.py`, each image of a batch, in order: while the pool is filling, it is stored and
returned as it is; once the pool is full, with probability 1/2 a uniformly chosen stored image is
returned and the new one takes its slot, else the new image is returned and nothing is stored.

The pool is a pytree held in the train state, so it is checkpointed with it, and a query is a pure
function of (pool, images, key): a resumed run draws the same images as an uninterrupted one.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class ImagePool:
    images: jax.Array  # [size, H, W, C] float32; slots at and past `count` are unused zeros
    count: jax.Array  # int32 scalar: slots filled, at most size


def init_image_pool(size: int, image_shape) -> ImagePool:
    """An empty pool of `size` images of `image_shape` (H, W, C); size 0 means no pool."""
    if size < 0:
        raise ValueError(f"init_image_pool: size must be >= 0, got {size}")
    return ImagePool(images=jnp.zeros((size, *image_shape), jnp.float32),
                     count=jnp.zeros((), jnp.int32))


def query_image_pool(pool: ImagePool, images: jax.Array,
                     key: jax.Array) -> tuple[ImagePool, jax.Array]:
    """Swap a batch of new fakes through the pool, image by image in batch order.

    Args:
      pool: the pool before this batch.
      images: [B, H, W, C] the generator's newest images.
      key: used once; image i draws its coin and slot from `jax.random.split(key, B)[i]`.
    Returns:
      (pool after the batch, [B, H, W, C] float32 images to show D). A size-0 pool returns
      `images` untouched and itself unchanged.
    """
    size = pool.images.shape[0]
    if images.shape[1:] != pool.images.shape[1:]:
        raise ValueError(f"query_image_pool: images {images.shape[1:]} do not match the pool's "
                         f"{pool.images.shape[1:]}")
    if size == 0:
        return pool, images

    def one_image(pool: ImagePool, inputs):
        image, image_key = inputs
        k_coin, k_slot = jax.random.split(image_key)
        filling = pool.count < size
        swap = jax.random.bernoulli(k_coin, 0.5)
        slot = jnp.where(filling, pool.count, jax.random.randint(k_slot, (), 0, size))
        stored = pool.images[slot]
        # Both branches of the reference as selects, so that the scan has one body: the filling
        # branch writes slot `count` and returns the image, the swap branch trades it for `stored`.
        out = jnp.where(filling | ~swap, image, stored)
        kept = jnp.where(filling | swap, image, stored)
        pool = ImagePool(images=pool.images.at[slot].set(kept),
                         count=pool.count + filling.astype(jnp.int32))
        return pool, out

    keys = jax.random.split(key, images.shape[0])
    return jax.lax.scan(one_image, pool, (images.astype(pool.images.dtype), keys))

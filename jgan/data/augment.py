"""pix2pix's random jitter (Isola et al. 2017, Appendix 6.2): resize 256 -> 286, crop, mirror.

Scaled to any image size: an H x W image is resized (bicubic) to `jitter_size` of each side, a
random H x W window is cut out of it and mirrored left-right with probability 1/2, as the
reference's `get_transform` (`resize_and_crop` with flips). A pix2pix pair is jittered together,
so that input and target stay aligned; CycleGAN's unpaired domains each get their own draw.
Pure functions of an explicit key, run inside jit on batches of float images in [-1, 1].
"""

from __future__ import annotations

import itertools

import dm_pix
import jax
import jax.numpy as jnp


def jitter_size(size: int) -> int:
    """size * 286 / 256 rounded half up: 286 for 256, 143 for 128, 18 for 16."""
    # Integers throughout: no float rounding, and halves go up where Python's round goes even.
    return (size * 286 + 128) // 256


def _jitter_image(key: jax.Array, image: jax.Array) -> jax.Array:
    """[H, W, C] -> [H, W, C]: resize up, random crop back, random left-right flip."""
    k_crop, k_flip = jax.random.split(key)
    height, width, channels = image.shape
    large = jax.image.resize(image, (jitter_size(height), jitter_size(width), channels),
                             method="bicubic")
    cropped = dm_pix.random_crop(k_crop, large, (height, width, channels))
    flipped = dm_pix.random_flip_left_right(k_flip, cropped)
    # The bicubic kernel's negative lobes overshoot at edges, past the generator's tanh range.
    return jnp.clip(flipped, -1.0, 1.0)


def random_jitter(key: jax.Array, images: dict[str, jax.Array], *,
                  together: bool) -> dict[str, jax.Array]:
    """Jitter every entry of a batch, one draw per example from `jax.random.split(key, B)`.

    Args:
      key: used once.
      images: name -> [B, H, W, C] float images in [-1, 1]; channel counts may differ.
      together: True for a pix2pix pair: every entry of an example gets the same crop and flip
        (they must share H and W). False for CycleGAN's unpaired domains: entry i of the sorted
        names draws from the example's key folded with i, so the order of the dict is moot.
    Returns:
      the same names -> [B, H, W, C] float32 in [-1, 1].
    """
    if not images:
        return {}
    names = sorted(images)
    batches = {images[name].shape[0] for name in names}
    if len(batches) != 1:
        raise ValueError(f"random_jitter: entries have different batch sizes {sorted(batches)}")
    keys = jax.random.split(key, batches.pop())
    jitter = jax.vmap(_jitter_image)
    floats = {name: images[name].astype(jnp.float32) for name in names}
    if not together:
        out = {}
        for index, name in enumerate(names):
            entry_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, index)
            out[name] = jitter(entry_keys, floats[name])
        return {name: out[name] for name in images}
    sizes = {floats[name].shape[1:3] for name in names}
    if len(sizes) != 1:
        raise ValueError(f"random_jitter: paired entries must share H and W, got {sorted(sizes)}")
    # One image of all the channels: the resize acts on each channel alone, and the crop and the
    # flip, drawn once, cut and mirror them all alike.
    jittered = jitter(keys, jnp.concatenate([floats[name] for name in names], axis=-1))
    bounds = list(itertools.accumulate(floats[name].shape[-1] for name in names))[:-1]
    split = dict(zip(names, jnp.split(jittered, bounds, axis=-1)))
    return {name: split[name] for name in images}

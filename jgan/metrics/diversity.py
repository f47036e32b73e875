"""Sample diversity in pixel space: MS-SSIM between samples, nearest real neighbours.

- MS-SSIM (Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality
  assessment", Eq. 7): l_M^w_M * prod_{j=1..M} cs_j^w_j, with the SSIM luminance term l only at
  the coarsest scale M and the contrast-structure term cs at every scale, each scale a 2x
  average-pool of the one before; the 5-scale weights are (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333).
- Mean pairwise MS-SSIM (Odena et al. 2017, "Conditional image synthesis with auxiliary classifier
  GANs", Sec. 4.1): the mean MS-SSIM over pairs of samples; lower is more diverse. A collapsed
  generator, whose samples are near copies of each other, scores near 1; independent noise scores
  near 0; real data sit in between, and the real set's own score is the one to compare with.
- Nearest real neighbours (L2 in pixel space): a sample that is a copy of a training image has
  its copy at distance ~0; `neighbour_strip` shows each sample beside its neighbour.
"""

from __future__ import annotations

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from jgan.images import make_grid

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, Sec. 3.2
FILTER_SIZE = 11  # the SSIM window: an 11x11 Gaussian of sigma 1.5 (Wang et al. 2004)
FILTER_SIGMA = 1.5
CS_K1 = 1e6  # see `_contrast_structure`
PAIR_BATCH = 1024  # image pairs per compiled call: at 64x64 about 100 MB of float32 maps
NEIGHBOUR_CHUNK = 256  # query rows per distance block


def num_scales(height: int, width: int, filter_size: int = FILTER_SIZE) -> int:
    """How many of the 5 scales an `height` x `width` image has: as many as keep the shorter side
    >= `filter_size` at the coarsest one (each scale halves the side, rounding down), at most 5.
    64x64 -> 3 (64, 32, 16), 32x32 -> 2, 176x176 and up -> 5; below `filter_size` -> 0."""
    side, scales = min(height, width), 0
    while scales < len(WEIGHTS) and side >= filter_size:
        scales, side = scales + 1, side // 2
    return scales


def scale_weights(scales: int) -> np.ndarray:
    """The first `scales` of the paper's 5 weights, renormalised to sum to 1 (all 5 already do,
    to 1e-4), so a product of values in [0, 1] stays in [0, 1] and identical images score 1."""
    weights = np.asarray(WEIGHTS[:scales], np.float64)
    return (weights / weights.sum()).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _blur_matrix(length: int) -> np.ndarray:
    """`[length - FILTER_SIZE + 1, length]`: the 1-D Gaussian "valid" convolution as a banded
    matrix. The window is dm_pix's own; on CPU two matmuls run it about 6x faster than the
    vmapped `jnp.convolve` dm_pix uses by default (0.19 s against 1.17 s per 1024 64x64 pairs)."""
    offsets = np.arange(FILTER_SIZE) - FILTER_SIZE // 2
    taps = np.exp(-0.5 * (offsets / FILTER_SIGMA) ** 2)
    taps /= taps.sum()
    matrix = np.zeros((length - FILTER_SIZE + 1, length), np.float32)
    for row in range(len(matrix)):
        matrix[row, row:row + FILTER_SIZE] = taps
    return matrix


def _blur(maps: jax.Array) -> jax.Array:
    """`[N, H, W, C]` -> `[N, H - 10, W - 10, C]`: the SSIM window, as dm_pix.ssim's `filter_fn`."""
    rows, cols = _blur_matrix(maps.shape[1]), _blur_matrix(maps.shape[2])
    return jnp.einsum("ih,nhwc,jw->nijc", rows, maps, cols, precision=jax.lax.Precision.HIGHEST)


def _contrast_structure(a, b, max_val: float) -> jax.Array:
    """`[N]` mean cs = (2 sigma_ab + C2) / (sigma_a^2 + sigma_b^2 + C2), from `dm_pix.ssim`.

    dm_pix returns only l * cs. With k1 = CS_K1 its C1 = (k1 * max_val)^2 dwarfs every mu^2, so
    l = 1 - (mu_a - mu_b)^2 / (mu_a^2 + mu_b^2 + C1) is 1 to within 2 / k1^2 = 2e-12, below
    float32 resolution, and the SSIM it returns is cs alone.
    """
    return dm_pix.ssim(a, b, max_val=max_val, k1=CS_K1, filter_fn=_blur)


def _downsample(images: jax.Array) -> jax.Array:
    """2x2 average pooling; an odd last row or column is dropped."""
    n, h, w, c = images.shape
    images = images[:, :h // 2 * 2, :w // 2 * 2]
    return images.reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))


@functools.partial(jax.jit, static_argnames="max_val")
def _ms_ssim(a: jax.Array, b: jax.Array, max_val: float) -> jax.Array:
    scales = num_scales(a.shape[1], a.shape[2])
    terms = []
    for _ in range(scales - 1):
        terms.append(_contrast_structure(a, b, max_val))
        a, b = _downsample(a), _downsample(b)
    terms.append(dm_pix.ssim(a, b, max_val=max_val, filter_fn=_blur))  # l_M * cs_M
    # cs (and l * cs) is negative where the two images are anti-correlated, and a negative number
    # to a fractional power is NaN; as in tf.image.ssim_multiscale, such a scale counts as 0
    # similarity (the images share no structure there), so the product is 0.
    terms = jnp.maximum(jnp.stack(terms, -1), 0.0)  # [N, scales]
    return jnp.prod(terms ** scale_weights(scales), -1)


def _as_float_images(images, what: str) -> jax.Array:
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{what} must be images [N, H, W, C], got shape {images.shape}")
    return images.astype(jnp.float32)


def ms_ssim(a, b, *, max_val: float = 255.0) -> jax.Array:
    """`[N]` MS-SSIM of image batches `a` and `b` `[N, H, W, C]` (uint8, or floats spanning
    `max_val`), pair by pair.

    Wang et al. 2003, Eq. 7, on an 11x11 Gaussian window (sigma 1.5, "valid" filtering, as
    `dm_pix.ssim`), with K1 = 0.01, K2 = 0.03 and 2x average-pool downsampling between scales.

    Scales: the paper's 5 scales need a side of at least 11 * 2^4 = 176 pixels. Smaller images get
    as many scales as keep the coarsest side >= 11 (`num_scales`: 3 for 64x64, 2 for 32x32, 1 for
    11 to 21 pixels) and the first that many weights renormalised to sum to 1 (`scale_weights`:
    0.071, 0.453, 0.476 for 64x64), the luminance term taken at the coarsest scale kept. The filter
    is never shrunk: a smaller window would change what "structure" means at that scale. Values
    are therefore comparable only between images of one size.

    Each cs (and the coarsest l * cs) is clipped at 0 before its power: a negative value (the
    images anti-correlated at that scale) has no real fractional power; clipping reads it as no
    shared structure, so the product is 0, as tf.image.ssim_multiscale does. With C > 1 channels
    each scale's terms are averaged over channels before the product (dm_pix's convention).
    """
    a, b = _as_float_images(a, "a"), _as_float_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"ms_ssim needs two batches of one shape, got {a.shape} and {b.shape}")
    if num_scales(a.shape[1], a.shape[2]) == 0:
        raise ValueError(f"ms_ssim needs images of at least {FILTER_SIZE}x{FILTER_SIZE} pixels, "
                         f"got {a.shape[1]}x{a.shape[2]}")
    return _ms_ssim(a, b, float(max_val))


@functools.partial(jax.jit, static_argnames="max_val")
def _pair_batch_ms_ssim(images, first, second, max_val: float) -> jax.Array:
    return _ms_ssim(images[first], images[second], max_val)


def pair_indices(flat, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs `(i, j)`, i < j, at positions `flat` of the row-major list of all pairs of
    `count` items (the order of `np.triu_indices(count, 1)`), without building that list."""
    flat = np.asarray(flat, np.int64)
    total = count * (count - 1) // 2
    # Pairs left from position p on: total - p. Row i starts where (count - i)(count - i - 1) / 2
    # are left; solve for i, then correct the float square root by one either way.
    left = total - flat
    rows = count - 1 - ((1 + np.sqrt(1 + 8 * (left - 1).astype(np.float64))) / 2).astype(np.int64)
    rows = np.clip(rows, 0, count - 2)
    start = lambda i: total - (count - i) * (count - i - 1) // 2  # noqa: E731
    rows = np.where(start(rows) > flat, rows - 1, rows)
    rows = np.where(start(rows + 1) <= flat, rows + 1, rows)
    return rows, flat - start(rows) + rows + 1


def mean_pairwise_ms_ssim(images, *, num_pairs: int | None = None, key=None,
                          max_val: float = 255.0) -> float:
    """The mean MS-SSIM (`ms_ssim`) between distinct images of `images` `[N, H, W, C]`: over all
    N (N - 1) / 2 pairs i < j, or over `num_pairs` distinct pairs drawn by `key` (a
    `jax.random.key`) when `num_pairs` is given and less than that. Lower is more diverse
    (Odena et al. 2017, Sec. 4.1, who take 100 pairs per class).

    Pairs are scored `PAIR_BATCH` at a time in one compiled call (the last batch padded with
    repeats that are not counted) and summed in float64. 500 64x64 grey images (124,750 pairs)
    took 51 s on 2 CPU cores shared with other jobs; 5000 sampled pairs 2.4 s.
    """
    images = _as_float_images(images, "images")
    count = len(images)
    if count < 2:
        raise ValueError(f"mean_pairwise_ms_ssim needs at least 2 images, got {count}")
    if num_scales(images.shape[1], images.shape[2]) == 0:
        raise ValueError(f"mean_pairwise_ms_ssim needs images of at least {FILTER_SIZE}x"
                         f"{FILTER_SIZE} pixels, got {images.shape[1]}x{images.shape[2]}")
    total = count * (count - 1) // 2
    if num_pairs is not None and num_pairs < total:
        if key is None or num_pairs < 1:
            raise ValueError("mean_pairwise_ms_ssim: num_pairs needs num_pairs >= 1 and a key "
                             "(jax.random.key(seed)) to draw the pairs")
        # NumPy's choice without replacement costs O(num_pairs) even when the pairs of 50k
        # images (1.25e9) are far too many to permute; its seed is the key's bits.
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
        positions = np.sort(rng.choice(total, num_pairs, replace=False))
    else:
        positions = np.arange(total)
    value_sum = 0.0
    for start in range(0, len(positions), PAIR_BATCH):
        batch = positions[start:start + PAIR_BATCH]
        padded = np.concatenate([batch, np.repeat(batch[:1], PAIR_BATCH - len(batch))])
        first, second = pair_indices(padded, count)
        values = _pair_batch_ms_ssim(images, first, second, float(max_val))
        value_sum += float(np.asarray(values[:len(batch)], np.float64).sum())
    return value_sum / len(positions)


def nearest_neighbours(queries, references) -> tuple[np.ndarray, np.ndarray]:
    """For each of `queries` `[Q, H, W, C]`, its nearest of `references` `[R, H, W, C]` by L2
    distance in pixel space (float32, in the images' own units: 0-255 for uint8).

    Returns `(indices [Q] int64, distances [Q] float32)`. The search expands
    |q - r|^2 = |q|^2 - 2 q.r + |r|^2 in blocks of `NEIGHBOUR_CHUNK` queries, on pixels centred
    by the mean reference (smaller norms, less float32 cancellation); the distance reported is
    then computed directly, so an exact copy is at distance 0.
    """
    queries = np.asarray(queries, np.float32)
    references = np.asarray(references, np.float32)
    if queries.ndim != 4 or queries.shape[1:] != references.shape[1:] or not len(references):
        raise ValueError(f"nearest_neighbours needs queries [Q, H, W, C] and references "
                         f"[R, H, W, C] (R >= 1) of one image shape, got {queries.shape} and "
                         f"{references.shape}")
    flat_refs = references.reshape(len(references), -1)
    centre = flat_refs.mean(0)
    centred_refs = flat_refs - centre
    ref_norms = np.sum(centred_refs ** 2, 1)
    indices = np.empty(len(queries), np.int64)
    distances = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), NEIGHBOUR_CHUNK):
        block = queries[start:start + NEIGHBOUR_CHUNK].reshape(-1, flat_refs.shape[1])
        # |q|^2 is the same for every reference: it cannot change the argmin.
        nearest = np.argmin(ref_norms[None] - 2 * (block - centre) @ centred_refs.T, 1)
        indices[start:start + len(block)] = nearest
        distances[start:start + len(block)] = np.sqrt(np.sum((block - flat_refs[nearest]) ** 2, 1))
    return indices, distances


def neighbour_strip(queries, references, indices, *, pairs_per_row: int = 4,
                    padding: int = 2) -> np.ndarray:
    """One uint8 image: each query `[Q, H, W, C]` (uint8) followed by its neighbour
    `references[indices[q]]`, `pairs_per_row` (query, neighbour) pairs to a row, by
    `jgan.images.make_grid` (write it with `jgan.images.save_png`)."""
    queries, references = np.asarray(queries), np.asarray(references)
    indices = np.asarray(indices)
    if queries.dtype != np.uint8 or references.dtype != np.uint8:
        raise ValueError(f"neighbour_strip takes uint8 images, got {queries.dtype} and "
                         f"{references.dtype}: jgan.images.to_uint8 turns [-1, 1] floats into them")
    if indices.shape != (len(queries),):
        raise ValueError(f"neighbour_strip needs one index per query: {len(queries)} queries, "
                         f"indices of shape {indices.shape}")
    pairs = np.stack([queries, references[indices]], 1).reshape(-1, *queries.shape[1:])
    return make_grid(pairs, columns=2 * min(pairs_per_row, len(queries)), padding=padding)

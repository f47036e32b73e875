"""How close translations are to their targets: Pix2Pix's per-image L1, PSNR and SSIM.

Isola et al. 2017 (Sec. 4.2 and Table 1's L1 row) score a translation against the real target of
its input. Every function here takes uint8 images `[N, H, W, C]` (0..255) or floats already in
[0, 1], and returns one value per image on the [0, 1] scale:
- L1: mean absolute error over pixels and channels (`dm_pix.mae`), 0 for identical images;
- PSNR: -10 log10(mean squared error) in dB for a peak of 1 (`dm_pix.psnr`), inf for identical;
- SSIM: Wang et al. 2004, Eq. 13, with an 11x11 Gaussian window of sigma 1.5 (`dm_pix.ssim`),
  1 for identical images; images must be at least 11x11.
`mean_image_baseline` is the comparison "the training set's mean target for every input".
"""

from __future__ import annotations

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from jgan.errors import UserError

CHUNK = 64  # images per call: SSIM's filtered copies of a large batch would not fit in memory
METRICS = ("l1", "psnr", "ssim")


def to_unit(images) -> np.ndarray:
    """uint8 0..255 -> float32 [0, 1]; floats are taken to be in [0, 1] already."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


_FUNCTIONS = {"l1": jax.jit(dm_pix.mae), "psnr": jax.jit(dm_pix.psnr),
              "ssim": jax.jit(lambda a, b: dm_pix.ssim(a, b, max_val=1.0))}


def _per_image(name: str, a, b) -> np.ndarray:
    a, b = to_unit(a), to_unit(b)
    if a.shape != b.shape or a.ndim != 4:
        raise UserError(f"{name} compares two batches [N, H, W, C] of one shape, not {a.shape} "
                        f"and {b.shape}: bring both to the model's size and channels")
    if name == "ssim" and min(a.shape[1:3]) < 11:
        raise UserError(f"SSIM's 11x11 window does not fit {a.shape[1]}x{a.shape[2]} images: "
                        "compare images of at least 11x11")
    return np.concatenate([np.asarray(_FUNCTIONS[name](jnp.asarray(a[i:i + CHUNK]),
                                                       jnp.asarray(b[i:i + CHUNK])))
                           for i in range(0, len(a), CHUNK)]).astype(np.float64)


def l1_distance(a, b) -> np.ndarray:
    """`[N]` mean absolute error of each pair on the [0, 1] scale."""
    return _per_image("l1", a, b)


def psnr(a, b) -> np.ndarray:
    """`[N]` PSNR in dB of each pair, peak 1; inf where a pair is identical."""
    return _per_image("psnr", a, b)


def ssim(a, b) -> np.ndarray:
    """`[N]` SSIM of each pair (Wang et al. 2004), averaged over the image and its channels."""
    return _per_image("ssim", a, b)


def image_metrics(outputs, targets) -> dict[str, np.ndarray]:
    """`{"l1", "psnr", "ssim"}`: each a `[N]` array comparing `outputs[i]` with `targets[i]`."""
    return {"l1": l1_distance(outputs, targets), "psnr": psnr(outputs, targets),
            "ssim": ssim(outputs, targets)}


def mean_image_baseline(train_targets, test_targets) -> dict[str, np.ndarray]:
    """`image_metrics` of the per-pixel mean of `train_targets` `[M, H, W, C]`, given as the output
    for every one of `test_targets` `[N, H, W, C]`: what a translator that ignores its input scores
    at best in L1 and PSNR (the mean minimises squared error). Returns `[N]` arrays."""
    train = np.asarray(train_targets)
    if len(train) == 0:
        raise UserError("the mean-image baseline needs at least one training target: pass the "
                        "training set's target images")
    if train.shape[1:] != np.shape(test_targets)[1:]:
        raise UserError(f"training targets {train.shape[1:]} and test targets "
                        f"{np.shape(test_targets)[1:]} differ in shape: bring both to one size")
    # Summed in chunks: a float copy of a whole training set can exceed memory.
    total = sum(to_unit(train[i:i + 256]).sum(0, dtype=np.float64)
                for i in range(0, len(train), 256))
    mean = (total / len(train)).astype(np.float32)
    test = to_unit(test_targets)
    return image_metrics(np.broadcast_to(mean, test.shape), test)

"""Differentiable augmentation of every image D sees, for training on few images.

With few images D memorises the training set and G collapses or diverges. Augmenting every image
D sees, real and generated alike, with fresh random parameters per image and differentiably (so
that G's gradient flows through the augmentation) keeps D from memorising without the
augmentations leaking into G's samples:

- DiffAugment (Zhao et al. 2020, Sec. 3 and the authors' `DiffAugment_pytorch.py`): colour
  (brightness, saturation, contrast), translation by up to 1/8 of the side with zero padding,
  and cutout of a square of half the side, each applied to every image.
- ADA (Karras et al. 2020, Sec. 2.2-2.3 and App. B): x-flip, 90-degree rotations, integer
  translation (up to 1/8 of the side, reflected), isotropic scaling (log2 s ~ N(0, 0.2^2)),
  brightness (N(0, 0.2^2)), contrast (log2 c ~ N(0, 0.5^2)) and saturation
  (log2 s ~ N(0, 1)), each applied with probability p, which the training adapts (Sec. 3):
  the overfitting heuristic r_t = E[sign(D(real))] is read over `ada_interval` steps, and p
  moves by sign(r_t - target) x (images since the last move) / (ada_kimg x 1000), clipped to
  [0, 1]. p lives in the train state (`state.extra["ada"]`), so it is checkpointed.

Every op is a pure function of explicit parameters (`translate`, `cutout`, ...), so a test can
check it by hand; `Augment` draws the parameters from one key per image, so an image's
augmentation never depends on the batch it is in or the devices the batch is split over.
Images are float [B, H, W, C] in D's input space ([-1, 1], or centred pixels). The pix2pix
jitter of the training data is another thing: `jgan.data.augment`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dm_pix
import jax
import jax.numpy as jnp

from jgan.config import Bounds, check_bounds
from jgan.errors import UserError

AUGMENTS = ("none", "diffaugment", "ada")
# Each kind's ops, in the order they are applied; `train.augment_ops` picks a subset.
OPS = {"diffaugment": ("color", "translation", "cutout"),
       "ada": ("xflip", "rotate90", "translation", "scale", "brightness", "contrast",
               "saturation")}
TRANSLATION_RATIO = 0.125  # both kinds: the largest shift, as a share of the side
CUTOUT_RATIO = 0.5  # DiffAugment: the cutout square's side, as a share of the image's
# ADA's standard deviations (the authors' `AugmentPipe` defaults)
ADA_SCALE_STD = 0.2  # of log2 of the isotropic scale
ADA_BRIGHTNESS_STD = 0.2
ADA_CONTRAST_STD = 0.5  # of log2 of the contrast factor
ADA_SATURATION_STD = 1.0  # of log2 of the saturation factor
# The augmentation's keys are folded out of the key of the D pass with this number, so a pass
# without augmentation draws exactly what it drew before augmentation existed.
AUGMENT_STREAM = 0x41554721


# ---- the ops, by hand-checkable parameters ----------------------------------------------------

def translate(images: jax.Array, offsets: jax.Array, *, padding: str = "zeros") -> jax.Array:
    """out[b, i, j] = images[b, i - dy, j - dx] for offsets[b] = (dy, dx) (integers): content
    moves down by dy and right by dx. What comes in from outside is 0 ("zeros", DiffAugment) or
    the image mirrored at its edge ("reflect", ADA, which hides the border from D)."""

    def one(image, offset):
        height, width = image.shape[:2]
        rows, row_in = _shifted(jnp.arange(height) - offset[0], height, padding)
        cols, col_in = _shifted(jnp.arange(width) - offset[1], width, padding)
        moved = image[rows][:, cols]
        return moved * (row_in[:, None, None] & col_in[None, :, None]).astype(image.dtype)

    return jax.vmap(one)(images, offsets.astype(jnp.int32))


def _shifted(index, size: int, padding: str):
    """`(source index in range, whether it came from inside the image)`."""
    if padding == "reflect":
        # Mirror without repeating the edge pixel: -1 -> 1, size -> size - 2.
        period = 2 * (size - 1) if size > 1 else 1
        folded = jnp.abs(jnp.mod(index, period))
        return jnp.where(folded > size - 1, period - folded, folded), jnp.ones_like(index, bool)
    inside = (index >= 0) & (index < size)
    return jnp.clip(index, 0, size - 1), inside


def cutout(images: jax.Array, corners: jax.Array, size: int) -> jax.Array:
    """Zero a `size` x `size` square at corners[b] = (top, left), clipped to the image."""
    height, width = images.shape[1:3]
    rows = jnp.arange(height)[None, :] - corners[:, :1]
    cols = jnp.arange(width)[None, :] - corners[:, 1:]
    in_rows = (rows >= 0) & (rows < size)
    in_cols = (cols >= 0) & (cols < size)
    square = in_rows[:, :, None] & in_cols[:, None, :]
    return images * (~square)[..., None].astype(images.dtype)


def brightness(images: jax.Array, shift: jax.Array) -> jax.Array:
    """x + b, b [B] per image."""
    return images + shift[:, None, None, None]


def contrast(images: jax.Array, factor: jax.Array, *, about: str) -> jax.Array:
    """(x - m) c + m, c [B] per image; m is the image's mean over pixels and channels ("mean",
    DiffAugment) or 0, the middle of [-1, 1] ("zero", ADA's scaling of the colour space)."""
    centre = (jnp.mean(images, axis=(1, 2, 3), keepdims=True) if about == "mean"
              else jnp.zeros((), images.dtype))
    return (images - centre) * factor[:, None, None, None] + centre


def saturation(images: jax.Array, factor: jax.Array) -> jax.Array:
    """Each pixel's distance from its grey level (the mean of its channels, the luma axis
    (1, 1, 1) / sqrt(3) of ADA) times s [B]; a grey image is unchanged."""
    grey = jnp.mean(images, axis=-1, keepdims=True)
    return (images - grey) * factor[:, None, None, None] + grey


def flip_x(images: jax.Array, flip: jax.Array) -> jax.Array:
    """Mirror left-right the images where flip [B] is True."""
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def rotate90(images: jax.Array, turns: jax.Array) -> jax.Array:
    """Rotate image b by turns[b] x 90 degrees counter-clockwise (`jnp.rot90`); square images.

    Written as a transpose and two flips chosen per image, not four rotated copies:
    rot90 k = 1 is flip_rows(T), k = 2 flip_rows(flip_cols), k = 3 flip_cols(T).
    """
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"rotate90 turns square images, not {images.shape[1:3]}")
    turns = jnp.mod(turns, 4)[:, None, None, None]
    odd = jnp.where(turns % 2 == 1, jnp.swapaxes(images, 1, 2), images)
    rows = jnp.where((turns == 1) | (turns == 2), odd[:, ::-1], odd)
    return jnp.where((turns == 2) | (turns == 3), rows[:, :, ::-1], rows)


def scale(images: jax.Array, factor: jax.Array) -> jax.Array:
    """Zoom each image by s [B] about its centre, bilinear, reflecting at the border (ADA)."""

    def one(image, s):
        height, width = image.shape[:2]
        centre = jnp.array([(height - 1) / 2, (width - 1) / 2, 0.0])
        # dm_pix maps output coordinates to input ones: o -> c + (o - c) / s.
        matrix = jnp.diag(jnp.array([1 / s, 1 / s, 1.0]))
        return dm_pix.affine_transform(image, matrix, offset=centre - matrix @ centre, order=1,
                                       mode="mirror")

    return jax.vmap(one)(images, factor)


# ---- the pipelines ----------------------------------------------------------------------------

def translation_limit(side: int) -> int:
    """The largest shift: DiffAugment's int(side / 8 + 0.5)."""
    return int(side * TRANSLATION_RATIO + 0.5)


def cutout_size(side: int) -> int:
    """DiffAugment's int(side / 2 + 0.5)."""
    return int(side * CUTOUT_RATIO + 0.5)


def _log2_normal(key, std):
    """2^(std N(0, 1)): ADA's log-normal factors, 1 at the median."""
    return jnp.exp2(std * jax.random.normal(key))


def diff_augment(keys: jax.Array, images: jax.Array, ops=OPS["diffaugment"]) -> jax.Array:
    """DiffAugment's ops, every one on every image, parameters drawn from keys[b] per image."""
    height, width = images.shape[1:3]
    # One key per op and image, so that leaving an op out changes no other op's draw.
    k = jax.vmap(lambda key: jax.random.split(key, 5))(keys)  # [B, 5]

    def draw(index, fn):
        return jax.vmap(fn)(k[:, index])

    if "color" in ops:
        images = brightness(images, draw(0, lambda key: jax.random.uniform(
            key, (), minval=-0.5, maxval=0.5)))
        images = saturation(images, draw(1, lambda key: jax.random.uniform(key, (), maxval=2.0)))
        images = contrast(images, draw(2, lambda key: jax.random.uniform(
            key, (), minval=0.5, maxval=1.5)), about="mean")
    if "translation" in ops:
        limits = jnp.array([translation_limit(height), translation_limit(width)])
        offsets = draw(3, lambda key: jax.random.randint(key, (2,), -limits, limits + 1))
        images = translate(images, offsets, padding="zeros")
    if "cutout" in ops:
        size = cutout_size(min(height, width))
        # The square's centre, as DiffAugment draws it: in [0, side + (1 - size % 2)).
        high = jnp.array([height, width]) + 1 - size % 2
        centres = draw(4, lambda key: jax.random.randint(key, (2,), 0, high))
        images = cutout(images, centres - size // 2, size)
    return images


def ada_augment(keys: jax.Array, images: jax.Array, p, ops=OPS["ada"]) -> jax.Array:
    """ADA's ops, each applied to an image with probability p, parameters drawn per image from
    keys[b]. With p = 0 it returns the images unchanged, bit for bit."""
    height, width = images.shape[1:3]
    names = OPS["ada"]
    k = jax.vmap(lambda key: jax.random.split(key, 2 * len(names)))(keys)  # [B, 2 * ops]

    def draw(op, fn):
        """(applies [B], parameter [B, ...]) for op, from each image's keys."""
        index = names.index(op)
        applies = jax.vmap(lambda key: jax.random.uniform(key, ()) < p)(k[:, 2 * index])
        return applies, jax.vmap(fn)(k[:, 2 * index + 1])

    def where(applies, augmented, original):
        return jnp.where(applies[:, None, None, None], augmented, original)

    for op in names:
        if op not in ops:
            continue
        if op == "xflip":
            applies, _ = draw(op, lambda key: jnp.zeros(()))
            images = flip_x(images, applies)
        elif op == "rotate90":
            applies, turns = draw(op, lambda key: jax.random.randint(key, (), 0, 4))
            images = rotate90(images, jnp.where(applies, turns, 0))
        elif op == "translation":
            limits = jnp.array([height, width]) * TRANSLATION_RATIO
            applies, offsets = draw(op, lambda key: jnp.round(jax.random.uniform(
                key, (2,), minval=-1.0, maxval=1.0) * limits))
            images = translate(images, jnp.where(applies[:, None], offsets, 0),
                               padding="reflect")
        elif op == "scale":
            applies, factor = draw(op, lambda key: _log2_normal(key, ADA_SCALE_STD))
            images = where(applies, scale(images, factor), images)
        elif op == "brightness":
            applies, shift = draw(op, lambda key: ADA_BRIGHTNESS_STD * jax.random.normal(key))
            images = brightness(images, jnp.where(applies, shift, 0.0))
        elif op == "contrast":
            applies, factor = draw(op, lambda key: _log2_normal(key, ADA_CONTRAST_STD))
            images = where(applies, contrast(images, factor, about="zero"), images)
        elif op == "saturation":
            applies, factor = draw(op, lambda key: _log2_normal(key, ADA_SATURATION_STD))
            images = where(applies, saturation(images, factor), images)
    return images


@dataclasses.dataclass(frozen=True)
class Augment:
    """The augmentation of a run's D inputs: `augment(key, images)`.

    `p` is ADA's probability: inside a step, the state's value (`with_p`); it is unused by
    DiffAugment. A family's step calls the same `Augment` on real and generated images before
    every D pass, the passes inside gradient penalties and R1 included.
    """

    kind: str = "none"
    ops: tuple[str, ...] = ()
    p: Any = 0.0
    # ADA's adaptation (`adapt`): target of r_t, steps between moves, kimg for p to move by 1;
    # ada_kimg = 0 holds p at its initial value
    target: float = 0.6
    interval: int = 4
    ada_kimg: float = 500.0
    initial_p: float = 0.0

    @property
    def active(self) -> bool:
        return self.kind != "none"

    @property
    def adaptive(self) -> bool:
        """Whether p lives in the state (ADA, adapted or held)."""
        return self.kind == "ada"

    def with_p(self, extra: dict) -> "Augment":
        """This augmentation at the state's p (`state.extra`); itself where p is not kept."""
        if not self.adaptive:
            return self
        return dataclasses.replace(self, p=extra["ada"]["p"])

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """Augment `images` [B, H, W, C] with `image_keys(key, B)`."""
        if not self.active:
            return images
        return self.apply(self.image_keys(key, images.shape[0]), images)

    @staticmethod
    def image_keys(key: jax.Array, num: int) -> jax.Array:
        """One key per image, for `apply`; a step that splits its batch (micro-batches) draws
        them for the whole batch and slices them with it."""
        return jax.random.split(jax.random.fold_in(key, AUGMENT_STREAM), num)

    def apply(self, keys: jax.Array, images: jax.Array) -> jax.Array:
        """Augment image b with keys[b]."""
        if self.kind == "diffaugment":
            return diff_augment(keys, images, self.ops)
        if self.kind == "ada":
            return ada_augment(keys, images, self.p, self.ops)
        return images

    def init_extra(self) -> dict:
        """What the state keeps in `extra`: ADA's p and the r_t sums since p last moved."""
        if not self.adaptive:
            return {}
        return {"ada": {"p": jnp.asarray(self.initial_p, jnp.float32),
                        "sign_sum": jnp.zeros((), jnp.float32),
                        "count": jnp.zeros((), jnp.float32)}}

    def adapt(self, extra: dict, *, r_t, count: int, step) -> tuple[dict, dict]:
        """`(extra with ADA's state after this step, metrics)`. `r_t` is the mean of
        sign(D(real)) over the `count` real images of this step's D updates; p moves when `step`
        (the completed steps) is a multiple of `interval`. Metrics: p and r_t."""
        if not self.adaptive:
            return extra, {}
        ada = extra["ada"]
        ada = ada_update(ada, sign_sum=ada["sign_sum"] + r_t * count,
                         count=ada["count"] + count, due=step % self.interval == 0,
                         target=self.target, ada_kimg=self.ada_kimg)
        return {**extra, "ada": ada}, {"augment/p": ada["p"], "augment/r_t": r_t}

    def r_t(self, real_logits: jax.Array) -> dict:
        """The metric a D update reports for `adapt`: mean sign(D(real)), when adaptive."""
        if not self.adaptive:
            return {}
        return {"augment/r_t": jnp.mean(jnp.sign(real_logits.astype(jnp.float32)))}


def ada_update(ada: dict, *, sign_sum, count, due, target: float, ada_kimg: float) -> dict:
    """ADA's p after a step (Karras et al. 2020, Sec. 3): where `due`, p moves by
    sign(r_t - target) x count / (ada_kimg x 1000), r_t = sign_sum / count, clipped to [0, 1],
    and the sums start again; elsewhere the sums carry on."""
    if ada_kimg:
        r_t = sign_sum / jnp.maximum(count, 1.0)
        moved = jnp.clip(ada["p"] + jnp.sign(r_t - target) * count / (ada_kimg * 1000.0),
                         0.0, 1.0)
    else:
        moved = ada["p"]
    return {"p": jnp.where(due, moved, ada["p"]).astype(jnp.float32),
            "sign_sum": jnp.where(due, 0.0, sign_sum).astype(jnp.float32),
            "count": jnp.where(due, 0.0, count).astype(jnp.float32)}


# ---- configuration ----------------------------------------------------------------------------

AUGMENT_BOUNDS = {"ada_interval": Bounds(1),
                  "ada_kimg": Bounds(0, note="0 holds p at train.augment_p")}


def parse_ops(train_cfg) -> tuple[str, ...]:
    """`train.augment_ops` ("" for all of the kind's ops) as a tuple, checked."""
    allowed = OPS.get(train_cfg.augment, ())
    if not train_cfg.augment_ops:
        return allowed
    ops = tuple(op.strip() for op in train_cfg.augment_ops.split(",") if op.strip())
    unknown = [op for op in ops if op not in allowed]
    if unknown:
        raise UserError(f"train.augment_ops={train_cfg.augment_ops!r}: {unknown[0]!r} is not an "
                        f"op of train.augment={train_cfg.augment!r}; choose from "
                        f"{','.join(allowed)}")
    return ops


def check_augment_config(train_cfg) -> None:
    """One-line errors for the augmentation settings of the train group."""
    if train_cfg.augment not in AUGMENTS:
        raise UserError(f"train.augment={train_cfg.augment!r} is unknown: choose one of "
                        f"{list(AUGMENTS)}")
    if train_cfg.augment == "none" and train_cfg.augment_ops:
        raise UserError("train.augment_ops picks ops of an augmentation, and train.augment is "
                        "'none': add --set train.augment=diffaugment (or ada), or drop "
                        "train.augment_ops")
    check_bounds("train", train_cfg, AUGMENT_BOUNDS)
    # Closed ranges, which Bounds (half-open) does not state; NaN fails both comparisons.
    if not 0.0 <= train_cfg.augment_p <= 1.0:
        raise UserError(f"train.augment_p={train_cfg.augment_p}: ADA's probability lies in "
                        "[0, 1], e.g. --set train.augment_p=0")
    if not -1.0 <= train_cfg.ada_target <= 1.0:
        raise UserError(f"train.ada_target={train_cfg.ada_target}: r_t = E[sign(D(real))] lies "
                        "in [-1, 1], e.g. --set train.ada_target=0.6 (ADA's)")
    parse_ops(train_cfg)


def from_config(train_cfg) -> Augment:
    """The `Augment` that `train.augment`, `train.augment_ops` and ADA's fields describe."""
    check_augment_config(train_cfg)
    return Augment(kind=train_cfg.augment, ops=parse_ops(train_cfg), p=train_cfg.augment_p,
                   target=train_cfg.ada_target, interval=train_cfg.ada_interval,
                   ada_kimg=train_cfg.ada_kimg, initial_p=train_cfg.augment_p)

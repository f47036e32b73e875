"""Images from a run's setup: drawn from a seed, labels spread evenly over classes.

Shared by `jgan.tools.sample`, `jgan.tools.evaluate` and the training loop's evaluation, so the
images a run is measured on during training are the ones `python -m jgan.tools.evaluate` draws
from its checkpoint. Image i is drawn from `fold_in(key(seed), i)` alone (`per_image_inputs`), so
the first k of n images are the k images of a call for k, as `jgan.translate` does for its inputs.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from jgan.errors import UserError


def image_labels(labels, num_images: int, num_classes: int) -> np.ndarray | None:
    """Per-image labels [num_images]: `num_images / len(labels)` images of each label in turn.

    An unconditional run (num_classes 0) takes no labels; a conditional one defaults to every
    class.
    """
    if not num_classes:
        if labels is not None:
            raise UserError("this run's generator is unconditional: drop --labels")
        return None
    labels = list(range(num_classes)) if labels is None else [int(label) for label in labels]
    bad = [label for label in labels if not 0 <= label < num_classes]
    if bad or not labels:
        raise UserError(f"label {bad[0] if bad else 'list is empty'}: this run has classes "
                        f"0 to {num_classes - 1}")
    if num_images % len(labels):
        fixed = max(1, round(num_images / len(labels))) * len(labels)
        raise UserError(f"{num_images} images do not split evenly over {len(labels)} labels: "
                        f"ask for a multiple of {len(labels)} (e.g. --num {fixed})")
    return np.repeat(np.asarray(labels, np.int32), num_images // len(labels))


def draw_samples(setup, state, num_images: int, *, seed: int = 0, labels=None):
    """`(uint8 images [N, H, W, C], per-image labels or None)`, drawn by `setup.generate` from
    `key(seed)`."""
    if num_images < 1:
        raise UserError(f"num_images is {num_images}: ask for at least 1")
    per_image_labels = image_labels(labels, num_images, setup.num_classes)
    conditions = {} if per_image_labels is None else {"labels": per_image_labels}
    images = setup.generate(state, jax.random.key(seed), num_images, **conditions)
    return images, per_image_labels


def image_keys(key: jax.Array, num: int) -> jax.Array:
    """Keys [num]: image i's is `fold_in(key, i)`, the same whatever `num` is (a `split(key,
    num)` depends on num unless JAX's threefry is partitionable)."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(num))


def per_image_inputs(setup, key: jax.Array, num: int, **conditions):
    """`setup.sample_inputs` drawn one image at a time, vmapped: image i's inputs come from
    `image_keys(key, num)[i]` and the i-th row of each per-image condition (`labels`), so they
    depend on i, not on num. Scalar conditions (`psi`, `truncation`) apply to every image."""
    rows = {name: jnp.asarray(value) for name, value in conditions.items()
            if np.ndim(value) > 0}
    fixed = {name: value for name, value in conditions.items() if name not in rows}

    def one_image(image_key, image_rows):
        inputs = setup.sample_inputs(image_key, 1, **fixed,
                                     **{name: row[None] for name, row in image_rows.items()})
        return jax.tree.map(lambda leaf: leaf[0], inputs)

    return jax.vmap(one_image)(image_keys(key, num), rows)


def spelled(name: str, value=None, *, cli: bool) -> str:
    """A setting as its user wrote it: `name=value` in Python, `--name value` on the command
    line, so that one check can word its error for either."""
    if cli:
        flag = "--" + name.replace("_", "-")
        return flag if value is None else f"{flag} {value}"
    return name if value is None else f"{name}={value!r}"


def check_image_count(name: str, value, *, example: int, cli: bool = False) -> None:
    """Refuse a number of images to draw that is not a whole number of 1 or more, before any
    checkpoint is read."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return
    raise UserError(f"{spelled(name, value, cli=cli)}: draw 1 or more images, e.g. "
                    f"{spelled(name, example, cli=cli)}")


def check_truncation(name: str, value, *, high: float = math.inf, example: float,
                     none: float, cli: bool = False) -> None:
    """Refuse a truncation setting (StyleGAN's psi, BigGAN's threshold) that is not a finite
    number in [0, `high`], before anything is sampled: NaN passes every comparison and draws
    black images without a word, as a psi of 1e30 draws saturated ones."""
    if isinstance(value, numbers.Real) and math.isfinite(value) and 0 <= value <= high:
        return
    allowed = "of 0 or more" if high == math.inf else f"in [0, {high:g}]"
    raise UserError(f"{spelled(name, value, cli=cli)}: use a finite number {allowed}, e.g. "
                    f"{spelled(name, example, cli=cli)} ({spelled(name, none, cli=cli)}: none)")

"""Images from a run's setup: drawn from a seed, labels spread evenly over classes.

Shared by `jgan.tools.sample`, `jgan.tools.evaluate` and the training loop's evaluation, so the
images a run is measured on during training are the ones `python -m jgan.tools.evaluate` draws
from its checkpoint.
"""

from __future__ import annotations

import jax
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

"""The labelled subset of a semi-supervised run: `num_labels` examples, balanced per class, chosen
by a key (Salimans et al. 2016, Sec. 5: 100 labels on MNIST, 10 per class).

As in the authors' code (openai/improved-gan, train_mnist_feature_matching.py), the split is put
in a random order and each class keeps its first `num_labels / K` examples in that order. Only
the order's prefix matters, so `read_balanced_subset` reads the split in that order until every
class is full (about 150 examples for 100 labels) instead of decoding all of it.
"""

from __future__ import annotations

import jax
import numpy as np

from jgan.errors import UserError

READ_CHUNK = 1000


def per_class(num_labels: int, num_classes: int) -> int:
    """Labels per class, refusing a count that does not split evenly over the classes."""
    if num_labels <= 0 or num_labels % num_classes:
        raise UserError(f"--num-labels {num_labels} does not split evenly over {num_classes} "
                        f"classes: use a positive multiple of {num_classes}, e.g. "
                        f"{10 * num_classes}")
    return num_labels // num_classes


def first_per_class(ordered_labels: np.ndarray, count: int, num_classes: int) -> np.ndarray | None:
    """Positions in `ordered_labels` of each class's first `count` examples, class by class;
    None when some class has fewer."""
    positions = [np.flatnonzero(ordered_labels == c)[:count] for c in range(num_classes)]
    if any(len(p) < count for p in positions):
        return None
    return np.concatenate(positions)


def shortage_error(labels: np.ndarray, count: int, num_classes: int) -> UserError:
    sizes = np.bincount(labels, minlength=num_classes)
    smallest = int(np.argmin(sizes))
    return UserError(f"--num-labels asks {count} examples of each class, and class {smallest} "
                     f"has {sizes[smallest]}: use at most {sizes[smallest] * num_classes}")


def balanced_subset(labels, num_labels: int, key: jax.Array, *,
                    num_classes: int | None = None) -> np.ndarray:
    """Indices into `labels` [N] of `num_labels` examples, `num_labels / K` of each class,
    ordered class by class; the same key gives the same indices."""
    labels = np.asarray(labels)
    num_classes = num_classes or int(labels.max()) + 1
    count = per_class(num_labels, num_classes)
    order = np.asarray(jax.random.permutation(key, len(labels)))
    chosen = first_per_class(labels[order], count, num_classes)
    if chosen is None:
        raise shortage_error(labels, count, num_classes)
    return order[chosen]


def stacked_images(images: list) -> np.ndarray:
    """uint8 [N, H, W, C] of a list of [H, W] or [H, W, C] images."""
    stacked = np.stack(images)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def read_first_in_order(split, count: int, key: jax.Array) -> np.ndarray:
    """Images uint8 [count, ...] of the first `count` examples, of any class, in the order that
    `read_balanced_subset` draws with the same key: the authors' `trainx[:500]`, which their
    data-dependent init reads after permuting the training set to pick the labelled subset."""
    order = np.asarray(jax.random.permutation(key, len(split)))[:count]
    return stacked_images([np.asarray(e["image"])
                           for e in split.__getitems__([int(i) for i in order])])


def read_balanced_subset(split, num_labels: int, key: jax.Array, num_classes: int):
    """`(indices, images uint8 [L, ...], labels int32 [L])` of `balanced_subset` of a data
    source's split (anything with `len` and `__getitems__`), reading only the order's prefix."""
    count = per_class(num_labels, num_classes)
    order = np.asarray(jax.random.permutation(key, len(split)))
    images, labels = [], []
    for start in range(0, len(order), READ_CHUNK):
        examples = split.__getitems__([int(i) for i in order[start:start + READ_CHUNK]])
        images.extend(np.asarray(e["image"]) for e in examples)
        labels.extend(int(e["label"]) for e in examples)
        chosen = first_per_class(np.asarray(labels), count, num_classes)
        if chosen is not None:
            return (order[chosen], stacked_images([images[i] for i in chosen]),
                    np.asarray(labels, np.int32)[chosen])
    raise shortage_error(np.asarray(labels), count, num_classes)

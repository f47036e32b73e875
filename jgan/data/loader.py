"""Deterministic batches from a random-access source, positioned by the step.

Epoch e visits the examples in the order `jax.random.permutation(fold_in(data_key, e), N)` and drops
the last partial batch, so batch k is a pure function of (data key, batch size, k). The loader's
position is therefore the step; it is still written into every checkpoint and checked on restore.
"""

from __future__ import annotations

import concurrent.futures
import functools

import jax
import numpy as np

from jgan.errors import UserError


class BatchLoader:
    """Batches `{"image": uint8 [B, H, W, C], "label": int32 [B]}` for steps k, k+1, ...

    The next batch is read on a background thread while the current step runs. A dataset whose
    images fit in `cache_bytes` is decoded once: each example is kept after its first read.
    """

    def __init__(self, source, *, batch_size: int, data_key: jax.Array,
                 cache_bytes: int = 2 << 30):
        self.source = source
        self.batch_size = batch_size
        self.data_key = data_key
        self.num_examples = len(source)
        self.batches_per_epoch = self.num_examples // batch_size
        if self.batches_per_epoch == 0:
            raise UserError(f"batch size {batch_size} exceeds the dataset's {self.num_examples}"
                             " examples: use a smaller --batch-size")
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        first = source[0]
        self._cache = None
        if self.num_examples * np.asarray(first["image"]).nbytes <= cache_bytes:
            self._cache = {name: np.zeros((self.num_examples, *np.shape(value)),
                                          np.int32 if name == "label" else np.asarray(value).dtype)
                           for name, value in first.items() if name in ("image", "label")}
            self._cached = np.zeros(self.num_examples, bool)

    @functools.lru_cache(maxsize=2)
    def _epoch_order(self, epoch: int) -> np.ndarray:
        key = jax.random.fold_in(self.data_key, epoch)
        with jax.default_device(jax.local_devices(backend="cpu")[0]):
            return np.asarray(jax.random.permutation(key, self.num_examples))

    def position(self, step: int) -> dict:
        epoch, batch = divmod(step, self.batches_per_epoch)
        return {"epoch": epoch, "batch_in_epoch": batch, "examples_seen": step * self.batch_size,
                "batch_size": self.batch_size, "dataset_size": self.num_examples}

    def batch(self, step: int) -> dict:
        epoch, index = divmod(step, self.batches_per_epoch)
        order = self._epoch_order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        if self._cache is None:
            return self._read(order)
        missing = order[~self._cached[order]]
        if missing.size:
            for name, values in self._read(missing).items():
                self._cache[name][missing] = values
            self._cached[missing] = True
        return {name: values[order] for name, values in self._cache.items()}

    def _read(self, indices: np.ndarray) -> dict:
        examples = self.source.__getitems__(indices.tolist())
        batch = {"image": np.stack([e["image"] for e in examples])}
        if "label" in examples[0]:
            batch["label"] = np.asarray([e["label"] for e in examples], np.int32)
        return batch

    def iterate(self, start_step: int):
        """Yield `(step, batch)` from `start_step` on, one batch read ahead."""
        step = start_step
        pending = self._executor.submit(self.batch, step)
        while True:
            batch = pending.result()
            pending = self._executor.submit(self.batch, step + 1)
            yield step, batch
            step += 1


def image_shape(source) -> tuple[int, int, int]:
    """`(H, W, C)` of the source's images."""
    image = np.asarray(source[0]["image"])
    return image.shape if image.ndim == 3 else (*image.shape, 1)


def num_classes(source) -> int:
    """Classes of the source's "label" feature; 0 when it has no class labels."""
    features = source.dataset_info.features
    return int(getattr(features["label"], "num_classes", 0) or 0) if "label" in features else 0

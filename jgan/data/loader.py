"""Deterministic batches from a random-access source, positioned by the step.

Epoch e visits the examples in the order `jax.random.permutation(fold_in(data_key, e), N)` and drops
the last partial batch, so batch k is a pure function of (data key, batch size, k). The loader's
position is therefore the step; it is still written into every checkpoint and checked on restore.
In a multi-process job each process reads only its `rows` of every batch, and since the batch
depends on neither the process count nor the process, a job resumes with any number of processes.
Unpaired data (CycleGAN's A and B folders) is two such streams, each with its own key and epochs.
"""

from __future__ import annotations

import concurrent.futures
import functools

import jax
import numpy as np

from jgan.errors import UserError


def example_arrays(example: dict) -> dict[str, np.ndarray]:
    """The numeric arrays of one example, as batches hold them: a "label" is int32.

    Non-numeric features (a TFDS example's string id, say) are left out of batches.
    """
    arrays = {}
    for name, value in example.items():
        value = np.asarray(value)
        if value.dtype.kind in "biuf":
            arrays[name] = value.astype(np.int32) if name == "label" else value
    return arrays


class _Prefetching:
    """`iterate` for a loader whose `batch(step)` is pure: the next batch is read on a thread."""

    def iterate(self, start_step: int):
        """Yield `(step, batch)` from `start_step` on, one batch read ahead."""
        step = start_step
        pending = self._executor.submit(self.batch, step)
        while True:
            batch = pending.result()
            pending = self._executor.submit(self.batch, step + 1)
            yield step, batch
            step += 1


class BatchLoader(_Prefetching):
    """Batches of named arrays, e.g. `{"image": uint8 [B, H, W, C], "label": int32 [B]}`.

    A batch holds every numeric feature of the source's examples (see `example_arrays`). A source
    with a `take(indices) -> dict` method (arrays already in memory) is indexed directly; another
    whose examples fit in `cache_bytes` is decoded once: each example is kept after its first read.
    """

    def __init__(self, source, *, batch_size: int, data_key: jax.Array,
                 cache_bytes: int = 2 << 30, stream: str = "", rows: slice | None = None):
        self.source = source
        self.batch_size = batch_size
        self.rows = rows
        self.data_key = data_key
        self.num_examples = len(source)
        self.batches_per_epoch = self.num_examples // batch_size
        if self.batches_per_epoch == 0:
            where = f"{stream}'s" if stream else "the dataset's"
            raise UserError(f"batch size {batch_size} exceeds {where} {self.num_examples}"
                            " examples: use a smaller --batch-size")
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._cache = None
        if hasattr(source, "take"):
            return
        first = example_arrays(source[0])
        if self.num_examples * sum(value.nbytes for value in first.values()) <= cache_bytes:
            self._cache = {name: np.zeros((self.num_examples, *value.shape), value.dtype)
                           for name, value in first.items()}
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
        """This process's `rows` of global batch `step` (all of it in one process)."""
        return self.global_batch(step, rows=self.rows)

    def global_batch(self, step: int, *, rows: slice | None = None) -> dict:
        """Batch `step` of the run, whatever share of it this process reads."""
        epoch, index = divmod(step, self.batches_per_epoch)
        order = self._epoch_order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        if rows is not None:
            order = order[rows]
        if self._cache is None:
            return self._read(order)
        missing = order[~self._cached[order]]
        if missing.size:
            for name, values in self._read(missing).items():
                self._cache[name][missing] = values
            self._cached[missing] = True
        return {name: values[order] for name, values in self._cache.items()}

    def _read(self, indices: np.ndarray) -> dict:
        if hasattr(self.source, "take"):
            return self.source.take(indices)
        examples = [example_arrays(e) for e in self.source.__getitems__(indices.tolist())]
        return {name: np.stack([e[name] for e in examples]) for name in examples[0]}


class UnpairedLoader(_Prefetching):
    """Independent streams batched side by side: `{"image_A": [B, ...], "image_B": [B, ...]}`.

    Stream i is a `BatchLoader` keyed by `fold_in(data_key, i)` over its own source, so the A rows
    and the B rows of a batch follow unrelated orders, and each stream counts its own epochs
    (the folders differ in size). A batch is still a pure function of (data key, batch size, step).
    """

    def __init__(self, sources: dict, *, batch_size: int, data_key: jax.Array,
                 rows: slice | None = None):
        self.streams = {name: BatchLoader(source, batch_size=batch_size, stream=f"stream {name}",
                                          data_key=jax.random.fold_in(data_key, index), rows=rows)
                        for index, (name, source) in enumerate(sources.items())}
        self.batch_size = batch_size
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def position(self, step: int) -> dict:
        return {name: stream.position(step) for name, stream in self.streams.items()}

    def batch(self, step: int) -> dict:
        return {name: values for stream in self.streams.values()
                for name, values in stream.batch(step).items()}

    def global_batch(self, step: int) -> dict:
        return {name: values for stream in self.streams.values()
                for name, values in stream.global_batch(step).items()}


def image_shape(source) -> tuple[int, int, int]:
    """`(H, W, C)` of the source's images."""
    image = np.asarray(source[0]["image"])
    return image.shape if image.ndim == 3 else (*image.shape, 1)


def num_classes(source) -> int:
    """Classes of the source's "label" feature; 0 when it has no class labels."""
    info = getattr(source, "dataset_info", None)
    if info is None:
        return 0
    features = info.features
    return int(getattr(features["label"], "num_classes", 0) or 0) if "label" in features else 0

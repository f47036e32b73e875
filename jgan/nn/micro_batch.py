"""Large-batch convolutions on XLA:CPU, run as a few smaller ones inside the same program.

XLA:CPU's convolutions slow down more than linearly with the batch: DCGAN's whole train step at
batch 256 took 424 ms with each convolution in one call and 275 ms with them split as below, on 2
CPU cores (docs/performance.md). So the custom VJPs of `jgan.nn.conv_transpose` and
`jgan.nn.strided_conv` split the batch of every convolution they run (forward, input gradient,
kernel gradient) into micro-batches: outputs and input gradients are put back together, kernel
gradients summed. Only the convolutions are split; BatchNorm and the losses still see the whole
batch, so the step computes the same function (up to the order of the kernel gradient's sum).

The micro-batches interleave rows (micro-batch c holds rows c, c + n, c + 2n, ...) rather than
cutting the batch into blocks: a batch split over devices in blocks then gives every device an
equal share of every micro-batch, so no rows move between devices. The split is unrolled in
Python: XLA:CPU runs convolutions inside a loop body (`lax.map`) about 10x slower.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Batches of at most SPLIT_ABOVE rows run in one call, as before micro-batching, so runs at the
# paper's batch of 64 keep their bits. Larger ones run as calls of at most FORWARD_ROWS rows for
# outputs and GRADIENT_ROWS rows for gradients: the sizes that were fastest for DCGAN's step at
# batch 256 (docs/performance.md).
SPLIT_ABOVE = 64
FORWARD_ROWS = 64
GRADIENT_ROWS = 32


def micro_batch_count(batch: int, max_rows: int) -> int:
    """How many micro-batches a convolution over `batch` rows runs as: the fewest equal parts of
    at most `max_rows` rows. 1 (one call) off the CPU, whose convolutions do not show the
    blow-up; for batches of at most `SPLIT_ABOVE` rows; and where no part count up to twice the
    fewest divides the batch (parts much smaller than `max_rows` cost more calls than they save).
    """
    if jax.default_backend() != "cpu" or batch <= SPLIT_ABOVE or batch <= max_rows:
        return 1
    fewest = -(-batch // max_rows)
    return next((count for count in range(fewest, 2 * fewest + 1) if batch % count == 0), 1)


def split_rows(x, count: int) -> list:
    """`count` interleaved micro-batches of `x`'s leading axis: part c has rows c, c + count, ..."""
    if count == 1:
        return [x]
    grouped = x.reshape(x.shape[0] // count, count, *x.shape[1:])
    return [grouped[:, c] for c in range(count)]


def merge_rows(parts: list):
    """The inverse of `split_rows`."""
    if len(parts) == 1:
        return parts[0]
    merged = jnp.stack(parts, axis=1)
    return merged.reshape(-1, *merged.shape[2:])


def map_rows(fn, *arrays, max_rows: int):
    """`fn(*arrays)` for a per-row function `fn`, computed one micro-batch at a time."""
    count = micro_batch_count(arrays[0].shape[0], max_rows)
    parts = zip(*(split_rows(a, count) for a in arrays))
    return merge_rows([fn(*part) for part in parts])


def sum_rows(fn, *arrays, max_rows: int):
    """`fn(*arrays)` for `fn` a sum over rows (a kernel gradient), one micro-batch at a time."""
    count = micro_batch_count(arrays[0].shape[0], max_rows)
    parts = zip(*(split_rows(a, count) for a in arrays))
    values = [fn(*part) for part in parts]
    # Accumulate in float32 at least, so bf16 gradients lose nothing to the split.
    accumulate = jnp.promote_types(values[0].dtype, jnp.float32)
    total = values[0].astype(accumulate)
    for value in values[1:]:
        total = total + value.astype(accumulate)
    return total.astype(values[0].dtype)

"""Gradient accumulation: a loss over a batch, taken in micro-batches, equal to the whole batch.

For a loss that is a mean over examples with no layer that mixes them, the mean of the
micro-batches' gradients is the whole batch's gradient: `accumulated_value_and_grad` runs them
one after another in a `lax.scan`, so only one micro-batch's activations are live at a time.
Layers that mix examples (BatchNorm) belong outside the function, on the whole batch.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def to_micro_batches(tree, micro_batches: int):
    """Leaves [B, ...] -> [micro_batches, B / micro_batches, ...]; row i * n + j goes to
    micro-batch j, so each micro-batch keeps its share of every device's rows when the batch
    axis is sharded (as `jgan.train.step_parts.split_critic_batches`)."""
    def split(x):
        return jnp.moveaxis(x.reshape(x.shape[0] // micro_batches, micro_batches,
                                      *x.shape[1:]), 1, 0)

    return jax.tree.map(split, tree)


def from_micro_batches(tree):
    """The inverse of `to_micro_batches`."""
    def join(x):
        x = jnp.moveaxis(x, 0, 1)
        return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    return jax.tree.map(join, tree)


def accumulated_value_and_grad(loss_fn: Callable, micro_batches: int, *,
                               wrt: str = "params"):
    """`jax.value_and_grad(loss_fn, has_aux=True)` with the batch taken in micro-batches.

    `loss_fn(params, inputs, batch) -> (loss, (state, metrics))` must be a mean over the
    examples of `inputs` and `batch` (pytrees whose leaves have the batch axis first). `state`
    (updated collections, the same from every micro-batch) comes back from the last micro-batch,
    `metrics` (means over examples) averaged. Returns a function of `(params, inputs, batch)`
    giving `((loss, (state, metrics)), gradients)`, the gradients with respect to `wrt`:
    "params", or "inputs" (float leaves; they come back in the batch's order and scale, as if
    taken whole). With one micro-batch it is `value_and_grad` itself.
    """
    argnums = {"params": 0, "inputs": 1}[wrt]
    grad_fn = jax.value_and_grad(loss_fn, argnums=argnums, has_aux=True)
    if micro_batches == 1:
        return grad_fn

    def accumulated(params, inputs, batch):
        def one(total, micro_batch):
            (loss, aux), grads = grad_fn(params, *micro_batch)
            if wrt == "params":
                return jax.tree.map(jnp.add, total, grads), (loss, aux)
            return total, (loss, aux, grads)

        micro = to_micro_batches((inputs, batch), micro_batches)
        zeros = jax.tree.map(jnp.zeros_like, params) if wrt == "params" else None
        total, outputs = jax.lax.scan(one, zeros, micro)
        loss, (state, metrics) = jnp.mean(outputs[0]), outputs[1]
        aux = jax.tree.map(lambda x: x[-1], state), jax.tree.map(jnp.mean, metrics)
        summed = total if wrt == "params" else from_micro_batches(outputs[2])
        return (loss, aux), jax.tree.map(lambda g: g / micro_batches, summed)

    return accumulated

"""BatchNorm with class-conditional gains and biases (de Vries et al. 2017; Dumoulin et al. 2017),
in the form BigGAN uses (Brock et al. 2019, Sec. 3 and App. B): y = x_hat (1 + W_g c) + W_b c,
where c is the conditioning vector (a shared class embedding and a chunk of z).

Statistics are taken over every axis but the channels of the batch the network is called on.
Under jgan's data parallelism that batch is the global one, sharded over devices and hosts, so
the statistics are cross-replica (Sec. 4's "cross-replica BatchNorm") without a collective
written here: XLA reduces over the sharded axis.

Each training call also sows its batch moments into `BATCH_MOMENTS` when the caller makes that
collection mutable, so `standing_statistics` can average them over many batches (BigGAN's
"standing statistics", App. C.2 / `accumulate_standing_stats` in BigGAN-PyTorch).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.nn.spectral_norm import maybe_spectral_norm

BATCH_MOMENTS = "batch_moments"


def _keep_latest(_, latest):
    return latest


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are linear in `conditioning` [B, D], or learned per channel
    when it is None (a plain BatchNorm). Running averages with PyTorch's momentum 0.1."""

    spectral_norm: bool = False  # on the gain and bias projections
    momentum: float = 0.9
    epsilon: float = 1e-5
    kernel_init: nn.initializers.Initializer = nn.initializers.orthogonal()

    @nn.compact
    def __call__(self, x, conditioning=None, *, train: bool):
        features = x.shape[-1]
        axes = tuple(range(x.ndim - 1))
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        running_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        if train:
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            for name, value in ("mean", mean), ("var", var):
                self.sow(BATCH_MOMENTS, name, value, init_fn=lambda: None,
                         reduce_fn=_keep_latest)
            if not self.is_initializing():
                running_mean.value = self.momentum * running_mean.value + (
                    1 - self.momentum) * mean
                running_var.value = self.momentum * running_var.value + (
                    1 - self.momentum) * var
        else:
            mean, var = running_mean.value, running_var.value
        normalized = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        if conditioning is None:
            gain = self.param("scale", nn.initializers.ones, (features,))
            bias = self.param("bias", nn.initializers.zeros, (features,))
            return normalized * gain + bias

        def projection(name):
            layer = nn.Dense(features, use_bias=False, kernel_init=self.kernel_init, name=name)
            out = maybe_spectral_norm(layer, conditioning, enabled=self.spectral_norm,
                                      train=train)
            return out.reshape(out.shape[0], *(1,) * (x.ndim - 2), features)

        return normalized * (1.0 + projection("gain")) + projection("bias")


def standing_statistics(moments: list[dict]) -> dict:
    """`batch_stats` that average the `BATCH_MOMENTS` trees of several training-mode calls: the
    statistics of a network over many batches, not the running averages of its training."""
    return jax.tree.map(lambda *values: sum(values) / len(values), *moments)

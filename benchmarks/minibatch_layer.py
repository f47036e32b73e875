"""Minibatch discrimination's cost on XLA:CPU: jgan's layer against one sum over the kernel axis.

    python benchmarks/minibatch_layer.py [--seeds 8] [--batch 512]

The 2-D benchmark's setting (10 kernels of 5 on D's 128 features, batch 512, 8 seeds vmapped):
forward and backward of sum_i o(x_i) through `jgan.nn.MinibatchDiscrimination`, and through the
same formula written as one `jnp.sum(|M_i - M_j|, axis=-1)` over an [N, N, B, C] difference, the
layer's form before issue 31. Prints the median of 5 timed calls after a compile.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgan.nn import MinibatchDiscrimination


def one_sum(m):
    return jnp.sum(jnp.abs(m[:, None] - m[None, :]), axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--kernels", type=int, default=10)
    parser.add_argument("--kernel-dim", type=int, default=5)
    args = parser.parse_args()
    layer = MinibatchDiscrimination(args.kernels, args.kernel_dim)
    features = jax.random.normal(jax.random.key(1), (args.seeds, args.batch, 128))
    params = jax.vmap(layer.init, in_axes=(None, 0))(jax.random.key(0), features)

    def jgan_loss(p, f):
        return jnp.sum(layer.apply(p, f)[:, -args.kernels:])

    def one_sum_loss(p, f):
        m = (f @ p["params"]["kernel"]).reshape(-1, args.kernels, args.kernel_dim)
        return jnp.sum(jnp.exp(-one_sum(m)))

    for name, loss in (("jgan (per coordinate)", jgan_loss), ("one sum over C", one_sum_loss)):
        fn = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1))))
        jax.block_until_ready(fn(params, features))
        times = []
        for _ in range(5):
            start = time.perf_counter()
            jax.block_until_ready(fn(params, features))
            times.append(time.perf_counter() - start)
        print(f"{name}: {np.median(times):.3f} s forward and backward "
              f"({args.seeds} seeds, batch {args.batch}, {args.kernels} kernels of "
              f"{args.kernel_dim})")


if __name__ == "__main__":
    main()

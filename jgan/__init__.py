"""jgan: classic GANs in JAX/Flax, reproducible from a PRNG key and data-parallel."""

__version__ = "0.1.0"

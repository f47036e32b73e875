"""Train states: immutable pytrees holding every network of a run by name.

A GAN has `{"g", "d"}`; BiGAN adds `"e"`; CycleGAN has two generators and two discriminators. Each
network carries its parameters, its optimizer state and its non-trainable variables (BatchNorm
statistics, spectral-norm vectors). Family-specific extras (EMA weights, an image pool) go in
`extra`. Modules and optimizers are not state: they live in `Network`, outside the pytree.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jgan.memory import return_freed_memory
from jgan.nn.features import FEATURES_COLLECTION, sown_features


@flax.struct.dataclass
class NetworkState:
    params: Any
    opt_state: Any
    collections: Any  # non-trainable variables by collection, e.g. {"batch_stats": ...}

    def variables(self, params=None) -> dict:
        """Flax variables for `apply`, optionally with other parameters (for gradients)."""
        return {"params": self.params if params is None else params, **self.collections}


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: completed steps
    nets: dict[str, NetworkState]
    extra: dict = flax.struct.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Network:
    """What is fixed for a run: the module, its optimizer, and the random streams it draws
    besides "params" and "dropout" (e.g. StyleGAN's per-layer "noise"), seeded at init."""

    module: nn.Module
    tx: optax.GradientTransformation
    rngs: tuple[str, ...] = ()


def apply_network(module: nn.Module, variables: dict, *args, rngs=None, features: bool = False,
                  **kwargs):
    """`module.apply` that always returns `(output, updated non-trainable collections)`.

    With `features=True` it returns `(output, collections, features)`, the features the module
    sowed with `jgan.nn.sow_features` (D's last hidden layer, for feature matching).
    """
    mutable = [name for name in variables if name != "params"]
    if features:
        output, collections = module.apply(variables, *args, rngs=rngs,
                                           mutable=[*mutable, FEATURES_COLLECTION], **kwargs)
        collections = dict(collections)
        sown = sown_features(collections)
        del collections[FEATURES_COLLECTION]
        return output, collections, sown
    if not mutable:
        return module.apply(variables, *args, rngs=rngs, **kwargs), {}
    return module.apply(variables, *args, rngs=rngs, mutable=mutable, **kwargs)


def init_network(network: Network, key: jax.Array, *example_inputs) -> NetworkState:
    k_params, k_dropout = jax.random.split(key)
    rngs = {"params": k_params, "dropout": k_dropout}
    # Further streams fold out of the dropout key, so networks without any keep their bits.
    rngs.update({name: jax.random.fold_in(k_dropout, index + 1)
                 for index, name in enumerate(network.rngs)})
    variables = network.module.init(rngs, *example_inputs, train=False)
    params = variables.pop("params")
    return NetworkState(params=params, opt_state=network.tx.init(params),
                        collections=dict(variables))


def init_train_state(networks: dict[str, Network], key: jax.Array,
                     example_inputs: dict[str, tuple]) -> TrainState:
    """Initialise each named network from its own key, folded in by its sorted position.

    Called outside `jit`, each network's init is a program of its own, compiled, run and freed
    before the next: one program for all of them holds every initializer of every network at once
    (BigGAN's took 400 MiB once loaded, docs/performance.md). Under `jit` (a traced key) they are
    one program. The values are the same either way (tests/test_train.py)."""
    traced = isinstance(key, jax.core.Tracer)
    nets = {}
    for index, name in enumerate(sorted(networks)):
        init = functools.partial(init_network, networks[name])
        nets[name] = (init if traced else jax.jit(init))(jax.random.fold_in(key, index),
                                                          *example_inputs[name])
        if not traced:
            jax.block_until_ready(nets[name])
            return_freed_memory()
    return TrainState(step=jnp.zeros((), jnp.int32), nets=nets)


def apply_gradients(network: Network, state: NetworkState, grads, collections) -> NetworkState:
    updates, opt_state = network.tx.update(grads, state.opt_state, state.params)
    return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state,
                         collections=collections)

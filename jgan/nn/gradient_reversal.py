"""The gradient-reversal layer of DANN (Ganin & Lempitsky 2015; Ganin et al. 2016, eq. 13-14).

`reverse_gradient(x, lambda_)` is the identity forward; backward it multiplies the incoming
gradient by `-lambda_`. Placed between the feature extractor and the domain classifier, one
descent step then lowers the domain loss for the classifier and raises it for the features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_vjp
def reverse_gradient(x, lambda_):
    """Identity on `x` (any shape); the gradient flowing back is scaled by `-lambda_`."""
    return x


def _forward(x, lambda_):
    return x, lambda_


def _backward(lambda_, grad):
    # lambda_ is a schedule's value, not a parameter: it gets no gradient of its own.
    return -lambda_ * grad, jnp.zeros_like(lambda_)


reverse_gradient.defvjp(_forward, _backward)

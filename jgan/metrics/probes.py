"""Probes of a learned representation: linear-probe and 1-nearest-neighbour accuracy.

BiGAN's encoder is judged by how well simple classifiers do on its features E(x) (Donahue et al.
2017, Sec. 4.1 and Table 1: 1-NN on MNIST). Both probes are deterministic and written in JAX, so
they run on the accelerator beside the model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.errors import UserError

QUERY_CHUNK = 1024  # test rows per distance block: 1024 x 60k float32 is 250 MB


def _check(train_features, train_labels, test_features, test_labels) -> None:
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise UserError("each feature array needs one label per row: got "
                        f"{len(train_features)}/{len(train_labels)} train and "
                        f"{len(test_features)}/{len(test_labels)} test")
    if np.shape(train_features)[1:] != np.shape(test_features)[1:]:
        raise UserError(f"train features {np.shape(train_features)[1:]} and test features "
                        f"{np.shape(test_features)[1:]} differ: encode both with one encoder")


def nearest_neighbour_accuracy(train_features, train_labels, test_features, test_labels) -> float:
    """Share of test rows whose Euclidean nearest training row has their label.

    Euclidean, with training rows as the neighbours, as the BiGAN code measures it (its default
    metric); ties go to the lowest training index.
    """
    _check(train_features, train_labels, test_features, test_labels)
    train = jnp.asarray(train_features, jnp.float32)
    train_sq = jnp.sum(train ** 2, axis=1)

    @jax.jit
    def nearest(queries):
        # ||q - t||^2 = ||q||^2 - 2 q.t + ||t||^2; ||q||^2 does not change the argmin.
        return jnp.argmin(train_sq[None, :] - 2.0 * queries @ train.T, axis=1)

    test = np.asarray(test_features, np.float32)
    indices = np.concatenate([np.asarray(nearest(test[i:i + QUERY_CHUNK]))
                              for i in range(0, len(test), QUERY_CHUNK)])
    return float(np.mean(np.asarray(train_labels)[indices] == np.asarray(test_labels)))


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, *,
                          l2: float = 1e-4, iterations: int = 500) -> float:
    """Test accuracy of multinomial logistic regression trained on standardised features.

    The regression is full-batch L-BFGS (`optax.lbfgs`) on the mean cross-entropy plus
    `l2` * ||W||^2, from zero weights, so the result depends on the features alone. Features are
    standardised with the training mean and standard deviation.
    """
    _check(train_features, train_labels, test_features, test_labels)
    train = jnp.asarray(train_features, jnp.float32)
    test = jnp.asarray(test_features, jnp.float32)
    mean, std = jnp.mean(train, 0), jnp.std(train, 0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    labels = jnp.asarray(train_labels, jnp.int32)
    num_classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
    params = {"w": jnp.zeros((train.shape[1], num_classes)), "b": jnp.zeros(num_classes)}

    def loss(params):
        logits = train @ params["w"] + params["b"]
        return (jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
                + l2 * jnp.sum(params["w"] ** 2))

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def fit(params):
        def iteration(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(grad, state, params, value=value, grad=grad,
                                           value_fn=loss)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(iteration, (params, solver.init(params)), None,
                                      length=iterations)
        return params

    params = fit(params)
    predictions = jnp.argmax(test @ params["w"] + params["b"], axis=1)
    return float(jnp.mean(predictions == jnp.asarray(test_labels)))

"""Train jgan's feature classifier: `python -m jgan.metrics.train_classifier --dataset mnist`.

Trains `DigitClassifier` on the dataset's train split (Adam, cosine-decayed rate, dropout) with
jgan's deterministic loader and a data-parallel jitted step, reports the test-split accuracy, and
writes the weights as npz. Same seed, same data, same machine: the same weights, bit for bit.
The shipped files were made with the full datasets:

    python -m jgan.metrics.train_classifier --dataset mnist --data-dir ../shared/datasets
    python -m jgan.metrics.train_classifier --dataset fashion_mnist --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jgan.data import BatchLoader, find_dataset, image_shape, num_classes
from jgan.errors import UserError, reports_errors
from jgan.metrics.classifier import IMAGE_SHAPE, DigitClassifier, uint8_to_input, weights_path
from jgan.metrics.reference import split_images
from jgan.train.parallel import (check_batch_size, jit_data_parallel, make_mesh, replicated,
                                 shard_batch)
from jgan.train.state import Network, apply_gradients, init_train_state
from jgan.weights import save_weights

# Epochs that reach the targets (MNIST >= 99%, Fashion-MNIST >= 90% test accuracy) with margin.
DEFAULT_EPOCHS = {"mnist": 6, "fashion_mnist": 15}
EVAL_CHUNK = 1000


def make_train_step(network: Network):
    def train_step(state, batch, key):
        key = jax.random.fold_in(key, state.step)
        net = state.nets["classifier"]

        def loss_fn(params):
            _, logits = network.module.apply(
                {"params": params}, uint8_to_input(batch["image"]), train=True,
                rngs={"dropout": key})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
            return loss, jnp.mean(jnp.argmax(logits, -1) == batch["label"])

        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
        net = apply_gradients(network, net, grads, net.collections)
        return (state.replace(step=state.step + 1, nets={"classifier": net}),
                {"loss": loss, "accuracy": accuracy})

    return train_step


def predict(module, params, images, *, chunk: int = EVAL_CHUNK):
    """`(features, logits)` as float32 numpy of uint8 images, `chunk` images per call."""
    apply = jax.jit(lambda p, x: module.apply({"params": p}, uint8_to_input(x)))
    outputs = [apply(params, images[start:start + chunk]) for start in range(0, len(images), chunk)]
    return tuple(np.concatenate([np.asarray(out[i]) for out in outputs]) for i in range(2))


def accuracy(module, params, images, labels) -> float:
    return float(np.mean(np.argmax(predict(module, params, images)[1], -1) == labels))


def train_classifier(dataset: str, *, data_dir=None, epochs: int | None = None,
                     steps: int | None = None, batch_size: int = 128, learning_rate: float = 1e-3,
                     seed: int = 0, measure_untrained: bool = False, log=print):
    """Returns `(params, meta)`; `steps` (default: `epochs` of the train split) caps the run.

    `measure_untrained` adds the test accuracy of the initial network, before any step, to `meta`
    as `untrained_test_accuracy`: the baseline that shows what the run itself learnt.
    """
    source = find_dataset(dataset, data_dir)
    train_split = source.open("train")
    if image_shape(train_split) != IMAGE_SHAPE or num_classes(train_split) != 10:
        raise UserError(f"{dataset} has {image_shape(train_split)} images in "
                        f"{num_classes(train_split)} classes; the classifier takes 28x28x1 "
                        "images in 10 classes (use --features inception for other data)")
    epochs = epochs or DEFAULT_EPOCHS.get(dataset, 10)
    mesh = make_mesh()
    check_batch_size(batch_size, mesh)
    k_init, k_run, k_data = jax.random.split(jax.random.key(seed), 3)
    loader = BatchLoader(train_split, batch_size=batch_size, data_key=k_data)
    total = steps or epochs * loader.batches_per_epoch
    network = Network(DigitClassifier(), optax.adam(optax.cosine_decay_schedule(learning_rate,
                                                                                total)))
    state = jax.jit(lambda key: init_train_state(
        {"classifier": network}, key, {"classifier": (jnp.zeros((1, *IMAGE_SHAPE)),)}),
        out_shardings=replicated(mesh))(k_init)
    untrained = state.nets["classifier"].params  # immutable, and no step donates it
    step_fn = jit_data_parallel(make_train_step(network), mesh)
    start = time.perf_counter()
    log(f"data: {source.description}; {total} steps of {batch_size} images")
    with tqdm(total=total, desc=f"classifier {dataset}", unit="step", file=sys.stdout,
              mininterval=0.5 if sys.stdout.isatty() else 30.0) as progress:
        for step, batch in loader.iterate(0):
            if step == total:
                break
            state, metrics = step_fn(state, shard_batch(batch, mesh), k_run)
            progress.update(1)
            if (step + 1) % 100 == 0:
                progress.set_postfix({name: f"{float(v):.4f}" for name, v in metrics.items()},
                                     refresh=False)
    params = jax.device_get(state.nets["classifier"].params)
    test_images, test_labels = split_images(source.open("test"), None)
    test_accuracy = accuracy(network.module, params, test_images, test_labels)
    wall_s = time.perf_counter() - start
    log(f"{dataset} test accuracy {test_accuracy:.4f} on {len(test_labels)} images "
        f"({wall_s:.0f} s)")
    meta = {"dataset": dataset, "data": source.description, "test_accuracy": test_accuracy,
            "test_images": len(test_labels), "steps": total, "batch_size": batch_size,
            "learning_rate": learning_rate, "seed": seed, "train_wall_s": round(wall_s, 1),
            "command": "python -m jgan.metrics.train_classifier " + " ".join(sys.argv[1:])}
    if measure_untrained:
        meta["untrained_test_accuracy"] = accuracy(network.module, untrained, test_images,
                                                   test_labels)
        log(f"untrained: test accuracy {meta['untrained_test_accuracy']:.4f}")
    return params, meta


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(prog="python -m jgan.metrics.train_classifier",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", help="mnist or fashion_mnist")
    parser.add_argument("--data-dir", default=None,
                        help="folder laid out as shared/datasets (default: $JGAN_DATA_DIR, "
                             "else the bundled MNIST subset)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"passes over the train split (default {DEFAULT_EPOCHS})")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="npz to write (default: the shipped jgan/metrics/weights/DATASET.npz)")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    params, meta = train_classifier(args.dataset, data_dir=args.data_dir, epochs=args.epochs,
                                    steps=args.steps, batch_size=args.batch_size,
                                    seed=args.seed)
    out = args.out or weights_path(args.dataset)
    save_weights(out, params, meta)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

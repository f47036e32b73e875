"""A small CNN classifier for 28x28 images: jgan's own feature network for MNIST-like data.

Inception features mean little on 28x28 digits, so GAN papers on MNIST measure samples with a
classifier trained on the data instead: its penultimate layer gives "classifier FID/KID"
features, and its class probabilities give the Inception-Score analogue and the class accuracy
of conditional generators (the share of samples classified as the label they were asked for).

The network is the classic two-conv MNIST CNN (conv 5x5x32, pool, conv 5x5x64, pool, dense 128,
dense 10), with dropout before the last layer. Weights trained by
`python -m jgan.metrics.train_classifier` ship in `jgan/metrics/weights/<dataset>.npz`: plain
arrays under their Flax parameter paths, plus a JSON record of how they were made. No pickle.
"""

from __future__ import annotations

from pathlib import Path

import flax.linen as nn
import jax.numpy as jnp

from jgan import weights
from jgan.errors import UserError

WEIGHTS_DIR = Path(__file__).parent / "weights"
IMAGE_SHAPE = (28, 28, 1)


class DigitClassifier(nn.Module):
    """`images [N, 28, 28, 1]` in [-1, 1] -> `(features [N, feature_dim], logits [N, classes])`."""

    num_classes: int = 10
    feature_dim: int = 128
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, images, *, train: bool = False):
        x = images
        for features in (32, 64):
            x = nn.relu(nn.Conv(features, (5, 5))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(len(x), -1)))
        dropped = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
        return features, nn.Dense(self.num_classes)(dropped)


def uint8_to_input(images) -> jnp.ndarray:
    """uint8 `[N, 28, 28, 1]` (or `[N, 28, 28]`) -> float32 in [-1, 1], as the GANs' images."""
    images = jnp.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return images.astype(jnp.float32) / 127.5 - 1.0


def weights_path(dataset: str) -> Path:
    return WEIGHTS_DIR / f"{dataset}.npz"


def shipped_datasets() -> list[str]:
    return sorted(path.stem for path in WEIGHTS_DIR.glob("*.npz"))


def load_weights(path) -> tuple[dict, dict]:
    """`(params, meta)` of a classifier saved by `jgan.weights.save_weights`."""
    return weights.load_weights(path, missing_hint="train them with python -m "
                                "jgan.metrics.train_classifier --dataset NAME --out PATH")


def shipped_weights(dataset: str) -> tuple[dict, dict]:
    """The classifier trained on `dataset` that ships with jgan."""
    if not weights_path(dataset).is_file():
        raise UserError(f"jgan ships no classifier for {dataset} (only for "
                        f"{', '.join(shipped_datasets())}): use --features inception, or train "
                        f"one with python -m jgan.metrics.train_classifier --dataset {dataset}")
    return load_weights(weights_path(dataset))

"""Prepare MNIST and Fashion-MNIST for `tfds.data_source` from their raw IDX files, without TensorFlow.

The stock TFDS builders read their downloads with `tf.io.gfile`. The builder here reads the same
four `.gz` files with numpy and yields PIL images (which TFDS encodes without TensorFlow), under the
stock builder's name, version, features and example keys: the prepared folder is interchangeable
with the stock one, in the same example order, and `tfds.data_source(name, data_dir=...)` reads it.
"""

from __future__ import annotations

import fcntl
import gzip
import os
from pathlib import Path

import numpy as np

IDX_DATASETS = ("mnist", "fashion_mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_TFDS_VERSION = "3.0.1"  # the stock builders' version for both datasets


def read_idx_images(path) -> np.ndarray:  # [N, 28, 28] uint8
    data = gzip.open(path).read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path) -> np.ndarray:  # [N] uint8
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=8)


def missing_idx_files(raw_dir) -> list[str]:
    return [name for files in IDX_FILES.values() for name in files
            if not (Path(raw_dir) / name).is_file()]


def _make_builder_class(dataset: str, raw_dir: Path):
    import PIL.Image
    import tensorflow_datasets as tfds

    class IdxBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = dataset
        VERSION = tfds.core.Version(_TFDS_VERSION)

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }),
                supervised_keys=("image", "label"),
                description=f"{dataset} prepared by jgan from the IDX files in {raw_dir}.")

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing is downloaded
            return {split: self._generate_examples(*(raw_dir / f for f in files))
                    for split, files in IDX_FILES.items()}

        def _generate_examples(self, images_path, labels_path):
            images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
            # The stock builders key each example by its IDX index; TFDS orders by that key's hash.
            for index, (image, label) in enumerate(zip(images, labels)):
                yield index, {"image": PIL.Image.fromarray(image), "label": int(label)}

    return IdxBuilder


def prepare_idx_dataset(dataset: str, raw_dir, tfds_data_dir) -> Path:
    """Write `tfds_data_dir/<dataset>/3.0.1` (array_record) from the IDX files in `raw_dir`.

    Does nothing if it is already there. Returns the prepared folder.
    """
    import tensorflow_datasets as tfds

    raw_dir, tfds_data_dir = Path(raw_dir).resolve(), Path(tfds_data_dir)
    prepared = tfds_data_dir / dataset / _TFDS_VERSION
    if (prepared / "dataset_info.json").is_file():
        return prepared
    os.makedirs(tfds_data_dir, exist_ok=True)
    # Two runs starting together on an empty cache must not both prepare: the second rename
    # would fail. The second waits on the lock, then finds the first one's result.
    with open(tfds_data_dir / f".{dataset}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prepared / "dataset_info.json").is_file():
            return prepared
        print(f"preparing {dataset} for tfds.data_source from {raw_dir} into {prepared} (once)")
        tfds.disable_progress_bar()
        builder = _make_builder_class(dataset, raw_dir)(data_dir=str(tfds_data_dir))
        # TFDS writes into an `incomplete.*` folder and renames it when done, so an interrupted
        # preparation leaves nothing half-written behind.
        builder.download_and_prepare(file_format="array_record")
    return prepared

"""Datasets by TFDS name, read with `tfds.data_source` from array_record, and deterministic batches."""

from jgan.data.idx import prepare_idx_dataset, read_idx_images, read_idx_labels
from jgan.data.loader import BatchLoader, image_shape, num_classes
from jgan.data.sources import DatasetSource, find_dataset
from jgan.errors import DataError

__all__ = ["BatchLoader", "DataError", "DatasetSource", "find_dataset", "image_shape",
           "num_classes", "prepare_idx_dataset", "read_idx_images", "read_idx_labels"]

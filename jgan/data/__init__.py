"""Training data: `open_data(config.data)` for TFDS datasets and image folders, batches as dicts."""

from jgan.data.datasets import ArraySource, Data, check_data_config, open_data
from jgan.data.idx import prepare_idx_dataset, read_idx_images, read_idx_labels
from jgan.data.loader import BatchLoader, UnpairedLoader, image_shape, num_classes
from jgan.data.preprocess import Preprocessing, find_border_box
from jgan.data.sources import DatasetSource, find_dataset
from jgan.data.spec import DataSpec
from jgan.errors import DataError

__all__ = ["ArraySource", "BatchLoader", "Data", "DataError", "DataSpec", "DatasetSource",
           "Preprocessing", "UnpairedLoader", "check_data_config", "find_border_box",
           "find_dataset", "image_shape", "num_classes", "open_data", "prepare_idx_dataset",
           "read_idx_images", "read_idx_labels"]

"""Find a dataset by its TFDS name and open it with `tfds.data_source` (array_record, no TensorFlow).

Where a dataset is looked for, in order:
1. the data folder (`--data-dir`, else `$JGAN_DATA_DIR`), laid out as `../shared/datasets`:
   `DIR/tfds/<name>/` prepared by TFDS, or `DIR/<name>/` with raw IDX files (MNIST, Fashion-MNIST),
   which jgan prepares once into `$JGAN_CACHE_DIR` (default `~/.cache/jgan`), or else `DIR/<name>/`
   as a folder of images (`folder_dataset`; read by `jgan.data.folders`);
2. with no data folder, MNIST only: the real 10,000-image MNIST subset bundled with jgan.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import os
from pathlib import Path

from jgan.data.folders import find_layout
from jgan.data.idx import IDX_DATASETS, missing_idx_files, prepare_idx_dataset
from jgan.data.resize import CenterCropResize
from jgan.errors import DataError

BUNDLED_DIR = Path(__file__).parent / "bundled"


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    name: str
    tfds_data_dir: str  # a folder holding <name>/<version>/ in array_record
    description: str  # where the examples come from, printed at the start of a run

    def open(self, split: str, *, image_size: int = 0):
        """The split as a `tfds.data_source`; `image_size` > 0 crops and resizes its images."""
        import tensorflow_datasets as tfds

        # Without OpenCV, TFDS decodes with PIL and warns once per process; PIL is what we want.
        logging.getLogger("absl").setLevel(logging.ERROR)
        try:
            data = tfds.data_source(self.name, data_dir=self.tfds_data_dir, split=split)
        except ValueError as error:
            raise DataError(f"cannot open split {split!r} of {self.name} in "
                            f"{self.tfds_data_dir}: {error}") from None
        return CenterCropResize(data, image_size) if image_size else data


def cache_dir() -> Path:
    return Path(os.environ.get("JGAN_CACHE_DIR", Path.home() / ".cache" / "jgan"))


def _prepared_from_raw(dataset: str, raw_dir: Path, description: str) -> DatasetSource:
    # One prepared copy per raw folder, so two folders with different files never share a cache.
    digest = hashlib.sha256(str(raw_dir.resolve()).encode()).hexdigest()[:12]
    tfds_dir = cache_dir() / "tfds" / f"{dataset}-{digest}"
    prepare_idx_dataset(dataset, raw_dir, tfds_dir)
    return DatasetSource(dataset, str(tfds_dir), description)


def _valid_name(dataset: str) -> bool:
    return bool(dataset) and dataset.replace("_", "").isalnum()


def folder_dataset(dataset: str, data_dir: str | None = None) -> Path | None:
    """`DIR/<dataset>` when it is a folder that is neither a TFDS preparation nor raw IDX files."""
    data_dir = data_dir or os.environ.get("JGAN_DATA_DIR") or None
    if data_dir is None or not _valid_name(dataset) or dataset in IDX_DATASETS:
        return None
    root = Path(data_dir).expanduser()
    if (root / "tfds" / dataset).is_dir() or not (root / dataset).is_dir():
        return None
    return root / dataset


def find_dataset(dataset: str, data_dir: str | None = None, *,
                 split: str = "train") -> DatasetSource:
    """Locate `dataset` (a TFDS name) as described in the module docstring.

    `split` is the one to be read: an unknown name is answered with the datasets that have it.
    """
    if not _valid_name(dataset):
        raise DataError(f"unknown dataset {dataset!r}: use a TFDS name such as mnist or "
                        "fashion_mnist")
    data_dir = data_dir or os.environ.get("JGAN_DATA_DIR") or None
    if data_dir is None:
        if dataset == "mnist":
            return _prepared_from_raw(
                "mnist", BUNDLED_DIR / "mnist",
                "the MNIST subset bundled with jgan (10,000 train / 2,000 test images); pass "
                "--data-dir or set JGAN_DATA_DIR for all 60,000")
        if _did_you_mean(dataset, ["mnist"]):
            raise DataError(f"unknown dataset {dataset!r} (did you mean mnist?): without "
                            "--data-dir or JGAN_DATA_DIR, the bundled MNIST subset is the only "
                            "dataset")
        raise DataError(f"{dataset} needs a data folder: pass --data-dir DIR or set "
                        f"JGAN_DATA_DIR to a folder holding {dataset}/ (raw files) or "
                        f"tfds/{dataset}/ (prepared by TFDS)")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {str(root)!r} does not exist: pass --data-dir (or set "
                        "JGAN_DATA_DIR) to a folder laid out as shared/datasets")
    if (root / "tfds" / dataset).is_dir():
        return DatasetSource(dataset, str(root / "tfds"),
                             f"{dataset} prepared by TFDS in {root / 'tfds'}")
    raw_dir = root / dataset
    if dataset in IDX_DATASETS and raw_dir.is_dir():
        missing = missing_idx_files(raw_dir)
        if missing:
            raise DataError(f"{raw_dir} lacks {', '.join(missing)}: copy the four IDX .gz "
                            f"files of {dataset} there")
        return _prepared_from_raw(dataset, raw_dir, f"{dataset} from the IDX files in {raw_dir}")
    choices = single_image_datasets(root, split)
    listed = f"choose one of {', '.join(choices)}; to add {dataset}, " if choices else ""
    raise DataError(f"unknown dataset {dataset!r} in {root}{_did_you_mean(dataset, choices)}: "
                    f"{listed}put raw files (mnist, fashion_mnist) or images in "
                    f"{root / dataset}, or a TFDS array_record preparation in "
                    f"{root / 'tfds' / dataset}")


def single_image_datasets(root: Path, split: str) -> list[str]:
    """The names in the data folder `root` that open as single images (what the built-in
    families train on) with `split`: TFDS preparations, complete IDX folders, and folders of
    images that are not A/B pairs."""
    prepared = root / "tfds"
    names = {folder.name for folder in root.iterdir() if folder.is_dir()
             and folder != prepared and _opens_as_single_images(folder, split)}
    if prepared.is_dir():
        names |= {path.name for path in prepared.iterdir() if path.is_dir()}
    return sorted(name for name in names if _valid_name(name))


def _opens_as_single_images(folder: Path, split: str) -> bool:
    if folder.name in IDX_DATASETS:
        return not missing_idx_files(folder)
    try:
        layout = find_layout(folder, split, "auto")
    except DataError:  # no such split, say
        return False
    return layout.kind == "single" and any(layout.streams.values())


def _did_you_mean(dataset: str, choices) -> str:
    """The hint ' (did you mean NAME?)' with the choice spelt most like `dataset`, or ''."""
    by_lower = {name.lower(): name for name in choices}
    close = difflib.get_close_matches(dataset.lower(), by_lower, n=1)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""

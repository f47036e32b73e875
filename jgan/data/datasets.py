"""One entry point for training data: `open_data(config.data)` -> `Data` (spec, loader, source).

TFDS and raw-IDX datasets are read exactly as `find_dataset(...).open(...)` and `BatchLoader` read
them, batch for batch; image folders (`--images DIR`, or `DIR/NAME` under `--data-dir`) go through
`jgan.data.folders`, decoded once into the cache and batched by the same loader.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from jgan.data.folders import check_pairing, find_layout, load_folder
from jgan.data.loader import BatchLoader, UnpairedLoader, example_arrays, num_classes
from jgan.data.preprocess import Preprocessing, channel_mean, parse_crop
from jgan.data.sources import cache_dir, find_dataset, folder_dataset
from jgan.data.spec import DataSpec
from jgan.errors import UserError
from jgan.files import check_file_name


class ArraySource:
    """Random access to examples held as arrays of equal length: `{name: values[i]}`.

    `rows`, when given, are the rows of the arrays that make the source, in order (the examples
    left after a holdout), so the arrays themselves are never copied.
    """

    def __init__(self, arrays: dict[str, np.ndarray], rows: np.ndarray | None = None):
        lengths = {len(values) for values in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"arrays of different lengths: {lengths}")
        self.arrays = arrays
        self.rows = np.arange(lengths.pop()) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return {name: np.asarray(values[self.rows[index]]) for name, values in self.arrays.items()}

    def __getitems__(self, indices) -> list[dict]:
        return [self[index] for index in indices]

    def take(self, indices) -> dict[str, np.ndarray]:
        rows = self.rows[np.asarray(indices)]
        return {name: np.asarray(values[rows]) for name, values in self.arrays.items()}


def holdout_rows(count: int, holdout: int) -> np.ndarray:
    """The `holdout` rows of `count` set aside: evenly spaced in the folder's sorted order, so
    they are the same whatever the seed, and spread over a folder sorted by name or date."""
    return (np.arange(holdout) * count + count // 2) // holdout if holdout else np.zeros(0, int)


def split_holdout(arrays: dict[str, np.ndarray], holdout: int, *, where: str):
    """`(training source, held-out arrays)` of examples held as equal-length arrays."""
    count = len(next(iter(arrays.values())))
    if holdout >= count:
        raise UserError(f"data.holdout={holdout} leaves no training example in {where} "
                        f"({count} in all): hold out fewer, e.g. --set data.holdout="
                        f"{max(1, count // 10)}")
    held = holdout_rows(count, holdout)
    kept = np.setdiff1d(np.arange(count), held)
    return ArraySource(arrays, kept), {name: np.asarray(values[held])
                                       for name, values in arrays.items()}


@dataclasses.dataclass(frozen=True)
class Data:
    name: str  # the dataset's name, or the image folder's
    description: str  # where the examples come from, printed at the start of a run
    spec: DataSpec
    # random-access examples (`len`, `[i]`, `__getitems__`): single and paired data; None when
    # unpaired, whose examples are the two independent `streams`
    dataset: object | None
    streams: dict[str, object] = dataclasses.field(default_factory=dict)  # unpaired: "A", "B"
    folder: bool = False  # an image folder (no TFDS test split to measure FID against)
    # uint8 arrays of the examples that `data.holdout` set aside (unpaired: each side's own
    # count); empty without a holdout
    held_out: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def loader(self, batch_size: int, data_key: jax.Array, *, rows: slice | None = None):
        """A loader with `batch(step) -> dict`, `iterate(start)` and `position(step) -> dict`.

        `rows`: the share of every global batch this process reads (default all of it).
        """
        if self.spec.kind == "unpaired":
            return UnpairedLoader(self.streams, batch_size=batch_size, data_key=data_key,
                                  rows=rows)
        return BatchLoader(self.dataset, batch_size=batch_size, data_key=data_key, rows=rows)


def check_data_config(data_cfg) -> None:
    """One-line errors for data settings that cannot work, before anything is read."""
    check_pairing(data_cfg.pairing)
    # Both become parts of paths: of an image folder's split and of its cache in
    # $JGAN_CACHE_DIR, which they must not leave.
    check_file_name(data_cfg.dataset, field="data.dataset", example="mnist")
    check_file_name(data_cfg.split, field="data.split", example="train")
    if data_cfg.channels not in (0, 1, 3):
        raise UserError(f"data.channels {data_cfg.channels} is not 0 (1 if every image is grey,"
                        " else 3), 1 or 3: use --set data.channels=3, say")
    if data_cfg.image_size < 0:
        raise UserError(f"data.image_size {data_cfg.image_size} is negative: use 0 (keep the "
                        "size) or the side N of the square images, e.g. --set data.image_size=64")
    if data_cfg.images is not None and not str(data_cfg.images).strip():
        raise UserError("--images is empty: pass a folder of images")
    if data_cfg.holdout < 0:
        raise UserError(f"data.holdout {data_cfg.holdout} is negative: use 0 (train on every "
                        "example) or the number to set aside, e.g. --set data.holdout=8")
    parse_crop(data_cfg.crop)


def open_data(data_cfg, *, log=print) -> Data:
    """Open the data that `data_cfg` (a `jgan.config.DataConfig`) names.

    `data.images`, when set, is a folder of images; otherwise `data.dataset` is looked for as
    `find_dataset` does, then as a folder `DIR/<dataset>` of the data folder.
    """
    check_data_config(data_cfg)
    if data_cfg.images is not None:
        folder = Path(data_cfg.images).expanduser()
        return _open_folder(folder, folder.resolve().name, data_cfg, log)
    folder = folder_dataset(data_cfg.dataset, data_cfg.data_dir)
    if folder is not None:
        return _open_folder(folder, data_cfg.dataset, data_cfg, log)
    if (data_cfg.channels or data_cfg.pairing != "auto" or data_cfg.holdout or data_cfg.crop
            or data_cfg.center):
        raise UserError(f"data.channels, data.pairing, data.holdout, data.crop and data.center "
                        f"apply to image folders, not to {data_cfg.dataset}: leave them at 0, "
                        "auto, 0, '' and false")
    source = find_dataset(data_cfg.dataset, data_cfg.data_dir, split=data_cfg.split)
    dataset = source.open(data_cfg.split, image_size=data_cfg.image_size)
    first = example_arrays(dataset[0])
    spec = DataSpec(arrays={name: (value.shape, value.dtype.name) for name, value in first.items()},
                    num_classes=num_classes(dataset) if "label" in first else 0)
    return Data(name=data_cfg.dataset, description=source.description, spec=spec,
                dataset=dataset)


def _open_folder(folder: Path, name: str, data_cfg, log) -> Data:
    layout = find_layout(folder, data_cfg.split, data_cfg.pairing)
    preprocessed = parse_crop(data_cfg.crop) is not None or data_cfg.center
    if preprocessed and layout.kind != "single":
        # The spec records one preprocessing, the inverse of a single image stream's.
        raise UserError(f"data.crop and data.center take a folder of single images, but "
                        f"{layout.where} holds {layout.kind} A/B data: train on one side with "
                        "--images DIR/trainA, or drop them")
    loaded = load_folder(layout, name=name, split=data_cfg.split,
                         image_size=data_cfg.image_size, channels=data_cfg.channels,
                         cache_root=cache_dir(), crop=data_cfg.crop, center=data_cfg.center,
                         log=log)
    arrays = loaded.arrays
    shapes = {key: (tuple(values.shape[1:]), values.dtype.name) for key, values in arrays.items()}
    holdout, held_out = data_cfg.holdout, {}
    if loaded.kind == "unpaired":
        streams = {}
        for key, values in arrays.items():
            streams[key[-1]], held = split_holdout({key: values}, holdout,
                                                   where=f"side {key[-1]} of {layout.where}")
            held_out.update(held)
        dataset, counts = None, " and ".join(f"{len(s)} {k}" for k, s in streams.items())
    else:
        streams = {}
        dataset, held_out = split_holdout(dict(arrays), holdout, where=layout.where)
        counts = f"{len(dataset)} {'pairs' if loaded.kind == 'paired' else 'images'}"
    preprocessing, described = {}, ""
    if preprocessed:
        source = loaded.sources["image"]
        preprocessing = Preprocessing(
            source_shape=tuple(source["source_shape"]),
            crop_box=None if source["crop_box"] is None else tuple(source["crop_box"]),
            border_value=tuple(source["border_value"]), size=shapes["image"][0][:2],
            # Over the training rows only: the held-out ones stay unseen.
            mean=channel_mean(arrays["image"], dataset.rows) if data_cfg.center else None)
        described = f"; {_describe(preprocessing)}"
        preprocessing = preprocessing.to_json()
    spec = DataSpec(arrays=shapes, kind=loaded.kind, preprocessing=preprocessing)
    if holdout:
        counts += f", {holdout} {'of each side ' if loaded.kind == 'unpaired' else ''}held out"
    shapes = ", ".join(f"{key} {'x'.join(map(str, shape))}"
                       for key, (shape, _) in spec.arrays.items())
    where = "read from" if loaded.from_cache else "decoded into"
    description = (f"{name}: {loaded.kind} images in {layout.where} ({counts}; {shapes}), "
                   f"{where} {loaded.cache}{described}")
    return Data(name=name, description=description, spec=spec, dataset=dataset, streams=streams,
                folder=True, held_out=held_out if holdout else {})


def _describe(preprocessing: Preprocessing) -> str:
    """One line for the run's log: what was cropped, and the mean subtracted."""
    height, width, _ = preprocessing.source_shape
    box = preprocessing.crop_box
    parts = [f"{height}x{width} source" + (f", box {','.join(map(str, box))} (border "
                                            f"{preprocessing.border_value})" if box else "")]
    parts.append(f"model images {preprocessing.size[0]}x{preprocessing.size[1]}")
    if preprocessing.mean is not None:
        parts.append("centred by mean " + ", ".join(f"{m:.4f}" for m in preprocessing.mean))
    return "; ".join(parts)

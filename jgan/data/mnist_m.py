"""MNIST-M (Ganin et al. 2016, section 5.2.2): MNIST digits blended over random colour patches.

Each digit d (uint8, [28, 28], broadcast to 3 channels) is blended with a 28x28 patch p cut at a
random place from a random background image as `|d - p|` per pixel and channel: off the digit
(d = 0) the patch shows unchanged, on it the colours are inverted. The authors cut their patches
from BSDS500 photos; here they come from the CIFAR-10 JPEGs of the shared data folder
(`cifar10_jpg/`, 32x32, so a crop has 5 x 5 places): train digits take patches from CIFAR's train
images, test digits from its test images.

`load_mnist_m` builds a split deterministically from a seed (same seed, same bytes) and caches it
under `jgan.data.sources.cache_dir()`; `train_digits`/`backgrounds` build a small prefix cheaply
(tests), decoding only that many CIFAR JPEGs, spread evenly over the archive's classes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from jgan.data.idx import IDX_FILES, read_idx_images, read_idx_labels
from jgan.data.sources import cache_dir
from jgan.errors import DataError, one_line
from jgan.files import make_cache_folder

BUILDER_VERSION = 1  # part of the cache key: raise it when the built bytes change
CIFAR_FOLDER, MNIST_FOLDER = "cifar10_jpg", "mnist"
CIFAR_ARCHIVES = {"train": "cifar10-jpg-train.tar.gz", "test": "cifar10-jpg-test.tar.gz"}
DIGIT_SIZE = 28
SPLITS = ("train", "test")


def required_files(data_dir: Path) -> list[Path]:
    """The MNIST IDX files and CIFAR-10 archives that MNIST-M is built from."""
    return ([data_dir / MNIST_FOLDER / name for files in IDX_FILES.values() for name in files]
            + [data_dir / CIFAR_FOLDER / name for name in CIFAR_ARCHIVES.values()])


def check_data_dir(data_dir) -> Path:
    """The data folder as a Path, or a one-line `DataError` naming what is missing."""
    if data_dir is None:
        raise DataError("MNIST-M is built from MNIST and CIFAR-10: pass --data-dir DIR (or set "
                        "JGAN_DATA_DIR) to a folder holding mnist/ and cifar10_jpg/, laid out "
                        "as shared/datasets")
    data_dir = Path(data_dir).expanduser()
    missing = [path for path in required_files(data_dir) if not path.is_file()]
    if missing:
        raise DataError(f"{missing[0]} not found ({len(missing)} file(s) of MNIST/CIFAR-10 "
                        f"missing): pass --data-dir a folder holding {MNIST_FOLDER}/ (4 IDX .gz "
                        f"files) and {CIFAR_FOLDER}/ (2 .tar.gz), laid out as shared/datasets")
    return data_dir


def read_cifar_images(archive: Path, count: int = 0) -> np.ndarray:  # [M, 32, 32, 3] uint8
    """The JPEGs of a CIFAR-10 archive, in archive order; `count` > 0 decodes only that many,
    evenly spaced, so that a small set still holds every class (the archive is sorted by
    class)."""
    import PIL.Image

    with tarfile.open(archive, "r:gz") as tar:
        members = [member for member in tar.getmembers() if member.isfile()]
        if count:
            members = [members[i] for i in np.linspace(0, len(members) - 1, count).astype(int)]
        # Reading in archive order: a gzip stream cannot seek backwards cheaply.
        return np.stack([np.asarray(PIL.Image.open(io.BytesIO(tar.extractfile(member).read()))
                                    .convert("RGB")) for member in members])


def random_patches(backgrounds: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` patches [count, 28, 28, 3], each from a random background at a random place."""
    height, width = backgrounds.shape[1:3]
    which = rng.integers(0, len(backgrounds), count)
    top = rng.integers(0, height - DIGIT_SIZE + 1, count)
    left = rng.integers(0, width - DIGIT_SIZE + 1, count)
    offsets = np.arange(DIGIT_SIZE)
    rows = (top[:, None] + offsets)[:, :, None]  # [count, 28, 1]
    cols = (left[:, None] + offsets)[:, None, :]  # [count, 1, 28]
    return backgrounds[which[:, None, None], rows, cols]


def blend(digits: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """`|digit - patch|` per channel: [N, 28, 28] and [N, 28, 28, 3] uint8 -> [N, 28, 28, 3]."""
    return np.abs(digits[..., None].astype(np.int16) - patches.astype(np.int16)).astype(np.uint8)


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The builder's random stream for one split: train and test never share draws."""
    return np.random.default_rng([seed, SPLITS.index(split)])


def build_mnist_m(data_dir: Path, split: str, *, seed: int, digits: int = 0,
                  backgrounds: int = 0) -> dict[str, np.ndarray]:
    """`{"image": [N, 28, 28, 3] uint8, "label": [N] uint8}`, not cached.

    `digits` > 0: only the split's first N MNIST digits; `backgrounds` > 0: patches from only
    that many CIFAR images of the split.
    """
    mnist = load_mnist(data_dir, split, digits=digits)
    cifar = read_cifar_images(data_dir / CIFAR_FOLDER / CIFAR_ARCHIVES[split], backgrounds)
    patches = random_patches(cifar, len(mnist["label"]), split_rng(seed, split))
    return {"image": blend(mnist["image"], patches), "label": mnist["label"]}


def cache_path(data_dir: Path, split: str, *, seed: int, digits: int, backgrounds: int) -> Path:
    # The source files' paths and sizes are in the key, so other MNIST/CIFAR files never share
    # a cached set.
    sources = [f"{path.resolve()}:{path.stat().st_size}" for path in required_files(data_dir)]
    digest = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:12]
    return (cache_dir() / "mnist_m" / f"v{BUILDER_VERSION}-{digest}-seed{seed}-{split}"
            f"-digits{digits}-backgrounds{backgrounds}.npz")


def load_mnist_m(data_dir, split: str, *, seed: int = 0, digits: int = 0,
                 backgrounds: int = 0, log=print) -> dict[str, np.ndarray]:
    """MNIST-M's `split` ("train" or "test"), built once per seed and size, then read from the
    cache. Arguments as for `build_mnist_m`."""
    if split not in SPLITS:
        raise DataError(f"MNIST-M split {split!r}: choose one of {list(SPLITS)}")
    data_dir = check_data_dir(data_dir)
    path = cache_path(data_dir, split, seed=seed, digits=digits, backgrounds=backgrounds)
    cached = _read_intact_cache(path, log) if path.is_file() else None
    if cached is not None:
        return cached
    log(f"building MNIST-M {split} (seed {seed}) from {data_dir} into {path} (once)")
    built = build_mnist_m(data_dir, split, seed=seed, digits=digits, backgrounds=backgrounds)
    make_cache_folder(path.parent)
    # A temporary file renamed into place: a crash or a concurrent build never leaves half a set.
    partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(partial, **built)
    os.replace(partial, path)
    return built


def _read_intact_cache(path: Path, log) -> dict[str, np.ndarray] | None:
    """The cached set, or None after one warning line where it cannot be read (cut short by a
    full disk or a kill while it was copied): it is built again from MNIST and CIFAR-10."""
    try:
        with np.load(path) as cached:
            return {name: cached[name] for name in cached.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        log(f"warning: the MNIST-M cache {path} is damaged ({one_line(error)}); building it "
            "again")
        return None


def load_mnist(data_dir, split: str, *, digits: int = 0) -> dict[str, np.ndarray]:
    """MNIST's `split` from the IDX files as `{"image": [N, 28, 28] uint8, "label": [N]}`."""
    data_dir = check_data_dir(data_dir)
    image_file, label_file = (data_dir / MNIST_FOLDER / name for name in IDX_FILES[split])
    images, labels = read_idx_images(image_file), read_idx_labels(label_file)
    if digits:
        images, labels = images[:digits], labels[:digits]
    return {"image": images, "label": np.array(labels)}

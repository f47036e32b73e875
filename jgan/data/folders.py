"""Image folders as datasets: a plain folder, paired A/B data (pix2pix) and unpaired A/B (CycleGAN).

Layouts, looked for in this order in the folder DIR:
1. `DIR/<split>A/` and `DIR/<split>B/` (CycleGAN's packaging, e.g. facades' trainA/trainB): paired
   when every A file has a B partner of the same name (`trainA/17.jpg` <-> `trainB/17.jpg`, the
   extension aside) and vice versa, unpaired otherwise; `data.pairing` forces either;
2. `DIR/<split>/` (pix2pix's packaging), else DIR itself: one image per example, or, with
   `data.pairing=side_by_side`, one A|B pair per file (left half A, right half B).
Images (PNG, JPEG, BMP, TIFF; any PIL mode) are found recursively and ordered by relative path.
A file that does not decode is skipped, and one warning names every skipped file.

Each source is decoded once into uint8 `.npy` arrays under `cache_dir()/folders`, keyed by a hash
of the files' relative paths and bytes, Pillow's version and the options: a copy of the folder
shares the cache, any edited, added or removed file makes a new one. Hashing reads every byte at
each open (about 0.1 s for facades' 30 MB), far cheaper than decoding, and unlike sizes and
modification times it cannot miss an edit.

`data.crop` cuts the images to a box (found from their uniform border, or given) before the
resize; the box, border colour and source size are kept in the cache's `meta.json` for
`jgan.data.preprocess` to undo them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import PIL.Image

from jgan.data.preprocess import (check_box, crop_and_resize, find_border_box, outside_value,
                                  parse_crop)
from jgan.data.resize import center_crop_resize
from jgan.errors import DataError, one_line
from jgan.files import make_cache_folder
from jgan.memory import host_memory, size_text

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
PAIRINGS = ("auto", "paired", "unpaired", "side_by_side")
SPLIT_FOLDERS = ("train", "val", "validation", "test")
_CACHE_FORMAT = 1  # bump when the decoding below changes what a cache holds
# Pillow opens 16-bit grey PNGs and TIFFs in these modes; their full range maps onto 0..255.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "F"}) | _WIDE_GREY_MODES
# What a bad file raises while Pillow opens or decodes it.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)


@dataclasses.dataclass(frozen=True)
class FolderLayout:
    """Which files make which arrays, before anything is decoded."""

    root: Path  # the dataset folder; file names are shown relative to it
    kind: str  # "single", "paired" or "unpaired"
    # arrays of one stream decoded together, and per example the files that make them: single
    # {"image"}: [(f,)]; paired folders {"image_A", "image_B"}: [(a, b)]; side by side: [(f,)]
    streams: dict[tuple[str, ...], list[tuple[Path, ...]]]
    side_by_side: bool
    other_files: list[Path]  # files that are not images: skipped
    where: str  # the folders, for messages


@dataclasses.dataclass(frozen=True)
class FolderArrays:
    arrays: dict[str, np.ndarray]  # name -> uint8 [N, H, W, C] (N may differ when unpaired)
    kind: str
    cache: Path
    from_cache: bool
    skipped: list[str]
    # name -> {"source_shape": [H, W, C], "crop_box": [T, L, B, R] or None, "border_value": [C]}:
    # what jgan.data.preprocess needs to undo the decoding (empty for caches written before it)
    sources: dict[str, dict] = dataclasses.field(default_factory=dict)


def check_pairing(pairing: str) -> None:
    if pairing not in PAIRINGS:
        raise DataError(f"data.pairing {pairing!r} is unknown: choose one of {', '.join(PAIRINGS)}"
                        " (e.g. --set data.pairing=side_by_side)")


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """`(images, other files)` under `folder`, recursively, by relative path; no hidden ones."""
    found = sorted((p for p in folder.rglob("*") if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: _relative(p, folder))
    images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
    return images, [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]


def _ab_splits(folder: Path) -> list[str]:
    names = {p.name for p in folder.iterdir() if p.is_dir()}
    return sorted(name[:-1] for name in names if name.endswith("A") and len(name) > 1
                  and name[:-1] + "B" in names)


def _pair_by_name(a_files, b_files, a_dir: Path, b_dir: Path):
    """`[(a, b)]` matched by relative path without extension, or None where that is not 1:1."""
    a_keys = {_relative(p, a_dir).rsplit(".", 1)[0]: p for p in a_files}
    b_keys = {_relative(p, b_dir).rsplit(".", 1)[0]: p for p in b_files}
    if len(a_keys) != len(a_files) or len(b_keys) != len(b_files) or a_keys.keys() != b_keys.keys():
        return None
    return [(a_keys[key], b_keys[key]) for key in a_keys]


def find_layout(folder: Path, split: str, pairing: str) -> FolderLayout:
    """The layout of `folder` for `split` (see the module docstring)."""
    check_pairing(pairing)
    if not folder.is_dir():
        raise DataError(f"image folder {str(folder)!r} does not exist: pass --images DIR (or "
                        "--dataset NAME --data-dir DIR) with a folder of images")
    splits = _ab_splits(folder)
    if splits:
        if split not in splits:
            raise DataError(f"{folder} has no {split}A/ and {split}B/ for split {split!r}, only "
                            f"split(s) {', '.join(splits)}: use --set data.split={splits[0]}")
        if pairing == "side_by_side":
            raise DataError(f"data.pairing=side_by_side takes one folder of A|B images, but "
                            f"{folder} holds {split}A/ and {split}B/: use data.pairing=auto")
        a_dir, b_dir = folder / f"{split}A", folder / f"{split}B"
        (a_files, a_other), (b_files, b_other) = _scan(a_dir), _scan(b_dir)
        pairs = _pair_by_name(a_files, b_files, a_dir, b_dir)
        if pairing == "paired" and pairs is None:
            unmatched = sorted({p.stem for p in a_files} ^ {p.stem for p in b_files})
            example = unmatched[0] if unmatched else "a name used twice"
            raise DataError(f"data.pairing=paired, but the names in {a_dir} and {b_dir} do not "
                            f"match one to one (e.g. {example}): rename them so that each A "
                            "image has the B image of the same name (Pix2Pix needs pairs; an "
                            "unpaired family such as CycleGAN takes data.pairing=unpaired)")
        for side, files, others in (("A", a_files, a_other), ("B", b_files, b_other)):
            if not files:
                raise DataError(f"{folder / (split + side)} holds no image ({len(others)} other "
                                "file(s)), and A/B data needs images on both sides: put PNG, "
                                "JPEG, BMP or TIFF images there")
        where = f"{a_dir}/ and {b_dir.name}/"
        if pairs is not None and pairing != "unpaired":
            streams = {("image_A", "image_B"): pairs}
            kind = "paired"
        else:
            streams = {("image_A",): [(p,) for p in a_files], ("image_B",): [(p,) for p in b_files]}
            kind = "unpaired"
        return FolderLayout(folder, kind, streams, False, a_other + b_other, where)
    if pairing in ("paired", "unpaired"):
        raise DataError(f"data.pairing={pairing} needs A and B subfolders ({split}A/, {split}B/)"
                        f" in {folder}: use data.pairing=auto (or side_by_side for A|B files)")
    present = [name for name in SPLIT_FOLDERS if (folder / name).is_dir()]
    source = folder
    if present:
        if split not in present:
            raise DataError(f"{folder} has no {split}/ for split {split!r}, only "
                            f"{', '.join(present)}: use --set data.split={present[0]}")
        source = folder / split
    images, other = _scan(source)
    if pairing == "side_by_side":
        return FolderLayout(folder, "paired", {("image_A", "image_B"): [(p,) for p in images]},
                            True, other, str(source))
    return FolderLayout(folder, "single", {("image",): [(p,) for p in images]}, False, other,
                        str(source))


def decode_image(path: Path) -> np.ndarray:
    """uint8 [H, W, 1] for a greyscale file, [H, W, 3] for any other; raises on a bad file.

    16-bit grey is scaled by 255/65535; alpha is dropped, not composited; a multi-frame file
    gives its first frame.
    """
    with PIL.Image.open(path) as image:
        image.load()
        if image.mode in _WIDE_GREY_MODES:
            values = np.asarray(image, np.float64) / 257.0
            return np.clip(np.rint(values), 0, 255).astype(np.uint8)[..., None]
        if image.mode in _GREY_MODES:
            return np.asarray(image.convert("L"))[..., None]
        return np.asarray(image.convert("RGB"))


def _decode_example(files: tuple[Path, ...], side_by_side: bool, image_size: int):
    """`(arrays, their (H, W) before the resize)` of one example at their own channels, or the
    first file that failed."""
    images = []
    for path in files:
        try:
            images.append(decode_image(path))
        except _DECODE_ERRORS:
            return path
    if side_by_side:
        half = images[0].shape[1] // 2
        images = [images[0][:, :half], images[0][:, half:2 * half]]
    source_sizes = [image.shape[:2] for image in images]
    if image_size:
        images = [center_crop_resize(image, image_size) for image in images]
    return images, source_sizes


def _set_channels(images: list[np.ndarray], channels: int) -> np.ndarray:
    """Stack one array's images with `channels` (0: 1 if every image is grey, else 3)."""
    if channels == 0:
        channels = 1 if all(image.shape[-1] == 1 for image in images) else 3
    out = []
    for image in images:
        if channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        elif channels == 1 and image.shape[-1] == 3:
            image = np.asarray(PIL.Image.fromarray(image).convert("L"))[..., None]
        out.append(image)
    return np.stack(out)


def _check_sizes(name: str, images: list[np.ndarray], files: list[tuple[Path, ...]], root: Path,
                 fix: str = "add --set data.image_size=N to centre-crop and resize them to NxN"):
    first = images[0].shape[:2]
    for image, example in zip(images, files):
        if image.shape[:2] != first:
            raise DataError(
                f"images in {root} differ in size ({_relative(files[0][0], root)} is "
                f"{first[0]}x{first[1]}, {_relative(example[0], root)} is {image.shape[0]}x"
                f"{image.shape[1]}{' for ' + name if name != 'image' else ''}): {fix}")


def _decode_stream(names, examples, layout: FolderLayout, image_size: int, channels: int,
                   skipped: list[str], crop=None) -> tuple[dict[str, np.ndarray], dict]:
    """`(arrays by name, their sources as FolderArrays.sources)`; `crop` is `parse_crop`'s."""
    # A crop is found and cut at the source size, so the resize waits for it.
    resize_now = 0 if crop else image_size
    # Pillow decodes with the GIL released; map keeps the order whatever the threads do.
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(
            lambda files: _decode_example(files, layout.side_by_side, resize_now), examples))
    kept = [(files, result) for files, result in zip(examples, decoded)
            if not isinstance(result, Path)]
    skipped += [_relative(result, layout.root) for result in decoded if isinstance(result, Path)]
    if not kept:
        return {}, {}
    arrays, sources = {}, {}
    for index, name in enumerate(names):
        images = [result[0][index] for _, result in kept]
        example_files = [files for files, _ in kept]
        if crop:
            _check_sizes(name, images, example_files, layout.root,
                         fix="data.crop needs images of one size: crop them beforehand, or drop "
                             "data.crop and add --set data.image_size=N")
            source = _set_channels(images, channels)  # greyscale first: the border is its value
            if crop == "auto":
                box, border = find_border_box(
                    source, names=[_relative(files[0], layout.root) for files in example_files])
            else:
                check_box(crop, *source.shape[1:3], layout.where)
                box, border = crop, outside_value(source, crop)
            arrays[name] = np.stack([crop_and_resize(image, box, image_size)
                                     for image in source])
            shape = source.shape[1:]
        else:
            if not image_size:
                _check_sizes(name, images, example_files, layout.root)
            arrays[name] = _set_channels(images, channels)
            box, channels_out = None, arrays[name].shape[-1]
            border = (0,) * channels_out
            # Mixed source sizes have no one size to return to: the model's size stands in.
            sizes = {result[1][index] for _, result in kept}
            shape = (*sizes.pop(), channels_out) if len(sizes) == 1 else arrays[name].shape[1:]
        sources[name] = {"source_shape": [int(n) for n in shape],
                         "crop_box": None if box is None else [int(n) for n in box],
                         "border_value": [int(v) for v in border]}
    return arrays, sources


def _content_key(layout: FolderLayout, options: dict) -> str:
    digest = hashlib.sha256(json.dumps(
        {"format": _CACHE_FORMAT, "pillow": PIL.__version__, "kind": layout.kind,
         "side_by_side": layout.side_by_side, **options}, sort_keys=True).encode())
    for names, examples in layout.streams.items():
        digest.update(repr(names).encode())
        for files in examples:
            for path in files:
                digest.update(_relative(path, layout.root).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    for path in layout.other_files:
        digest.update(b"other\0" + _relative(path, layout.root).encode() + b"\0")
    return digest.hexdigest()


def _read_cache(cache: Path, layout: FolderLayout) -> FolderArrays:
    meta = json.loads((cache / "meta.json").read_text())
    arrays = {name: np.load(cache / f"{name}.npy", mmap_mode="r") for name in meta["arrays"]}
    return FolderArrays(arrays, layout.kind, cache, True, meta["skipped"],
                        meta.get("sources", {}))


def _read_intact_cache(cache: Path, layout: FolderLayout, log) -> FolderArrays | None:
    """The cache's arrays, or None after one warning line where they cannot be read (a file cut
    short by a full disk or a kill while it was copied): the folder is removed, to be decoded
    again from the images, which are the data; the cache only saves decoding them."""
    try:
        return _read_cache(cache, layout)
    except (OSError, ValueError, KeyError) as error:  # np.load's and json's, a missing array
        log(f"warning: the decoded-images cache {cache} is damaged ({one_line(error)}); "
            "decoding the images again")
        shutil.rmtree(cache, ignore_errors=True)
        return None


def _write_cache(cache: Path, arrays: dict[str, np.ndarray], skipped: list[str],
                 sources: dict) -> None:
    """Write into a temporary folder beside `cache`, then rename it: a crash leaves no cache."""
    make_cache_folder(cache.parent)
    temporary = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        for name, values in arrays.items():
            np.save(temporary / f"{name}.npy", values)
        (temporary / "meta.json").write_text(json.dumps(
            {"arrays": list(arrays), "skipped": skipped, "sources": sources}, indent=1))
        os.rename(temporary, cache)
    except OSError:
        # Another process renamed its own copy there first; it holds the same arrays.
        if not (cache / "meta.json").is_file():
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def check_decoded_size(layout: FolderLayout, image_size: int, channels: int, *,
                       memory: int | None = None) -> None:
    """Refuse, before decoding, a folder whose images at `image_size` would not fit in RAM
    (`memory`, default this machine's): they are held decoded while the cache is written.
    Without `image_size` the sizes are the files' own, known only once decoded."""
    if not image_size:
        return
    images = sum(len(names) * len(examples) for names, examples in layout.streams.items())
    need = images * image_size ** 2 * (channels or 1)  # grey at least: refusing is a promise
    memory = memory or host_memory()
    if need > memory:
        raise DataError(f"{images} images of {layout.where} at data.image_size={image_size} "
                        f"take {size_text(need)} decoded, more than the {size_text(memory)} of "
                        "memory here: lower data.image_size")


def load_folder(layout: FolderLayout, *, name: str, split: str, image_size: int, channels: int,
                cache_root: Path, crop: str = "", center: bool = False,
                log=print) -> FolderArrays:
    """The layout's arrays, decoded once into `cache_root/folders` and read from there after.

    `crop` is `data.crop` (jgan.data.preprocess). `center` does not change the arrays, but a
    centred run gets its own cache, so that it always records the sources (caches written
    before they were recorded lack them).
    """
    options = {"image_size": image_size, "channels": channels, "split": split}
    crop = parse_crop(crop)
    # Added only when set, so the caches of runs without them keep their keys.
    if crop is not None:
        options["crop"] = crop if crop == "auto" else list(crop)
    if center:
        options["center"] = True
    cache = cache_root / "folders" / f"{name}-{split}-{_content_key(layout, options)[:20]}"
    result = _read_intact_cache(cache, layout, log) if (cache / "meta.json").is_file() else None
    if result is None:
        count = sum(len(examples) for examples in layout.streams.values())
        check_decoded_size(layout, image_size, channels)
        log(f"decoding {count} examples of {layout.where} into {cache} (once)")
        skipped = [_relative(path, layout.root) for path in layout.other_files]
        arrays, sources = {}, {}
        for names, examples in layout.streams.items():
            decoded, found = _decode_stream(names, examples, layout, image_size, channels,
                                            skipped, crop)
            if not decoded:
                raise DataError(f"no readable image in {layout.where} ({len(examples)} tried, "
                                f"{len(skipped)} file(s) skipped): put PNG, JPEG, BMP or TIFF "
                                "images there")
            arrays.update(decoded)
            sources.update(found)
        _write_cache(cache, arrays, skipped, sources)
        result = FolderArrays(arrays, layout.kind, cache, False, skipped, sources)
    if result.skipped:
        warnings.warn(f"skipped {len(result.skipped)} unreadable or non-image file(s) in "
                      f"{layout.root}: {', '.join(result.skipped)}", stacklevel=2)
    return result


# Public names for tools that read a loose folder of images (jgan.translate).
scan_images = _scan
DECODE_ERRORS = _DECODE_ERRORS

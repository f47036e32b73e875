"""Invertible preprocessing of an image folder: greyscale, crop a uniform border, resize, centre.

On the way in (host side, once, when the folder is decoded): `data.channels` picks grey or RGB,
`data.crop` cuts the images to a box ("auto": the smallest square holding every pixel that is
not the border colour, over the whole folder), `data.image_size` centre-crops that to a square
and resizes it (`jgan.data.resize`). In the model (`Preprocessing.to_model`, jittable): pixels
are scaled to [-1, 1], or with `data.center` to [0, 1] minus the training images' mean.

On the way out every step is undone: `model_to_unit` adds the mean back (display space [-1, 1]),
and `to_source` resizes uint8 images back to the box and pastes them into a canvas of the source
size filled with the border colour, so generated images look like the files they learned from.
The box, border colour, sizes and mean travel in the run's `DataSpec` (`preprocessing`), so the
tools invert a run's preprocessing without its data.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jgan.data.resize import center_crop_resize, resize_image
from jgan.errors import DataError, UserError

Box = tuple[int, int, int, int]  # (top, left, bottom, right) in source pixels, bottom/right excl.
_CHUNK = 256  # images compared at once while looking for the border: bounds the memory used


def parse_crop(text: str) -> str | Box | None:
    """`data.crop` as None (""), "auto" or a box `(top, left, bottom, right)`; one-line errors."""
    text = text.strip()
    if not text:
        return None
    if text == "auto":
        return "auto"
    fix = ("give 'auto' or a box top,left,bottom,right in source pixels (bottom and right "
           "excluded): --set data.crop=auto or --set data.crop=16,16,240,240")
    try:
        box = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"data.crop {text!r} is not a box: {fix}") from None
    if len(box) != 4:
        raise UserError(f"data.crop {text!r} has {len(box)} numbers, not 4: {fix}")
    top, left, bottom, right = box
    if min(box) < 0 or bottom <= top or right <= left:
        raise UserError(f"data.crop {text!r} is an empty or negative box (it needs 0 <= top < "
                        f"bottom and 0 <= left < right): {fix}")
    return box


def check_box(box: Box, height: int, width: int, where: str) -> None:
    """Refuse a given box that reaches outside `height` x `width` source images."""
    if box[2] > height or box[3] > width:
        raise DataError(f"data.crop={','.join(map(str, box))} reaches outside the {height}x"
                        f"{width} images of {where}: give a box inside them, e.g. --set "
                        f"data.crop=0,0,{height},{width}")


def square_box(box: Box, height: int, width: int) -> Box:
    """`box` grown to a square, evenly on both sides, shifted back inside the image where it
    would cross an edge, so that a resize keeps the content's aspect ratio. Content longer than
    the image's shorter side cannot be squared: that side then spans the image, and the resize's
    centre crop cuts the rest."""
    top, left, bottom, right = box
    side = min(max(bottom - top, right - left), height, width)

    def grow(start, end, limit):
        if end - start >= side:
            return start, end
        start -= (side - (end - start)) // 2
        start = min(max(start, 0), limit - side)
        return start, start + side

    (top, bottom), (left, right) = grow(top, bottom, height), grow(left, right, width)
    return top, left, bottom, right


def find_border_box(images: np.ndarray, names=None) -> tuple[Box, tuple[int, ...]]:
    """`(box, border_value)` of uint8 images [N, H, W, C] on a uniform border.

    The border value is the pixel shared by the four corners of every image; the box is the
    bounding box of every pixel of any image that differs from it, grown to a square
    (`square_box`). `names[i]` names image i in errors (default its index).
    """
    count, height, width, _ = images.shape
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # [N, 4, C]
    border = corners[0, 0]
    odd = np.flatnonzero(~(corners == border).all(axis=(1, 2)))
    if odd.size:
        name = names[odd[0]] if names is not None else f"image {odd[0]}"
        values = sorted({tuple(int(v) for v in pixel) for pixel in corners[odd[0]]})
        raise DataError(f"no uniform border for data.crop=auto: the corners of {name} are "
                        f"{values}, not all {tuple(int(v) for v in border)}: give a box "
                        "instead: --set data.crop=T,L,B,R")
    differs = np.zeros((height, width), bool)
    for start in range(0, count, _CHUNK):
        differs |= (images[start:start + _CHUNK] != border).any(axis=(0, 3))
    if not differs.any():
        raise DataError(f"data.crop=auto found nothing but the border value "
                        f"{tuple(int(v) for v in border)} in every image: drop data.crop")
    rows, columns = np.flatnonzero(differs.any(1)), np.flatnonzero(differs.any(0))
    box = (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)
    return square_box(box, height, width), tuple(int(v) for v in border)


def outside_value(images: np.ndarray, box: Box) -> tuple[int, ...]:
    """The most frequent value of each channel outside `box` (0 when the box is the whole
    image): the canvas colour for a box given by hand, whose border may not be uniform."""
    top, left, bottom, right = box
    outside = np.ones(images.shape[1:3], bool)
    outside[top:bottom, left:right] = False
    if not outside.any():
        return (0,) * images.shape[-1]
    counts = np.zeros((images.shape[-1], 256), np.int64)
    for start in range(0, len(images), _CHUNK):
        pixels = images[start:start + _CHUNK][:, outside]  # [n, P, C]
        for channel in range(images.shape[-1]):
            counts[channel] += np.bincount(pixels[..., channel].ravel(), minlength=256)
    return tuple(int(v) for v in counts.argmax(1))


def crop_and_resize(image: np.ndarray, box: Box | None, size: int) -> np.ndarray:
    """uint8 [H, W, C] -> the box's pixels, then (size > 0) centre-cropped to a square and
    resized to size x size as `data.image_size` does."""
    if box is not None:
        top, left, bottom, right = box
        image = image[top:bottom, left:right]
    return center_crop_resize(image, size) if size else np.ascontiguousarray(image)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a folder's images went through on the way to the model, to be undone on the way out.

    Without `crop_box` the box is the whole source image; without `mean` the model sees
    pixels in [-1, 1], as `jgan.train.step_parts.images_to_float` makes them.
    """

    source_shape: tuple[int, int, int]  # (H, W, C) of the source files, after data.channels
    crop_box: Box | None  # (top, left, bottom, right) in source pixels, or None
    border_value: tuple[int, ...]  # per channel: the colour outside the box
    size: tuple[int, int]  # (h, w) of the model's images
    mean: tuple[float, ...] | None = None  # per channel, of pixel / 255 over the training rows

    @property
    def region(self) -> Box:
        """The source pixels the model's images show: the box, narrowed to its central square
        when the images were resized to a square (`center_crop_resize` keeps only that)."""
        height, width = self.source_shape[:2]
        top, left, bottom, right = self.crop_box or (0, 0, height, width)
        if self.size[0] == self.size[1]:
            side = min(bottom - top, right - left)
            top, left = top + (bottom - top - side) // 2, left + (right - left - side) // 2
            bottom, right = top + side, left + side
        return top, left, bottom, right

    def to_json(self) -> dict:
        return {"source_shape": list(self.source_shape),
                "crop_box": None if self.crop_box is None else list(self.crop_box),
                "border_value": list(self.border_value), "size": list(self.size),
                "mean": None if self.mean is None else list(self.mean)}

    @classmethod
    def from_json(cls, data: dict) -> Preprocessing:
        def ints(values):
            return None if values is None else tuple(int(v) for v in values)

        return cls(source_shape=ints(data["source_shape"]), crop_box=ints(data["crop_box"]),
                   border_value=ints(data["border_value"]), size=ints(data["size"]),
                   mean=None if data["mean"] is None else tuple(float(v) for v in data["mean"]))

    @classmethod
    def identity(cls, shape) -> Preprocessing:
        """Nothing to undo for images of `shape` (H, W, C): a run without crop or center."""
        height, width, channels = (int(n) for n in shape)
        return cls(source_shape=(height, width, channels), crop_box=None,
                   border_value=(0,) * channels, size=(height, width))

    @classmethod
    def from_spec(cls, spec, name: str = "image") -> Preprocessing:
        """The preprocessing a `DataSpec` records; the identity when it records none."""
        if spec.preprocessing:
            return cls.from_json(spec.preprocessing)
        return cls.identity(spec.shape(name))

    def from_source(self, images: np.ndarray) -> np.ndarray:
        """Host side, as the folder is decoded: uint8 [N, H, W, C] source images -> uint8
        [N, h, w, C] model images (crop to the box, then the resize)."""
        top, left, bottom, right = self.crop_box or (0, 0, *self.source_shape[:2])
        side = self.size[0] if (bottom - top, right - left) != self.size else 0
        return np.stack([crop_and_resize(image, self.crop_box, side) for image in images])

    def _mean(self) -> jnp.ndarray:
        return jnp.asarray(self.mean, jnp.float32)  # [C], broadcast over [..., H, W, C]

    def to_model(self, images: jnp.ndarray) -> jnp.ndarray:
        """uint8 [..., H, W, C] -> float32 model inputs; jittable. Uncentred, the arithmetic is
        `images_to_float`'s, so runs without data.center keep their bits."""
        images = jnp.asarray(images).astype(jnp.float32)
        if self.mean is None:
            return images / 127.5 - 1.0
        return images / 255.0 - self._mean()

    def model_to_unit(self, x: jnp.ndarray) -> jnp.ndarray:
        """Model space -> display space [-1, 1] (what `jgan.images.to_uint8` takes); jittable."""
        if self.mean is None:
            return x
        return (x + self._mean()) * 2.0 - 1.0

    def to_source(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, h, w, C] model-size images -> uint8 [N, H, W, C] source-size images: each
        resized back to the region it came from and pasted into a canvas of the border value."""
        images = np.asarray(images, np.uint8)
        height, width, channels = self.source_shape
        top, left, bottom, right = self.region
        if self.region == (0, 0, height, width) and images.shape[1:3] == (height, width):
            return images
        canvas = np.empty((len(images), height, width, channels), np.uint8)
        canvas[...] = np.asarray(self.border_value, np.uint8)
        for out, image in zip(canvas, images):
            out[top:bottom, left:right] = resize_image(image, bottom - top, right - left)
        return canvas


def channel_mean(arrays: np.ndarray, rows: np.ndarray) -> tuple[float, ...]:
    """Per-channel mean of pixel / 255 over `rows` of uint8 [N, H, W, C], summed in float64 a
    chunk of rows at a time (the arrays may be a memory map larger than memory)."""
    total = np.zeros(arrays.shape[-1], np.float64)
    for start in range(0, len(rows), _CHUNK):
        total += np.asarray(arrays[rows[start:start + _CHUNK]]).sum(axis=(0, 1, 2),
                                                                    dtype=np.float64)
    return tuple(float(v) for v in total / (len(rows) * np.prod(arrays.shape[1:3]) * 255.0))

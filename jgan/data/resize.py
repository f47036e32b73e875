"""Square images of one size from a dataset of any image size (CelebA's 218x178, say).

jgan's convolutional networks halve square images down to 7x7 or less (28, 32, 64, 96, ...).
`data.image_size` > 0 wraps the split in `CenterCropResize`: each image is cropped to its central
square and resized with Pillow's Lanczos filter, which low-passes as it shrinks. A crop of the
central square, then a resize, is the usual CelebA preparation for GANs (e.g. DCGAN's 64x64).
"""

from __future__ import annotations

import numpy as np
import PIL.Image


def resize_image(image: np.ndarray, height: int, width: int,
                 resample=PIL.Image.LANCZOS) -> np.ndarray:
    """uint8 [h, w], [h, w, 1] or [h, w, 3] -> the same layout at [height, width], by Pillow
    (Lanczos by default: it low-passes when shrinking and is sharp when enlarging; Pillow clips
    its overshoot to 0..255)."""
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    grey = image.ndim == 3 and image.shape[-1] == 1
    resized = np.asarray(PIL.Image.fromarray(image[..., 0] if grey else image).resize(
        (width, height), resample))
    return resized[..., None] if grey else resized


def center_crop_resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W] or [H, W, C] -> uint8 [size, size(, C)]."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return resize_image(image[top:top + side, left:left + side], size, size)


class CenterCropResize:
    """A `tfds.data_source` split whose examples' images come out size x size."""

    def __init__(self, source, size: int):
        self.source = source
        self.size = size
        self.dataset_info = source.dataset_info

    def __len__(self) -> int:
        return len(self.source)

    def _transform(self, example: dict) -> dict:
        return {**example, "image": center_crop_resize(np.asarray(example["image"]), self.size)}

    def __getitem__(self, index: int) -> dict:
        return self._transform(self.source[index])

    def __getitems__(self, indices) -> list[dict]:
        return [self._transform(example) for example in self.source.__getitems__(indices)]

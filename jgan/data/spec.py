"""What a data source yields: the named arrays of one example, the classes and the pairing.

A family's `build` reads the spec instead of opening the data; checkpoints store it as JSON, so a
tool can rebuild the networks of a run without its data.
"""

from __future__ import annotations

import dataclasses

KINDS = ("single", "paired", "unpaired")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    # name -> (shape of ONE example, numpy dtype name), e.g. {"image": ((28, 28, 1), "uint8")}
    arrays: dict[str, tuple[tuple[int, ...], str]]
    num_classes: int = 0  # classes of "label"; 0 when there is none
    # "single": examples stand alone; "paired": one example is an aligned (image_A, image_B);
    # "unpaired": image_A and image_B come from independent streams
    kind: str = "single"
    # jgan.data.preprocess.Preprocessing.to_json() of an image folder read with data.crop or
    # data.center, so the tools undo it without the data; empty otherwise
    preprocessing: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"DataSpec kind {self.kind!r} is not one of {KINDS}")

    def shape(self, name: str = "image") -> tuple[int, ...]:
        return self.arrays[name][0]

    def to_json(self) -> dict:
        """The spec as JSON; `preprocessing` only when there is some, so that the specs of
        other runs read as they did before it existed."""
        data = {"arrays": {name: {"shape": list(shape), "dtype": dtype}
                           for name, (shape, dtype) in self.arrays.items()},
                "num_classes": self.num_classes, "kind": self.kind}
        if self.preprocessing:
            data["preprocessing"] = self.preprocessing
        return data

    @classmethod
    def from_json(cls, data: dict) -> DataSpec:
        arrays = {name: (tuple(int(n) for n in entry["shape"]), str(entry["dtype"]))
                  for name, entry in data["arrays"].items()}
        return cls(arrays=arrays, num_classes=int(data["num_classes"]), kind=data["kind"],
                   preprocessing=dict(data.get("preprocessing", {})))

    @classmethod
    def from_image_shape(cls, shape, num_classes: int = 0) -> DataSpec:
        """The spec of a checkpoint from before specs, which stored only its image shape."""
        arrays = {"image": (tuple(int(n) for n in shape), "uint8")}
        if num_classes:
            arrays["label"] = ((), "int32")
        return cls(arrays=arrays, num_classes=num_classes, kind="single")

"""InceptionV3 as the FID network: the TF 2015-12-05 graph that FID is defined on, in Flax.

The module follows pytorch-fid's port of that graph (`FIDInceptionV3` there): torchvision's
InceptionV3 layout with the FID graph's three differences, average pools that ignore padding
(blocks A, C, E_1) and a max pool in the last block's pool branch (E_2). Submodules carry the
PyTorch names, so pytorch-fid's state dict maps onto them one to one.

Input: uint8 images `[N, H, W, C]` (C = 1 is repeated to RGB), scaled to [0, 1], resized to
299x299 by bilinear interpolation with half-pixel centres and no antialiasing (PyTorch's
`interpolate(mode="bilinear", align_corners=False)`, as pytorch-fid), then mapped to [-1, 1].
Output: the 2048 pool features FID uses and the 1008 logits Inception Score uses.

Weights are not shipped. Give pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (read with
PyTorch, `weights_only=True`) or its npz conversion (`python -m jgan.metrics.inception convert
IN.pth OUT.npz`, which needs PyTorch once, on any machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jgan.errors import UserError, reports_errors
from jgan.weights import first_mismatch

INPUT_SIZE = 299
NUM_LOGITS = 1008


class BasicConv(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, running statistics), ReLU."""

    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, self.kernel, strides=self.stride, use_bias=False,
                    padding=[(p, p) for p in self.padding], name="conv")(x)
        return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x))


def _avg_pool_3x3(x):
    # The FID graph's average pools divide by the number of unpadded inputs.
    return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_stride2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        branch5x5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(
            BasicConv(48, name="branch5x5_1")(x))
        branch3x3dbl = BasicConv(64, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(branch3x3dbl)
        branch_pool = BasicConv(self.pool_features, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([BasicConv(64, name="branch1x1")(x), branch5x5, branch3x3dbl,
                                branch_pool], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        branch3x3 = BasicConv(384, (3, 3), stride=2, name="branch3x3")(x)
        branch3x3dbl = BasicConv(64, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv(96, (3, 3), stride=2, name="branch3x3dbl_3")(branch3x3dbl)
        return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        wide, tall = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        branch7x7 = BasicConv(c7, name="branch7x7_1")(x)
        branch7x7 = BasicConv(c7, **wide, name="branch7x7_2")(branch7x7)
        branch7x7 = BasicConv(192, **tall, name="branch7x7_3")(branch7x7)
        branch7x7dbl = BasicConv(c7, name="branch7x7dbl_1")(x)
        branch7x7dbl = BasicConv(c7, **tall, name="branch7x7dbl_2")(branch7x7dbl)
        branch7x7dbl = BasicConv(c7, **wide, name="branch7x7dbl_3")(branch7x7dbl)
        branch7x7dbl = BasicConv(c7, **tall, name="branch7x7dbl_4")(branch7x7dbl)
        branch7x7dbl = BasicConv(192, **wide, name="branch7x7dbl_5")(branch7x7dbl)
        branch_pool = BasicConv(192, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([BasicConv(192, name="branch1x1")(x), branch7x7, branch7x7dbl,
                                branch_pool], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        branch3x3 = BasicConv(320, (3, 3), stride=2, name="branch3x3_2")(
            BasicConv(192, name="branch3x3_1")(x))
        branch7x7x3 = BasicConv(192, name="branch7x7x3_1")(x)
        branch7x7x3 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
        branch7x7x3 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
        branch7x7x3 = BasicConv(192, (3, 3), stride=2, name="branch7x7x3_4")(branch7x7x3)
        return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionE(nn.Module):
    """`max_pool`: the FID graph's last block pools by max (pytorch-fid's FIDInceptionE_2)."""

    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        def split_3x3(y, prefix):
            return [BasicConv(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(y),
                    BasicConv(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(y)]

        branch3x3 = split_3x3(BasicConv(384, name="branch3x3_1")(x), "branch3x3_2")
        branch3x3dbl = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(
            BasicConv(448, name="branch3x3dbl_1")(x))
        branch3x3dbl = split_3x3(branch3x3dbl, "branch3x3dbl_3")
        pooled = (nn.max_pool(x, (3, 3), padding=((1, 1), (1, 1))) if self.max_pool
                  else _avg_pool_3x3(x))
        branch_pool = BasicConv(192, name="branch_pool")(pooled)
        return jnp.concatenate([BasicConv(320, name="branch1x1")(x), *branch3x3, *branch3x3dbl,
                                branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
    """Images in [-1, 1] `[N, 299, 299, 3]` -> `(pool features [N, 2048], logits [N, 1008])`."""

    @nn.compact
    def __call__(self, x):
        x = BasicConv(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_stride2(x)
        x = BasicConv(80, name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_stride2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, channels_7x7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                                   ("Mixed_6e", 192)):
            x = InceptionC(channels_7x7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        features = jnp.mean(x, axis=(1, 2))
        return features, nn.Dense(NUM_LOGITS, name="fc")(features)


def preprocess(images) -> jnp.ndarray:
    """uint8 `[N, H, W, C]` -> float32 `[N, 299, 299, 3]` in [-1, 1] (see the module docstring)."""
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False)
    return 2.0 * x - 1.0


def _from_torch_name(name: str, value: np.ndarray):
    """`("params" | "batch_stats", flax path, array in flax layout)` of one state-dict entry."""
    *path, layer, kind = name.split(".")
    if layer == "bn":
        collection, leaf = {"weight": ("params", "scale"), "bias": ("params", "bias"),
                            "running_mean": ("batch_stats", "mean"),
                            "running_var": ("batch_stats", "var")}[kind]
        return collection, (*path, "bn", leaf), value
    if layer == "conv":  # [out, in, kh, kw] -> [kh, kw, in, out]
        return "params", (*path, "conv", "kernel"), value.transpose(2, 3, 1, 0)
    if kind == "weight":  # fc: [out, in] -> [in, out]
        return "params", (*path, layer, "kernel"), value.T
    return "params", (*path, layer, kind), value


def read_state_dict(path) -> dict[str, np.ndarray]:
    """pytorch-fid's state dict as numpy arrays, from its .pth (needs PyTorch) or an .npz."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Inception weights {path} not found: pass the path of pytorch-fid's "
                        "pt_inception-2015-12-05-6726825d.pth or its .npz conversion")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
    try:
        import torch
    except ImportError:
        raise UserError(f"{path} is a PyTorch file and PyTorch is not installed: convert it on a "
                        "machine with PyTorch (python -m jgan.metrics.inception convert IN.pth "
                        "OUT.npz) and pass the .npz") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: tensor.numpy() for name, tensor in state.items()}


def load_variables(path) -> dict:
    """Flax variables of `FIDInceptionV3` from a weights file, checked against the module."""
    return variables_from_state_dict(read_state_dict(path), path)


def variables_from_state_dict(state: dict, path) -> dict:
    """Flax variables from pytorch-fid's state dict; `path` names its file in errors."""
    variables = {"params": {}, "batch_stats": {}}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        collection, flax_path, array = _from_torch_name(name, np.asarray(value, np.float32))
        variables[collection][flax_path] = jnp.asarray(array)
    expected = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                              jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
    for collection in ("params", "batch_stats"):
        want = traverse_util.flatten_dict(expected[collection])
        got = variables[collection]
        mismatch = first_mismatch({p: v.shape for p, v in got.items()},
                                  {p: v.shape for p, v in want.items()})
        if mismatch:
            kind, where = mismatch
            name = ".".join(where)
            problem = (f"lacks {name}" if kind == "missing" else
                       f"has an unknown entry {name}" if kind == "unknown" else
                       f"has {name} of shape {got[where].shape}, not {want[where].shape}")
            raise UserError(f"Inception weights {path} {problem}: use pytorch-fid's "
                            "pt_inception-2015-12-05-6726825d.pth (the TF FID network)")
        variables[collection] = traverse_util.unflatten_dict(got)
    return variables


def parser() -> argparse.ArgumentParser:
    """The command line of `main`, built without parsing or running anything."""
    parser = argparse.ArgumentParser(
        prog="python -m jgan.metrics.inception",
        description="Convert pytorch-fid's Inception weights (.pth) to an npz jgan reads "
                    "without PyTorch: python -m jgan.metrics.inception convert IN.pth OUT.npz")
    parser.add_argument("command", choices=["convert"])
    parser.add_argument("source", help="pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("target", help="npz to write")
    return parser


@reports_errors
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    state = read_state_dict(args.source)
    variables_from_state_dict(state, args.source)
    np.savez(args.target, **state)
    print(f"wrote {args.target} ({len(state)} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Weights-only files: a nested dict of arrays as an npz keyed by path ("Conv_0/kernel"), plus a JSON
record of where the weights came from. No pickle, readable by numpy alone; written atomically.

The shipped classifier weights and the per-network exports of `jgan.tools.components` use this
format.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jgan.errors import UserError
from jgan.files import atomic_write

META_KEY = "__meta__"


def first_mismatch(have: dict, want: dict) -> tuple[str, object] | None:
    """How a `{path: shape}` map first differs from the wanted one, checked in this order:
    `("missing", path)`, `("shape", path)`, `("unknown", path)`; None when they match."""
    missing = sorted(set(want) - set(have))
    if missing:
        return "missing", missing[0]
    wrong = sorted(path for path in want if tuple(have[path]) != tuple(want[path]))
    if wrong:
        return "shape", wrong[0]
    unknown = sorted(set(have) - set(want))
    return ("unknown", unknown[0]) if unknown else None


def save_weights(path, tree: dict, meta: dict) -> None:
    """Arrays of `tree` as float32 (integers kept) under their "/"-joined paths, and `meta`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for keys, value in traverse_util.flatten_dict(tree).items():
        value = np.asarray(value)
        arrays["/".join(keys)] = value if np.issubdtype(value.dtype, np.integer) else (
            value.astype(np.float32))
    arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def load_weights(path, *, missing_hint: str = "") -> tuple[dict, dict]:
    """`(tree, meta)` from a file written by `save_weights`; `missing_hint` ends the error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} not found" + (f": {missing_hint}" if missing_hint
                                                             else ""))
    try:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(str(arrays[META_KEY])) if META_KEY in arrays else {}
            flat = {tuple(name.split("/")): jnp.asarray(arrays[name])
                    for name in arrays.files if name != META_KEY}
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is not a jgan weights file (an npz of arrays): {error}") from None
    return traverse_util.unflatten_dict(flat), meta

"""Families as plug-ins: each is one folder whose `__init__` registers a `jgan.train.setup.Family`.

A family's folder holds its plug-in (`__init__.py`), its networks (`networks.py`) and its pure
train step (`step.py`); adding one is a new folder and its name in `BUILT_IN`. Code outside
jgan (a research project, a test) calls `register` with its own `Family` instead.
"""

from __future__ import annotations

import importlib

from jgan.errors import UserError
from jgan.train.setup import Family

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make `family` available by its name, e.g. as `Config(family=...)`; returns it."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UserError(f"family={name!r} is unknown: choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


# The registry: a built-in family's module name. Each module defines `FAMILY`.
BUILT_IN = ("gan", "bigan", "pix2pix", "cyclegan", "stylegan", "biggan", "ssgan")

for _module in BUILT_IN:
    register(importlib.import_module(f"jgan.families.{_module}").FAMILY)

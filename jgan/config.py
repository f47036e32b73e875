"""Run configuration: frozen, keyword-only dataclasses in small groups, overridable by `key=value`.

An experiment builds its defaults with `Config(...)`; the command line replaces fields with
`dataclasses.replace` through `override`; the resolved config is written to `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any

from jgan.data import check_data_config
from jgan.files import write_text
from jgan.errors import UserError
from jgan.optim import check_optim_config


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str = "mnist"
    data_dir: str | None = None  # None: $JGAN_DATA_DIR, else the bundled MNIST subset
    split: str = "train"
    image_size: int = 0  # > 0: centre-crop each image to a square and resize it to this size
    # A folder of images (PNG, JPEG, BMP, TIFF; searched recursively), read instead of `dataset`;
    # trainA/ + trainB/ (split A/B folders) give paired or unpaired data (jgan.data.folders)
    images: str | None = None
    # Folders only: "auto" (A/B folders are paired when their file names match one to one),
    # "paired", "unpaired", or "side_by_side" (each file is an A|B pair, pix2pix's packaging)
    pairing: str = "auto"
    channels: int = 0  # folders only: 0 = 1 if every image is grey, else 3 (RGB, alpha dropped)
    # Folders only: this many examples (of each side, when unpaired) are set aside, never trained
    # on, and shown in every preview grid; the same ones whatever the seed (jgan.data.datasets)
    holdout: int = 0
    # Folders only (jgan.data.preprocess): "" none, "auto" (the folder's uniform border cut off,
    # the box grown to a square) or a box "top,left,bottom,right" in source pixels (bottom and
    # right excluded), cut before image_size's resize and pasted back into the border by the
    # sampler
    crop: str = ""
    # Folders only: model inputs are pixel / 255 minus the training images' per-channel mean
    # (stored in the run's data spec) instead of pixel / 127.5 - 1
    center: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimConfig:
    optimizer: str = "adam"  # or "rmsprop" (PyTorch's: decay 0.99, eps outside the root)
    g_lr: float = 2e-4  # separate rates for G and D: the two time-scale rule (Heusel et al. 2017)
    d_lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    decay_steps: int = 0  # > 0: both rates fall linearly to 0 over this many steps
    decay_start: int = 0  # the rates hold for this many steps before decay_steps begin
    # > 0: instead of the two above, the rates fall linearly to 0 over this last part of
    # train.steps, so a run resumed with a larger --steps stretches its decay to the new end
    decay_fraction: float = 0.0
    # Adam's epsilon inside the square root; > 0 keeps gradients through Adam's update finite
    # where a parameter's gradients were all 0 (unrolled GAN's full gradient)
    eps_root: float = 0.0
    d_clip: float = 0.0  # > 0: D's weights are clipped to [-d_clip, d_clip] (WGAN)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 64
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    grid_size: int = 64  # images in each sample grid, from a fixed grid_z
    n_critic: int = 1  # D updates per G update, each on its own real batch
    ema_kimg: float = 0.0  # > 0: half-life, in thousands of generated images, of G's EMA
    # > 0: measure samples every eval_every steps (jgan.metrics), log them to history.csv and
    # keep the best checkpoint by FID in RUN_DIR/best
    eval_every: int = 0
    eval_num: int = 10000  # generated images per evaluation
    eval_features: str = "classifier"  # or "inception" (weights from $JGAN_INCEPTION_WEIGHTS)
    # 2-D toy benchmark (jgan.mode_collapse): this many independent runs, seeds seed ..
    # seed + seeds - 1, trained together by one vmapped step
    seeds: int = 1
    # Differentiable augmentation of every image D sees, real and generated (jgan.augment), for
    # small datasets: "none", "diffaugment" (Zhao et al. 2020) or "ada" (Karras et al. 2020)
    augment: str = "none"
    augment_ops: str = ""  # a comma list of the kind's ops (jgan.augment.OPS); "": all of them
    augment_p: float = 0.0  # ADA: the probability of each op at step 0
    ada_target: float = 0.6  # ADA: p moves to keep r_t = E[sign(D(real))] near this
    ada_interval: int = 4  # ADA: steps between moves of p
    ada_kimg: float = 500.0  # ADA: thousands of images for p to move by 1; 0 holds p fixed


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """A run's settings. `model` and `loss` are the family's own groups (`Family.model_config`,
    `Family.loss_config`); left out, they take that family's defaults."""

    name: str = "dcgan"
    family: str = "gan"  # a name in the registry of jgan.families
    data: DataConfig = DataConfig()
    model: Any = None
    optim: OptimConfig = OptimConfig()
    loss: Any = None
    train: TrainConfig = TrainConfig()

    def __post_init__(self):
        family = _family(self.family)
        for group, cls in (("model", family.model_config), ("loss", family.loss_config)):
            value = getattr(self, group)
            if value is None:
                object.__setattr__(self, group, cls())
            elif not isinstance(value, cls):
                raise UserError(f"{group}={type(value).__name__}(...) does not belong to family "
                                f"{self.family!r}, whose {group} group is {cls.__name__}: start "
                                f"from an experiment of that family")


def _family(name: str):
    # Imported here: the families import the config groups they share (OptimConfig, ...).
    from jgan.families import get_family

    return get_family(name)


# Fields that may change between a run and its resumption: they set how long and how chattily it
# runs, not what it computes.
RESUMABLE_FIELDS = frozenset({
    "train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.eval_every", "data.data_dir"})


def _parse_value(text: str, annotation: str, where: str):
    kind = annotation.replace(" | None", "").strip()
    if text.lower() == "none" and "None" in annotation:
        return None
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise UserError(text)
            return text.lower() in ("true", "1")
    except ValueError:
        raise UserError(f"--set {where}={text}: expected a {kind}") from None
    return text


def override(config, assignments: typing.Iterable[str]):
    """Apply `group.field=value` strings (as given to `--set`) to a config, returning a new one."""
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep:
            raise UserError(f"--set {assignment!r}: write it as group.field=value, "
                             "e.g. --set optim.g_lr=1e-4")
        config = _replace_path(config, path.strip().split("."), text.strip(), path)
    return config


def _replace_path(node, names, text, where):
    fields = {f.name: f for f in dataclasses.fields(node)}
    if names[0] not in fields:
        raise UserError(f"--set {where}: no field {names[0]!r} in {type(node).__name__}; "
                         f"choose one of {sorted(fields)}")
    field = fields[names[0]]
    child = getattr(node, names[0])
    if dataclasses.is_dataclass(child):
        if len(names) == 1:
            raise UserError(f"--set {where}: name a field inside it, e.g. {where}."
                             f"{dataclasses.fields(child)[0].name}=...")
        value = _replace_path(child, names[1:], text, where)
    else:
        if len(names) > 1:
            raise UserError(f"--set {where}: {names[0]!r} has no fields")
        value = _parse_value(text, str(field.type), where)
    return dataclasses.replace(node, **{names[0]: value})


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(data: dict, cls=Config):
    """Rebuild a config from `to_dict` output (as read from config.json).

    The `model` and `loss` groups are read as the family's classes. A config.json written before
    families were plug-ins kept the family in `model.family`, and every family's fields in one
    flat group: it is read as that family's config, without the other families' fields.
    """
    if cls is Config:
        data = dict(data)
        legacy = "family" not in data and "family" in data.get("model", {})
        if legacy:
            data["family"] = data["model"]["family"]
        family = _family(data.get("family", "gan"))
        groups = {"model": family.model_config, "loss": family.loss_config}
        for group, group_cls in groups.items():
            if group in data and legacy:
                names = {field.name for field in dataclasses.fields(group_cls)}
                data[group] = {k: v for k, v in data[group].items() if k in names}
        kwargs = {group: from_dict(data[group], group_cls)
                  for group, group_cls in groups.items() if group in data}
        rest = {k: v for k, v in data.items() if k not in groups}
        return dataclasses.replace(_from_fields(rest, cls), **kwargs)
    return _from_fields(data, cls)


def _from_fields(data: dict, cls):
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        if dataclasses.is_dataclass(hints[field.name]):
            value = from_dict(value, hints[field.name])
        kwargs[field.name] = value
    return cls(**kwargs)


def differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """The `(path, old, new)` fields where two config dicts differ."""
    found = []
    for key in sorted(set(old) | set(new)):
        a, b, path = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, path + ".")
        elif a != b and not (isinstance(a, float) and isinstance(b, float)
                             and math.isnan(a) and math.isnan(b)):
            found.append((path, a, b))
    return found


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The values a numeric field may take, `low <= value < high`; `note` says what they mean."""

    low: float
    high: float = math.inf
    note: str = ""

    def allows(self, value) -> bool:
        return self.low <= value < self.high  # False for NaN

    def advice(self) -> str:
        wanted = (f"use {self.low} or more" if self.high == math.inf
                  else f"use a value in [{self.low}, {self.high})")
        return f"{wanted} ({self.note})" if self.note else wanted


def check_bounds(where: str, group, bounds: dict[str, Bounds]) -> None:
    """Refuse the first field of `group`, the config group named `where`, outside its bounds."""
    defaults = {field.name: field.default for field in dataclasses.fields(group)}
    for name, allowed in bounds.items():
        value = getattr(group, name)
        if not allowed.allows(value):
            raise UserError(f"{where}.{name}={value}: {allowed.advice()}, e.g. --set "
                            f"{where}.{name}={defaults[name]}")


# The range of each numeric field of the shared groups. The data group's rules are
# jgan.data.check_data_config's, the model and loss groups' their family's; train.seeds is the 2-D
# benchmark's (jgan.mode_collapse), where --seeds sets it.
BOUNDS = {
    "train": {
        "steps": Bounds(1),
        "batch_size": Bounds(1),
        # key(seed) keeps the low 32 bits of a seed, so 2**32 would repeat seed 0
        "seed": Bounds(0, 2 ** 32),
        "log_every": Bounds(1),
        "sample_every": Bounds(1),
        "checkpoint_every": Bounds(1),
        "keep_checkpoints": Bounds(1, note="the newest are kept and older ones deleted, so 0 "
                                           "would delete them all"),
        "grid_size": Bounds(1),
        "n_critic": Bounds(1),
        "ema_kimg": Bounds(0, note="0: no EMA"),
        "eval_every": Bounds(0, note="0: no evaluation"),
        "eval_num": Bounds(1),
    },
    "optim": {
        "g_lr": Bounds(0),
        "d_lr": Bounds(0),
        "b1": Bounds(0, 1),
        "b2": Bounds(0, 1),
        "decay_steps": Bounds(0, note="0: constant rates"),
        "decay_start": Bounds(0, note="0: decay from the first step"),
        "eps_root": Bounds(0),
        "d_clip": Bounds(0, note="0: no clipping"),
    },
}


def check(config) -> None:
    """One-line `UserError`s for settings that cannot work, before any data is read or compiled.

    The family checks its own groups when it builds, also before anything is compiled.
    """
    for where, bounds in BOUNDS.items():
        check_bounds(where, getattr(config, where), bounds)
    check_optim_config(config.optim)
    check_data_config(config.data)
    # Imported here: jgan.augment takes its Bounds from this module.
    from jgan.augment import check_augment_config

    check_augment_config(config.train)
    if config.train.eval_every > 0:
        check_evaluation(config.train)


def check_evaluation(train_cfg) -> None:
    """The feature network and number of images of the evaluation every `eval_every` steps."""
    # Imported here: the metrics import the data package, which imports this module's users.
    from jgan.metrics.evaluation import check_image_counts
    from jgan.metrics.features import FEATURE_NETWORKS

    if train_cfg.eval_features not in FEATURE_NETWORKS:
        raise UserError(f"train.eval_features={train_cfg.eval_features!r} is unknown: choose one "
                        f"of {list(FEATURE_NETWORKS)}")
    check_image_counts(train_cfg.eval_num, flag="train.eval_num")


def save(config, path) -> None:
    """Write `config` as JSON, atomically and without following a link at `path`."""
    write_text(path, json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def load(path) -> Config:
    with open(path) as f:
        return from_dict(json.load(f))

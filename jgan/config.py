"""Run configuration: frozen, keyword-only dataclasses in small groups, overridable by `key=value`.

An experiment builds its defaults with `Config(...)`; the command line replaces fields with
`dataclasses.replace` through `override`; the resolved config is written to `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing

from jgan.errors import UserError


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str = "mnist"
    data_dir: str | None = None  # None: $JGAN_DATA_DIR, else the bundled MNIST subset
    split: str = "train"
    image_size: int = 0  # > 0: centre-crop each image to a square and resize it to this size


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    family: str = "gan"  # "gan" (G and D), or "bigan" (G, an encoder E and a joint D(x, z))
    arch: str = "dcgan"  # "dcgan", "mlp" or "toy" (2-D points); bigan also "unet"
    z_dim: int = 100
    base_features: int = 64  # dcgan: channels of D's first and G's last hidden layer
    hidden: int = 1200  # mlp: width of G's hidden layers; toy: of G's and D's
    d_norm: str = "batch"  # dcgan: "batch", or "none" (critics under a gradient penalty)
    spectral_norm: bool = False  # spectral normalization of D's weights (Miyato et al. 2018)
    # "none"; "input": the label is fed to G and D (CGAN); "auxiliary": fed to G and predicted
    # by a class head on D (ACGAN)
    conditioning: str = "none"
    num_classes: int = 10  # used when conditioning is not "none"
    # bigan only:
    g_head: str = "dense"  # "dense", or "conv": a fully convolutional G
    g_crop: int = 0  # > 0: pad-then-crop, G draws a canvas this much wider per side, cut to size
    downsample: str = "stride"  # dcgan E and D: "stride", or "mixed_pool" (jgan.nn.MixedPooling)
    unary: bool = False  # BigBiGAN's unary scores s_x and s_z beside the joint s_xz
    # toy only (jgan.models.toy): depth and activation of G and D, and D's options against mode
    # collapse: minibatch discrimination (Salimans et al. 2016) with this many kernels of this
    # dimension, and PacGAN's packing of this many samples per D input
    g_layers: int = 2
    d_layers: int = 1
    activation: str = "relu"
    minibatch_kernels: int = 0
    minibatch_kernel_dim: int = 5
    pack: int = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimConfig:
    optimizer: str = "adam"  # or "rmsprop" (PyTorch's: decay 0.99, eps outside the root)
    g_lr: float = 2e-4  # separate rates for G and D: the two time-scale rule (Heusel et al. 2017)
    d_lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    decay_steps: int = 0  # > 0: both rates fall linearly to 0 over this many steps
    # Adam's epsilon inside the square root; > 0 keeps gradients through Adam's update finite
    # where a parameter's gradients were all 0 (unrolled GAN's full gradient)
    eps_root: float = 0.0
    d_clip: float = 0.0  # > 0: D's weights are clipped to [-d_clip, d_clip] (WGAN)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LossConfig:
    gan_loss: str = "nonsaturating"  # a name from jgan.losses.LOSSES
    real_label: float = 1.0  # < 1: one-sided label smoothing (Salimans et al. 2016)
    focal_gamma: float = 2.0  # gan_loss "focal" only
    gp_weight: float = 0.0  # WGAN-GP's lambda
    r1_gamma: float = 0.0  # R1 on reals (Mescheder et al. 2018)
    r2_gamma: float = 0.0  # R2 on fakes
    reg_interval: int = 1  # > 1: lazy R1/R2, a separate D update every reg_interval steps
    class_weight: float = 1.0  # ACGAN: weight of the auxiliary classification loss
    # Unrolled GAN (Metz et al. 2017): G's loss is taken against D after this many more updates
    # on the step's batch, differentiated through them ("full") or not ("stop")
    unroll_steps: int = 0
    unroll_gradient: str = "full"
    # G's objective: "adversarial" (loss.gan_loss), or "feature_matching" (Salimans et al. 2016)
    g_objective: str = "adversarial"
    # BiGAN's encoder-collapse regularizer (jgan.losses.encoder_collapse_penalty): the weight of
    # -tanh(pairwise MSE), the base multiplier of the variance term, its tolerance, and the cap
    # of its adaptive multiplier
    e_spread_weight: float = 0.0
    e_variance_weight: float = 0.0
    e_variance_tolerance: float = 0.1
    e_variance_max_multiplier: float = 10.0


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    name: str = "dcgan"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()


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
    """Rebuild a config from `to_dict` output (as read from config.json)."""
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


def save(config, path) -> None:
    with open(path, "w") as f:
        json.dump(to_dict(config), f, indent=2, sort_keys=True)
        f.write("\n")


def load(path) -> Config:
    with open(path) as f:
        return from_dict(json.load(f))

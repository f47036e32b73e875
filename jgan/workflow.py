"""The brain-MRI seed's workflow, as its users had it, on jgan's StyleGAN:

    from jgan import workflow
    run = workflow.train(image_source="slices/", epochs=10)        # a new run
    workflow.train(run, epochs=10)                                 # 10 more; history.csv grows
    workflow.plot_history(run, epochs=(5, 20))                     # RUN/history_epochs_5-20.png
    images = workflow.generate_images(run, 16, "out/")             # like the source files
    images = workflow.generate_images("pretrained", 16)            # the shipped generator

A run is an ordinary jgan run directory (`python -m experiments.stylegan` makes the same), so
every tool reads it; this module only counts in epochs and inverts the preprocessing. After every
epoch (`samples_every` of them) the loop writes samples and the loss plot into the run, and
`training.gif` from the per-epoch samples when a call ends. Epochs count from 1: history.csv's
`epoch` column is the number of epochs done at each row's step (the loop logs one row an epoch).

Errors name this module's arguments (`image_source=`, `config.train.batch_size`), not the command
line's flags that the shared layers word theirs in (`_in_python_terms`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jgan import config as config_lib
from jgan.data import Preprocessing, open_data
from jgan.data.spec import DataSpec
from jgan.errors import UserError
from jgan.families.stylegan import brain_config
from jgan.files import atomic_write, write_text
from jgan.generate import check_image_count, check_truncation
from jgan.images import save_png
from jgan.tools.sample import (check_save_folder, load_run_and_spec, open_checkpoint,
                               save_images)
from jgan.train.history import read_rows, write_rows
from jgan.train.resume import CHECKPOINTS
from jgan.train.setup import build_setup
from jgan.train.state import NetworkState, TrainState
from jgan.weights import load_weights, save_weights

PRETRAINED = "pretrained"
PRETRAINED_FILE = Path(__file__).parent / "pretrained" / "stylegan_brain64.npz"
# The shipped file's sha256: a changed or truncated file is refused, not sampled from.
PRETRAINED_SHA256 = "05b3c6f46e389fd72fafd08e77e250ec192fecd37b664ec20aaaf7d736cfb22d"
WORKFLOW_FILE = "workflow.json"  # steps per epoch, so that plots count in epochs
HISTORY_FILE = "history.csv"
# Truncation psi scales each w's distance from the mean w: 1 leaves it, 0 draws the mean image,
# and up to 2 extrapolates (more varied, less faithful images). A negative psi mirrors w through
# the mean (Karras et al. 2019, Fig. 8's "anti-faces"), which draws nothing like the source
# images that this workflow is for, and past 2 the styles leave the range G was trained on.
PSI_RANGE = (0.0, 2.0)


def _in_python_terms(run_argument: str):
    """Decorator: a `UserError` from the shared layers, which word their fixes for the command
    line (`--images DIR`, `--set data.image_size=64`), reworded for the Python caller, whose run
    directory is the argument `run_argument`."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except UserError as error:
                error.args = (python_spelling(str(error), run_argument),)
                raise

        return wrapper

    return decorate


def python_spelling(message: str, run_argument: str) -> str:
    """`message` with the command line's flags as the workflow's arguments: --images is
    `image_source=`, --workdir the run directory, `--set group.field`, `group.field` and a flag
    named after a config field (--batch-size) `config.group.field`."""
    fields = {field.name: f"config.{group.name}.{field.name}"
              for group in dataclasses.fields(config_lib.Config)
              if dataclasses.is_dataclass(group.default)  # data, optim, train
              for field in dataclasses.fields(group.default)}
    for pattern, spelling in (
            (r"--images DIR \(or --dataset NAME --data-dir DIR\)", "image_source=DIR"),
            (r"--images ", "image_source="), (r"--images\b", "image_source"),
            (r"the --workdir of a training run",
             f"{run_argument}=RUN_DIR, the directory of a training run"),
            (r"--workdir\b", "run_dir"), (r"--set (?=\w+\.\w+)", "config."),
            (r"(?<![\w.])(?=(data|model|optim|loss|train)\.\w)", "config.")):
        message = re.sub(pattern, spelling, message)
    return re.sub(r"--([a-z][a-z-]*)\b",
                  lambda flag: fields.get(flag[1].replace("-", "_"), flag[0]), message)


def default_config():
    """`python -m experiments.stylegan`'s defaults: what `train(model=None)` starts from."""
    return brain_config()


@_in_python_terms("model")
def train(model=None, image_source=None, epochs: int = 1, *, run_dir=None, config=None,
          samples_every: int = 1, log=print) -> Path:
    """Create a run (`model=None`) or continue one (`model=RUN_DIR`) for `epochs` more epochs;
    returns the run directory.

    A new run trains on `image_source` (a folder of images, stored as its absolute path, so the
    run goes on from any working directory) with `config` (default: the experiment's StyleGAN
    settings) in `run_dir` (default `runs/stylegan_<folder>`). A run that goes on reads its own
    settings and data; `image_source`, if given, must be its folder. A run whose folder was
    stored relative (`python -m experiments.stylegan --images slices`, or this function before
    it resolved paths) reads it from where it resolves (`_relative_base`).
    """
    from jgan.train.loop import train as train_loop

    for name, value in ("epochs", epochs), ("samples_every", samples_every):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{name}={value!r}: use a whole number of epochs, 1 or more")
    if model is None:
        config, run_dir = _new_run(image_source, config, run_dir)
        start, base = 0, None
    else:
        run_dir = Path(model)
        with open_checkpoint(run_dir) as (_, start, _, config, _):
            pass
        base = _run_folder_base(run_dir, config.data.images, image_source)
    # The loop gets the run directory's absolute path: an old run's data is read from `base`.
    with _reading_from(base):
        epoch_steps = steps_per_epoch(config)
        every = epoch_steps * samples_every
        config = dataclasses.replace(config, train=dataclasses.replace(
            config.train, steps=start + epochs * epoch_steps, log_every=epoch_steps,
            sample_every=every, checkpoint_every=every))
        train_loop(config, run_dir.absolute(), log=log)
    write_text(run_dir / WORKFLOW_FILE, json.dumps(
        {"steps_per_epoch": epoch_steps, "image_folder": _image_folder(config, base)}))
    _write_epoch_column(run_dir, epoch_steps)
    return run_dir


def _new_run(image_source, config, run_dir):
    """`(config, run_dir)` of a new run on `image_source`, stored resolved."""
    if image_source is None:
        raise UserError("train(model=None) starts a new run: pass image_source=DIR, a "
                        "folder of images")
    folder = Path(image_source).expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"image_source={str(image_source)!r} is not a folder: pass "
                        "image_source=DIR, a folder of images")
    config = config or default_config()
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, images=str(folder), dataset=folder.name))
    # Checked before steps_per_epoch divides by the batch size.
    config_lib.check(config)
    run_dir = Path(run_dir or f"runs/{config.name}_{folder.name}")
    if _holds_checkpoints(run_dir):
        raise UserError(f"{run_dir} already holds a run: continue it with "
                        f"train(model={str(run_dir)!r}, epochs=N), or pass another run_dir")
    return config, run_dir


def _holds_checkpoints(run_dir: Path) -> bool:
    """Whether a checkpoint was written: a new run that failed before its first one (its data
    refused) leaves an empty checkpoints/ behind, which is no run to continue."""
    folder = run_dir / CHECKPOINTS
    return folder.is_dir() and any(path.name.isdigit() for path in folder.iterdir())


def _run_folder_base(run_dir: Path, stored, image_source) -> Path | None:
    """The folder that a run's stored `data.images` is relative to, or None where it is absolute
    (or the run is on a named dataset); refuses an `image_source` that is not the run's folder."""
    if stored is not None and not Path(stored).expanduser().is_absolute():
        return _relative_base(run_dir, stored, image_source)
    if image_source is not None and not _same_folder(image_source, stored):
        raise UserError(f"{run_dir} trains on {stored}, not {image_source}: drop image_source "
                        "to go on with the run's own data, or start a new run with model=None")
    return None


def _relative_base(run_dir: Path, stored: str, image_source) -> Path:
    """Where an old run's relative folder `stored` resolves. With `image_source`: a place from
    which `stored` is that folder. Without: the same for the folder that workflow.json recorded
    when the run last went on, else the first place that holds `stored` of the working directory
    and the run directory's parents (where it was started, for the default `runs/NAME`)."""
    relative = Path(stored).expanduser()
    places = [Path.cwd(), *run_dir.resolve().parents]
    wanted = image_source if image_source is not None else _record(run_dir).get("image_folder")
    if wanted is not None and Path(wanted).expanduser().is_dir():
        wanted = Path(wanted).expanduser().resolve()
        for base in [*places, *wanted.parents]:
            if (base / relative).resolve() == wanted:
                return base
    if image_source is not None:
        raise UserError(f"{run_dir} trains on {stored!r}, not {image_source}: drop "
                        "image_source to go on with the run's own data, or start a new run "
                        "with model=None")
    for base in places:
        if (base / relative).is_dir():
            return base
    raise UserError(f"{run_dir} trains on the folder {stored!r}, relative to where it started, "
                    "which is not found from here: pass that folder as image_source=DIR")


def _reading_from(base: Path | None):
    """The working directory `base` for the body (none changed for None): the loop refuses to
    resume with a changed `data.images` (the run's checkpoints were written with the stored
    relative path), so an old run's path is read from where it resolves."""
    return contextlib.chdir(base) if base is not None else contextlib.nullcontext()


def _image_folder(config, base: Path | None) -> str | None:
    """The absolute path of the run's image folder (None for a named dataset)."""
    if config.data.images is None:
        return None
    return str((base or Path.cwd()).joinpath(Path(config.data.images).expanduser()).resolve())


def _same_folder(a, b) -> bool:
    return b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _record(run_dir: Path) -> dict:
    """workflow.json of a run trained by `train` (steps per epoch, image folder), or {}."""
    record = Path(run_dir) / WORKFLOW_FILE
    return json.loads(record.read_text()) if record.is_file() else {}


def steps_per_epoch(config) -> int:
    """Steps that see every training image once: ceil(images / batch size)."""
    data = open_data(config.data, log=lambda *args: None)
    return math.ceil(len(data.dataset) / config.train.batch_size)


def history(run_dir) -> list[dict]:
    """history.csv's rows, each with its `epoch`: the epochs done at its step, 1 at the end of
    the first (derived from the step, so rows the loop appended since are counted too)."""
    run_dir = Path(run_dir)
    path = run_dir / HISTORY_FILE
    rows = read_rows(path)[1] if path.is_file() else []
    if not rows:
        raise UserError(f"{run_dir} has no {HISTORY_FILE} yet: train it first")
    return _with_epochs(rows, _run_steps_per_epoch(run_dir))


def _with_epochs(rows: list[dict], epoch_steps: int) -> list[dict]:
    """Each row with `epoch`: its step over the steps of an epoch, so the end of the first
    epoch is 1 (and a row logged off an epoch's end a fraction)."""
    return [{**row, "epoch": f"{int(row['step']) / epoch_steps:g}"} for row in rows]


def _write_epoch_column(run_dir: Path, epoch_steps: int) -> None:
    """history.csv with an `epoch` column after `step`, for whoever reads the file itself. The
    shared loop keeps the column when it appends and leaves its new rows' cells empty; the
    next call fills them."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return
    columns, rows = read_rows(path)
    columns = [name for name in columns if name != "epoch"]
    columns.insert(columns.index("step") + 1, "epoch")
    write_rows(path, columns, _with_epochs(rows, epoch_steps))


@_in_python_terms("run_dir")
def plot_history(run_dir, epochs: tuple[float, float] | None = None, path=None) -> Path:
    """Losses and D's outputs by epoch, from `history.csv`, for the epochs `(a, b)` (default
    all, from the first, 1); written to `path` (default `RUN/history_epochs_A-B.png`, its title
    "epochs A-B") and returned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = history(run_dir)
    epoch = np.array([float(row["epoch"]) for row in rows])
    low, high = epochs if epochs is not None else (epoch.min(), epoch.max())
    keep = (epoch >= low) & (epoch <= high)
    if not keep.any():
        raise UserError(f"no history rows in epochs {low} to {high}: this run has epochs "
                        f"{epoch.min():g} to {epoch.max():g}")
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in rows[0]:
        axis = axes[0] if name.startswith("loss/") else axes[1] if name.startswith("d/") else None
        if axis is not None:
            values = np.array([float(row[name]) if row[name] else np.nan for row in rows])
            axis.plot(epoch[keep], values[keep], label=name)
    for axis, title in zip(axes, ("losses", "D on real and fake (probability)")):
        axis.set(title=title, xlabel="epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    last = f"{high:g}" if math.isfinite(high) else f"{epoch.max():g}"
    figure.suptitle(f"epochs {low:g}-{last}")
    figure.tight_layout()
    path = Path(path or run_dir / f"history_epochs_{low:g}-{last}.png")
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)
    plt.close(figure)
    return path


def _run_steps_per_epoch(run_dir: Path) -> int:
    """From workflow.json, or for a run that `train` did not make, from its data."""
    if "steps_per_epoch" in _record(run_dir):
        return _record(run_dir)["steps_per_epoch"]
    with open_checkpoint(run_dir) as (_, _, _, config, _):
        pass
    with _reading_from(_run_folder_base(run_dir, config.data.images, None)):
        return steps_per_epoch(config)


@_in_python_terms("model_folder")
def load_generator(model_folder):
    """`(setup, state, spec)` of a StyleGAN run's latest checkpoint, or of the shipped generator
    for "pretrained" (or None)."""
    if model_folder is None or str(model_folder) == PRETRAINED:
        return load_pretrained()
    setup, state, config, spec = load_run_and_spec(model_folder)
    if config.family != "stylegan":  # psi, cutoff and the grids are StyleGAN's
        raise UserError(f"{model_folder} is a {config.family} run, not a StyleGAN one: sample it "
                        f"with python -m jgan.tools.sample {model_folder}")
    return setup, state, spec


@_in_python_terms("model_folder")
def generate_images(model_folder, num_images: int, save_folder=None, *, psi: float = 1.0,
                    cutoff: int | None = None, seed: int = 0,
                    overwrite: bool = False) -> np.ndarray:
    """uint8 images `[num_images, H, W, C]` in the source files' format (size, border, grey),
    from a run directory or "pretrained"; written as 000000.png, ... when `save_folder` is
    given. `psi` in [0, 2] (`PSI_RANGE`) truncates in W below 1 (the layers before `cutoff`,
    default all). Image i depends on `seed` and i alone: the first k of n images are the k
    images of a call for k.

    A `save_folder` that holds numbered images of an earlier call is refused, since writing
    over the first of them would leave a folder that mixes two sets; `overwrite=True` deletes
    those numbered PNGs (and only those) first.
    """
    check_image_count("num_images", num_images, example=16)
    check_truncation("psi", psi, high=PSI_RANGE[1], example=0.7, none=1)
    check_save_folder(save_folder, overwrite=overwrite)
    setup, state, spec = load_generator(model_folder)
    images = setup.generate(state, jax.random.key(seed), num_images, psi=psi, cutoff=cutoff)
    images = Preprocessing.from_spec(spec).to_source(images)
    save_images(images, save_folder)
    return images


@_in_python_terms("model_folder")
def save_grid(model_folder, kind: str, path, *, seed: int = 0) -> np.ndarray:
    """A "mixing" or "truncation" grid (model size) of a run, written to `path`."""
    setup, state, _ = load_generator(model_folder)
    grids = {"mixing": setup.mixing_grid, "truncation": setup.truncation_grid}
    if kind not in grids:
        raise UserError(f"grid {kind!r} is unknown: choose one of {sorted(grids)}")
    grid = grids[kind](state, jax.random.key(seed))
    save_png(grid, path)
    return grid


@_in_python_terms("run_dir")
def export_pretrained(run_dir, path=PRETRAINED_FILE) -> str:
    """G's sampling weights, the tracked mean w and the level of detail of a run, with its config,
    data spec and step, as one weights file; returns its sha256."""
    setup, state, spec = load_generator(run_dir)
    g = state.nets["g"]
    tree = {"g": state.extra.get("g_ema", g.params), "w_avg": state.extra["w_avg"],
            "lod": state.extra["lod"]}
    with open_checkpoint(run_dir) as (_, step, meta, _, _):
        config = meta["config"]
    save_weights(path, tree, {"config": config, "data_spec": spec.to_json(), "step": step,
                              "source": str(run_dir)})
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_pretrained(path=PRETRAINED_FILE, sha256: str = PRETRAINED_SHA256):
    """`(setup, state, spec)` of the shipped generator, its file checked against `sha256`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"the pretrained generator {path} is missing: reinstall jgan, or pass "
                        "a run directory")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise UserError(f"{path} has sha256 {digest[:12]}..., not the shipped {sha256[:12]}...: "
                        "the file is damaged or replaced; reinstall jgan")
    tree, meta = load_weights(path)
    config = config_lib.from_dict(meta["config"])
    spec = DataSpec.from_json(meta["data_spec"])
    setup = build_setup(config, spec)
    g = NetworkState(params=tree["g"], opt_state=None, collections={})
    state = TrainState(step=jnp.asarray(meta["step"], jnp.int32), nets={"g": g},
                       extra={"w_avg": tree["w_avg"], "lod": jnp.asarray(tree["lod"])})
    return setup, state, spec

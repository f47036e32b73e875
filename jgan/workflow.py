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
`training.gif` from the per-epoch samples when a call ends.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jgan import config as config_lib
from jgan.data import Preprocessing, open_data
from jgan.data.spec import DataSpec
from jgan.errors import UserError
from jgan.images import save_png
from jgan.tools.sample import open_checkpoint, run_data_spec, save_images
from jgan.train.loop import abstract_train_state, run_keys
from jgan.train.parallel import make_mesh
from jgan.train.resume import CHECKPOINTS
from jgan.train.setup import build_setup
from jgan.train.state import NetworkState, TrainState
from jgan.weights import load_weights, save_weights

PRETRAINED = "pretrained"
PRETRAINED_FILE = Path(__file__).parent / "pretrained" / "stylegan_brain64.npz"
# The shipped file's sha256: a changed or truncated file is refused, not sampled from.
PRETRAINED_SHA256 = "96253b3d01b51254114aae7bb0248fed6c451cd1b5e4158ad2f121f8bb73b4dc"
WORKFLOW_FILE = "workflow.json"  # steps per epoch, so that plots count in epochs


def default_config():
    """`python -m experiments.stylegan`'s defaults: what `train(model=None)` starts from."""
    from experiments.stylegan import get_config

    return get_config()


def train(model=None, image_source=None, epochs: int = 1, *, run_dir=None, config=None,
          samples_every: int = 1, log=print) -> Path:
    """Create a run (`model=None`) or continue one (`model=RUN_DIR`) for `epochs` more epochs;
    returns the run directory.

    A new run trains on `image_source` (a folder of images) with `config` (default: the
    experiment's StyleGAN settings) in `run_dir` (default `runs/stylegan_<folder>`). A run that
    goes on reads its own settings and data; `image_source`, if given, must be its folder.
    """
    from jgan.train.loop import train as train_loop

    if not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"epochs={epochs!r}: train for 1 or more whole epochs")
    if model is None:
        if image_source is None:
            raise UserError("train(model=None) starts a new run: pass image_source=DIR, a "
                            "folder of images")
        config = config or default_config()
        config = dataclasses.replace(config, data=dataclasses.replace(
            config.data, images=str(image_source), dataset=Path(image_source).name))
        run_dir = Path(run_dir or f"runs/{config.name}_{Path(image_source).resolve().name}")
        if (run_dir / CHECKPOINTS).is_dir():
            raise UserError(f"{run_dir} already holds a run: continue it with "
                            f"train(model={str(run_dir)!r}, epochs=N), or pass another run_dir")
        start = 0
    else:
        run_dir = Path(model)
        with open_checkpoint(run_dir) as (_, start, _, config, _):
            pass
        if image_source is not None and not _same_folder(image_source, config.data.images):
            raise UserError(f"{run_dir} trains on {config.data.images}, not {image_source}: "
                            "drop image_source to go on with the run's own data, or start a "
                            "new run with model=None")
    epoch_steps = steps_per_epoch(config)
    every = epoch_steps * samples_every
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, steps=start + epochs * epoch_steps, log_every=epoch_steps,
        sample_every=every, checkpoint_every=every))
    train_loop(config, run_dir, log=log)
    (run_dir / WORKFLOW_FILE).write_text(json.dumps({"steps_per_epoch": epoch_steps}))
    return run_dir


def _same_folder(a, b) -> bool:
    return b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def steps_per_epoch(config) -> int:
    """Steps that see every training image once: ceil(images / batch size)."""
    data = open_data(config.data, log=lambda *args: None)
    return math.ceil(len(data.dataset) / config.train.batch_size)


def plot_history(run_dir, epochs: tuple[float, float] | None = None, path=None) -> Path:
    """Losses and D's outputs by epoch, from `history.csv`, for the epochs `(a, b)` (default
    all); written to `path` (default `RUN/history_epochs_A-B.png`) and returned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    history = run_dir / "history.csv"
    rows = list(csv.DictReader(history.open(newline=""))) if history.is_file() else []
    if not rows:
        raise UserError(f"{run_dir} has no history.csv yet: train it first")
    epoch_steps = _run_steps_per_epoch(run_dir)
    epoch = np.array([int(row["step"]) / epoch_steps for row in rows])
    low, high = epochs if epochs is not None else (0, math.inf)
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
    figure.tight_layout()
    last = f"{high:g}" if math.isfinite(high) else f"{epoch.max():g}"
    path = Path(path or run_dir / f"history_epochs_{low:g}-{last}.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _run_steps_per_epoch(run_dir: Path) -> int:
    record = run_dir / WORKFLOW_FILE
    if record.is_file():
        return json.loads(record.read_text())["steps_per_epoch"]
    with open_checkpoint(run_dir) as (_, _, _, config, _):
        return steps_per_epoch(config)


def load_generator(model_folder):
    """`(setup, state, spec)` of a run's latest checkpoint, or of the shipped generator for
    "pretrained" (or None)."""
    if model_folder is None or str(model_folder) == PRETRAINED:
        return load_pretrained()
    with open_checkpoint(model_folder) as (checkpointer, step, meta, config, setup):
        abstract = abstract_train_state(setup, run_keys(config.train.seed)["init"], make_mesh())
        state, _, _ = checkpointer.restore(step, abstract)
        return setup, state, run_data_spec(meta, config)


def generate_images(model_folder, num_images: int, save_folder=None, *, psi: float = 1.0,
                    cutoff: int | None = None, seed: int = 0) -> np.ndarray:
    """uint8 images `[num_images, H, W, C]` in the source files' format (size, border, grey),
    from a run directory or "pretrained"; written as 000000.png, ... when `save_folder` is
    given. `psi` < 1 truncates in W (the layers before `cutoff`, default all)."""
    if num_images < 1:
        raise UserError(f"num_images is {num_images}: ask for at least 1")
    setup, state, spec = load_generator(model_folder)
    images = setup.generate(state, jax.random.key(seed), num_images, psi=psi, cutoff=cutoff)
    images = Preprocessing.from_spec(spec).to_source(images)
    save_images(images, save_folder)
    return images


def save_grid(model_folder, kind: str, path, *, seed: int = 0) -> np.ndarray:
    """A "mixing" or "truncation" grid (model size) of a run, written to `path`."""
    setup, state, _ = load_generator(model_folder)
    grids = {"mixing": setup.mixing_grid, "truncation": setup.truncation_grid}
    if kind not in grids:
        raise UserError(f"grid {kind!r} is unknown: choose one of {sorted(grids)}")
    grid = grids[kind](state, jax.random.key(seed))
    save_png(grid, path)
    return grid


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

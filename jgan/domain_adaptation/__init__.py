"""Domain-adversarial training (DANN, Ganin et al. 2016), MNIST -> MNIST-M.

A feature extractor G_f feeds a label predictor G_y, trained on labelled source images (MNIST),
and, through the gradient-reversal layer (`jgan.nn.reverse_gradient`), a domain classifier G_d
that tells source from target images (MNIST-M, `jgan.data.mnist_m`; its labels are never read
in training). One SGD step on L_y + L_d then trains G_d to tell the domains apart and G_f to
make them alike (eq. 13-14). The paper's schedules (section 5.2.2), with p = step / steps:

- the reversal's weight lambda_p = 2 / (1 + exp(-gamma p)) - 1, gamma = 10 (`adaptation_weight`);
- the rate mu_p = mu_0 / (1 + alpha p)^beta, mu_0 = 0.01, alpha = 10, beta = 0.75, with SGD
  momentum 0.9 (`learning_rate_schedule`).

Source only (`adapt=False`) is the same network and step with lambda = 0: G_d still learns to
tell the domains apart (its accuracy is reported), but no gradient of it reaches G_f.

`train_dann(config, workdir)` trains on the shared loop (`DANNTrainer`, `jgan.train.loop.run`),
evaluates every `eval_every` steps on the test sets (source accuracy, target accuracy, domain
accuracy) into `history.csv`, checkpoints (a resumed run equals the uninterrupted one: batches
are drawn from the seed and the step), and writes results.json/results.md, accuracy.png,
predictions.png and features_pca.png.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan import compile_cache
from jgan import config as config_lib
from jgan.data.mnist_m import load_mnist, load_mnist_m
from jgan.domain_adaptation.networks import DANNDomainClassifier, DANNFeatures, DANNLabelPredictor
from jgan.errors import UserError
from jgan.files import atomic_write, write_text
from jgan.losses import classification_loss
from jgan.nn import reverse_gradient
from jgan.toy_figures import pyplot, save_figure
from jgan.train.distributed import global_batch, is_primary, local_copy, process_rows
from jgan.train.history import History
from jgan.train.loop import run
from jgan.train.parallel import (abstract_replicated, batch_split, check_batch_size,
                                 jit_data_parallel, make_mesh, replicated)
from jgan.train.resume import write_config
from jgan.train.state import Network, apply_gradients, init_train_state
from jgan.train.trainer import Schedule, Trainer

# The paper's numbers for MNIST -> MNIST-M (Ganin et al. 2016, table 2).
PAPER_TARGET_ACCURACY = {"source_only": 0.5225, "dann": 0.7666}
IMAGE_SHAPE = (28, 28, 3)
EVAL_CHUNK = 500  # test images per evaluation call; the last call is padded to this size
PCA_IMAGES = 500  # of each domain, for features_pca.png
MNIST_DIGITS = {"train": 60000, "test": 10000}  # MNIST-M has the same, one per digit


@dataclasses.dataclass(frozen=True, kw_only=True)
class DANNConfig:
    """DANN's settings. Not a `jgan.config.Config`: that one's model and loss groups belong to a
    GAN family of the registry, and DANN has no generator to register."""

    name: str = "dann"
    adapt: bool = True  # False: source only (lambda = 0), the baseline
    data_dir: str | None = None  # a folder holding mnist/ and cifar10_jpg/; None: $JGAN_DATA_DIR
    mnist_m_seed: int = 0  # the MNIST-M builder's seed (patches and their places)
    train_digits: int = 0  # > 0: only the first N train digits of each domain (tests)
    test_digits: int = 0  # > 0: only the first N test digits of each domain (tests)
    backgrounds: int = 0  # > 0: MNIST-M patches from only N CIFAR images per split (tests)
    seed: int = 0
    steps: int = 12000  # DANN's target accuracy still climbs at 6000 (docs/dann.md)
    batch_size: int = 32  # per domain: each step sees 32 source and 32 target images (tf-dann)
    lr: float = 0.01  # mu_0
    lr_alpha: float = 10.0
    lr_beta: float = 0.75
    momentum: float = 0.9
    lambda_gamma: float = 10.0
    # The networks' widths: the paper's, narrower in tests
    conv1_features: int = 32
    conv2_features: int = 48
    hidden: int = 100
    log_every: int = 100
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3


# Fields that may change between a run and its resumption: how chattily it runs, and where the
# data lies. `steps` may not: the schedules are functions of step / steps.
RESUMABLE_FIELDS = frozenset({"log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
                              "data_dir"})
BOUNDS = {
    "steps": config_lib.Bounds(1), "batch_size": config_lib.Bounds(1),
    "seed": config_lib.Bounds(0, 2 ** 32), "mnist_m_seed": config_lib.Bounds(0, 2 ** 32),
    "train_digits": config_lib.Bounds(0, note="0: all 60,000"),
    "test_digits": config_lib.Bounds(0, note="0: all 10,000"),
    "backgrounds": config_lib.Bounds(0, note="0: every CIFAR image"),
    "lr": config_lib.Bounds(0), "lr_alpha": config_lib.Bounds(0),
    "lr_beta": config_lib.Bounds(0), "momentum": config_lib.Bounds(0, 1),
    "lambda_gamma": config_lib.Bounds(0), "conv1_features": config_lib.Bounds(1),
    "conv2_features": config_lib.Bounds(1), "hidden": config_lib.Bounds(1),
    "log_every": config_lib.Bounds(1), "eval_every": config_lib.Bounds(1),
    "checkpoint_every": config_lib.Bounds(1), "keep_checkpoints": config_lib.Bounds(1),
}


def check_config(config: DANNConfig) -> None:
    """One-line `UserError`s for settings that cannot work, before any data is read."""
    for name, allowed in BOUNDS.items():
        value = getattr(config, name)
        if not allowed.allows(value):
            default = getattr(DANNConfig(), name)
            raise UserError(f"{name}={value}: {allowed.advice()}, e.g. --set {name}={default}")
    for split, available in MNIST_DIGITS.items():
        digits = getattr(config, f"{split}_digits")
        if digits > available:  # load_mnist would quietly take the whole split
            raise UserError(f"{split}_digits={digits}: MNIST's {split} split holds {available} "
                            f"digits, so use at most {available} (0: all of them), e.g. --set "
                            f"{split}_digits=0")
    if config.checkpoint_every % config.log_every:
        raise UserError(f"checkpoint_every={config.checkpoint_every} must be a multiple of "
                        f"log_every={config.log_every}: DANN saves only at log steps, e.g. "
                        f"--set checkpoint_every={config.log_every}")
    if 0 < config.train_digits < config.batch_size:
        raise UserError(f"train_digits={config.train_digits} is fewer than one batch of "
                        f"{config.batch_size}: raise it or lower --batch-size")


def adaptation_weight(p, gamma: float = 10.0):
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1: 0 at the start, near 1 by the end (sec. 5.2.2)."""
    return 2.0 / (1.0 + jnp.exp(-gamma * p)) - 1.0


def learning_rate_schedule(steps: int, *, lr: float = 0.01, alpha: float = 10.0,
                           beta: float = 0.75) -> optax.Schedule:
    """mu_p = mu_0 / (1 + alpha p)^beta with p = count / steps (sec. 5.2.2), an optax schedule."""
    return lambda count: lr / (1.0 + alpha * count / steps) ** beta


def make_networks(config: DANNConfig) -> dict[str, Network]:
    tx = optax.sgd(learning_rate_schedule(config.steps, lr=config.lr, alpha=config.lr_alpha,
                                          beta=config.lr_beta), momentum=config.momentum)
    return {"features": Network(DANNFeatures((config.conv1_features, config.conv2_features)), tx),
            "label": Network(DANNLabelPredictor(hidden=config.hidden), tx),
            "domain": Network(DANNDomainClassifier(hidden=config.hidden), tx)}


def example_inputs(config: DANNConfig) -> dict[str, tuple]:
    features = (jnp.zeros((1, 4 * 4 * config.conv2_features)),)
    return {"features": (jnp.zeros((1, *IMAGE_SHAPE)),), "label": features, "domain": features}


def normalize(images, pixel_mean):
    """uint8 [B, 28, 28, 3] -> (pixels - mean) / 255, as tf-dann feeds its networks."""
    return (images.astype(jnp.float32) - pixel_mean) / 255.0


def make_train_step(config: DANNConfig, networks: dict[str, Network], pixel_mean):
    """`(state, batch, key) -> (state, metrics)`; batch = {"source_image" [B, 28, 28, 3] uint8,
    "source_label" [B], "target_image" [B, 28, 28, 3] uint8}."""
    modules = {name: network.module for name, network in networks.items()}
    pixel_mean = jnp.asarray(pixel_mean, jnp.float32)

    def loss_fn(params, batch, lambda_):
        images = jnp.concatenate([batch["source_image"], batch["target_image"]])
        features = modules["features"].apply({"params": params["features"]},
                                             normalize(images, pixel_mean))
        count = batch["source_label"].shape[0]
        class_logits = modules["label"].apply({"params": params["label"]}, features[:count])
        domain_logits = modules["domain"].apply({"params": params["domain"]},
                                                reverse_gradient(features, lambda_))
        is_target = jnp.arange(images.shape[0]) >= count
        label_loss = classification_loss(class_logits=class_logits,
                                         labels=batch["source_label"])
        domain_loss = optax.sigmoid_binary_cross_entropy(domain_logits, is_target).mean()
        metrics = {"loss/label": label_loss, "loss/domain": domain_loss,
                   "accuracy/source_batch": jnp.mean(class_logits.argmax(-1)
                                                     == batch["source_label"]),
                   "accuracy/domain_batch": jnp.mean((domain_logits > 0) == is_target)}
        return label_loss + domain_loss, metrics

    def train_step(state, batch, key):
        del key  # nothing in the step is random: no dropout, and the host draws the batches
        p = state.step / config.steps
        lambda_ = adaptation_weight(p, config.lambda_gamma) if config.adapt else jnp.zeros(())
        params = {name: net.params for name, net in state.nets.items()}
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, batch, lambda_)
        nets = {name: apply_gradients(networks[name], net, grads[name], net.collections)
                for name, net in state.nets.items()}
        lr = learning_rate_schedule(config.steps, lr=config.lr, alpha=config.lr_alpha,
                                    beta=config.lr_beta)(state.step)
        return (state.replace(step=state.step + 1, nets=nets),
                {**metrics, "lambda": lambda_, "lr": lr})

    return train_step


def make_predict(networks: dict[str, Network], pixel_mean):
    """`(state, images uint8 [B, 28, 28, 3]) -> (class logits [B, 10], domain logits [B],
    features [B, F])`, jitted."""
    modules = {name: network.module for name, network in networks.items()}
    pixel_mean = jnp.asarray(pixel_mean, jnp.float32)

    @jax.jit
    def predict(state, images):
        params = {name: net.params for name, net in state.nets.items()}
        features = modules["features"].apply({"params": params["features"]},
                                             normalize(images, pixel_mean))
        return (modules["label"].apply({"params": params["label"]}, features),
                modules["domain"].apply({"params": params["domain"]}, features), features)

    return predict


def predict_all(predict, state, images: np.ndarray):
    """`predict` over every image, in chunks of EVAL_CHUNK or fewer (one compiled shape), as
    numpy."""
    outputs, size = [], min(EVAL_CHUNK, len(images))
    for start in range(0, len(images), size):
        chunk = images[start:start + size]
        padded = np.concatenate([chunk, np.zeros((size - len(chunk), *IMAGE_SHAPE), chunk.dtype)])
        outputs.append([np.asarray(x)[:len(chunk)] for x in predict(state, padded)])
    return [np.concatenate(parts) for parts in zip(*outputs)]


def evaluate(predict, state, test: dict) -> tuple[dict, dict]:
    """Accuracies on the test sets, and the predictions behind them.

    The domain accuracy is G_d's on both test sets together (0.5 = the domains look alike to it).
    """
    source = predict_all(predict, state, test["source_image"])
    target = predict_all(predict, state, test["target_image"])
    domain_correct = np.concatenate([source[1] <= 0, target[1] > 0])
    metrics = {"accuracy/source": float(np.mean(source[0].argmax(-1) == test["source_label"])),
               "accuracy/target": float(np.mean(target[0].argmax(-1) == test["target_label"])),
               "accuracy/domain": float(np.mean(domain_correct))}
    return metrics, {"source": source, "target": target}


class EpochSampler:
    """Batch indices for step k: epochs of a permutation drawn from (seed, stream, epoch), so a
    resumed run draws the same batches as an uninterrupted one. The last partial batch of an
    epoch is dropped."""

    def __init__(self, count: int, batch_size: int, *, seed: int, stream: int):
        self.count, self.batch_size, self.seed, self.stream = count, batch_size, seed, stream
        self.batches_per_epoch = count // batch_size
        self._epoch, self._order = None, None

    def indices(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, self.stream, epoch])
            self._epoch, self._order = epoch, rng.permutation(self.count)
        return self._order[position * self.batch_size:(position + 1) * self.batch_size]


def to_rgb(images: np.ndarray) -> np.ndarray:
    """MNIST's grey [N, 28, 28] as [N, 28, 28, 3], the same digit in every channel."""
    return np.repeat(images[..., None], 3, axis=-1)


def load_data(config: DANNConfig, log=print) -> tuple[dict, dict]:
    """`(train, test)`: MNIST as source, MNIST-M as target; the target's train labels are
    dropped here, so that training cannot see them."""
    data_dir = config.data_dir or os.environ.get("JGAN_DATA_DIR") or None
    sizes = {"train": config.train_digits, "test": config.test_digits}
    splits = {}
    for split, digits in sizes.items():
        source = load_mnist(data_dir, split, digits=digits)
        target = load_mnist_m(data_dir, split, seed=config.mnist_m_seed, digits=digits,
                              backgrounds=config.backgrounds, log=log)
        splits[split] = {"source_image": to_rgb(source["image"]),
                         "source_label": source["label"].astype(np.int32),
                         "target_image": target["image"],
                         "target_label": target["label"].astype(np.int32)}
    del splits["train"]["target_label"]
    return splits["train"], splits["test"]


def pixel_mean(train: dict) -> np.ndarray:
    """The per-channel mean of both domains' train images, as tf-dann subtracts it. [3]"""
    total = sum(train[name].sum(axis=(0, 1, 2), dtype=np.float64)
                for name in ("source_image", "target_image"))
    count = sum(np.prod(train[name].shape[:3]) for name in ("source_image", "target_image"))
    return (total / count).astype(np.float32)


def train_dann(config: DANNConfig, workdir, *, log=print) -> dict:
    """Train (or resume) to `config.steps` on the shared loop; returns the final
    `results.json` dict.

    Turns the persistent compilation cache on first, as every jgan command does
    (`jgan.compile_cache`; `JGAN_COMPILE_CACHE=0` keeps it off)."""
    compile_cache.enable()
    return run(DANNTrainer(config), workdir, log=log)


def setting_changes(config: DANNConfig, saved: dict) -> list[tuple]:
    """`[(field, saved value, value now)]` of the settings, other than `RESUMABLE_FIELDS`, in
    which `config` differs from a checkpoint's `saved` ones (`restore_latest`'s `changes`)."""
    return [d for d in config_lib.differences(saved, dataclasses.asdict(config))
            if d[0] not in RESUMABLE_FIELDS]


def read_config(path) -> DANNConfig:
    """The settings in a DANN run's config.json."""
    return DANNConfig(**json.loads(Path(path).read_text()))


def save_config(config: DANNConfig, path) -> None:
    write_text(path, json.dumps(dataclasses.asdict(config), indent=2) + "\n")


class DANNTrainer(Trainer):
    """DANN (or source only) as a trainer of the shared loop (`jgan.train.loop.run`): one step
    per batch of `batch_size` source and target images, drawn by `EpochSampler`s from the seed
    and the step; the test sets evaluated every `eval_every` steps and at the end."""

    def __init__(self, config: DANNConfig):
        check_config(config)
        self.config, self.name = config, config.name
        self.schedule = Schedule(steps=config.steps, log_every=config.log_every,
                                 checkpoint_every=config.checkpoint_every,
                                 keep_checkpoints=config.keep_checkpoints)

    def prepare(self, workdir, log):
        config = self.config
        self.workdir, self.mesh = workdir, make_mesh()
        check_batch_size(config.batch_size, self.mesh)
        self.train, self.test = load_data(config, log=log)
        networks = make_networks(config)
        mean = pixel_mean(self.train)
        self.init_key, self.run_key = jax.random.split(jax.random.key(config.seed))
        self.init = jax.jit(lambda key: init_train_state(networks, key, example_inputs(config)),
                            out_shardings=replicated(self.mesh))
        self.step_fn = jit_data_parallel(make_train_step(config, networks, mean), self.mesh,
                                         donate_state=True)
        self.predict = make_predict(networks, mean)
        self.samplers = {"source": EpochSampler(len(self.train["source_label"]), config.batch_size,
                                                seed=config.seed, stream=0),
                         "target": EpochSampler(len(self.train["target_image"]),
                                                config.batch_size, seed=config.seed, stream=1)}
        self.rows = process_rows(batch_split(self.mesh), config.batch_size)

    def setting_changes(self, config, saved):
        return setting_changes(config, saved)

    def read_config(self, path):
        return read_config(path)

    def config_dict(self):
        return dataclasses.asdict(self.config)

    def write_config(self, workdir):
        write_config(self.config, workdir, save=save_config)

    def abstract_state(self):
        return abstract_replicated(self.init, self.init_key, mesh=self.mesh)

    def initial(self):
        run_key = jax.jit(lambda key: key, out_shardings=replicated(self.mesh))(self.run_key)
        return self.init(self.init_key), run_key

    def begin(self, start, state, run_key, history, log):
        config = self.config
        log(f"{'DANN' if config.adapt else 'source only'}: {len(self.train['source_label'])} "
            f"MNIST + {len(self.train['target_image'])} MNIST-M train images, "
            f"{len(self.test['source_label'])} test images per domain, {config.steps} steps of "
            f"{config.batch_size} per domain")

    def advance(self, state, run_key, step, count):
        source, target = (self.samplers[name].indices(step)[self.rows]
                          for name in ("source", "target"))
        batch = {"source_image": self.train["source_image"][source],
                 "source_label": self.train["source_label"][source],
                 "target_image": self.train["target_image"][target]}
        return self.step_fn(state, global_batch(batch, batch_split(self.mesh),
                                                self.config.batch_size), run_key)

    def evaluating(self, done: int) -> bool:
        return done % self.config.eval_every == 0 or done == self.config.steps

    def logs_at(self, done):
        return self.evaluating(done)

    def log_row(self, state, done, means, measured, *, steps, seconds, wall_s):
        row = {"step": done, **means, "steps_per_s": steps / seconds}
        if self.evaluating(done):
            row.update(evaluate(self.predict, local_copy(state), self.test)[0])
        postfix = {"label": f"{means['loss/label']:.3f}", "domain": f"{means['loss/domain']:.3f}",
                   **({"target": f"{row['accuracy/target']:.3f}"}
                      if "accuracy/target" in row else {})}
        return row, postfix

    def final_results(self, state):
        return evaluate(self.predict, local_copy(state), self.test)

    def write_results(self, state, final, history, *, trained, wall_s, log):
        if not is_primary():
            return None
        return write_results(self.config, self.workdir, state, final, self.test, history,
                             wall_s, log=log)


def write_results(config: DANNConfig, workdir: Path, state, evaluated: tuple[dict, dict],
                  test: dict, history: History, wall: float, *, log=print) -> dict:
    """results.json and .md (the final accuracies on the whole test sets, `evaluate`'s
    `evaluated`), and the pictures."""
    metrics, outputs = evaluated
    method = "dann" if config.adapt else "source_only"
    results = {"name": config.name, "method": method, "step": int(state.step),
               "test_images_per_domain": len(test["source_label"]), **metrics,
               "paper_target_accuracy": PAPER_TARGET_ACCURACY[method],
               "train_wall_s": round(wall, 1), "config": dataclasses.asdict(config)}
    write_text(workdir / "results.json", json.dumps(results, indent=2) + "\n")
    table = (f"{config.name} ({method}), MNIST -> MNIST-M, step {results['step']}, "
             f"{results['test_images_per_domain']} test images per domain\n\n"
             "| metric | ours | paper |\n|---|---:|---:|\n"
             f"| target (MNIST-M) accuracy | {metrics['accuracy/target']:.4f} | "
             f"{PAPER_TARGET_ACCURACY[method]:.4f} |\n"
             f"| source (MNIST) accuracy | {metrics['accuracy/source']:.4f} | |\n"
             f"| domain accuracy of G_d | {metrics['accuracy/domain']:.4f} | |\n")
    write_text(workdir / "results.md", table)
    title = f"{'DANN' if config.adapt else 'source only'}, step {results['step']}"
    plot_accuracy(history.rows(), workdir / "accuracy.png", title=title)
    plot_predictions(test["target_image"], outputs["target"][0].argmax(-1), test["target_label"],
                     workdir / "predictions.png", title=f"{title}: MNIST-M test predictions")
    projected = pca_2d(np.concatenate([outputs["source"][2][:PCA_IMAGES],
                                       outputs["target"][2][:PCA_IMAGES]]))
    domains = np.repeat([0, 1], [min(PCA_IMAGES, len(outputs[name][2]))
                                 for name in ("source", "target")])
    with atomic_write(workdir / "features_pca.npz") as file:
        np.savez(file, points=projected, domain=domains)
    plot_features([(title, projected, domains)], workdir / "features_pca.png")
    log(table)
    log(f"wrote {workdir / 'results.md'}, accuracy.png, predictions.png, features_pca.png")
    return results


def pca_2d(features: np.ndarray) -> np.ndarray:
    """The features' projection on their first two principal components. [N, 2]"""
    centred = features - features.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def plot_accuracy(rows: list[dict], path, *, title: str) -> None:
    """Source and target test accuracy over steps (from history.csv's evaluated rows)."""
    plt = pyplot()
    evaluated = [row for row in rows if row.get("accuracy/target")]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    steps = [int(row["step"]) for row in evaluated]
    for name, label in (("accuracy/source", "source (MNIST)"),
                        ("accuracy/target", "target (MNIST-M)"),
                        ("accuracy/domain", "domain (G_d)")):
        axis.plot(steps, [float(row[name]) for row in evaluated], marker=".", label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)


def plot_predictions(images: np.ndarray, predicted: np.ndarray, labels: np.ndarray, path, *,
                     title: str, count: int = 48, columns: int = 12) -> None:
    """The first `count` target test images in a grid, each with its prediction above it
    (green if right, red if wrong)."""
    plt = pyplot()
    count = min(count, len(images))
    rows = math.ceil(count / columns)
    cell = IMAGE_SHAPE[0] + 12  # room above each image for its label
    mosaic = np.full((rows * cell, columns * cell, 3), 255, np.uint8)
    figure, axis = plt.subplots(figsize=(columns * 0.9, rows * 0.9 + 0.4))
    for index in range(count):
        top, left = divmod(index, columns)
        top, left = top * cell + 11, left * cell + 6
        mosaic[top:top + IMAGE_SHAPE[0], left:left + IMAGE_SHAPE[1]] = images[index]
        right = predicted[index] == labels[index]
        axis.text(left + IMAGE_SHAPE[1] / 2, top - 2, str(predicted[index]), ha="center",
                  fontsize=8, color="tab:green" if right else "tab:red")
    axis.imshow(mosaic)
    axis.axis("off")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path)


def plot_features(panels, path, *, curves=None) -> None:
    """Panels of `(title, points [N, 2], domain [N])`: PCA of G_f's features by domain; with
    `curves` (`{label: (steps, target accuracies)}`), a first panel of those curves."""
    plt = pyplot()
    columns = len(panels) + (curves is not None)
    figure, axes = plt.subplots(1, columns, figsize=(4 * columns, 4), squeeze=False)
    axes = list(axes.flat)
    if curves is not None:
        curve_axis = axes.pop(0)
        for label, (steps, accuracy) in curves.items():
            curve_axis.plot(steps, accuracy, marker=".", label=label)
        curve_axis.set_title("target (MNIST-M) test accuracy", fontsize=10)
        curve_axis.set_xlabel("step")
        curve_axis.set_ylim(0, 1)
        curve_axis.grid(alpha=0.3)
        curve_axis.legend()
    for axis, (title, points, domain) in zip(axes, panels):
        for value, name, colour in ((0, "MNIST", "tab:blue"), (1, "MNIST-M", "tab:red")):
            chosen = points[domain == value]
            axis.scatter(chosen[:, 0], chosen[:, 1], s=4, alpha=0.5, color=colour, label=name)
        axis.set_title(title, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(markerscale=3)
    figure.tight_layout()
    save_figure(figure, path)


def compare_runs(workdirs, path) -> None:
    """Several runs (source only and DANN) side by side: their target accuracy over steps, and
    each one's features (features_pca.npz) by domain."""
    panels, curves = [], {}
    for workdir in map(Path, workdirs):
        results = json.loads((workdir / "results.json").read_text())
        label = f"{results['method']}, seed {results['config']['seed']}"
        with open(workdir / "history.csv", newline="") as f:
            rows = [row for row in csv.DictReader(f) if row.get("accuracy/target")]
        curves[label] = ([int(row["step"]) for row in rows],
                         [float(row["accuracy/target"]) for row in rows])
        with np.load(workdir / "features_pca.npz") as saved:
            panels.append((f"{label}: target accuracy {results['accuracy/target']:.3f}",
                           saved["points"], saved["domain"]))
    plot_features(panels, path, curves=curves)

"""Every experiment of issue 3 as a user runs it: a few steps, save, resume, sample."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO, SHARED_DATASETS
from jgan.checkpoint import Checkpointer
from jgan.config import load
from jgan.errors import UserError
from jgan.tools.sample import generate_images
from jgan.tools.sample import main as sample_main

TINY = ["--set", "model.base_features=8", "--set", "model.z_dim=8", "--set", "model.hidden=32",
        "--set", "train.log_every=1", "--set", "train.sample_every=2", "--set",
        "train.checkpoint_every=2", "--set", "train.grid_size=4", "--batch-size", "16"]

# name -> what its config must say (the paper defaults the README's table quotes)
DEFAULTS = {
    "cgan": {"model.arch": "dcgan", "model.conditioning": "input"},
    "acgan": {"model.conditioning": "auxiliary", "optim.g_lr": 2e-4},
    "wgan": {"loss.gan_loss": "wasserstein", "optim.optimizer": "rmsprop", "optim.d_lr": 5e-5,
             "optim.d_clip": 0.01, "train.n_critic": 5},
    "wgan_gp": {"loss.gan_loss": "wasserstein", "loss.gp_weight": 10.0, "optim.d_lr": 1e-4,
                "optim.b1": 0.0, "optim.b2": 0.9, "train.n_critic": 5, "model.d_norm": "none"},
    "sngan": {"loss.gan_loss": "hinge", "model.spectral_norm": True, "model.d_norm": "none"},
    "bigan": {"family": "bigan", "model.arch": "mlp", "model.z_dim": 50,
              "train.batch_size": 128, "loss.gan_loss": "nonsaturating"},
    "bigbigan": {"family": "bigan", "model.unary": True, "loss.gan_loss": "hinge",
                 "loss.e_spread_weight": 1.5, "loss.e_variance_weight": 1.0},
}


def _field(config, path):
    node = config
    for name in path.split("."):
        node = getattr(node, name)
    return node


# Each worker takes the next run no other has claimed, longest first, and runs it as
# `python -m experiments.NAME` would: 2 steps, then a resume to 3 (a run with extra flags: 2 steps
# only). Compiling is most of the work and mostly single-threaded: two workers keep CI's two cores
# busy, and XLA's LLVM optimizations, which these few steps do not need, are off.
WORKER = """
import importlib, json, os, sys
root, flags, runs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for run, name, extra in runs:
    try:
        os.close(os.open(os.path.join(root, run + ".claimed"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        continue
    main = importlib.import_module("experiments." + name).main
    codes = [main(["--workdir", os.path.join(root, run), "--steps", steps, *flags, *extra])
             for steps in (("2",) if extra else ("2", "3"))]
    if run == "bigan":  # and `python -m jgan.tools.evaluate_bigan RUN_DIR` on the result
        from jgan.tools.evaluate_bigan import main as evaluate
        codes.append(evaluate([os.path.join(root, run), "--num-train", "200",
                               "--num-test", "100"]))
    with open(os.path.join(root, run + ".codes"), "w") as f:
        json.dump(codes, f)
"""
LONGEST_FIRST = ["wgan_gp", "bigbigan", "bigan", "cgan", "sngan", "wgan", "acgan"]
# ACGAN on the real Fashion-MNIST of ../shared, where it is there: the same programs as acgan's.
FASHION_MNIST = ["--dataset", "fashion_mnist", "--data-dir", str(SHARED_DATASETS)]


@pytest.fixture(scope="module")
def experiment_runs(tmp_path_factory):
    """The folder of the runs, each trained 2 steps and resumed to 3 (bigan's then evaluated;
    ACGAN on Fashion-MNIST 2 steps, where ../shared has it), and the workers' output."""
    root = tmp_path_factory.mktemp("experiments")
    env = {**os.environ, "XLA_FLAGS": QUICK_COMPILE_FLAGS}
    runs = [(name, name, []) for name in LONGEST_FIRST]
    if (SHARED_DATASETS / "fashion_mnist").is_dir():
        runs.append(("acgan_fashion_mnist", "acgan", FASHION_MNIST))
    logs = [(root / f"worker{index}.log").open("w") for index in range(2)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), json.dumps(TINY),
                                 json.dumps(runs)], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT) for log in logs]
    for worker, log in zip(workers, logs):
        worker.wait(timeout=900)
        log.close()
    return root, "\n".join(Path(log.name).read_text()[-3000:] for log in logs)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_experiment_runs_saves_resumes_and_samples(name, experiment_runs, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    for path, value in DEFAULTS[name].items():
        assert _field(module.get_config(), path) == value, path
    root, output = experiment_runs
    codes, workdir = root / f"{name}.codes", root / name
    # Trained to 2, resumed to 3 (and for bigan, evaluated: 0 is evaluate_bigan's success).
    expected = [0, 0, 0] if name == "bigan" else [0, 0]
    assert codes.is_file() and json.loads(codes.read_text()) == expected, output
    assert Checkpointer(workdir / "checkpoints").all_steps() == [2, 3]
    config = load(workdir / "config.json")
    conditional = getattr(config.model, "conditioning", "none") != "none"
    grid = np.asarray(PIL.Image.open(workdir / "samples" / "step_000003.png"))
    rows = (grid.shape[0] - 2) // 30  # 28-pixel images with 2-pixel borders
    assert rows == (10 if conditional else 2)  # one row per class; 2 x 2 otherwise
    if conditional:
        images = generate_images(workdir, 6, seed=1, labels=[3, 7])
        assert images.shape == (6, 28, 28, 1)
        assert sample_main([str(workdir), "--labels", "3,7", "--out",
                            str(tmp_path / "grid.png")]) == 0
        assert np.asarray(PIL.Image.open(tmp_path / "grid.png")).shape[0] == 2 * 30 + 2
    else:
        assert generate_images(workdir, 3, seed=1).shape == (3, 28, 28, 1)
    if config.family == "bigan":
        assert (workdir / "samples" / "reconstruction_step_000003.png").is_file()
    if name == "bigan":
        assert {"trained_encoder", "initial_encoder"} <= set(
            json.loads((workdir / "representation.json").read_text()))
    if not conditional:
        with pytest.raises(UserError, match="unconditional: drop --labels"):
            generate_images(workdir, 3, labels=[1])


@pytest.mark.slow
def test_labels_are_checked_against_the_run(experiment_runs, tmp_path, capsys):
    run = experiment_runs[0] / "acgan"  # the ACGAN experiment's run, trained by the fixture
    for labels, message in [("3,12", "label 12: this run has classes 0 to 9"),
                            ("three", "write class numbers separated by commas")]:
        assert sample_main([str(run), "--labels", labels, "--out",
                            str(tmp_path / "x.png")]) == 2
        assert message in capsys.readouterr().err
    assert sample_main([str(run), "--labels", "1,2", "--num", "5", "--out",
                        str(tmp_path / "x.png")]) == 2
    assert "do not split evenly over 2 labels" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_conditional_gan_trains_on_fashion_mnist(shared_datasets, experiment_runs):
    root, output = experiment_runs  # the fixture ran `experiments.acgan --dataset fashion_mnist`
    codes = root / "acgan_fashion_mnist.codes"
    assert codes.is_file() and json.loads(codes.read_text()) == [0], output
    run = root / "acgan_fashion_mnist"
    assert load(run / "config.json").data.dataset == "fashion_mnist"
    assert (run / "samples" / "step_000002.png").is_file()


def test_dcgan_preset_paper_is_the_old_quick_start():
    # The quick start's default was tuned (issue 19); `--preset paper` must still give the paper's
    # settings that made the old grid: Adam(2e-4, 2e-4, beta1 0.5), batch 64, 4000 steps, no EMA.
    from experiments import dcgan
    from jgan.cli import parse_config
    from jgan.config import Config, OptimConfig, TrainConfig
    from jgan.families.gan import GANLossConfig, GANModelConfig

    paper = Config(name="dcgan_paper", model=GANModelConfig(arch="dcgan"),
                   loss=GANLossConfig(gan_loss="nonsaturating"),
                   optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, b1=0.5, b2=0.999),
                   train=TrainConfig(steps=4000, batch_size=64, ema_kimg=0.0))
    config, workdir = parse_config(dcgan.get_config(), ["--preset", "paper"],
                                   description="", presets=dcgan.PRESETS)
    assert config == paper and workdir == "runs/dcgan_paper_mnist"
    assert dcgan.get_config() != paper


def test_the_quick_starts_ops_give_way_to_another_augmentation():
    """The quick start picks DiffAugment's colour and translation; `--augment none` or `ada`
    (or the same by --set) takes that kind with all of its ops, unless --set picks some."""
    from experiments import dcgan
    from jgan.cli import dry_run
    from jgan.config import check

    assert dry_run(dcgan.main, []).config.train.augment_ops == "color,translation"
    for argv, ops in [(["--augment", "none"], ""), (["--augment", "ada"], ""),
                      (["--set", "train.augment=ada"], ""),
                      (["--augment", "ada", "--set", "train.augment_ops=xflip"], "xflip"),
                      (["--augment", "diffaugment"], "color,translation"),
                      (["--set", "train.augment_ops=cutout"], "cutout")]:
        config = dry_run(dcgan.main, argv).config
        assert config.train.augment_ops == ops, argv
        check(config)

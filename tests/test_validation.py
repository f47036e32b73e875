"""Bad input is refused in one line that names the field and the fix, before any compute.

Settings of the shared groups are refused by `jgan.config.check` before any data is read; a
family's own fields when it builds, before anything is compiled. Neither leaves a run directory.
"""

import importlib
import re

import numpy as np
import PIL.Image
import pytest

from conftest import build, tiny_bigan_config, tiny_config
from experiments import dcgan, mode_collapse
from jgan import config as config_lib
from jgan.config import override
from jgan.data import find_dataset
from jgan.errors import DataError, UserError
from jgan.mode_collapse import check_toy_config
from jgan.tools import evaluate, evaluate_bigan
from jgan.train import family_trainer

EXPERIMENTS = ("acgan", "bigan", "bigbigan", "cgan", "dcgan", "gan", "sngan", "wgan", "wgan_gp")


def _error_line(main, argv, capsys) -> str:
    """The one line a command that exits with code 2 writes to stderr."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def unread_data(monkeypatch):
    """Fail a test whose training run opens its data."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data was opened before the settings were checked")

    monkeypatch.setattr(family_trainer, "open_data", refuse)


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "train.batch_size=0: use 1 or more"),
    (["--batch-size", "-3"], "train.batch_size=-3: use 1 or more"),
    (["--steps", "0"], "train.steps=0: use 1 or more"),
    (["--steps", "-1"], "train.steps=-1: use 1 or more"),
    (["--seed", "-1"], "train.seed=-1: use a value in [0, 4294967296)"),
    (["--set", "train.checkpoint_every=0"], "train.checkpoint_every=0: use 1 or more"),
    (["--set", "train.log_every=0"], "train.log_every=0: use 1 or more"),
    (["--set", "train.log_every=-1"], "train.log_every=-1: use 1 or more"),
    (["--set", "train.sample_every=0"], "train.sample_every=0: use 1 or more"),
    (["--set", "train.keep_checkpoints=0"], "0 would delete them all"),
    (["--set", "train.keep_checkpoints=-2"], "train.keep_checkpoints=-2: use 1 or more"),
    (["--set", "train.grid_size=0"], "train.grid_size=0: use 1 or more"),
    (["--set", "train.n_critic=0"], "train.n_critic=0: use 1 or more"),
    (["--set", "train.ema_kimg=-1"], "train.ema_kimg=-1.0: use 0 or more (0: no EMA)"),
    (["--eval-every", "-1"], "train.eval_every=-1: use 0 or more"),
    (["--eval-every", "5", "--set", "train.eval_num=5"],
     "train.eval_num 5 is too few: the Inception Score"),
    (["--eval-every", "5", "--set", "train.eval_features=vgg"],
     "train.eval_features='vgg' is unknown"),
    (["--set", "optim.g_lr=-1e-4"], "optim.g_lr=-0.0001: use 0 or more"),
    (["--set", "optim.d_lr=nan"], "optim.d_lr=nan: use 0 or more"),
    (["--set", "optim.b1=1"], "optim.b1=1.0: use a value in [0, 1)"),
    (["--set", "optim.b2=-0.1"], "optim.b2=-0.1: use a value in [0, 1)"),
    (["--set", "optim.decay_steps=-1"], "optim.decay_steps=-1: use 0 or more"),
    (["--set", "optim.eps_root=-1"], "optim.eps_root=-1.0: use 0 or more"),
    (["--set", "optim.d_clip=-0.01"], "optim.d_clip=-0.01: use 0 or more"),
    (["--set", "optim.optimizer=sgd"], "optim.optimizer='sgd' is unknown"),
    (["--set", "data.image_size=-1"], "data.image_size -1 is negative"),
    (["--set", "data.split=../../../x"], "data.split='../../../x' is not a plain name"),
    (["--set", "data.dataset=../x"], "data.dataset='../x' is not a plain name"),
])
def test_shared_settings_are_refused_before_the_data_is_read(args, message, tmp_path, capsys,
                                                             unread_data):
    workdir = tmp_path / "run"
    line = _error_line(dcgan.main, ["--workdir", str(workdir), "--steps", "2", *args], capsys)
    assert message in line
    assert not workdir.exists()


def test_keep_checkpoints_0_leaves_an_existing_run_untouched(tmp_path, capsys, unread_data):
    checkpoint = tmp_path / "checkpoints" / "2" / "state"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("a saved step")
    line = _error_line(dcgan.main, ["--workdir", str(tmp_path),
                                    "--set", "train.keep_checkpoints=0"], capsys)
    assert "train.keep_checkpoints=0" in line
    assert checkpoint.read_text() == "a saved step"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoints"]


@pytest.mark.parametrize("config,assignment,message", [
    ("gan", "model.z_dim=0", "model.z_dim=0: use 1 or more"),
    ("gan", "model.base_features=0", "model.base_features=0: use 1 or more"),
    ("gan", "model.hidden=-1", "model.hidden=-1: use 1 or more"),
    ("gan", "loss.class_weight=-1", "loss.class_weight=-1.0: use 0 or more"),
    ("gan", "loss.r2_gamma=-1", "loss.r2_gamma=-1.0: use 0 or more (0: off)"),
    ("gan", "loss.unroll_steps=-1", "loss.unroll_steps=-1: use 0 or more"),
    ("bigan", "model.base_features=0", "model.base_features=0: use 1 or more"),
    ("bigan", "loss.gp_weight=-1", "loss.gp_weight=-1.0: use 0 or more (0: off)"),
])
def test_a_familys_fields_are_refused_when_it_builds(config, assignment, message):
    config = tiny_config() if config == "gan" else tiny_bigan_config()
    with pytest.raises(UserError, match=re.escape(message)):
        build(override(config, [assignment]))


def test_a_familys_fields_are_refused_before_the_run_directory_is_made(tmp_path, capsys):
    workdir = tmp_path / "run"
    line = _error_line(dcgan.main, ["--workdir", str(workdir), "--steps", "2",
                                    "--set", "model.base_features=0"], capsys)
    assert "model.base_features=0: use 1 or more" in line
    assert not workdir.exists()


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "train.batch_size=0: use 1 or more"),
    (["--set", "train.log_every=0"], "train.log_every=0: use 1 or more"),
    (["--steps", "0"], "train.steps=0: use 1 or more"),
    (["--set", "train.checkpoint_every=15", "--set", "train.log_every=10"],
     "must be a multiple of train.log_every=10"),
])
def test_the_2d_benchmark_names_the_setting_at_fault(args, message, tmp_path, capsys):
    workdir = tmp_path / "run"
    line = _error_line(mode_collapse.main, ["--workdir", str(workdir), "--steps", "2",
                                            "--seeds", "1", *args], capsys)
    assert message in line and "learning rate" not in line
    assert not workdir.exists()


@pytest.mark.parametrize("args,message", [
    (["--num", "2"], "--num 2 is too few: the Inception Score"),
    (["--num", "3", "--metrics", "fid,pr"], "--num 3 is too few: precision and recall"),
    (["--num", "1", "--metrics", "fid"], "--num 1 is too few: FID takes the covariance"),
    (["--ref-num", "1"], "--ref-num 1 is too few: the Inception Score"),
    (["--ref-num", "0"], "--ref-num 0 is too few"),
])
def test_evaluate_refuses_too_few_images_before_loading_the_run(args, message, tmp_path,
                                                               capsys):
    line = _error_line(evaluate.main, [str(tmp_path), *args], capsys)
    assert message in line and "or more" in line


@pytest.mark.parametrize("args,message", [
    (["--num-test", "12"], "--num-test 12 is too few: the interpolation grid"),
    (["--num-train", "0"], "--num-train 0 is too few"),
])
def test_evaluate_bigan_refuses_too_few_images_before_loading_the_run(args, message, tmp_path,
                                                                     capsys):
    line = _error_line(evaluate_bigan.main, [str(tmp_path), *args], capsys)
    assert message in line and "or more" in line


def test_the_smallest_counts_that_are_allowed_pass_the_checks():
    evaluate.check_image_counts(10, 10)
    evaluate.check_image_counts(2, 10, ("fid", "kid"))
    evaluate.check_image_counts(1, 10, ("dc",))
    evaluate_bigan.check_image_counts(1, 16)


def _data_folder(root):
    """A data folder with MNIST's IDX files (empty), single images, pairs, archives and a TFDS
    preparation."""
    image = PIL.Image.fromarray(np.zeros((8, 8), np.uint8))
    for name in ("photos/a.png", "pairs/trainA/1.png", "pairs/trainB/1.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name)
    for name in ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
                 "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz",
                 "archives/images.tar.gz"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    (root / "tfds" / "celeb_a").mkdir(parents=True)
    return root


def test_an_unknown_dataset_lists_only_what_trains_on_single_images(tmp_path):
    root = _data_folder(tmp_path)
    with pytest.raises(DataError) as error:
        find_dataset("nope", str(root))
    assert "choose one of celeb_a, mnist, photos; to add nope" in str(error.value)
    assert "did you mean" not in str(error.value)


@pytest.mark.parametrize("dataset,guess", [("mnsit", "mnist"), ("photo", "photos"),
                                           ("Celeb_A", "celeb_a")])
def test_a_misspelt_dataset_gets_a_guess(dataset, guess, tmp_path):
    with pytest.raises(DataError, match=rf"unknown dataset '{dataset}' in .* \(did you mean "
                                        rf"{guess}\?\): choose one of"):
        find_dataset(dataset, str(_data_folder(tmp_path)))


def test_a_misspelt_mnist_without_a_data_folder_gets_a_guess(tmp_path, capsys):
    workdir = tmp_path / "run"
    line = _error_line(dcgan.main, ["--workdir", str(workdir), "--dataset", "mnsit"], capsys)
    assert "unknown dataset 'mnsit' (did you mean mnist?)" in line
    assert not workdir.exists()


def test_the_shared_datasets_list_leaves_out_pairs_and_archives(shared_datasets):
    with pytest.raises(DataError) as error:
        find_dataset("nope", str(shared_datasets))
    message = str(error.value)
    assert "fashion_mnist, mnist" in message
    for refused in ("facades", "summer2winter_yosemite", "cifar10_jpg"):
        assert refused not in message


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_passes_the_checks(name):
    config_lib.check(importlib.import_module(f"experiments.{name}").get_config())


@pytest.mark.parametrize("method", mode_collapse.METHODS)
def test_every_benchmark_method_passes_the_checks(method):
    config = mode_collapse.get_config(method)
    config_lib.check(config)
    check_toy_config(config)

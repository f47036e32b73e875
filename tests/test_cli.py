"""What a user types: experiment modules, the sampler, and their one-line errors."""

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from conftest import REPO
from jgan.tools.sample import generate_images

TINY = ["--set", "model.base_features=8", "--set", "model.z_dim=8", "--set", "model.hidden=32",
        "--set", "train.log_every=1", "--set", "train.sample_every=2",
        "--set", "train.checkpoint_every=2", "--batch-size", "16"]


def _run(*args, check=True):
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dcgan")
    result = _run("experiments.dcgan", "--workdir", str(workdir), "--steps", "4", "--seed", "1",
                  *TINY)
    return workdir, result.stdout


def test_dcgan_cli_writes_every_output(dcgan_run):
    workdir, stdout = dcgan_run
    assert "data: the MNIST subset bundled with jgan" in stdout
    for name in ("config.json", "history.csv", "loss_curve.png", "samples/step_000002.png",
                 "samples/step_000004.png", "checkpoints/4"):
        assert (workdir / name).exists(), name
    header = (workdir / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["step", "kimg"] and {"loss/d", "loss/g", "img_per_s",
                                               "wall_s"} <= set(header)
    grid = np.asarray(PIL.Image.open(workdir / "samples/step_000004.png"))
    assert grid.ndim == 2 and grid.std() > 0


def test_sample_cli_is_deterministic(dcgan_run, tmp_path):
    workdir, _ = dcgan_run
    for name in ("a.png", "b.png"):
        _run("jgan.tools.sample", str(workdir), "--num", "9", "--seed", "3", "--out",
             str(tmp_path / name))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_generate_images_returns_uint8_and_saves(dcgan_run, tmp_path):
    workdir, _ = dcgan_run
    images = generate_images(workdir, 5, save_folder=tmp_path / "out", seed=3)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    np.testing.assert_array_equal(images, generate_images(workdir, 5, seed=3))
    assert not np.array_equal(images, generate_images(workdir, 5, seed=4))


def test_gan_cli_with_minimax_loss(tmp_path):
    _run("experiments.gan", "--workdir", str(tmp_path), "--steps", "2", "--loss", "minimax",
         *TINY)
    assert '"gan_loss": "minimax"' in (tmp_path / "config.json").read_text()
    assert (tmp_path / "samples/step_000002.png").exists()


def test_help_lists_the_flags():
    out = _run("experiments.dcgan", "--help").stdout
    for flag in ("--workdir", "--steps", "--batch-size", "--seed", "--dataset", "--data-dir",
                 "--set"):
        assert flag in out


@pytest.mark.parametrize("args,message", [
    (["--set", "optim.glr=1"], "no field 'glr'"),
    (["--set", "model.unary=true"], "no field 'unary' in GANModelConfig"),  # BiGAN's field
    (["--dataset", "mnsit", "--data-dir", "/no/such/dir"], "does not exist"),
    (["--dataset", "cifar10"], "needs a data folder"),
])
def test_bad_input_is_one_line_on_stderr(tmp_path, args, message):
    result = _run("experiments.dcgan", "--workdir", str(tmp_path), "--steps", "1", *args,
                  check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_sampling_a_folder_that_is_no_run_fails_clearly(tmp_path):
    result = _run("jgan.tools.sample", str(tmp_path), check=False)
    assert result.returncode == 2 and "not a run directory" in result.stderr


def test_sampling_a_missing_step_lists_the_saved_ones(dcgan_run, tmp_path):
    workdir, _ = dcgan_run
    result = _run("jgan.tools.sample", str(workdir), "--step", "3",
                  "--out", str(tmp_path / "x.png"), check=False)
    assert result.returncode == 2 and "no checkpoint at step 3: choose one of [2, 4]" in result.stderr

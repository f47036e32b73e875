"""What a user types: experiment modules, the sampler, and their one-line errors.

Each command runs in its own process, as typed; those that need no more than the trained run
start together.
"""

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

BAD_INPUT = {
    "glr": (["--set", "optim.glr=1"], "no field 'glr'"),
    "unary": (["--set", "model.unary=true"], "no field 'unary' in GANModelConfig"),  # BiGAN's
    "mnsit": (["--dataset", "mnsit", "--data-dir", "/no/such/dir"], "does not exist"),
    "cifar10": (["--dataset", "cifar10"], "needs a data folder"),
}


def _run_all(commands: dict) -> dict:
    """Run `python -m ARGS...` for each name at once; each one's CompletedProcess by name."""
    # They inherit the session's XLA cache: they compile what tests in-process compiled before.
    started = {name: subprocess.Popen([sys.executable, "-m", *map(str, args)], cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, args in commands.items()}
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout,
                                                    stderr)
    return results


def _succeeded(result):
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    """A DCGAN trained 4 steps with the minimax loss: checkpoints 2 and 4."""
    workdir = tmp_path_factory.mktemp("dcgan")
    result = _run_all({"train": ["experiments.dcgan", "--workdir", workdir, "--steps", "4",
                                 "--seed", "1", "--loss", "minimax", *TINY]})["train"]
    return workdir, _succeeded(result).stdout


@pytest.fixture(scope="module")
def commands(dcgan_run, tmp_path_factory):
    """Every other command, all at once (each spends its second or two importing): --help, bad
    input, the sampler run twice alike, and asked for a step or a folder that is no run."""
    workdir, _ = dcgan_run
    out = tmp_path_factory.mktemp("commands")
    results = _run_all({
        "help": ["experiments.dcgan", "--help"],
        **{name: ["experiments.dcgan", "--workdir", out / name, "--steps", "1", *args]
           for name, (args, _) in BAD_INPUT.items()},
        **{name: ["jgan.tools.sample", workdir, "--num", "9", "--seed", "3", "--out", out / name]
           for name in ("a.png", "b.png")},
        "missing_step": ["jgan.tools.sample", workdir, "--step", "3", "--out", out / "x.png"],
        "no_run": ["jgan.tools.sample", out / "empty"]})
    return out, results


@pytest.mark.slow
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
    assert '"gan_loss": "minimax"' in (workdir / "config.json").read_text()  # from --loss


@pytest.mark.slow
def test_sample_cli_is_deterministic(commands):
    out, results = commands
    for name in ("a.png", "b.png"):
        _succeeded(results[name])
    assert (out / "a.png").read_bytes() == (out / "b.png").read_bytes()


@pytest.mark.slow
def test_generate_images_returns_uint8_and_saves(dcgan_run, tmp_path):
    workdir, _ = dcgan_run
    images = generate_images(workdir, 5, save_folder=tmp_path / "out", seed=3)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    np.testing.assert_array_equal(images, generate_images(workdir, 5, seed=3))
    assert not np.array_equal(images, generate_images(workdir, 5, seed=4))


@pytest.mark.slow
def test_help_lists_the_flags(commands):
    out = _succeeded(commands[1]["help"]).stdout
    for flag in ("--workdir", "--steps", "--batch-size", "--seed", "--dataset", "--data-dir",
                 "--set", "--loss"):
        assert flag in out


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_is_one_line_on_stderr(commands, name):
    result, message = commands[1][name], BAD_INPUT[name][1]
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


@pytest.mark.slow
def test_sampling_a_folder_that_is_no_run_fails_clearly(commands):
    result = commands[1]["no_run"]
    assert result.returncode == 2 and "not a run directory" in result.stderr


@pytest.mark.slow
def test_sampling_a_missing_step_lists_the_saved_ones(commands):
    result = commands[1]["missing_step"]
    assert result.returncode == 2 and "no checkpoint at step 3: choose one of [2, 4]" in result.stderr

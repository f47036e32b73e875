"""The brain-MRI workflow (issue 28 part 4): a relative image folder, truncation psi, a reused
save folder, epochs in history.csv, errors in the caller's words, and images drawn per index."""

import csv
import dataclasses
import json
import re
import shutil

import jax
import numpy as np
import PIL.Image
import pytest

from experiments import biggan as biggan_experiment
from experiments import stylegan as stylegan_experiment
from jgan import workflow
from jgan.errors import UserError
from jgan.families.biggan import truncated_prior
from jgan.generate import per_image_inputs
from jgan.tools import sample
from jgan.train.loop import train as train_loop
from test_stylegan import tiny_stylegan_config

QUIET = lambda *args: None  # noqa: E731
EPOCH_STEPS = 2  # 16 slices in batches of 8


def write_slices(folder, num: int = 16):
    """`num` 64x64 grey "slices": a random square inside a black border, which data.crop's
    "auto" crops away as it does the MRI scans'."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(num):
        image = np.zeros((64, 64), np.uint8)
        image[16:48, 16:48] = rng.integers(50, 250, (32, 32))
        PIL.Image.fromarray(image).save(folder / f"slice_{index:02d}.png")
    return folder


def history_steps(run_dir) -> list[int]:
    with open(run_dir / "history.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of two epochs (two steps each) on 16 slices, by `workflow.train`."""
    root = tmp_path_factory.mktemp("workflow_run")
    slices = write_slices(root / "slices")
    return workflow.train(image_source=slices, epochs=2, run_dir=root / "run",
                          config=tiny_stylegan_config(slices), log=QUIET)


@pytest.mark.slow
def test_a_relative_image_source_is_stored_resolved_and_goes_on_from_elsewhere(
        tmp_path, monkeypatch):
    slices = write_slices(tmp_path / "project" / "slices")
    monkeypatch.chdir(tmp_path / "project")
    run_dir = workflow.train(image_source="slices", epochs=1, run_dir="runs/new",
                             config=tiny_stylegan_config("slices"), log=QUIET)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["images"] == str(slices.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # The absolute path names the same folder as the relative one did.
    workflow.train(tmp_path / "project" / run_dir, image_source=slices, epochs=1, log=QUIET)
    assert history_steps(tmp_path / "project" / run_dir) == [EPOCH_STEPS, 2 * EPOCH_STEPS]


@pytest.mark.slow
def test_an_old_run_with_a_relative_folder_goes_on_from_elsewhere(tmp_path, monkeypatch):
    """A run whose data.images was stored as given (`python -m experiments.stylegan --images
    slices`, or the workflow before it resolved paths) reads it from where it resolves."""
    project = tmp_path / "project"
    slices = write_slices(project / "slices")
    monkeypatch.chdir(project)
    config = tiny_stylegan_config("slices")
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, steps=EPOCH_STEPS, log_every=EPOCH_STEPS, checkpoint_every=EPOCH_STEPS))
    train_loop(config, "runs/old", log=QUIET)
    old = project / "runs" / "old"
    assert json.loads((old / "config.json").read_text())["data"]["images"] == "slices"
    moved = tmp_path / "moved" / "old"
    shutil.copytree(old, moved)
    other = write_slices(tmp_path / "other", num=8)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^.*trains on 'slices', not .*other: drop image_sou"):
        workflow.train(old, image_source=other, epochs=1, log=QUIET)
    with pytest.raises(UserError, match="not found from here: pass that folder as image_sour"):
        workflow.train(moved, epochs=1, log=QUIET)
    workflow.train(old, epochs=1, log=QUIET)  # from the run directory's parents
    workflow.train(moved, image_source=slices, epochs=1, log=QUIET)  # the folder, absolute
    assert history_steps(old) == [2, 4] and history_steps(moved) == [2, 4]


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), -1.0, 2.5, 1e30])
def test_psi_that_is_not_finite_or_outside_0_to_2_is_refused_before_sampling(psi, capsys):
    with pytest.raises(UserError, match=rf"^psi={re.escape(repr(psi))}: use a finite number"):
        workflow.generate_images(workflow.PRETRAINED, 1, psi=psi)
    assert stylegan_experiment.main(["--generate", "pretrained", "--psi", str(psi)]) == 2
    error = capsys.readouterr().err
    assert f"error: --psi {psi}: use a finite number in [0, 2]" in error and "psi=" not in error


def test_biggan_truncation_that_is_not_finite_is_refused(tmp_path, capsys):
    for threshold in float("nan"), float("inf"), -0.5:
        with pytest.raises(UserError, match=rf"^truncation={threshold!r}: use a finite num"):
            truncated_prior(jax.random.key(0), 2, 4, threshold)
    assert biggan_experiment.main(["--generate", str(tmp_path), "--truncation", "nan",
                                   "--out", str(tmp_path / "grid.png")]) == 2
    assert "error: --truncation nan: use a finite number of 0 or more" in capsys.readouterr().err


@pytest.mark.slow
def test_a_save_folder_with_earlier_images_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    workflow.generate_images(workflow.PRETRAINED, 3, out, seed=1)
    (out / "notes.txt").write_text("kept")
    with pytest.raises(UserError, match=r"^save_folder='.*out' holds 3 images of an earlier "
                                        r"call \(000000.png, ...\): pass overwrite=True"):
        workflow.generate_images(workflow.PRETRAINED, 2, out)
    images = workflow.generate_images(workflow.PRETRAINED, 2, out, overwrite=True)
    assert sorted(path.name for path in out.iterdir()) == [
        "000000.png", "000001.png", "notes.txt"]
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(out / "000001.png"))[..., None],
                                  images[1])
    for main, argv in (
            (stylegan_experiment.main, ["--generate", "pretrained", "--out", str(out)]),
            (sample.main, [str(tmp_path), "--save-folder", str(out), "--out",
                           str(tmp_path / "grid.png")])):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f" {out} holds 2 images of an earlier call" in error
        assert "add --overwrite" in error and "overwrite=" not in error


@pytest.mark.slow
def test_history_counts_epochs_from_one(run):
    with open(run / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:2] == ["step", "epoch"]
    assert [(row["step"], row["epoch"]) for row in rows] == [("2", "1"), ("4", "2")]
    assert [row["epoch"] for row in workflow.history(run)] == ["1", "2"]
    assert workflow.plot_history(run) == run / "history_epochs_1-2.png"
    assert (run / "history_epochs_1-2.png").is_file()


@pytest.mark.slow
def test_python_errors_name_arguments_not_flags(run, tmp_path):
    slices = run.parent / "slices"
    config = tiny_stylegan_config(slices)

    def with_train(**fields):
        return dataclasses.replace(config, train=dataclasses.replace(config.train, **fields))

    calls = {
        "image_source=": lambda: workflow.train(image_source=tmp_path / "none", epochs=1,
                                                run_dir=tmp_path / "a", config=config),
        "config.train.batch_size": lambda: workflow.train(
            image_source=slices, epochs=1, run_dir=tmp_path / "b",
            config=with_train(batch_size=32)),  # more than the 16 slices
        "config.data.image_size": lambda: workflow.train(
            image_source=slices, epochs=1, run_dir=tmp_path / "c", config=dataclasses.replace(
                config, data=dataclasses.replace(config.data, image_size=48))),
        "config.train.eval_every": lambda: workflow.train(
            image_source=slices, epochs=1, run_dir=tmp_path / "d",
            config=with_train(eval_every=1)),
        "model=RUN_DIR": lambda: workflow.train(tmp_path, epochs=1),
        "model_folder=RUN_DIR": lambda: workflow.generate_images(tmp_path, 1),
    }
    for argument, call in calls.items():
        with pytest.raises(UserError) as error:
            call()
        assert argument in str(error.value) and "--" not in str(error.value), str(error.value)
    with pytest.raises(UserError, match="config.train.batch_size=0"):  # not ZeroDivisionError
        workflow.train(image_source=slices, epochs=1, run_dir=tmp_path / "e",
                       config=with_train(batch_size=0))
    # The refused run left an empty checkpoints/, which is no run to continue.
    with pytest.raises(UserError, match="config.data.image_size"):
        workflow.train(image_source=slices, epochs=1, run_dir=tmp_path / "b",
                       config=dataclasses.replace(config, data=dataclasses.replace(
                           config.data, image_size=48)))


@pytest.mark.slow
@pytest.mark.parametrize("partitionable", [True, False])
def test_the_first_k_of_n_images_are_the_k_image_call(run, partitionable):
    """Image i comes from the seed and i alone, whatever JAX's threefry mode (without
    partitionable threefry, a draw of [n, z] differs in its first rows from one of [k, z]).
    The images are drawn in JAX's default mode alone: in the other, the inputs (per-image keys,
    from which G also draws its noise) are checked bit for bit."""
    generators = {workflow.PRETRAINED: workflow.generate_images,
                  run: sample.generate_images}
    default = jax.config.jax_threefry_partitionable
    with jax.threefry_partitionable(partitionable):
        for model, seed, conditions, sizes in ((workflow.PRETRAINED, 5, {"psi": 0.7}, (2, 4)),
                                               (run, 1, {}, (3, 5))):
            # The inputs bit for bit: integer keys folded per index, then elementwise draws.
            setup = workflow.load_generator(model)[0]
            inputs = [per_image_inputs(setup, jax.random.key(seed), size, **conditions)
                      for size in sizes]
            for a, b in zip(*map(jax.tree.leaves, inputs), strict=True):
                if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                    a, b = jax.random.key_data(a), jax.random.key_data(b)
                np.testing.assert_array_equal(a, b[:sizes[0]])
            if partitionable != default:
                continue
            first, whole = (generators[model](model, size, seed=seed, **conditions)
                            for size in sizes)
            # The images within 1 of 255: XLA:CPU may round a batch of 3 and one of 5 apart.
            np.testing.assert_allclose(first, whole[:len(first)], atol=1)
            assert not np.array_equal(whole[0], whole[1])

"""Issue 30, part 3: bad input to the tools and the sampling commands ends in one line, before any
compute, instead of a traceback after it. The run directories are written directly with
`Checkpointer` (drawn weights, no training); only the memory checks compile train steps, which
is what they measure.
"""

import dataclasses
import json
import os
import pathlib
import re
import shutil

import jax
import numpy as np
import pytest

import experiments.biggan
import experiments.gan
import experiments.stylegan
from conftest import (build, drawn_state, mnist_spec, tiny_config, tiny_toy_config,
                      write_image_folder)
from jgan import config as config_lib
from jgan.config import DataConfig
from jgan import translate
from jgan.checkpoint import Checkpointer
from jgan.domain_adaptation import DANNConfig
from jgan.errors import UserError
from jgan.memory import compiled_memory
from jgan.tools import evaluate, evaluate_bigan, sample
from jgan.train.state import NetworkState, TrainState


def write_checkpoints(run_dir, state, meta: dict, steps=(2,)):
    checkpointer = Checkpointer(run_dir / "checkpoints", keep=len(steps))
    for step in steps:
        checkpointer.save(step, state.replace(step=np.asarray(step, np.int32)),
                          jax.random.key(0), meta)
    checkpointer.close()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A tiny DCGAN run with checkpoints 2 and 4 of drawn weights, read-only for the tests."""
    config = tiny_config("dcgan")
    setup = build(config, num_classes=0)
    run_dir = tmp_path_factory.mktemp("image") / "run"
    meta = {"config": config_lib.to_dict(config),
            "data_spec": mnist_spec(num_classes=0).to_json(), "data": 0, "wall_s": 0.0}
    write_checkpoints(run_dir, drawn_state(setup), meta, steps=(2, 4))
    return run_dir


def tiny_state():
    net = NetworkState(params={"w": np.zeros((2,), np.float32)}, opt_state={}, collections={})
    return TrainState(step=np.zeros((), np.int32), nets={"c": net})


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory):
    """`{kind: run directory}` of a DANN run and a 2-D mode-collapse benchmark run, their
    checkpoints' metadata as those trainers write it."""
    root = tmp_path_factory.mktemp("other")
    write_checkpoints(root / "dann", tiny_state(), {"config": dataclasses.asdict(DANNConfig())})
    write_checkpoints(root / "toy", tiny_state(),
                      {"config": config_lib.to_dict(tiny_toy_config()), "seeds": [0, 1]})
    return {"DANN": root / "dann", "mode-collapse": root / "toy"}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_the_tools_name_a_run_that_draws_no_images(other_runs, tmp_path, capsys):
    images = tmp_path / "in"
    write_image_folder(images, ["a.png"])
    for kind, run_dir in other_runs.items():
        for tool, argv in [(sample, [str(run_dir), "--out", str(tmp_path / "s.png")]),
                           (evaluate, [str(run_dir), "--num", "10"]),
                           (evaluate_bigan, [str(run_dir)]),
                           (translate, [str(run_dir), "--input", str(images),
                                        "--out", str(tmp_path / "out")])]:
            assert tool.main(argv) == 2, (kind, tool.__name__)
            err = one_error_line(capsys)
            assert kind in err and "results" in err, err


def test_sample_reads_the_then_newest_checkpoint_when_the_latest_is_pruned(
        image_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(image_run, run_dir)
    restore = Checkpointer.restore
    pruned = []

    def pruned_while_read(self, step, *args, **kwargs):
        if not pruned:  # a run keeping one checkpoint deletes it between listing and reading
            pruned.append(step)
            shutil.rmtree(self.directory / str(step))
        return restore(self, step, *args, **kwargs)

    monkeypatch.setattr(Checkpointer, "restore", pruned_while_read)
    assert sample.main([str(run_dir), "--num", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert pruned == [4] and (tmp_path / "s.png").is_file()


def no_metrics(**_):
    raise AssertionError("metrics were computed before the refusal")


def test_evaluate_checks_its_output_and_count_before_measuring(image_run, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.setattr(evaluate, "make_evaluator", no_metrics)
    (tmp_path / "dir").mkdir()
    for flags, words in [(["--out", str(tmp_path / "missing" / "m.json")], "does not exist"),
                         (["--out", str(tmp_path / "dir")], "is a directory"),
                         (["--num", "100000000"], "at most")]:
        assert evaluate.main([str(image_run), *flags]) == 2, flags
        assert words in one_error_line(capsys)
    assert not list(tmp_path.rglob("*.tmp")) and not (image_run / "metrics.json").exists()


def test_the_sampling_commands_refuse_bad_flags_in_one_line(image_run, tmp_path, capsys):
    existing = tmp_path / "file.png"
    existing.write_bytes(b"x")
    cases = [(experiments.stylegan, ["--out", str(existing)], "is a file"),
             (experiments.stylegan, [], "not a StyleGAN"),
             (experiments.stylegan, ["--psi", "nan"], "--psi nan"),
             (experiments.stylegan, ["--psi", "1e30"], "--psi 1e+30"),
             (experiments.stylegan, ["--num", "-1"], "--num -1"),
             (experiments.biggan, ["--truncation", "nan", "--out", str(tmp_path / "g.png")],
              "--truncation nan"),
             (experiments.biggan, ["--num", "-1", "--out", str(tmp_path / "g.png")], "--num -1")]
    for module, flags, words in cases:
        assert module.main(["--generate", str(image_run), *flags]) == 2, flags
        assert words in one_error_line(capsys), flags
    assert not (tmp_path / "g.png").exists()


def training_error(argv, capsys) -> str:
    assert experiments.gan.main(["--steps", "2", "--set", "model.hidden=8", *argv]) == 2, argv
    return one_error_line(capsys)


@pytest.mark.slow  # opens MNIST and builds the model twice: about 5 s
def test_a_refused_run_leaves_no_run_directory(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for workdir, flags, words in [(tmp_path / "big", ["--batch-size", "100000"], "exceeds"),
                                  (blocker / "run", [], f"{blocker} is a file")]:
        assert words in training_error(["--workdir", str(workdir), *flags], capsys)
        assert not workdir.exists()
    # Permission bits do not stop root, who runs the tests: the kernel's refusal is simulated.
    workdir = tmp_path / "denied" / "run"
    make = pathlib.Path.mkdir

    def denied(self, *args, **kwargs):
        if self == workdir:
            raise PermissionError(13, "Permission denied", str(self))
        return make(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", denied)
    assert "Permission denied" in training_error(["--workdir", str(workdir)], capsys)
    # A step larger than memory (`--set data.image_size=1024` on MNIST needs 90 GiB) is refused
    # once compiled, before the run directory is made; the plan's figure is simulated here.
    monkeypatch.undo()
    monkeypatch.setattr("jgan.train.family_trainer.compiled_memory", lambda compiled: 90 * 2**30)
    workdir = tmp_path / "large"
    assert re.fullmatch(r"error: one train step on batches of 64 needs 90\.0 GiB \(the state and "
                        r"the activations XLA planned\), more than the [\d.,]+ GiB of memory here: "
                        r"lower --batch-size or data\.image_size, or use a smaller model",
                        training_error(["--workdir", str(workdir)], capsys))
    assert not workdir.exists()


@pytest.mark.slow  # builds the paper's D and reads its labelled MNIST subset: about 4 s
def test_the_k_plus_1_gan_classifies_a_single_test_image(tmp_path, monkeypatch, capsys):
    """D's classes are the run's, not those that the --test-num first test labels show (MNIST's
    first is a 7, which made a D of 8 classes for 10-class weights, after all the training)."""
    import experiments.ssgan
    from jgan.train import loop

    def drawn_run(config, workdir, **_):
        spec = mnist_spec()
        meta = {"config": config_lib.to_dict(config), "data_spec": spec.to_json(), "data": 0,
                "wall_s": 1.0}
        write_checkpoints(workdir, drawn_state(build(config)), meta)

    monkeypatch.setattr(loop, "train", drawn_run)
    assert experiments.ssgan.main(["--workdir", str(tmp_path / "run"), "--steps", "2",
                                   "--test-every", "2", "--test-num", "1"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test_images"] == 1


def test_a_damaged_cache_is_named_in_one_warning_and_built_again(tmp_path, shared_datasets,
                                                                 monkeypatch):
    from jgan.data import mnist_m, open_data
    from jgan.data.sources import cache_dir

    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path / "cache"))
    write_image_folder(tmp_path / "images", ["a.png", "b.png"])
    lines = []

    def folder():
        return open_data(DataConfig(images=str(tmp_path / "images")), log=lines.append)

    def m_m():
        return mnist_m.load_mnist_m(shared_datasets, "test", seed=5, digits=8, backgrounds=2,
                                    log=lines.append)

    for load, pattern in (folder, "folders/*/image.npy"), (m_m, "mnist_m/*seed5-test*.npz"):
        built = load()
        [cache] = cache_dir().glob(pattern)
        cache.write_bytes(cache.read_bytes()[:200])  # cut short, as by a full disk
        lines.clear()
        again = load()
        warnings = [line for line in lines if line.startswith("warning: ")]
        assert len(warnings) == 1 and str(cache.parent) in warnings[0], lines
        arrays = (built.dataset.take([0, 1]), again.dataset.take([0, 1])) if load is folder \
            else (built, again)
        for name in arrays[0]:
            np.testing.assert_array_equal(arrays[0][name], arrays[1][name])


def test_unwritable_outputs_and_caches_are_one_line(image_run, tmp_path, monkeypatch, capsys):
    from jgan.data import open_data

    blocker = tmp_path / "file"
    blocker.write_text("")
    write_image_folder(tmp_path / "images", ["a.png"])
    monkeypatch.setenv("JGAN_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(UserError, match=f"the cache folder {blocker}/cache/folders cannot be made"
                                        ".*set JGAN_CACHE_DIR"):
        open_data(DataConfig(images=str(tmp_path / "images")), log=lambda _: None)
    for out, words in [(blocker / "s.png", f"{blocker} is a file"),
                       (tmp_path / "denied" / "s.png", "cannot be written")]:
        (tmp_path / "denied").mkdir(exist_ok=True)
        # Permission bits do not stop root, who runs the tests: the refusal is simulated.
        monkeypatch.setattr(os, "access", lambda path, mode: "denied" not in str(path))
        assert sample.main([str(image_run), "--num", "1", "--out", str(out)]) == 2
        assert words in one_error_line(capsys)


@pytest.mark.slow  # compiles three train steps: about 7 s
def test_the_planned_step_memory_counts_the_activations_and_refuses_above_memory():
    from jgan.train.family_trainer import compile_step, run_keys
    from jgan.train.parallel import make_mesh

    setup, mesh, keys = build(tiny_config("mlp")), make_mesh(), run_keys(0)
    small = {"image": np.zeros((16, 28, 28, 1), np.uint8),
             "label": np.zeros((16,), np.int32)}
    large = {name: np.concatenate([value] * 8) for name, value in small.items()}
    needs = [compiled_memory(compile_step(setup, mesh, keys, batch, log=lambda _: None))
             for batch in (small, large)]
    state_bytes = sum(leaf.size * leaf.dtype.itemsize
                      for leaf in jax.tree.leaves(jax.eval_shape(setup.init_state, keys["init"])))
    # The state comes in and goes out in the same buffers (donated); the batch's images and D's
    # activations grow with the batch, the state does not.
    assert needs[0] > state_bytes
    assert needs[1] - needs[0] > 7 * (16 * 28 * 28)
    with pytest.raises(UserError, match=r"^one train step on batches of 128 needs [\d.]+ MiB"):
        compile_step(setup, mesh, keys, large, log=lambda _: None, memory=needs[1] - 1)


def test_a_folder_larger_than_memory_decoded_is_refused_before_decoding(tmp_path):
    from jgan.data.folders import check_decoded_size, find_layout

    write_image_folder(tmp_path / "images", ["a.png", "b.png", "c.png"])
    layout = find_layout(tmp_path / "images", "train", "auto")
    check_decoded_size(layout, 0, 0, memory=1)  # no size given: the files' own, unknown yet
    check_decoded_size(layout, 64, 3, memory=3 * 64 * 64 * 3)
    with pytest.raises(UserError, match=r"^3 images of .*images at data.image_size=4096 take "
                                        r"48.0 MiB decoded, more than the 48.0 MiB of memory here: "
                                        r"lower data.image_size$"):
        check_decoded_size(layout, 4096, 0, memory=3 * 4096 ** 2 - 1)


def test_a_train_state_larger_than_memory_is_refused_with_its_size():
    from jgan.train.family_trainer import check_state_fits

    setup = build(tiny_config("dcgan"))
    check_state_fits(setup, jax.random.key(0))  # a few hundred kB
    with pytest.raises(UserError, match=r"the train state holds [\d,]+ parameters, .* MiB with "
                                        r"their gradients, more than .* MiB of memory"):
        check_state_fits(setup, jax.random.key(0), memory=1024)


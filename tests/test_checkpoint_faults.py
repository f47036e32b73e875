"""Damaged run directories: a kill while pruning, corrupt or half-deleted checkpoints, a missing
or garbled config.json, a torn or garbage history.csv, an unreadable sample, and links planted to
make a run write outside its directory. Each ends in a resume from what is intact or in one line.

One tiny run is trained once, in a subprocess killed while it deletes its oldest checkpoint;
each test damages a copy of it.
"""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import PIL.Image
import pytest

import experiments.gan
from conftest import REPO, build, tiny_toy_config, with_train
from jgan import config as config_lib
from jgan.checkpoint import Checkpointer
from jgan.cli import parse_config
from jgan.environment import environment
from jgan.errors import UserError
from jgan.mode_collapse import train_toy
from jgan.tools import components, sample
from jgan.train import family_trainer, loop
from jgan.train.history import History
from jgan.train.lock import hold_run_directory
from jgan.train.parallel import make_mesh
from jgan.train.resume import open_run_directory, restore_latest, write_config

# Checkpoints at steps 2, 4 and 6, of which 2 are kept: the run deletes step 2 as it ends.
FLAGS = ["--steps", "6", "--batch-size", "8", "--set", "model.z_dim=8", "--set", "model.hidden=32",
         "--set", "train.log_every=1", "--set", "train.sample_every=100",
         "--set", "train.checkpoint_every=2", "--set", "train.keep_checkpoints=2"]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """`(run directory, config, exit code)` of a run that SIGKILLs itself while deleting
    checkpoint 2."""
    workdir = tmp_path_factory.mktemp("killed") / "run"
    # The runs resumed in this process compile from the same cache, the session's (inherited).
    env = {**os.environ, "JGAN_KILL_AT": "checkpoint_prune"}
    result = subprocess.run([sys.executable, "-m", "experiments.gan", "--workdir", str(workdir),
                             *FLAGS], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    config, _ = parse_config(experiments.gan.get_config(), FLAGS, description="")
    return workdir, config, result.returncode


@pytest.fixture
def run(killed_run, tmp_path):
    """`(run directory, config)`: a copy of the killed run, for one test to damage."""
    workdir, config, _ = killed_run
    shutil.copytree(workdir, tmp_path / "run")
    return tmp_path / "run", config


def abstract_state(config):
    return family_trainer.abstract_train_state(
        build(config), family_trainer.run_keys(config.train.seed)["init"], make_mesh())


def resume(workdir, config):
    """`(restored, log lines)` of `restore_latest` as the loop calls it."""
    messages = []
    checkpointer = open_run_directory(workdir, keep=config.train.keep_checkpoints)
    try:
        restored = restore_latest(checkpointer, workdir, config, abstract_state(config),
                                  meta_keys=family_trainer.META_KEYS, log=messages.append)
    finally:
        checkpointer.close()
    return restored, messages


def listing(workdir, folder="checkpoints"):
    return sorted(os.listdir(workdir / folder))


def truncated_g(step_dir):
    """G's largest data file cut in half, as a full disk or a lost write leaves it."""
    files = sorted((step_dir / "g" / "ocdbt.process_0" / "d").iterdir(),
                   key=lambda path: path.stat().st_size)
    os.truncate(files[-1], files[-1].stat().st_size // 2)


def garbled_meta(step_dir):
    (step_dir / "meta" / "metadata").write_text('{"data": {"epoch": 0, "batch_')


def edited_meta(edit):
    def damage(step_dir):
        path = step_dir / "meta" / "metadata"
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))
    return damage


def removed(relative):
    def damage(step_dir):
        path = step_dir / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return damage


# How a checkpoint gets damaged, and how the damage is named.
DAMAGES = {
    "truncated data file": (truncated_g, "its g item cannot be read: ValueError: "),
    "deleted data files": (removed("g/ocdbt.process_0/d"), "its g item cannot be read: "),
    "deleted orbax metadata": (removed("_CHECKPOINT_METADATA"),
                               "its _CHECKPOINT_METADATA is missing or unreadable"),
    "deleted item metadata": (removed("g/_METADATA"), "its g item cannot be read: "),
    "deleted ocdbt manifest": (removed("d/manifest.ocdbt"), "its d item cannot be read: "),
    "garbled meta": (garbled_meta, "its meta item cannot be read: JSONDecodeError: "),
    "half-deleted, no meta": (removed("meta"), "its meta item is missing"),
    "half-deleted, no state": (removed("state"), "its state item is missing"),
    "meta without a key": (edited_meta(lambda meta: meta.pop("data")),
                           "its meta item lacks 'data'"),
    "meta of another run": (edited_meta(lambda meta: meta["config"]["train"].update(seed=1)),
                            "it holds another run's settings (train.seed=1, not 0"),
}


@pytest.mark.slow
def test_a_kill_while_deleting_leaves_only_whole_steps(killed_run, run, tmp_path, capsys):
    assert killed_run[2] == -9  # JGAN_KILL_AT=checkpoint_prune: between rename and rmtree
    workdir, config = run
    assert listing(workdir) == ["2.deleting", "4", "6"]
    assert sample.main([str(workdir), "--step", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == (f"error: {workdir} has no checkpoint at step 2: choose "
                                       "one of [4, 6]\n")
    open_run_directory(workdir, keep=config.train.keep_checkpoints).close()
    assert listing(workdir) == ["4", "6"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_resume_moves_a_damaged_checkpoint_aside_and_falls_back(run, damage):
    workdir, config = run
    harm, problem = damage
    harm(workdir / "checkpoints" / "6")
    (state, _, meta), messages = resume(workdir, config)
    assert int(state.step) == 4 and meta["data"]["batch_in_epoch"] == 4
    warning, set_aside = messages[0], workdir / "damaged_checkpoints" / "6"
    assert warning.startswith(f"warning: checkpoint 6 in {workdir / 'checkpoints'} is damaged "
                              f"({problem}")
    assert warning.endswith(f"; moved it to {set_aside}") and "\n" not in warning
    assert messages[1:] == [f"resuming {workdir} from step 4"]
    assert listing(workdir) == ["4"] and set_aside.is_dir()


@pytest.mark.slow
def test_the_resumed_run_replays_the_lost_steps_bit_for_bit(run):
    workdir, config = run
    checkpointer = Checkpointer(workdir / "checkpoints")
    uninterrupted, _, _ = checkpointer.restore(6, abstract_state(config))
    checkpointer.close()
    truncated_g(workdir / "checkpoints" / "6")
    messages = []
    resumed = loop.train(config, workdir, log=messages.append)
    jax.tree.map(np.testing.assert_array_equal, resumed, uninterrupted)
    assert any(line.startswith("warning: checkpoint 6 in") for line in messages)
    assert listing(workdir) == ["4", "6"] and listing(workdir, "damaged_checkpoints") == ["6"]


@pytest.mark.slow
def test_every_checkpoint_damaged_is_one_line_and_moves_nothing(run):
    workdir, config = run
    for step in ("4", "6"):
        garbled_meta(workdir / "checkpoints" / step)
    with pytest.raises(UserError, match=r"^every checkpoint in \S+ is damaged \(steps \[4, 6\]; "
                                        r"6: its meta item cannot be read: JSONDecodeError: "
                                        r"[^\n]*\): move \S+ away to train from step 0, or use "
                                        r"a new --workdir$"):
        resume(workdir, config)
    assert listing(workdir) == ["4", "6"] and not (workdir / "damaged_checkpoints").exists()


@pytest.mark.slow
def test_a_changed_setting_is_refused_without_config_json_and_moves_nothing(run):
    """The checkpoint's own config is compared, before its arrays are read: a changed setting
    is not damage, even beside a damaged array."""
    workdir, config = run
    (workdir / "config.json").unlink()
    truncated_g(workdir / "checkpoints" / "6")
    with pytest.raises(UserError, match=r"holds a run with train.seed=0, not 1 \(and 0 more "
                                        r"differences\): use a new --workdir"):
        resume(workdir, with_train(config, seed=1))
    assert listing(workdir) == ["4", "6"] and not (workdir / "damaged_checkpoints").exists()


@pytest.mark.slow
def test_a_garbled_config_json_is_rewritten_from_the_checkpoint(run):
    workdir, config = run
    path = workdir / "config.json"
    path.write_text('{"name": "ga')
    (state, _, _), messages = resume(workdir, config)
    write_config(config, workdir)
    assert int(state.step) == 6
    assert messages == [f"note: {path} is unreadable (JSONDecodeError); rewriting it",
                        f"resuming {workdir} from step 6"]
    assert config_lib.load(path) == config and not path.with_name("config.json.tmp").exists()


@pytest.mark.slow
def test_each_checkpoint_records_its_software_and_a_resume_on_others_says_so(run):
    workdir, config = run
    meta_file = workdir / "checkpoints" / "6" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    assert meta["environment"] == environment()
    assert set(environment()) >= {"jax", "jaxlib", "flax", "optax", "processor", "python"}
    _, messages = resume(workdir, config)
    assert messages == [f"resuming {workdir} from step 6"]
    # A checkpoint from another jax on another processor; a record that is no dict is ignored.
    meta["environment"] = {**meta["environment"], "jax": "0.4.0", "processor": "Other CPU"}
    meta_file.write_text(json.dumps(meta))
    _, messages = resume(workdir, config)
    assert messages[0] == (f"note: checkpoint 6 was written with jax 0.4.0 -> {jax.__version__}, "
                           f"processor Other CPU -> {environment()['processor']}: the run goes "
                           "on, but its bits may differ from an uninterrupted run's from here")
    meta["environment"] = ["garbage"]
    meta_file.write_text(json.dumps(meta))
    assert resume(workdir, config)[1] == [f"resuming {workdir} from step 6"]


@pytest.mark.slow
def test_the_2d_benchmark_compares_the_checkpoints_config(tmp_path):
    config = tiny_toy_config(steps=10)
    train_toy(config, tmp_path, log=lambda _: None)
    (tmp_path / "config.json").unlink()
    with pytest.raises(UserError, match=r"holds a run with train.seed=0, not 3"):
        train_toy(with_train(config, seed=3), tmp_path, log=lambda _: None)


@pytest.mark.slow
@pytest.mark.parametrize("args,damaged,harm,problem,intact", [
    ([], 6, truncated_g, "its g item cannot be read: ValueError: ", [4]),
    (["--step", "4"], 4, removed("meta"), "its meta item is missing", [6]),
], ids=["latest truncated", "half-deleted step"])
def test_sampling_a_damaged_checkpoint_names_the_intact_ones(run, tmp_path, capsys, args,
                                                             damaged, harm, problem, intact):
    workdir, _ = run
    harm(workdir / "checkpoints" / str(damaged))
    before = listing(workdir)
    out = str(tmp_path / "grid.png")
    assert sample.main([str(workdir), *args, "--out", out]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: checkpoint {damaged} in {workdir / 'checkpoints'} is "
                            f"damaged ({problem}")
    assert error.endswith(f"): choose an intact one of {intact} with --step\n")
    assert error.count("\n") == 1 and listing(workdir) == before
    assert sample.main([str(workdir), "--step", str(intact[0]), "--out", out]) == 0


@pytest.mark.slow
def test_exporting_a_damaged_network_is_one_line(run, tmp_path, capsys):
    workdir, _ = run
    truncated_g(workdir / "checkpoints" / "6")
    assert components.main(["export", str(workdir), "--network", "g",
                            "--out", str(tmp_path / "g.npz")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: checkpoint 6 in ") and error.count("\n") == 1
    assert "is damaged (its g item cannot be read: " in error


def test_an_out_that_is_a_directory_is_refused_before_any_work(tmp_path, capsys):
    no_run = str(tmp_path / "no_run")  # read only after --out is checked
    assert sample.main([no_run, "--out", str(tmp_path)]) == 2
    assert components.main(["export", no_run, "--network", "g", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --out {tmp_path} is a directory: name a file, e.g. --out "
        f"{tmp_path / name}" for name in ("samples.png", "g.npz")]


@pytest.mark.slow
def test_a_workdir_that_is_a_file_is_one_line(killed_run, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a run")
    with pytest.raises(UserError, match=r"^--workdir \S+notes.txt is a file, not a directory: "):
        open_run_directory(path, keep=killed_run[1].train.keep_checkpoints)


def test_no_setting_deletes_the_only_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="keeps at least the newest checkpoint"):
        Checkpointer(tmp_path, keep=0)


def history_with_rows(path, count=3):
    """A history.csv of `count` rows as the loop writes them, and its text."""
    history = History(path, resume_step=0)
    for step in range(1, count + 1):
        history.append({"step": step, "kimg": step * 0.008, "loss/d": 1.0 / step})
    return path.read_text()


# How history.csv gets damaged: (damage of its text or bytes, rows kept, set aside whole).
HISTORY_DAMAGES = {
    "last line cut short": (lambda text: text[:text.rindex(",")], 2, False),
    "cut in a value": (lambda text: text.rstrip()[:-1], 2, False),
    "binary garbage": (lambda text: bytes(range(256)) * 4, 0, True),
    "text garbage": (lambda text: "lorem ipsum\ndolor sit amet\n", 0, True),
    "empty": (lambda text: "", 0, False),
}


def test_a_damaged_history_keeps_what_is_certain_and_moves_the_rest_aside(tmp_path, capsys):
    for name, (damage, kept, moved) in HISTORY_DAMAGES.items():
        path = tmp_path / name / "history.csv"
        path.parent.mkdir()
        damaged = damage(history_with_rows(path))
        path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
        capsys.readouterr()
        history = History(path, resume_step=3)
        assert [int(row["step"]) for row in history.rows()] == list(range(1, kept + 1)), name
        history.append({"step": 4, "kimg": 0.032, "loss/d": 0.25})
        assert int(history.rows()[-1]["step"]) == 4, name
        aside = path.with_name("history.csv.damaged-1")
        assert aside.exists() == moved, name
        if moved:
            assert aside.read_bytes() == (damaged if isinstance(damaged, bytes)
                                          else damaged.encode()), name
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == (1 if kept or moved else 0), (name, lines)
        assert all(line.startswith(f"warning: {path} ") for line in lines), (name, lines)


@pytest.mark.slow
def test_a_resume_past_a_torn_history_and_a_truncated_frame_saves_its_last_checkpoint(run):
    """Links planted at the temporary names of the old writers point outside the run: nothing
    is written through them. A cut history row and a cut PNG stop nothing."""
    workdir, config = run
    outside = workdir.parent / "precious.txt"
    outside.write_text("precious")
    for planted in ("config.json.tmp", "history.csv.tmp", "samples/step_000008.png.tmp",
                    "loss_curve.png.tmp.png", "training.tmp.gif"):
        (workdir / planted).symlink_to(outside)
    history = workdir / "history.csv"
    history.write_text(history.read_text().rstrip()[:-3])
    frame = workdir / "samples" / "step_000006.png"
    os.truncate(frame, frame.stat().st_size // 2)
    messages = []
    loop.train(with_train(config, steps=8), workdir, log=messages.append)
    assert outside.read_text() == "precious"
    assert listing(workdir) == ["6", "8"]
    assert [int(row["step"]) for row in History(history, resume_step=8).rows()] == [
        1, 2, 3, 4, 5, 7, 8]
    warnings = [line for line in messages if line.startswith("warning: ")]
    assert len(warnings) == 2 and "history.csv" in warnings[0] and str(frame) in warnings[1]
    with PIL.Image.open(workdir / "training.gif") as gif:
        assert gif.n_frames == 1


# Entries of a run directory that jgan writes, planted as links outside it (to a file or a
# folder) or as a file where a folder belongs.
PLANTED = [(".lock", "link"), ("history.csv", "link"), ("config.json", "link"),
           ("samples", "folder link"), ("checkpoints", "folder link"),
           ("checkpoints/6", "folder link"), ("samples/step_000006.png", "link"),
           ("checkpoints", "file")]


@pytest.mark.slow
def test_a_run_directory_with_links_or_a_checkpoints_file_is_refused_in_one_line(run):
    workdir, config = run
    outside = workdir.parent / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("precious")
    for name, planted in PLANTED:
        entry = workdir / name
        original = entry.with_name(entry.name + ".original")
        if entry.exists():
            entry.rename(original)
        if planted == "file":
            entry.write_text("not a folder")
        else:
            entry.symlink_to(outside if planted == "folder link" else outside / "precious.txt")
        with pytest.raises(UserError) as refusal:
            with hold_run_directory(workdir):
                open_run_directory(workdir, keep=config.train.keep_checkpoints).close()
        message = str(refusal.value)
        assert "\n" not in message and str(entry) in message, (name, message)
        assert ("is a symbolic link" if entry.is_symlink() else "is a file") in message, message
        assert sorted(os.listdir(outside)) == ["precious.txt"], name
        assert (outside / "precious.txt").read_text() == "precious", name
        entry.unlink()
        if original.exists():
            original.rename(entry)


@pytest.mark.parametrize("damage", ["garbage meta", "no eval FID"])
def test_a_damaged_best_checkpoint_is_moved_aside_and_the_run_goes_on(tmp_path, damage):
    """A damaged best/ checkpoint used to stop every resume of an evaluating run with one line;
    it only records the best so far, so it is set aside like a damaged step in checkpoints/."""
    import jax.numpy as jnp

    from jgan.train.state import NetworkState, TrainState

    state = TrainState(step=jnp.int32(4), nets={"g": NetworkState(
        params={"w": jnp.ones(3)}, opt_state={}, collections={})})
    best = Checkpointer(tmp_path / family_trainer.BEST_DIR, keep=1)
    best.save(4, state, jax.random.key(0), {"config": {}, "eval": {"fid": 3.5}})
    best.wait()
    best.close()
    assert family_trainer.open_best(tmp_path, 6, print)[1] == 3.5  # an intact one gives its FID
    meta_file = tmp_path / family_trainer.BEST_DIR / "4" / "meta" / "metadata"
    meta_file.write_text('{"config": {}, "ev' if damage == "garbage meta"
                         else json.dumps({"config": {}, "eval": {}}))
    logged = []
    manager, fid = family_trainer.open_best(tmp_path, 6, logged.append)
    manager.close()
    assert fid == np.inf and manager.all_steps() == []
    problem = ("its meta item cannot be read: " if damage == "garbage meta"
               else "its meta item holds no eval FID)")
    assert len(logged) == 1 and logged[0].startswith(
        f"warning: the best checkpoint 4 in {tmp_path / 'best'} is damaged ({problem}"), logged
    assert logged[0].endswith(f"; moved it to {tmp_path / 'damaged_best' / '4'}: the "
                              "evaluations from here on choose a new best"), logged
    assert (tmp_path / "damaged_best" / "4" / "meta").is_dir()

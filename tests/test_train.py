"""The host loop: resume equivalence, history, NaN handling, run-directory checks."""

import csv
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import build, tiny_bigan_config, tiny_config, tiny_everything_config, with_train
from jgan.checkpoint import Checkpointer
from jgan.errors import NonFiniteLossError, UserError
from jgan.train import family_trainer, loop
from jgan.train.parallel import make_mesh
from jgan.train.setup import build_setup


def _rows(workdir):
    with open(workdir / "history.csv") as f:
        return list(csv.DictReader(f))


def _assert_same_bits(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
# The plain DCGAN is a part of "everything" (and test_interruptions resumes it after kill -9).
@pytest.mark.parametrize("make_config", [tiny_everything_config, tiny_bigan_config],
                         ids=["everything", "bigan"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, make_config):
    config = make_config(steps=5)
    straight = loop.train(config, tmp_path / "straight", log=lambda _: None)
    loop.train(with_train(config, steps=2), tmp_path / "resumed", log=lambda _: None)
    resumed = loop.train(config, tmp_path / "resumed", log=lambda _: None)
    _assert_same_bits(straight, resumed)

    rows_straight, rows_resumed = _rows(tmp_path / "straight"), _rows(tmp_path / "resumed")
    assert [r["step"] for r in rows_resumed] == ["1", "2", "3", "4", "5"]
    for a, b in zip(rows_straight, rows_resumed):
        assert (a["loss/d"], a["loss/g"]) == (b["loss/d"], b["loss/g"])
    assert float(rows_resumed[-1]["wall_s"]) >= float(rows_resumed[1]["wall_s"])


def test_run_writes_every_output_and_a_finished_run_does_nothing(tmp_path):
    config = tiny_config(steps=4)
    loop.train(config, tmp_path, log=lambda _: None)
    assert (tmp_path / "config.json").is_file() and (tmp_path / family_trainer.LOSS_CURVE).is_file()
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_000002.png", "step_000004.png"]
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 4
    messages = []
    state = loop.train(config, tmp_path, log=messages.append)
    assert int(state.step) == 4 and "nothing to do" in messages[-1]
    assert len(_rows(tmp_path)) == 4


def test_rows_after_the_last_checkpoint_are_replaced_on_resume(tmp_path):
    config = tiny_config(steps=3, checkpoint_every=2)  # checkpoints at 2 and 3
    loop.train(config, tmp_path, log=lambda _: None)
    Checkpointer(tmp_path / "checkpoints").close()
    # Pretend the run died after logging step 3 but before checkpointing it.
    import shutil
    shutil.rmtree(tmp_path / "checkpoints" / "3")
    loop.train(config, tmp_path, log=lambda _: None)
    assert [r["step"] for r in _rows(tmp_path)] == ["1", "2", "3"]


def test_each_step_takes_the_last_states_buffers_and_the_loop_never_reads_them_after(
        tmp_path, monkeypatch):
    """Steps 1-6, logging, sampling and checkpointing at 3 and 6 only: steps 1, 2, 4 and 5 are
    finished after the next call is dispatched, so reading their states (deleted by then) would
    raise; the states passed to those calls must be deleted, or the step kept two states."""
    passed = []
    advance = family_trainer.FamilyTrainer.advance

    def recording_advance(self, state, run_key, step, count):
        passed.append((step, state))
        return advance(self, state, run_key, step, count)

    monkeypatch.setattr(family_trainer.FamilyTrainer, "advance", recording_advance)
    config = tiny_config(steps=6, log_every=3, sample_every=3, checkpoint_every=3)
    state = loop.train(config, tmp_path, log=lambda _: None)
    assert int(state.step) == 6 and [r["step"] for r in _rows(tmp_path)] == ["3", "6"]
    assert Checkpointer(tmp_path / "checkpoints").all_steps() == [3, 6]
    # State 3 may have been copied instead while its checkpoint was written from it.
    deleted = {step: all(leaf.is_deleted() for leaf in jax.tree.leaves(passed_state))
               for step, passed_state in passed}
    assert deleted == {**deleted, 0: True, 1: True, 2: True, 4: True, 5: True}, deleted


@pytest.mark.slow
@pytest.mark.parametrize("make_config", [tiny_everything_config, tiny_bigan_config],
                         ids=["everything", "bigan"])
def test_a_fresh_state_made_network_by_network_is_one_programs_with_no_shared_buffer(
        make_config):
    """A run's first state is made outside jit, one network's init program at a time, so that
    one is in memory at a time (jgan.train.state.init_train_state): the same values as one
    program for all, and no two leaves in one buffer. G's EMA starts as G's parameters, and the
    donated step must not be given a buffer twice."""
    setup = build(make_config())
    whole = jax.jit(setup.init_state)(jax.random.key(5))
    state = family_trainer.initial_state(setup, jax.random.key(5), make_mesh())
    leaves = jax.tree.leaves(state)
    assert jax.tree.structure(state) == jax.tree.structure(whole) and len(leaves) > 20
    for a, b in zip(leaves, jax.tree.leaves(whole)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len({leaf.unsafe_buffer_pointer() for leaf in leaves}) == len(leaves)
    if "g_ema" in state.extra:
        assert len(jax.tree.leaves(state.extra["g_ema"])) > 5


def build_setup_that_diverges(config, spec):
    """The config's setup, whose G loss is NaN from step 3 on."""
    setup = build_setup(config, spec)

    def train_step(state, batch, key):
        new_state, metrics = setup.train_step(state, batch, key)
        metrics["loss/g"] = jnp.where(state.step >= 2, jnp.nan, metrics["loss/g"])
        return new_state, metrics

    return dataclasses.replace(setup, train_step=train_step)


@pytest.mark.slow
def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(family_trainer, "build_setup", build_setup_that_diverges)
    with pytest.raises(NonFiniteLossError, match=r"loss/g = nan at step 3: .*checkpoint is step 2"):
        loop.train(tiny_config(steps=6), tmp_path, log=lambda _: None)
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 2
    monkeypatch.undo()
    state = loop.train(tiny_config(steps=3), tmp_path, log=lambda _: None)
    assert int(state.step) == 3


@pytest.mark.slow
def test_nan_before_the_first_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(family_trainer, "build_setup", build_setup_that_diverges)
    with pytest.raises(NonFiniteLossError, match=r"at step 3: run stopped; no checkpoint was "
                                                 r"written yet \(the first was due at step 5\)"):
        loop.train(tiny_config(steps=6, checkpoint_every=5), tmp_path, log=lambda _: None)
    assert not list((tmp_path / "checkpoints").iterdir())


def test_changed_settings_on_an_existing_run_are_refused(tmp_path):
    loop.train(tiny_config(steps=2), tmp_path, log=lambda _: None)
    with pytest.raises(UserError, match=r"train.seed=0, not 1.*new --workdir"):
        loop.train(tiny_config(steps=2, seed=1), tmp_path, log=lambda _: None)


def test_checkpoint_holds_run_key_data_position_and_statistics(tmp_path):
    config = tiny_config(steps=2)
    state = loop.train(config, tmp_path, log=lambda _: None)
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    setup = build(config)
    keys = family_trainer.run_keys(config.train.seed)
    restored, run_key, meta = checkpointer.restore(
        2, family_trainer.abstract_train_state(setup, keys["init"], make_mesh()))
    checkpointer.close()
    _assert_same_bits(restored, state)
    assert "batch_stats" in restored.nets["g"].collections
    np.testing.assert_array_equal(jax.random.key_data(run_key), jax.random.key_data(keys["run"]))
    assert meta["data"] == {"epoch": 0, "batch_in_epoch": 2, "examples_seen": 32,
                            "batch_size": 16, "dataset_size": 10_000}
    assert meta["data_spec"] == {"arrays": {"image": {"shape": [28, 28, 1], "dtype": "uint8"},
                                            "label": {"shape": [], "dtype": "int32"}},
                                 "num_classes": 10, "kind": "single"}


def test_checkpoints_from_before_per_network_items_still_restore(tmp_path):
    """Until issue 5 the whole state was one orbax item; such runs still resume and sample."""
    config = tiny_config(steps=2)
    state = loop.train(config, tmp_path / "run", log=lambda _: None)
    checkpoints = tmp_path / "run" / "checkpoints"
    meta = Checkpointer(checkpoints).restore_meta(2)
    legacy = tmp_path / "legacy"
    manager = ocp.CheckpointManager(legacy, item_names=("state", "meta"))
    keys = family_trainer.run_keys(config.train.seed)
    manager.save(2, args=ocp.args.Composite(
        state=ocp.args.StandardSave({"train_state": state,
                                     "run_key": jax.random.key_data(keys["run"])}),
        meta=ocp.args.JsonSave(meta)))
    manager.wait_until_finished()
    manager.close()
    setup = build(config)
    restored, run_key, restored_meta = Checkpointer(legacy).restore(
        2, family_trainer.abstract_train_state(setup, keys["init"], make_mesh()))
    _assert_same_bits(restored, state)
    assert restored_meta["data"] == meta["data"]
    np.testing.assert_array_equal(jax.random.key_data(run_key), jax.random.key_data(keys["run"]))

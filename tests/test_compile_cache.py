"""The persistent compilation cache (jgan.compile_cache): on by default, off by flag, and never
a change in results: a run compiled afresh, one that fills the cache and one that reads it are
bit-identical."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO
from jgan import compile_cache
from jgan.tools.sample import load_run
from test_interruptions import history_without_timing

TINY = ["--steps", "2", "--batch-size", "8", "--set", "model.hidden=32", "--set", "model.z_dim=8",
        "--set", "train.log_every=1", "--set", "train.grid_size=4"]
CACHE_HIT = "Persistent compilation cache hit for 'jit_train_step'"


def start(workdir, cache, *flags):
    """`python -m experiments.gan` with `cache` as its JGAN_CACHE_DIR and no cache directory of
    the test session's, so that jgan's default one is used; compilations logged."""
    env = {**os.environ, "JGAN_CACHE_DIR": str(cache), "XLA_FLAGS": QUICK_COMPILE_FLAGS,
           "JAX_LOG_COMPILES": "1"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop(compile_cache.SWITCH_ENV, None)
    return subprocess.Popen([sys.executable, "-m", "experiments.gan", "--workdir", str(workdir),
                             *TINY, *flags], cwd=REPO, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process) -> str:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    return stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run three ways: cache off, beside a cold cache (two cores), then warm."""
    root = tmp_path_factory.mktemp("compile_cache")
    cold, off = start(root / "cold", root / "cache"), start(root / "off", root / "cache_off",
                                                           "--no-compile-cache")
    logs = {"cold": finish(cold), "off": finish(off)}
    entries = sorted(p.name for p in (root / "cache" / "xla").iterdir())
    logs["warm"] = finish(start(root / "warm", root / "cache"))
    return root, logs, entries


@pytest.mark.slow
def test_the_default_cache_fills_and_a_second_run_reads_it(runs):
    root, logs, entries = runs
    assert any(name.startswith("jit_train_step-") for name in entries), entries
    assert CACHE_HIT not in logs["cold"] and CACHE_HIT in logs["warm"]
    assert not (root / "cache_off" / "xla").exists() and CACHE_HIT not in logs["off"]


@pytest.mark.slow
def test_cached_executables_give_bit_identical_runs(runs):
    root, _, _ = runs
    histories = {name: history_without_timing(root / name) for name in ("cold", "warm", "off")}
    assert len(histories["cold"]) == 3  # the header and steps 1, 2
    assert histories["warm"] == histories["cold"] == histories["off"]
    states = {name: load_run(root / name)[1] for name in ("cold", "warm", "off")}
    for name in ("warm", "off"):
        for x, y in zip(jax.tree.leaves(states["cold"]), jax.tree.leaves(states[name])):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    grids = {(root / name / "samples" / "step_000002.png").read_bytes()
             for name in ("cold", "warm", "off")}
    assert len(grids) == 1


def test_a_cache_directory_set_outside_jgan_is_kept_and_off_means_off(monkeypatch):
    # The test session sets its own directory and threshold (tests/conftest.py).
    session_dir = jax.config.jax_compilation_cache_dir
    threshold = jax.config.jax_persistent_cache_min_compile_time_secs
    assert compile_cache.enable() == Path(session_dir)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == threshold
    monkeypatch.setenv(compile_cache.SWITCH_ENV, "0")
    try:
        assert compile_cache.enable() is None
        assert not jax.config.jax_enable_compilation_cache
    finally:
        jax.config.update("jax_enable_compilation_cache", True)


def test_a_cache_that_others_can_write_is_not_used(tmp_path, monkeypatch, capsys):
    """JAX runs what it finds in the cache: one that others may write is turned off, in a
    line."""
    monkeypatch.setenv("JGAN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(compile_cache.SWITCH_ENV, raising=False)
    (tmp_path / "xla").mkdir()
    os.chmod(tmp_path / "xla", 0o777)
    saved = {name: getattr(jax.config, name) for name in ("jax_compilation_cache_dir",
                                                           "jax_enable_compilation_cache")}
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        assert compile_cache.enable() is None
        assert not jax.config.jax_enable_compilation_cache
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {tmp_path / 'xla'} can be "
                                                   "written by its group and others"), lines


ENTRY_THEN_COMPILE = """
import sys, warnings
warnings.simplefilter("error")
import jax, jax.numpy as jnp
from jgan import compile_cache
print(compile_cache.enable())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
print(jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))).sum())
"""


def test_jgans_cache_is_locked_and_takes_over_entries_of_an_unlimited_one(tmp_path):
    """Two runs started together must not read each other's half-written entries: jgan's
    directory has a size limit, with which JAX locks every read and write. An entry written before
    the limit has no last-use time, which JAX's eviction reads before each write: it gets one."""
    cache = tmp_path / "xla"
    cache.mkdir(mode=0o700)
    (cache / "jit_old-0123-cache").write_bytes(b"an entry from before the limit")
    env = {**os.environ, "JGAN_CACHE_DIR": str(tmp_path)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop(compile_cache.SWITCH_ENV, None)
    result = subprocess.run([sys.executable, "-c", ENTRY_THEN_COMPILE], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert result.stdout.splitlines()[0] == str(cache)
    names = sorted(path.name for path in cache.iterdir())
    assert ".lockfile" in names
    entries = [name for name in names if name.endswith(compile_cache.ENTRY_SUFFIX)]
    assert "jit_old-0123-cache" in entries, names
    assert any(name.startswith("jit__lambda-") for name in entries), names
    for entry in entries:
        assert entry.removesuffix(compile_cache.ENTRY_SUFFIX) + compile_cache.USED_SUFFIX in names

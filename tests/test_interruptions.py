"""A run survives what ends processes: kill -9 at chosen moments, Ctrl-C and SIGTERM, a second run.

Moments are chosen by fault points (`JGAN_KILL_AT=POINT@STEP`: the process sends SIGKILL to its
own PID there) or by waiting for files the run writes, never by sleeping.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO, free_port
from jgan.tools.sample import load_run
from jgan.train.lock import hold_run_directory

TINY = ["--batch-size", "8", "--set", "model.hidden=32", "--set", "model.z_dim=8",
        "--set", "train.log_every=1", "--set", "train.sample_every=3",
        "--set", "train.checkpoint_every=3", "--set", "train.keep_checkpoints=2",
        "--set", "train.grid_size=4"]


def command(workdir, steps):
    return [sys.executable, "-m", "experiments.gan", "--workdir", str(workdir),
            "--steps", str(steps), *TINY]


def environment(kill_at=None):
    """The runs' environment, the session's XLA cache included (every run here, and
    test_checkpoint_faults' killed run, compiles the same programs)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("JGAN_KILL_AT", None)
    if kill_at:
        env["JGAN_KILL_AT"] = kill_at
    return env


def run(workdir, steps, kill_at=None):
    return subprocess.run(command(workdir, steps), cwd=REPO, env=environment(kill_at),
                          capture_output=True, text=True, timeout=300)


def history_without_timing(workdir):
    lines = (workdir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("img_per_s", "wall_s")]
    return [[line.split(",")[i] for i in keep] for line in lines]


@pytest.mark.slow
def test_kill_9_at_every_kind_of_moment_then_resume_equals_the_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # The uninterrupted run goes alongside the killed ones: CI has two cores.
    reference = subprocess.Popen(command(whole, 12), cwd=REPO, env=environment(), text=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Each restart is killed at the next moment: after compiling, mid-step (dispatched, not yet
    # read), after a history row, while a checkpoint is written, after a sample grid, while the
    # oldest checkpoint is deleted; the last restart runs to the end.
    moments = ["compiled", "step@2", "history@4", "checkpoint@6", "samples@9",
               "checkpoint_prune", None]
    for moment in moments:
        result = run(killed, 12, kill_at=moment)
        expected = 0 if moment is None else -signal.SIGKILL
        assert result.returncode == expected, (moment, result.stderr[-2000:])
    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr[-2000:]
    assert history_without_timing(killed) == history_without_timing(whole)
    a, b = load_run(whole)[1], load_run(killed)[1]
    assert int(a.step) == int(b.step) == 12
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for grid in ("step_000003.png", "step_000012.png"):
        assert (whole / "samples" / grid).read_bytes() == (killed / "samples" / grid).read_bytes()


def wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stopped_at(stderr: str, signum) -> int:
    """The step a stopped run says it saved, after checking its one line."""
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped by {signal.Signals(signum).name} after step "), last
    assert "resume with: " in last and "experiments.gan" in last
    return int(last.split("after step ")[1].split()[0])


@pytest.mark.slow
def test_a_signal_before_the_first_step_ends_the_run_at_once_in_one_line(tmp_path):
    """SIGTERM while the data is prepared used to kill the run without a word (and Ctrl-C in
    the model build gave a KeyboardInterrupt traceback); either while compiling was ignored
    until a step had run. Now each ends the process at once, the main thread being busy
    (JGAN_PAUSE_AT), and a run directory this run made is removed."""
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("kept")
    cases = [("data", signal.SIGTERM, tmp_path / "new_a", "no run directory is left"),
             ("compiling", signal.SIGINT, tmp_path / "new_b", "no run directory is left"),
             ("compiling", signal.SIGTERM, existing, f"{existing} keeps what it held")]
    processes = [subprocess.Popen(command(workdir, 3), cwd=REPO,
                                  env={**environment(), "JGAN_PAUSE_AT": point}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for point, _, workdir, _ in cases]
    try:
        for process, (point, signum, workdir, where) in zip(processes, cases):
            for line in process.stdout:
                if line.startswith("paused at"):
                    break
            assert line == f"paused at {point}\n", process.communicate()[1][-2000:]
            process.send_signal(signum)
            _, stderr = process.communicate(timeout=20)  # the pause lasts an hour
            assert process.returncode == 128 + signum, stderr[-2000:]
            assert "Traceback" not in stderr
            last = stderr.strip().splitlines()[-1]
            assert last.startswith(f"stopped by {signum.name} before the first step: {where}; "
                                   "run again with: "), last
    finally:
        for process in processes:
            process.kill()
    assert not (tmp_path / "new_a").exists() and not (tmp_path / "new_b").exists()
    assert (existing / "notes.txt").read_text() == "kept"
    assert not (existing / "checkpoints").exists() or not any((existing / "checkpoints").iterdir())

@pytest.mark.slow
def test_ctrl_c_finishes_the_step_saves_it_and_says_how_to_resume(tmp_path):
    workdir = tmp_path / "run"
    process = subprocess.Popen(command(workdir, 100000), cwd=REPO, env=environment(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(workdir / "history.csv", process)  # the first step is logged: training
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    step = stopped_at(stderr, signal.SIGINT)
    assert (workdir / "checkpoints" / str(step)).is_dir()
    resumed = run(workdir, step + 1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from step {step}" in resumed.stdout + resumed.stderr


@pytest.mark.slow
def test_sigterm_to_one_process_of_a_job_stops_every_process_after_the_same_step(tmp_path):
    # Preemption as SLURM or a Cloud TPU delivers it, to one process of a 2-process job: JAX's
    # preemption sync names the step, every process saves its part there and exits with 143.
    workdir, port = tmp_path / "run", free_port()
    env = {**environment(), "XLA_FLAGS": QUICK_COMPILE_FLAGS}  # programs no other run compiles
    processes = [subprocess.Popen(
        command(workdir, 100000) + ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                                    "--process-id", str(index)],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for index in range(2)]
    wait_for(workdir / "history.csv", processes[0])
    processes[1].send_signal(signal.SIGTERM)
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [143, 143], errors[0][-2000:]
    steps = {stopped_at(stderr, signal.SIGTERM) for stderr in errors}
    assert len(steps) == 1
    stopped = steps.pop()
    assert (workdir / "checkpoints" / str(stopped)).is_dir()
    # Before the first step of the resumed job (while it opens the data): JAX has caught the
    # signal, and the job stops after its first step. It used to train on: the notice set the
    # sync point at 1, which the resumed run's step numbers never met.
    port = free_port()
    processes = [subprocess.Popen(
        command(workdir, 100000) + ["--coordinator", f"127.0.0.1:{port}", "--num-processes",
                                    "2", "--process-id", str(index)],
        cwd=REPO, env={**env, "PYTHONUNBUFFERED": "1"}, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for index in range(2)]
    try:
        # Process 0's first line comes once every process has joined the job.
        assert processes[0].stdout.readline().startswith("multi-process job")
        time.sleep(1)  # for process 1 to return from joining, which installs JAX's handler
        processes[1].send_signal(signal.SIGTERM)
        errors = [process.communicate(timeout=120)[1] for process in processes]
    finally:
        for process in processes:  # JAX's handler keeps SIGTERM from ending one left running
            process.kill()
    assert [process.returncode for process in processes] == [143, 143], errors[0][-2000:]
    assert {stopped_at(stderr, signal.SIGTERM) for stderr in errors} == {stopped + 1}


def test_a_second_run_on_a_held_run_directory_is_refused_naming_the_holder(tmp_path):
    workdir = tmp_path / "run"
    with hold_run_directory(workdir):
        refused = run(workdir, 2)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (refused.stderr.strip().splitlines() or [""])[-1]
    assert f"in use by process {os.getpid()}" in refused.stderr
    assert not (workdir / "checkpoints").exists()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.run(
        [sys.executable, "-c", "import os, signal, pathlib\n"
         "from jgan.train.lock import hold_run_directory\n"
         f"with hold_run_directory(pathlib.Path({str(workdir)!r})):\n"
         "    os.kill(os.getpid(), signal.SIGKILL)"], cwd=REPO)
    assert holder.returncode == -signal.SIGKILL
    assert (workdir / ".lock").read_text()  # the dead holder's record is still there
    with hold_run_directory(workdir):
        assert str(os.getpid()) in (workdir / ".lock").read_text()


def test_the_hidden_files_of_writes_killed_midway_are_removed_when_a_run_takes_the_lock(
        tmp_path):
    workdir = tmp_path / "run"
    (workdir / "samples").mkdir(parents=True)
    left = [workdir / ".history.csv.0a1b2c3d.tmp", workdir / "samples" / ".step_000004.png."
            "deadbeef.tmp"]
    fresh = workdir / ".config.json.12345678.tmp"  # a write that may still be going on
    other = [workdir / ".notes.tmp", workdir / "samples" / "step_000004.png"]
    for path in (*left, fresh, *other):
        path.write_text("")
    for path in (*left, *other):
        os.utime(path, (time.time() - 120, time.time() - 120))
    with hold_run_directory(workdir):
        assert [path.exists() for path in (*left, fresh, *other)] == [False, False, True, True,
                                                                      True]


def test_ctrl_c_where_no_stop_handler_runs_is_one_line_and_130(capsys):
    """Before a run's handler is installed (imports, flags), or in a tool: no traceback."""
    from jgan.errors import reports_errors

    @reports_errors
    def main():
        raise KeyboardInterrupt

    assert main() == 130
    assert capsys.readouterr().err == "stopped by Ctrl-C (SIGINT)\n"

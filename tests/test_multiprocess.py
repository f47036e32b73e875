"""Multi-process training for real: local processes joined by JAX's runtime over CPU collectives.

Two processes with 2 forced CPU devices each (coordinator on 127.0.0.1, gloo) train as one
4-device job. What they compute must match one process with 4 devices, up to the order in which
the collectives sum; and what they save, one process restores and trains on.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO, free_port
from jgan.tools.sample import load_run

SMALL = {"dcgan": ["--batch-size", "8", "--set", "model.base_features=8"],
         "bigan": ["--batch-size", "8", "--set", "model.hidden=32", "--set", "model.z_dim=8"]}
EVERY_STEP = ["--set", "train.log_every=1", "--set", "train.checkpoint_every=1",
              "--set", "train.sample_every=1000", "--set", "train.grid_size=4"]

# Each process trains the DCGAN, then the BiGAN, as a user's `python -m experiments.NAME` does:
# the JAX import, the process start and the job's start are paid once for both.
WORKER = """
import json, sys
from experiments import bigan, dcgan
for name, main in (("dcgan", dcgan.main), ("bigan", bigan.main)):
    if main(["--workdir", f"{sys.argv[1]}/{name}", *json.loads(sys.argv[2])[name]]) != 0:
        sys.exit(f"{name} failed")
"""


def start(workdir, steps, devices, job=()):
    env = {**os.environ,
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {QUICK_COMPILE_FLAGS}",
           "JAX_PLATFORMS": "cpu"}
    flags = {name: ["--steps", str(steps), *small, *EVERY_STEP, *job]
             for name, small in SMALL.items()}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(workdir), json.dumps(flags)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process) -> str:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output[-3000:]
    return output


def job(workdir, steps, processes=2) -> list[str]:
    """Run a `processes`-process job of 2 devices each; the output of each process."""
    port = free_port()
    started = [start(workdir, steps, 2,
                     ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes),
                      "--process-id", str(index)]) for index in range(processes)]
    return [finish(process) for process in started]


def assert_close_states(run_a, run_b, step):
    a, b = load_run(run_a, step)[1], load_run(run_b, step)[1]
    assert int(a.step) == int(b.step) == step
    for x, y in zip(jax.tree.leaves(a.nets), jax.tree.leaves(b.nets)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-4)


def history(workdir):
    lines = (workdir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name not in ("img_per_s", "wall_s")]
    return [[float(line.split(",")[i]) for i in keep] for line in lines[1:]]


@pytest.mark.slow
def test_two_processes_train_as_one_and_their_save_resumes_in_one(tmp_path):
    single, pair = tmp_path / "one_process", tmp_path / "two_processes"
    reference = start(single, 3, 4)
    outputs = job(pair, 2)
    finish(reference)

    # Process 0 alone writes: one row per step, and nothing printed by process 1.
    assert "2 processes, 4 devices" in outputs[0]
    for word in ("dcgan", "bigan", "step"):
        assert word not in outputs[1], outputs[1]
    for experiment in SMALL:
        assert [row[0] for row in history(pair / experiment)] == [1, 2], experiment
        np.testing.assert_allclose(history(pair / experiment), history(single / experiment)[:2],
                                   rtol=1e-4, atol=1e-5)
        assert_close_states(pair / experiment, single / experiment, 2)

    # The job's save resumes in one process, on another number of devices too.
    finish(start(pair, 3, 4))
    for experiment in SMALL:
        assert_close_states(pair / experiment, single / experiment, 3)
        np.testing.assert_allclose(history(pair / experiment), history(single / experiment),
                                   rtol=1e-4, atol=1e-5)


def test_launch_flags_come_together_and_make_sense():
    from jgan.errors import UserError
    from jgan.train.distributed import check_launch

    assert not check_launch(None, None, None)
    assert check_launch("127.0.0.1:1234", 2, 1)
    for flags, expected in [(("127.0.0.1:1234", 2, None), "add --process-id"),
                            (("localhost", 2, 0), "is not HOST:PORT"),
                            (("h:1", 0, 0), "--num-processes 0 is not positive"),
                            (("h:1", 2, 2), "--process-id 2 is not in 0..1")]:
        with pytest.raises(UserError, match=expected):
            check_launch(*flags)


def test_a_slurm_job_is_detected_as_jax_detects_it(monkeypatch):
    from jgan.train.distributed import detected_cluster

    assert detected_cluster() is None
    for name, value in {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "node[01-02]",
                        "SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
        monkeypatch.setenv(name, value)
    assert detected_cluster() == "slurm"


def test_each_process_reads_only_its_rows_of_the_global_batch():
    from jgan.data.datasets import ArraySource
    from jgan.data.loader import BatchLoader

    class CountingSource(ArraySource):
        read = 0

        def take(self, indices):
            CountingSource.read += len(indices)
            return super().take(indices)

    source = CountingSource({"image": np.arange(40).reshape(40, 1), "label": np.arange(40)})
    whole = BatchLoader(source, batch_size=8, data_key=jax.random.key(3))
    shares = [BatchLoader(source, batch_size=8, data_key=jax.random.key(3), rows=rows)
              for rows in (slice(0, 4), slice(4, 8))]
    for step in (0, 4, 9):  # the second epoch too
        expected = whole.batch(step)
        CountingSource.read = 0
        parts = [share.batch(step) for share in shares]
        assert CountingSource.read == 8  # 4 rows each, no more
        for name in expected:
            np.testing.assert_array_equal(np.concatenate([p[name] for p in parts]),
                                          expected[name])

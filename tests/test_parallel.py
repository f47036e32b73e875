"""1 device against 8 forced CPU devices: the same training, and a clear error for bad batches."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO

WORKER = """
import json, sys
import jax, numpy as np
sys.path.insert(0, "tests")
from conftest import tiny_bigan_config, tiny_config, tiny_everything_config, tiny_toy_config
from jgan.errors import UserError
from jgan.train import loop
state = loop.train(tiny_config(steps=3), sys.argv[1], log=lambda _: None)
# One step of this one: it holds every kind of update (two critic passes, lazy R1, GP, SN, EMA)
# and Adam turns its reduction-order rounding into larger drift over further steps.
everything = loop.train(tiny_everything_config(steps=1), sys.argv[1] + "_all", log=lambda _: None)
bigan = loop.train(tiny_bigan_config(steps=1), sys.argv[1] + "_bigan", log=lambda _: None)
# ADA: per-image augmentation keys and p in the state, moved after each step by the global r_t.
ada = loop.train(tiny_config(steps=2, augment="ada", augment_p=0.5, ada_interval=1,
                             ada_kimg=0.1), sys.argv[1] + "_ada", log=lambda _: None)
from jgan.mode_collapse import train_toy
# Eight seeds of the 2-D benchmark, one per device on eight: the seed axis is what is split.
toy = train_toy(tiny_toy_config(seeds=8, steps=10, log_every=5), sys.argv[1] + "_toy",
                log=lambda _: None)["per_seed"]
leaves = [np.asarray(x).tolist()
          for x in jax.tree.leaves((state, everything, bigan, ada, toy))]
bad_batch = None
try:
    loop.train(tiny_config(steps=1, batch_size=12), sys.argv[1] + "_bad", log=lambda _: None)
except UserError as error:
    bad_batch = str(error)
print(json.dumps({"devices": jax.device_count(), "leaves": leaves, "bad_batch": bad_batch}))
"""


def _start(devices: int, workdir) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {QUICK_COMPILE_FLAGS}"}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(workdir)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eight_devices_train_like_one(tmp_path):
    # Both at once: compilation is mostly single-threaded, and CI has two cores. Starting together
    # on the session's empty data cache, they also check that concurrent preparation is safe.
    processes = _start(1, tmp_path / "one"), _start(8, tmp_path / "eight")
    one, eight = (_result(process) for process in processes)
    assert (one["devices"], eight["devices"]) == (1, 8)
    assert len(one["leaves"]) == len(eight["leaves"])
    for a, b in zip(one["leaves"], eight["leaves"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert one["bad_batch"] is None  # 12 splits over 1 device
    assert "batch size 12 does not split over 8 devices" in eight["bad_batch"]
    assert "--batch-size 16" in eight["bad_batch"]

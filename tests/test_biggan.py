"""BigGAN: orthogonal regularization, truncation, conditional BN, projection D, gradient
accumulation, cross-device BatchNorm statistics, and a run that resumes bit-identical."""

import dataclasses
import os
import subprocess
import sys

import jax
import numpy as np
import PIL.Image
import pytest

from conftest import (QUICK_COMPILE_FLAGS, REPO, BackgroundWorker, drawn_variables, mnist_spec,
                      selected)
from jgan import losses
from jgan.config import Config, OptimConfig, TrainConfig
from jgan.errors import UserError
from jgan.families.biggan import BigGANLossConfig, BigGANModelConfig, truncated_prior
from jgan.families.biggan.networks import ProjectionDiscriminator
from jgan.nn.conditional_norm import ConditionalBatchNorm
from jgan.train.setup import build_setup


def tiny_biggan_config(**model) -> Config:
    """16x16 images, blocks 8 channels wide, attention at 8x8: seconds to compile."""
    return Config(
        name="tiny_biggan", family="biggan",
        model=BigGANModelConfig(**{"z_dim": 12, "shared_dim": 8, "g_features": 8,
                                   "d_features": 8, "attention": 8, **model}),
        loss=BigGANLossConfig(ortho_beta=1e-2),
        optim=OptimConfig(g_lr=1e-3, d_lr=2e-3, b1=0.0, b2=0.999),
        train=TrainConfig(steps=4, batch_size=8, n_critic=2, ema_kimg=0.05, grid_size=4,
                          log_every=1, sample_every=4, checkpoint_every=2))


def test_orthogonal_regularization_by_hand():
    tall = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]], np.float32)
    # W^T W = [[10, 14], [14, 21]]: off-diagonal 14 twice, 2 * 14^2 = 392
    wide = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32)
    # W^T W = [[1, 0, 1], [0, 1, 1], [1, 1, 2]]: four off-diagonal ones, 4
    conv = np.zeros((3, 3, 1, 2), np.float32)
    conv[0, 0, 0] = [1.0, 1.0]  # two filters with one shared tap: off-diagonal 1 twice, 2
    params = {"dense": {"kernel": tall, "bias": np.ones(2, np.float32)},
              "wide": {"kernel": wide}, "conv": {"kernel": conv},
              "shared_embedding": np.ones((4, 3), np.float32)}
    value = losses.orthogonal_regularization(params, beta=0.5, exclude=("shared_embedding",))
    np.testing.assert_allclose(value, 0.5 * (392 + 4 + 2), rtol=1e-6)
    orthonormal = {"kernel": np.eye(3, dtype=np.float32)[:, :2] * 3.0}  # orthogonal, any norm
    assert float(losses.orthogonal_regularization(orthonormal, beta=1.0)) == 0.0


def test_truncated_sampling_stays_within_the_threshold():
    key = jax.random.key(0)
    plain = np.asarray(truncated_prior(key, 500, 16, 0.0))
    assert np.abs(plain).max() > 2.5  # untruncated: 8000 normals reach past 2.5
    for threshold in 2.0, 0.5:
        z = np.asarray(truncated_prior(key, 500, 16, threshold))
        assert np.abs(z).max() <= threshold and np.abs(z).max() > 0.95 * threshold
    setup = build_setup(tiny_biggan_config(), mnist_spec((16, 16, 1)))
    inputs = setup.sample_inputs(key, 6, labels=np.arange(6), truncation=0.25)
    assert inputs["z"].shape == (6, 12) and np.abs(inputs["z"]).max() <= 0.25
    with pytest.raises(UserError, match="pass labels"):
        setup.sample_inputs(key, 6)
    with pytest.raises(UserError, match="truncation=-1.0: use a finite number of 0 or more"):
        truncated_prior(key, 2, 4, -1.0)


def test_conditional_batchnorm_uses_the_labels_gains_and_biases():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (4, 5, 5, 3)).astype(np.float32)
    labels = np.array([0, 1, 1, 0])
    conditioning = np.eye(2, dtype=np.float32)[labels]  # one-hot: W's row y is class y's
    norm = ConditionalBatchNorm()
    variables = drawn_variables(norm, x, conditioning, train=False)
    gains = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]], np.float32)
    biases = np.array([[1.0, 0.0, -1.0], [3.0, 2.0, 1.0]], np.float32)
    params = {"gain": {"kernel": gains}, "bias": {"kernel": biases}}
    out, updated = norm.apply({**variables, "params": params}, x, conditioning, train=True,
                              mutable=["batch_stats"])
    normalized = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
    expected = normalized * (1 + gains[labels])[:, None, None] + biases[labels][:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # the running averages move by PyTorch's momentum 0.1 towards the batch's moments
    np.testing.assert_allclose(updated["batch_stats"]["mean"], 0.1 * x.mean((0, 1, 2)),
                               rtol=1e-5)


def test_projection_discriminator_output_moves_with_the_label_through_the_embedding():
    d = ProjectionDiscriminator(spectral_norm=False, num_classes=3, features=8)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)
    variables = drawn_variables(d, images, np.zeros(2, np.int32), train=False)

    def scores(variables, label):
        return np.asarray(d.apply(variables, images, np.full(2, label), train=False))

    assert np.abs(scores(variables, 0) - scores(variables, 2)).min() > 1e-6
    params = jax.tree.map(np.copy, variables["params"])
    params["embed"]["embedding"][:] = 0.0  # no projection term: the label no longer counts
    flat = {**variables, "params": params}
    np.testing.assert_array_equal(scores(flat, 0), scores(flat, 2))
    params["embed"]["embedding"][1] = 1.0  # <1, phi(x)>: the sum of the pooled features
    assert np.abs(scores(flat, 1) - scores(flat, 0)).min() > 1e-6


CROSS_DEVICE = """
import sys
sys.path.insert(0, "tests")
import jax, numpy as np
from conftest import drawn_variables
from jgan.families.biggan.networks import BigGANGenerator
from jgan.train.parallel import batch_split, make_mesh
g = BigGANGenerator(image_shape=(16, 16, 1), num_classes=10, features=8, shared_dim=8)
z = np.random.default_rng(0).normal(size=(16, 12)).astype(np.float32)
labels = np.arange(16) % 10
variables = drawn_variables(g, z, labels, train=False)
run = jax.jit(lambda z, y: g.apply(variables, z, y, train=True, mutable=["batch_stats",
                                                                         "spectral_stats"]))
shard = batch_split(make_mesh())  # the training loop's: the batch split over the devices
one = run(z, labels)
eight = run(jax.device_put(z, shard), jax.device_put(labels, shard))
assert len(eight[0].sharding.device_set) == 8
for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
"""


@pytest.mark.slow
def test_batchnorm_statistics_are_those_of_the_global_batch_on_eight_devices():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count=8 {QUICK_COMPILE_FLAGS}"}
    done = subprocess.run([sys.executable, "-c", CROSS_DEVICE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_bad_settings_get_one_line_errors():
    spec = mnist_spec((16, 16, 1))
    cases = [({"z_dim": 10}, "does not split into 3 equal chunks"),
             ({"attention": 4}, "choose one of [8]"),
             ({"attention": 8, "g_features": 12}, "divisible by 8"),
             ({"init": "xavier"}, "model.init='xavier' is unknown"),
             ({"micro_batches": 3}, "does not split into model.micro_batches=3")]
    for model, message in cases:
        with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
            build_setup(tiny_biggan_config(**model), spec)
    with pytest.raises(UserError, match="no class labels"):
        build_setup(tiny_biggan_config(), mnist_spec((16, 16, 1), num_classes=0))
    with pytest.raises(UserError, match="data.image_size"):
        build_setup(tiny_biggan_config(), mnist_spec((15, 15, 1)))


# One step taken whole and in micro-batches, then three trainings and the sampling tools, in a
# process of its own (XLA's LLVM optimizations off, a persistent cache so the later trainings
# reuse the first one's programs) that runs beside the module's other tests.
WORKER = """
import dataclasses, sys
from pathlib import Path
sys.path.insert(0, "tests")
import jax, numpy as np
from conftest import mnist_spec
from test_biggan import tiny_biggan_config
from jgan.train.setup import build_setup
root = Path(sys.argv[1])
# With ADA at p = 0.5: each image's augmentation key is drawn for the whole batch, so the
# micro-batches augment every image as the whole batch does.
setups = [build_setup(dataclasses.replace(config, train=dataclasses.replace(
    config.train, n_critic=1, augment="ada", augment_p=0.5)), mnist_spec((8, 8, 1)))
    for config in (
    tiny_biggan_config(attention=0), tiny_biggan_config(attention=0, micro_batches=4))]
state = setups[0].init_state(jax.random.key(0))
rng = np.random.default_rng(0)
batch = {"image": rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8),
         "label": rng.integers(0, 10, 8).astype(np.int32)}
(whole, _), (micro, _) = results = [jax.jit(setup.train_step)(state, batch, jax.random.key(1))
                                    for setup in setups]
np.savez(root / "accumulation.npz", *jax.tree.leaves(results[0]), *jax.tree.leaves(results[1]))
moved = [np.abs(s.nets["d"].params["linear"]["kernel"] - state.nets["d"].params["linear"][
    "kernel"]).max() for s in (whole, micro)]
np.save(root / "moved.npy", np.asarray(moved))

from experiments import biggan
from jgan.tools import sample
flags = ["--dataset", "mnist", "--set", "data.image_size=16", "--batch-size", "8",
         "--set", "model.z_dim=12", "--set", "model.shared_dim=8", "--set",
         "model.g_features=8", "--set", "model.d_features=8", "--set", "model.attention=8",
         "--set", "train.n_critic=2", "--set", "train.ema_kimg=0.05", "--set",
         "train.grid_size=10", "--set", "train.log_every=1", "--set", "train.sample_every=4",
         "--set", "train.checkpoint_every=2", "--set", "optim.g_lr=1e-3"]
for run, steps in ("run", 2), ("run", 4), ("whole", 4):
    assert biggan.main([*flags, "--steps", str(steps), "--workdir", str(root / run)]) == 0
run = str(root / "run")
assert biggan.main(["--generate", run, "--labels", "3,5", "--num", "6", "--truncation", "0.5",
                    "--out", str(root / "truncated.png")]) == 0
assert biggan.main(["--generate", run, "--interpolate", "1,7", "--out",
                    str(root / "interpolation.png")]) == 0
assert sample.main([run, "--labels", "4", "--num", "9", "--out", str(root / "fours.png")]) == 0
"""


@pytest.fixture(scope="module", autouse=True)
def worker(request, tmp_path_factory):
    """`(folder, worker)` of WORKER, started with the module's first test; None where neither
    test that reads it is to run."""
    if not (selected(request, "test_gradient_accumulation_equals_the_large_batch")
            or selected(request, "test_a_short_run_resumes_bit_identical_and_samples_by_label")):
        yield None
        return
    root = tmp_path_factory.mktemp("biggan")
    process = BackgroundWorker(WORKER, root, env={"XLA_FLAGS": QUICK_COMPILE_FLAGS})
    yield root, process
    process.stop()


@pytest.mark.slow
def test_gradient_accumulation_equals_the_large_batch(worker):
    root, process = worker
    process.result()
    saved = np.load(root / "accumulation.npz")
    leaves = [saved[f"arr_{index}"] for index in range(len(saved.files))]
    whole, micro = leaves[:len(leaves) // 2], leaves[len(leaves) // 2:]
    assert len(whole) > 50  # every leaf of the state after the step, and the metrics
    for a, b in zip(whole, micro):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert (np.load(root / "moved.npy") > 1e-4).all()  # the step moved D in both


@pytest.mark.slow
def test_a_short_run_resumes_bit_identical_and_samples_by_label(worker):
    from jgan.tools.sample import load_run

    tmp_path, process = worker
    process.result()
    (_, resumed, _), (setup, whole, _) = [load_run(tmp_path / run) for run in ("run", "whole")]
    assert int(resumed.step) == 4 and "g_ema" in resumed.extra
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(whole)):
        np.testing.assert_array_equal(a, b)
    samples = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert {"step_000004.png", "truncation_step_000004.png",
            "interpolation_step_000004.png"} <= set(samples)
    # --labels 3,5 --num 6: two rows of three 16x16 images with 2-pixel padding
    assert PIL.Image.open(tmp_path / "truncated.png").size == (3 * 18 + 2, 2 * 18 + 2)
    assert PIL.Image.open(tmp_path / "interpolation.png").size == (8 * 18 + 2, 18 + 2)
    assert (tmp_path / "fours.png").is_file()
    # standing statistics: the sampling state's BatchNorm statistics are not the running ones
    standing = setup.with_standing_statistics(whole)
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                         standing.extra["g_standing"], whole.nets["g"].collections["batch_stats"])
    assert max(jax.tree.leaves(moved)) > 1e-3
    images = setup.generate(whole, jax.random.key(0), 4, labels=np.array([0, 0, 1, 1]))
    again = setup.generate(whole, jax.random.key(0), 4, labels=np.array([0, 0, 1, 1]))
    np.testing.assert_array_equal(images, again)
    assert images.shape == (4, 16, 16, 1) and images.dtype == np.uint8


@pytest.mark.slow
def test_labels_pick_rows_and_class_weights_mix_embeddings():
    setup = build_setup(dataclasses.replace(tiny_biggan_config(), train=TrainConfig(
        batch_size=8)), mnist_spec((16, 16, 1)))
    g = setup.networks["g"].module
    z = np.random.default_rng(2).normal(size=(2, 12)).astype(np.float32)
    variables = drawn_variables(g, z, np.zeros(2, np.int32), train=False)
    by_label = g.apply(variables, z, np.array([3, 3]), train=False)
    by_weights = g.apply(variables, z, jax.nn.one_hot(np.array([3, 3]), 10), train=False)
    np.testing.assert_allclose(by_label, by_weights, rtol=1e-5, atol=1e-6)
    other = g.apply(variables, z, np.array([4, 4]), train=False)
    assert np.abs(np.asarray(other) - np.asarray(by_label)).max() > 1e-4
    halfway = g.apply(variables, z, 0.5 * (jax.nn.one_hot(np.array([3, 3]), 10)
                                           + jax.nn.one_hot(np.array([4, 4]), 10)), train=False)
    assert not np.allclose(halfway, by_label) and not np.allclose(halfway, other)

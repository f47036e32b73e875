"""The semi-supervised GAN (Salimans et al. 2016): the K+1 loss by hand, the labelled subset,
historical averaging, virtual batch norm, weight norm, and a short MNIST run whose D beats the
same D trained on its labels alone."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import QUICK_COMPILE_FLAGS, BackgroundWorker, build, selected
from jgan import losses
from jgan.config import Config, override
from jgan.data.labelled import balanced_subset, read_balanced_subset, read_first_in_order
from jgan.errors import UserError
from jgan.families.ssgan.networks import SSGANGenerator
from jgan.nn import GaussianNoise, VirtualBatchNorm, WeightNormDense
from jgan.optim import historical_averaging

# Both runs of the comparison: the same D, seed, labels and steps, with and without the GAN.
WORKER = r"""
import json, sys
import jax, numpy as np
from jgan.config import Config, override
from jgan.data import find_dataset
from jgan.data.spec import DataSpec
from jgan.families.ssgan import test_error
from jgan.metrics.reference import split_images
from jgan.train.setup import build_setup

data_dir, steps = sys.argv[1], int(sys.argv[2])
source = find_dataset("mnist", data_dir)
train_images, _ = split_images(source.open("train"), 6000)
test_images, test_labels = split_images(source.open("test"), 10000)
spec = DataSpec.from_image_shape((28, 28, 1), num_classes=10)
errors = {}
for supervised_only in (False, True):
    config = override(Config(family="ssgan"), [
        f"data.data_dir={data_dir}", "train.batch_size=100", "optim.g_lr=3e-3",
        "optim.d_lr=3e-3", f"loss.supervised_only={supervised_only}"])
    setup = build_setup(config, spec)
    state = jax.jit(setup.init_state)(jax.random.key(1))
    step = jax.jit(setup.train_step)
    rows = 100 * setup.batches_per_step
    order = np.random.default_rng(0).permutation(len(train_images))
    for index in range(steps):
        start = (index * rows) % (len(order) - rows)
        batch = {"image": train_images[order[start:start + rows]]}
        state, metrics = step(state, batch, jax.random.key(2))
    errors[("supervised" if supervised_only else "semi")] = test_error(
        config, 10, state, test_images, test_labels)
print(json.dumps(errors))
"""
STEPS = 200


@pytest.fixture(scope="module", autouse=True)
def worker(request):
    """The comparison run, started with the module's first test; None when not selected."""
    if not selected(request, "test_semi_supervised_d_beats_its_supervised_baseline"):
        yield None
        return
    from conftest import SHARED_DATASETS
    if not (SHARED_DATASETS / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        yield None
        return
    process = BackgroundWorker(WORKER, SHARED_DATASETS, STEPS,
                               env={"XLA_FLAGS": QUICK_COMPILE_FLAGS})
    yield process
    process.stop()


def test_k_plus_one_losses_by_hand():
    # Labelled: logits (0, ln 3), class 1: -log(3 / 4). Unlabelled: Z = 2, D = 2/3. Fake: Z = 1,
    # D = 1/2, so -log(1 - D) = ln 2.
    supervised, unsupervised = losses.k_plus_one_d_loss(
        labelled_logits=jnp.array([[0.0, math.log(3.0)]]), labels=jnp.array([1]),
        unlabelled_logits=jnp.zeros((1, 2)),
        fake_logits=jnp.full((1, 2), math.log(0.5)))
    assert float(supervised) == pytest.approx(math.log(4 / 3), rel=1e-5)
    assert float(unsupervised) == pytest.approx(0.5 * (math.log(3 / 2) + math.log(2)), rel=1e-5)
    _, smoothed = losses.k_plus_one_d_loss(
        labelled_logits=jnp.zeros((1, 2)), labels=jnp.array([0]),
        unlabelled_logits=jnp.zeros((1, 2)), fake_logits=jnp.full((1, 2), math.log(0.5)),
        real_label=0.9)
    # -0.9 log(2/3) - 0.1 log(1/3) on the unlabelled example
    assert float(smoothed) == pytest.approx(
        0.5 * (0.9 * math.log(3 / 2) + 0.1 * math.log(3) + math.log(2)), rel=1e-5)
    assert float(losses.k_plus_one_log_d(jnp.zeros((1, 2)))[0]) == pytest.approx(
        math.log(2 / 3), rel=1e-5)


def test_labelled_subset_is_balanced_deterministic_and_refuses_bad_counts():
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 30))
    chosen = balanced_subset(labels, 50, jax.random.key(0))
    assert np.array_equal(np.bincount(labels[chosen], minlength=10), np.full(10, 5))
    assert len(set(chosen.tolist())) == 50
    assert np.array_equal(chosen, balanced_subset(labels, 50, jax.random.key(0)))
    assert not np.array_equal(chosen, balanced_subset(labels, 50, jax.random.key(1)))

    class Split:  # a data source's split: len and __getitems__
        def __len__(self):
            return len(labels)

        def __getitems__(self, indices):
            return [{"image": np.full((2, 2), i, np.int32), "label": labels[i]} for i in indices]

    indices, images, read_labels = read_balanced_subset(Split(), 50, jax.random.key(0), 10)
    assert np.array_equal(indices, chosen)
    assert np.array_equal(read_labels, labels[chosen])
    assert images.shape == (50, 2, 2, 1) and np.array_equal(images[:, 0, 0, 0], chosen)
    # D's data-dependent init reads the first examples of the same order, of any class (the
    # authors' `trainx[:500]`), not the labelled subset (issue 31's twin found it).
    first = read_first_in_order(Split(), 60, jax.random.key(0))
    order = np.asarray(jax.random.permutation(jax.random.key(0), len(labels)))
    assert first.shape == (60, 2, 2, 1) and np.array_equal(first[:, 0, 0, 0], order[:60])
    assert len(set(first[:, 0, 0, 0].tolist()) - set(chosen.tolist())) >= 10  # 50 chosen
    with pytest.raises(UserError, match=r"^--num-labels 35 does not split evenly over 10 "
                                        r"classes: use a positive multiple of 10"):
        balanced_subset(labels, 35, jax.random.key(0))
    with pytest.raises(UserError, match=r"asks 40 examples of each class, and class \d has 30: "
                                        r"use at most 300$"):
        balanced_subset(labels, 400, jax.random.key(0))


def test_historical_averaging_pulls_towards_the_mean_of_past_parameters():
    weight = 0.25
    tx = historical_averaging(weight)
    zero = {"w": jnp.zeros(())}
    state = tx.init({"w": jnp.ones(())})
    # The first update has no past to pull towards; then theta = 1 joins the average.
    updates, state = tx.update(zero, state, {"w": jnp.ones(())})
    assert float(updates["w"]) == 0.0
    updates, state = tx.update(zero, state, {"w": jnp.array(3.0)})
    assert float(updates["w"]) == pytest.approx(2 * weight * (3.0 - 1.0))
    updates, state = tx.update({"w": jnp.array(1.0)}, state, {"w": jnp.array(5.0)})
    assert float(updates["w"]) == pytest.approx(1.0 + 2 * weight * (5.0 - 2.0))  # mean of 1, 3
    assert int(state.count) == 3 and float(state.average["w"]) == pytest.approx(3.0)
    # Before an optimizer in a chain, gradient descent alone would leave w = 3 where it is.
    chain = optax.chain(historical_averaging(weight), optax.sgd(1.0))
    params, chain_state = {"w": jnp.array(1.0)}, chain.init({"w": jnp.array(1.0)})
    for value in (1.0, 3.0):
        params = {"w": jnp.array(value)}
        updates, chain_state = chain.update(zero, chain_state, params)
    assert float(optax.apply_updates(params, updates)["w"]) == pytest.approx(3.0 - 2 * weight * 2)


def test_virtual_batch_norm_ignores_the_rest_of_the_minibatch():
    layer = VirtualBatchNorm(num_reference=4)
    reference = jax.random.normal(jax.random.key(0), (4, 3)) * 2.0 + 1.0
    x = jax.random.normal(jax.random.key(1), (3, 3))
    variables = layer.init(jax.random.key(2), jnp.concatenate([reference, x]))
    apply = jax.jit(layer.apply)
    out = apply(variables, jnp.concatenate([reference, x]))
    other = apply(variables, jnp.concatenate([reference, x[:1], 10.0 * x[1:]]))
    np.testing.assert_allclose(out[4], other[4], rtol=1e-6)
    assert not np.allclose(out[5], other[5])
    # The reference rows are normalized by their own statistics ...
    np.testing.assert_allclose(np.mean(out[:4], axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(out[:4], axis=0), 1.0, rtol=1e-3)
    # ... and x_i by those of reference U {x_i}.
    both = jnp.concatenate([reference, x[:1]])
    expected = (x[0] - both.mean(0)) / jnp.sqrt(both.var(0) + 1e-5)
    np.testing.assert_allclose(out[4], expected, rtol=1e-5, atol=1e-6)


def test_virtual_batch_norm_generator_samples_each_z_on_its_own():
    generator = SSGANGenerator((4, 4, 1), hidden=8, norm="virtual_batch", reference_size=5)
    z = jax.random.uniform(jax.random.key(0), (3, 6))
    variables = jax.jit(generator.init)(jax.random.key(1), z)
    apply = jax.jit(lambda z: generator.apply(variables, z, train=True))
    first, other = apply(z), apply(z.at[1:].set(1.0 - z[1:]))
    assert first.shape == (3, 4, 4, 1)
    np.testing.assert_allclose(first[0], other[0], rtol=1e-6)
    assert not np.allclose(first[1], other[1])


def test_weight_norm_initializes_from_data_and_ignores_the_kernel_norm():
    x = jax.random.uniform(jax.random.key(0), (64, 5))
    layer = WeightNormDense(4)
    variables = layer.init(jax.random.key(1), x)
    out = layer.apply(variables, x)
    np.testing.assert_allclose(np.mean(out, axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(out, axis=0), 1.0, rtol=1e-4)
    scaled = jax.tree.map(lambda v: v, variables)
    scaled["params"]["kernel"] = 3.0 * variables["params"]["kernel"]
    np.testing.assert_allclose(layer.apply(scaled, x), out, rtol=1e-5, atol=1e-6)
    fixed = WeightNormDense(4, train_scale=False).init(jax.random.key(1), x)
    assert "scale" not in fixed["params"] and "scale" in fixed["weight_norm"]


def test_gaussian_noise_is_off_in_inference():
    x = jnp.ones((2, 3))
    layer = GaussianNoise(0.5)
    assert np.array_equal(layer.apply({}, x, deterministic=True), x)
    noisy = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    assert 0.1 < float(jnp.std(noisy - x)) < 1.0


@pytest.mark.parametrize("assignment, message", [
    ("model.g_norm=layer", r"model.g_norm='layer' is unknown: choose one of \['batch', "),
    ("loss.real_label=0.2", r"loss.real_label=0.2: use a value in \[0.5, "),
    ("train.n_critic=2", r"one D update per G update"),
])
def test_bad_settings_are_refused_in_one_line(assignment, message):
    with pytest.raises(UserError, match=message):
        build(override(Config(family="ssgan"), [assignment]))


def test_unlabelled_data_is_refused():
    with pytest.raises(UserError, match=r"has no class labels: choose a labelled dataset"):
        build(Config(family="ssgan"), num_classes=0)


@pytest.mark.slow
def test_semi_supervised_d_beats_its_supervised_baseline(worker):
    if worker is None:
        pytest.skip("real MNIST not found in ../shared/datasets")
    errors = json.loads(worker.result().strip().splitlines()[-1])
    # All 10,000 test images: the difference's standard error is about 0.6 points. Since D's init
    # reads trainx[:500] (issue 31) the gap at 200 steps is 2.2 points here (24.8% -> 22.6%);
    # it widens later (3 points at 1200 steps, and 1.6% against 23% at 30 epochs).
    assert errors["semi"] < errors["supervised"] - 0.015, errors


def test_too_many_test_images_name_the_k_plus_1_gans_own_flag(tmp_path, capsys):
    """It used to advise --ref-num, which the K+1 GAN's command does not have."""
    from experiments import ssgan

    assert ssgan.main(["--test-num", "100000", "--workdir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "ask for --test-num" in error and "--ref-num" not in error, error
    assert not (tmp_path / "run").exists()

"""The 2-D mode-collapse benchmark: data, metrics, remedies, unrolling, and N seeds in one step."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from conftest import QUICK_COMPILE_FLAGS, BackgroundWorker, build, selected, tiny_toy_config
from experiments import mode_collapse
from jgan import losses
from jgan.config import override
from jgan.data.toy import batch_at, grid, ring, toy_dataset
from jgan.errors import UserError
from jgan.families.gan import GANLossConfig, GANModelConfig, build_networks
from jgan.families.gan.step import make_gan_train_step
from jgan.metrics.modes import mode_statistics
from jgan.mode_collapse import POINT_SPEC, train_toy
from jgan.nn import MinibatchDiscrimination, pack_samples
from jgan.train.seeds import init_states, seed_keys, unstack, vmap_train_step
from jgan.train.setup import build_setup
from jgan.train.state import Network, apply_gradients


@pytest.mark.slow
def test_mixtures_have_the_papers_modes_and_sample_from_a_key():
    centres = ring().centres
    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
    assert sorted(set(grid().centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    mixture = ring()
    points = np.asarray(mixture.sample(jax.random.key(0), 40000))
    np.testing.assert_array_equal(points, mixture.sample(jax.random.key(0), 40000))
    assert not np.array_equal(points, mixture.sample(jax.random.key(1), 40000))
    distances = np.linalg.norm(points[:, None] - centres[None], axis=-1)
    shares = np.bincount(distances.argmin(1), minlength=8) / len(points)
    np.testing.assert_allclose(shares, 1 / 8, atol=0.01)
    # Each coordinate's offset from its mode has the mixture's std, 0.02.
    offsets = points - centres[distances.argmin(1)]
    np.testing.assert_allclose(offsets.std(0), 0.02, rtol=0.03)
    # batch_at is a function of (key, step) alone.
    np.testing.assert_array_equal(batch_at(mixture, jax.random.key(3), 7, 16)["image"],
                                  batch_at(mixture, jax.random.key(3), 7, 16)["image"])
    with pytest.raises(UserError, match="toy dataset 'mnist' is unknown"):
        toy_dataset("mnist")


@pytest.mark.slow
def test_mode_statistics_on_hand_made_samples():
    mixture = ring()
    c, std = mixture.centres, mixture.std
    samples = np.concatenate([
        np.repeat(c[0:1], 100, 0),                            # mode 0: 100 exact hits
        np.repeat(c[1:2], 30, 0),                             # mode 1: 30
        np.repeat(c[2:3] + [0.5 * std, 0.0], 10, 0),          # mode 2: 10, within 3 std
        np.repeat(c[3:4] + [4.0 * std, 0.0], 10, 0),          # nearest mode 3, too far: not HQ
        np.repeat(np.array([[10.0, 0.0]]), 50, 0),            # far out; nearest is mode 0
    ]).astype(np.float32)
    stats = {k: float(v) for k, v in mode_statistics(jnp.asarray(samples), c, std).items()}
    assert stats["modes/covered"] == 2  # modes 0 and 1 have >= 20 high-quality samples
    assert stats["modes/high_quality"] == pytest.approx(140 / 200)
    shares = np.array([150, 30, 10, 10]) / 200
    assert stats["modes/kl_uniform"] == pytest.approx(np.sum(shares * np.log(8 * shares)),
                                                      rel=1e-5)
    loose = mode_statistics(jnp.asarray(samples), c, std, min_count=1)
    assert float(loose["modes/covered"]) == 3
    uniform = np.repeat(c, 25, axis=0)
    assert float(mode_statistics(jnp.asarray(uniform), c, std)["modes/kl_uniform"]) == \
        pytest.approx(0.0, abs=1e-6)
    assert float(mode_statistics(jnp.asarray(samples[:100]), c, std)["modes/kl_uniform"]) == \
        pytest.approx(math.log(8), rel=1e-6)


def test_minibatch_discrimination_sees_a_collapsed_batch():
    layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=4)
    diverse = 100.0 * jax.random.normal(jax.random.key(0), (6, 8))
    params = layer.init(jax.random.key(1), diverse)
    out = layer.apply(params, diverse)
    assert out.shape == (6, 8 + 3)
    np.testing.assert_array_equal(out[:, :8], diverse)
    collapsed = jnp.repeat(diverse[:1], 6, axis=0)
    # o(x_i)_b = sum_j exp(-L1): 6 identical rows give 6; far-apart rows give about 1 (self).
    np.testing.assert_allclose(layer.apply(params, collapsed)[:, 8:], 6.0)
    np.testing.assert_allclose(out[:, 8:], 1.0, atol=1e-3)
    # The paper's o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1) in float64, on close rows
    close = 0.05 * jax.random.normal(jax.random.key(2), (5, 8))
    m = (np.float64(close) @ np.float64(params["params"]["kernel"])).reshape(5, 3, 4)
    by_hand = np.exp(-np.abs(m[:, None] - m[None, :]).sum(-1)).sum(1)
    np.testing.assert_allclose(layer.apply(params, close)[:, 8:], by_hand, rtol=1e-5)


def test_pack_samples_puts_consecutive_samples_side_by_side():
    x = jnp.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(pack_samples(x, 2), [[0, 1, 2, 3], [4, 5, 6, 7],
                                                       [8, 9, 10, 11]])
    with pytest.raises(UserError, match="does not split into packs of 4"):
        pack_samples(x, 4)


def test_feature_matching_loss_by_hand():
    real = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = jnp.array([[0.0, 0.0], [2.0, 2.0]])  # mean (1, 1)
    assert float(losses.feature_matching_loss(real_features=real, fake_features=fake)) == 5.0


def _toy_setup_step(config, steps: int = 3):
    setup = build_setup(config, POINT_SPEC)
    state = setup.init_state(jax.random.key(0))
    step = jax.jit(setup.train_step)
    for index in range(steps):
        batch = batch_at(ring(), jax.random.key(1), index, config.train.batch_size)
        state, metrics = step(state, batch, jax.random.key(2))
    return state, metrics


@pytest.mark.slow
def test_unrolling_zero_steps_is_the_plain_step_and_one_step_is_not():
    config = tiny_toy_config()
    plain, _ = _toy_setup_step(config)
    for gradient in ("full", "stop"):
        zero, _ = _toy_setup_step(override(config, [f"loss.unroll_gradient={gradient}",
                                                    "loss.unroll_steps=0"]))
        # Bits: with k = 0 the step traces to the plain step's very program.
        for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(zero)):
            np.testing.assert_array_equal(a, b)
    # One step with k = 1: D's kept update is the plain one; only G's gradient changes. The
    # unrolled step is another program, which XLA may fuse (and so round) otherwise: to 1e-6.
    plain, _ = _toy_setup_step(config, steps=1)
    unrolled, metrics = _toy_setup_step(override(config, ["loss.unroll_steps=1"]), steps=1)
    d_plain, d_unrolled = (ravel_pytree(s.nets["d"].params)[0] for s in (plain, unrolled))
    np.testing.assert_allclose(d_unrolled, d_plain, rtol=1e-6, atol=1e-6 * np.abs(d_plain).max())
    # G moves otherwise by more than that (measured: 1e-5 of its largest weight).
    g_plain, g_unrolled = (ravel_pytree(s.nets["g"].params)[0] for s in (plain, unrolled))
    assert np.abs(g_unrolled - g_plain).max() > 2e-6 * np.abs(g_plain).max()
    assert np.isfinite(float(metrics["loss/g"]))


def _sgd_step(config, d_lr):
    """The step with SGD(1) for G, so G's update is minus its gradient, and D held still."""
    models = build_networks(config.model, POINT_SPEC.shape())
    g, d = Network(models["g"], optax.sgd(1.0)), Network(models["d"], optax.sgd(d_lr))
    return make_gan_train_step(config, generator=g, discriminator=d, update_d=False)


@pytest.mark.slow
@pytest.mark.parametrize("gradient", ["full", "stop"])
def test_unrolled_gradient_agrees_with_finite_differences(gradient):
    # A tiny smooth problem: tanh networks of 6 units, 3 unrolled SGD steps of D at a large rate,
    # so the path through D's updates carries a large share of G's gradient.
    config = tiny_toy_config(batch_size=8)
    config = dataclasses.replace(
        config, model=GANModelConfig(arch="toy", z_dim=2, hidden=6, g_layers=1,
                                     activation="tanh"),
        loss=GANLossConfig(unroll_steps=3, unroll_gradient=gradient))
    step = jax.jit(_sgd_step(config, d_lr=2.0))
    state = build_setup(config, POINT_SPEC).init_state(jax.random.key(4))
    batch = batch_at(ring(), jax.random.key(5), 0, 8)
    key = jax.random.key(6)
    new_state, metrics = step(state, batch, key)
    flat, unravel = ravel_pytree(state.nets["g"].params)
    gradient_of_step = flat - ravel_pytree(new_state.nets["g"].params)[0]

    def loss_at(g_params_flat):
        nets = {**state.nets, "g": state.nets["g"].replace(params=unravel(g_params_flat))}
        return float(step(state.replace(nets=nets), batch, key)[1]["loss/g"])

    assert loss_at(flat) == float(metrics["loss/g"])
    eps = 1e-2
    finite = np.array([(loss_at(flat.at[i].add(eps)) - loss_at(flat.at[i].add(-eps))) / (2 * eps)
                       for i in range(flat.size)])
    scale = np.abs(finite).max()
    if gradient == "full":
        # loss/g is G's unrolled loss, so its finite differences are the full gradient.
        np.testing.assert_allclose(gradient_of_step, finite, atol=2e-3 * scale)
    else:
        # The stop-gradient variant drops the path through D's updates: a different gradient.
        assert np.abs(gradient_of_step - finite).max() > 0.05 * scale


# XLA:CPU simplifies a batched program differently from the unbatched one (a reduction's order;
# (a / b) / c -> a / (b * c) only where b is a scalar); with those rewrites off the two gave the
# same bits on the machines measured (with algsimp on, 86 of the 108 arrays differ). The program
# that compares them runs in its own process with these flags, and without LLVM's optimizations,
# which cost seconds of compiling. The module's first test starts it, so that it runs beside the
# other tests.
VMAPPED_AGAINST_SEPARATE = """
import sys, jax, numpy as np
sys.path.insert(0, "tests")
from conftest import tiny_toy_config
from jgan.config import override
from jgan.data.toy import batch_at, ring
from jgan.train.seeds import init_states, seed_keys, unstack, vmap_train_step
from jgan.mode_collapse import POINT_SPEC
from jgan.train.setup import build_setup
config = override(tiny_toy_config(), ["loss.unroll_steps=2", "model.minibatch_kernels=3"])
setup, seeds = build_setup(config, POINT_SPEC), [3, 1, 4]
keys = seed_keys(seeds)
states = init_states(setup, keys["init"])
singles = [setup.init_state(keys["init"][i]) for i in range(3)]
many, one = jax.jit(vmap_train_step(setup.train_step)), jax.jit(setup.train_step)
sample = lambda key, step: batch_at(ring(), key, step, 32)
for step in range(4):
    batches = jax.vmap(sample)(keys["data"], states.step)
    states, _ = many(states, batches, keys["run"])
    singles = [one(s, sample(keys["data"][i], step), keys["run"][i])[0]
               for i, s in enumerate(singles)]
pairs = [(np.asarray(a), np.asarray(b)) for i, s in enumerate(singles)
         for a, b in zip(jax.tree.leaves(unstack(states, i)), jax.tree.leaves(s))]
same = sum(bool(np.array_equal(a, b)) for a, b in pairs)
close = sum(bool(np.allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())) for a, b in pairs)
print(same, close, len(pairs))
"""


@pytest.fixture(scope="module", autouse=True)
def vmapped_against_separate(request):
    """The worker running VMAPPED_AGAINST_SEPARATE, started with the module (None where its
    test is not to run)."""
    if not selected(request, "test_vmapped_seeds_equal_separate_runs_to_rounding_on_cpu"):
        yield None
        return
    worker = BackgroundWorker(
        VMAPPED_AGAINST_SEPARATE, timeout=300,
        env={"JAX_PLATFORMS": "cpu",
             "XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type= "
                          f"--xla_disable_hlo_passes=algsimp {QUICK_COMPILE_FLAGS}"})
    yield worker
    worker.stop()


@pytest.mark.slow
def test_vmapped_seeds_equal_separate_runs_to_rounding_on_cpu(vmapped_against_separate):
    same, close, total = map(int, vmapped_against_separate.result().split())
    # Two programs at two shapes: another processor's kernels may round them apart, so they are
    # held to float rounding, 1e-5 of each array's scale (with the rewrites on, 2e-6 is seen in
    # Adam's second moments), not to the bits (`same` counts the arrays that agree bit for bit).
    assert total > 30 and close == total, (same, close, total)


@pytest.mark.slow
def test_a_seeds_run_does_not_depend_on_the_other_seeds():
    # With XLA's default rewrites: seed 0 alone and seed 0 among others give the same bits, and
    # a separate, unbatched run agrees to float rounding.
    config = tiny_toy_config()
    setup = build_setup(config, POINT_SPEC)
    many = jax.jit(vmap_train_step(setup.train_step))
    sample = jax.vmap(lambda key, step: batch_at(ring(), key, step, 32))

    def run(seeds, steps=3):
        keys = seed_keys(seeds)
        states = init_states(setup, keys["init"])
        for _ in range(steps):
            states, _ = many(states, sample(keys["data"], states.step), keys["run"])
        return states

    a, b = run([0, 1, 2]), run([0, 7, 9])
    for x, y in zip(jax.tree.leaves(unstack(a, 0)), jax.tree.leaves(unstack(b, 0))):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(ravel_pytree(unstack(a, 1).nets["g"].params)[0],
                              ravel_pytree(unstack(b, 1).nets["g"].params)[0])
    keys = seed_keys([0])
    single = setup.init_state(keys["init"][0])
    for step in range(3):
        single, _ = jax.jit(setup.train_step)(single, batch_at(ring(), keys["data"][0], step, 32),
                                              keys["run"][0])
    for x, y in zip(jax.tree.leaves(unstack(a, 0)), jax.tree.leaves(single)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_short_unrolled_run_covers_more_ring_modes_than_the_plain_gan(tmp_path):
    # Fixed seeds, 3000 steps (measured: 0 and 0 modes plain, 4 and 4 unrolled): the plain GAN
    # collapses and wanders between the modes; unrolling D 5 steps spreads G over the ring.
    config = tiny_toy_config(seeds=2, steps=3000, batch_size=128, log_every=1500,
                             checkpoint_every=3000)
    config = override(config, ["model.hidden=64", "model.z_dim=16", "optim.d_lr=1e-3",
                               "optim.g_lr=1e-3"])
    plain = train_toy(config, tmp_path / "plain", log=lambda _: None)
    unrolled = train_toy(override(config, ["loss.unroll_steps=5", "optim.eps_root=1e-8"]),
                         tmp_path / "unrolled", log=lambda _: None)
    covered = plain["mean"]["modes/covered"], unrolled["mean"]["modes/covered"]
    assert covered[1] >= covered[0] + 2, covered


@pytest.mark.slow
def test_experiment_writes_table_figures_and_gif_and_resumes_exactly(tmp_path, capsys):
    args = ["--method", "minibatch", "--seeds", "2", "--steps", "20", "--set",
            "train.log_every=10", "--set", "train.checkpoint_every=10", "--set",
            "train.batch_size=32", "--set", "model.hidden=16", "--set", "model.z_dim=4"]
    assert mode_collapse.main([*args, "--workdir", str(tmp_path / "straight")]) == 0
    straight = tmp_path / "straight"
    for name in ("results.md", "results.json", "modes.png", "training.gif", "history.csv",
                 "seeds.csv", "samples/step_000010.png", "samples/step_000020.png"):
        assert (straight / name).is_file(), name
    table = (straight / "results.md").read_text()
    assert "modes/covered" in table and "| mean | std |" in table
    results = json.loads((straight / "results.json").read_text())
    assert results["seeds"] == [0, 1] and len(results["per_seed"]["modes/covered"]) == 2
    history = (straight / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,") and "modes/covered/std" in history[0]
    assert len(history) == 3
    import PIL.Image
    assert PIL.Image.open(straight / "training.gif").n_frames == 2

    # Interrupted after step 10, then resumed: the same numbers as the straight run.
    assert mode_collapse.main([*args, "--workdir", str(tmp_path / "resumed"),
                               "--steps", "10"]) == 0
    assert mode_collapse.main([*args, "--workdir", str(tmp_path / "resumed")]) == 0
    assert "resuming" in capsys.readouterr().out
    resumed = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert resumed["per_seed"] == results["per_seed"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds 0: use 1 or more"),
    (["--dataset", "mnist"], "toy dataset 'mnist' is unknown"),
    (["--set", "model.pack=3"], "does not split into packs of model.pack=3"),
    (["--method", "wgan_gp", "--set", "model.minibatch_kernels=4"],
     "minibatch discrimination and packing mix"),
    (["--unroll", "-1"], "loss.unroll_steps=-1"),
    (["--set", "model.pack=0"], "model.pack=0: use 1 or more"),
])
def test_experiment_bad_input_is_one_line(args, message, tmp_path, capsys):
    assert mode_collapse.main([*args, "--steps", "2", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_toy_options_are_refused_outside_the_toy_arch(tmp_path):
    from conftest import tiny_config
    from jgan.train.loop import train
    with pytest.raises(UserError, match="model.pack applies to the toy arch"):
        build(override(tiny_config(), ["model.pack=2"]))
    with pytest.raises(UserError, match="python -m experiments.mode_collapse"):
        train(override(tiny_config(), ["model.arch=toy"]), tmp_path)
    assert not (tmp_path / "config.json").exists()
    # Unrolling and feature matching are not toy-only: the MLP GAN on images takes them.
    config = override(tiny_config("mlp"), ["loss.unroll_steps=1",
                                           "loss.g_objective=feature_matching"])
    setup = build(config)
    state = setup.init_state(jax.random.key(0))
    batch = {"image": jnp.zeros((16, 28, 28, 1), jnp.uint8)}
    _, metrics = jax.jit(setup.train_step)(state, batch, jax.random.key(1))
    adversarial = build(override(config, ["loss.g_objective=adversarial"]))
    _, adversarial_metrics = jax.jit(adversarial.train_step)(state, batch, jax.random.key(1))
    assert np.isfinite(float(metrics["loss/g"]))
    assert float(metrics["loss/g"]) != float(adversarial_metrics["loss/g"])


def test_the_toy_critics_wgan_gp_loss_and_gradient_by_hand(monkeypatch):
    """Issue 31: WGAN-GP did not train on the ring. The toy critic D(x) = v . relu(W x + c) + b
    in the step's own D update: the Wasserstein loss and the penalty against numpy, and the
    gradient the update applies against the one derived by hand, the penalty's second-order
    term (through the ReLU's pattern) included."""
    from jgan.augment import Augment
    from jgan.families.gan import step as gan_step
    from jgan.families.gan.step import DiscriminatorObjective
    from jgan.train.step_parts import GANPlayers

    applied = []

    def recording(network, state, grads, collections):
        applied.append(grads)
        return apply_gradients(network, state, grads, collections)

    monkeypatch.setattr(gan_step, "apply_gradients", recording)

    config = override(mode_collapse.get_config("wgan_gp"), ["model.hidden=3", "model.z_dim=2",
                                                            "train.batch_size=4"])
    setup = build_setup(config, POINT_SPEC)
    d = setup.init_state(jax.random.key(0)).nets["d"]
    players = GANPlayers(setup.networks["g"], setup.networks["d"], 2, "none", 10, Augment())
    objective = DiscriminatorObjective(players, losses.get_losses("wasserstein"), config.loss,
                                       lambda x: x)
    real = jnp.array([[2.0, 0.0], [0.0, 2.0], [-1.4, 1.4], [0.1, -2.0]])
    fake = jnp.array([[0.3, 0.1], [-0.2, 0.5], [0.9, -0.7], [0.0, 0.0]])
    key = jax.random.key(7)
    updated, metrics = objective.update(d, real, None, fake, None, key)

    params = jax.tree.map(np.float64, d.params)
    W, c = params["Dense_0"]["kernel"], params["Dense_0"]["bias"]
    v, b = params["Dense_1"]["kernel"][:, 0], params["Dense_1"]["bias"][0]
    x_hat = np.float64(losses.interpolates(real=real, fake=fake, key=jax.random.split(
        jax.random.split(key, 3)[2], 4)[0]))  # the update's key for the interpolation weights

    def critic(x):
        return np.maximum(x @ W + c, 0) @ v + b

    active = (x_hat @ W + c > 0).astype(np.float64)  # [B, H]: the ReLU's pattern at x_hat
    g = (active * v) @ W.T  # grad_x D(x_hat), [B, 2]
    norms = np.sqrt((g ** 2).sum(1) + 1e-12)
    lam = config.loss.gp_weight
    adv = critic(np.float64(fake)).mean() - critic(np.float64(real)).mean()
    gp = lam * np.mean((norms - 1) ** 2)
    np.testing.assert_allclose(metrics["loss/d/adv"], adv, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss/d/gp"], gp, rtol=1e-5)

    def hidden_grads(x, sign):  # d/d(W, c, v, b) of sign * mean D(x)
        h_in = x @ W + c
        upstream = sign * (h_in > 0) * v / len(x)  # [B, H]
        return x.T @ upstream, upstream.sum(0), sign * np.maximum(h_in, 0).mean(0), sign
    grads = [a + b_ for a, b_ in zip(hidden_grads(np.float64(fake), 1.0),
                                      hidden_grads(np.float64(real), -1.0))]
    # the penalty: d/dg of lam mean (|g| - 1)^2, then g = W (active * v)^T per example
    dg = lam * 2 * (norms - 1)[:, None] / norms[:, None] * g / len(g)  # [B, 2]
    grads[0] = grads[0] + np.einsum("bk,bj->kj", dg, active * v)
    grads[2] = grads[2] + np.einsum("bk,kj,bj->j", dg, W, active)
    expected = {"Dense_0": {"kernel": grads[0], "bias": grads[1]},
                "Dense_1": {"kernel": grads[2][:, None], "bias": np.array([grads[3]])}}
    (grads_applied,) = applied
    for name in ("Dense_0", "Dense_1"):
        for leaf in ("kernel", "bias"):
            np.testing.assert_allclose(grads_applied[name][leaf], expected[name][leaf],
                                       rtol=1e-4, atol=1e-6, err_msg=f"{name}/{leaf}")
    # and Adam's first step moves each parameter by lr against its gradient's sign
    moved = np.float64(updated.params["Dense_1"]["kernel"]) - params["Dense_1"]["kernel"]
    np.testing.assert_allclose(moved, -config.optim.d_lr * np.sign(expected["Dense_1"]["kernel"]),
                               rtol=1e-3)

"""The pieces the families are made of, inside the real step: n_critic, clipping, spectral norm,
EMA, lazy regularization, ACGAN's class head, and every loss by name."""


import jax
import numpy as np
import optax
import pytest

from conftest import build, drawn_state, tiny_config, tiny_everything_config
from jgan import losses
from jgan.config import override
from jgan.data import BatchLoader, find_dataset
from jgan.errors import UserError
from jgan.families import latent
from jgan.families.gan.step import make_gan_train_step
from jgan.generate import per_image_inputs
from jgan.images import make_grid, to_uint8
from jgan.train.step_parts import ema_decay, prior


def _tiny(*assignments, arch="dcgan"):
    return override(tiny_config(arch), list(assignments))


def _start(config):
    setup = build(config)
    loader = BatchLoader(find_dataset("mnist").open("train"),
                         batch_size=config.train.batch_size * config.train.n_critic,
                         data_key=jax.random.key(1))
    return setup, setup.init_state(jax.random.key(0)), loader


def _run(config, steps, start=None):
    setup, state, loader = start or _start(config)
    step = jax.jit(setup.train_step)
    history = []
    for k in range(steps):
        state, metrics = step(state, loader.batch(k), jax.random.key(2))
        history.append(jax.device_get(metrics))
    return setup, state, history


def _update_count(network_state) -> int:
    return int(optax.tree_utils.tree_get(network_state.opt_state, "count"))


@pytest.mark.slow
def test_n_critic_updates_run_in_one_scan_of_one_traced_step():
    config = _tiny("train.n_critic=3", "model.d_norm=none", "loss.gan_loss=wasserstein",
                   "loss.gp_weight=10")
    setup, state, loader = _start(config)
    traces = []

    def counted(state, batch, key):
        traces.append(1)
        return setup.train_step(state, batch, key)

    batch = loader.batch(0)
    assert batch["image"].shape[0] == 3 * 16  # three real minibatches per step
    assert "scan" in str(jax.make_jaxpr(setup.train_step)(state, batch, jax.random.key(0)))
    step = jax.jit(counted)
    for k in range(2):
        state, _ = step(state, loader.batch(k), jax.random.key(0))
    assert len(traces) == 1
    assert _update_count(state.nets["d"]) == 6 and _update_count(state.nets["g"]) == 2


@pytest.mark.slow
def test_weight_clipping_keeps_every_critic_weight_in_range():
    config = _tiny("optim.optimizer=rmsprop", "optim.d_clip=0.01", "optim.d_lr=5e-5",
                   "optim.g_lr=5e-5", "loss.gan_loss=wasserstein", "train.n_critic=2")
    setup, state, loader = _start(config)
    before = np.concatenate([np.ravel(x) for x in jax.tree.leaves(state.nets["d"].params)])
    assert np.abs(before).max() > 0.02  # N(0, 0.02) draws: clipping has work to do
    _, state, _ = _run(config, 2)
    d_weights = np.concatenate([np.ravel(x) for x in jax.tree.leaves(state.nets["d"].params)])
    g_weights = np.concatenate([np.ravel(x) for x in jax.tree.leaves(state.nets["g"].params)])
    assert np.abs(d_weights).max() <= 0.01 * (1 + 1e-6)
    assert np.abs(d_weights).max() >= 0.01 * (1 - 1e-6)  # clipped, not shrunk
    assert np.abs(g_weights).max() > 0.02  # G is not clipped


@pytest.mark.slow
def test_spectral_norm_vectors_are_state_and_move_with_training():
    config = _tiny("model.spectral_norm=true", "model.d_norm=none", "loss.gan_loss=hinge")
    setup, state, _ = _start(config)
    _, trained, _ = _run(config, 2)
    before = state.nets["d"].collections["spectral_stats"]
    after = trained.nets["d"].collections["spectral_stats"]
    assert jax.tree.structure(before) == jax.tree.structure(after)
    assert any(not np.array_equal(a, b)
               for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))
    sigmas = [float(v) for path, v in jax.tree_util.tree_leaves_with_path(after)
              if "sigma" in jax.tree_util.keystr(path)]
    assert len(sigmas) == 3 and all(s > 0 for s in sigmas)


@pytest.mark.slow
def test_ema_moves_by_its_half_life_and_is_used_for_sampling():
    config = _tiny("train.ema_kimg=0.1")
    setup, state, loader = _start(config)
    assert all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(state.extra["g_ema"]), jax.tree.leaves(state.nets["g"].params)))
    new, _ = jax.jit(setup.train_step)(state, loader.batch(0), jax.random.key(2))
    beta = ema_decay(16, 0.1)
    np.testing.assert_allclose(beta, 0.5 ** (16 / 100))
    for ema, old, p in zip(jax.tree.leaves(new.extra["g_ema"]),
                           jax.tree.leaves(state.nets["g"].params),
                           jax.tree.leaves(new.nets["g"].params)):
        np.testing.assert_allclose(ema, beta * old + (1 - beta) * p, rtol=1e-5, atol=1e-7)
    z = {"z": jax.random.normal(jax.random.key(3), (4, 8)), "labels": None}
    with_ema = setup.sample(new, z)
    with_params = setup.sample(new.replace(extra={"g_ema": new.nets["g"].params}), z)
    old_weights = setup.sample(new.replace(extra={"g_ema": state.nets["g"].params}), z)
    assert not np.allclose(with_ema, with_params) and not np.allclose(with_ema, old_weights)


@pytest.mark.slow
def test_ema_samples_with_standing_statistics_of_the_averaged_weights():
    config = _tiny("train.ema_kimg=0.1")
    setup, new, _ = _run(config, 2)
    standing = setup.with_standing_statistics(new).extra["g_standing"]
    # By hand: G at its own momentum 0.9, started from zero statistics, keeps 0.1 x each batch's
    # moments, so 10 x what it keeps, averaged over the 64 batches, is the standing statistics.
    g = setup.networks["g"].module
    zeros = jax.tree.map(np.zeros_like, new.nets["g"].collections["batch_stats"])
    kept = []
    assert setup.standing_batches == 64
    for key in jax.random.split(jax.random.key(latent.STANDING_SEED), setup.standing_batches):
        z = prior(jax.random.split(key)[0], latent.STANDING_BATCH_SIZE, setup.z_dim)
        _, collections = g.apply({"params": new.extra["g_ema"], "batch_stats": zeros}, z,
                                 train=True, mutable=["batch_stats"])
        kept.append(collections["batch_stats"])
    by_hand = jax.tree.map(lambda *values: 10 * np.mean(values, axis=0), *kept)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6),
                 standing, by_hand)
    # generate and the preview grid use them; the running statistics are another G
    running = jax.tree.leaves(new.nets["g"].collections["batch_stats"])
    assert max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(standing), running)) > 1e-3
    key = jax.random.key(4)
    images = setup.generate(new, key, 4)
    inputs = per_image_inputs(setup, key, 4)
    with_standing = setup.sample(setup.with_standing_statistics(new), inputs)
    np.testing.assert_array_equal(images, to_uint8(with_standing))
    assert not np.array_equal(images, to_uint8(setup.sample(new, inputs)))
    fixed = setup.preview_inputs(key, 4, None)
    grid_inputs, columns = fixed
    np.testing.assert_array_equal(setup.preview(new, fixed)[""], make_grid(to_uint8(
        setup.sample_fn(setup.with_standing_statistics(new), grid_inputs)), columns=columns))
    # without an EMA, the running statistics belong to the weights that sample, and stay
    plain = build(_tiny())
    assert plain.batch_moments is None and plain.with_standing_statistics(new) is new


@pytest.mark.slow
def test_lazy_r1_is_an_extra_d_update_every_interval_steps():
    config = _tiny("model.d_norm=none", "loss.r1_gamma=10", "loss.reg_interval=2")
    _, state, history = _run(config, 3)
    assert _update_count(state.nets["d"]) == 3 + 2  # steps 0 and 2 regularize
    r1 = [float(m["loss/d/r1"]) for m in history]
    assert r1[0] > 0 and r1[1] == 0 and r1[2] > 0


def test_gradient_penalties_refuse_batchnorm_in_d():
    with pytest.raises(UserError, match="d_norm=none"):
        build(_tiny("loss.gp_weight=10"))


@pytest.mark.slow
def test_acgan_step_teaches_d_the_classes():
    config = _tiny("model.conditioning=auxiliary", "model.num_classes=10")
    setup, state, loader = _start(config)
    batch, key = loader.batch(0), jax.random.key(2)
    new, metrics = jax.jit(setup.train_step)(state, batch, key)
    assert {"loss/d/class", "loss/g/class", "d/class_accuracy"} <= set(metrics)
    frozen = jax.jit(make_gan_train_step(config, generator=setup.networks["g"],
                                         discriminator=setup.networks["d"], update_d=False,
                                         update_g=False))
    _, after = frozen(new.replace(step=state.step), batch, key)
    assert float(after["loss/d/class"]) < float(metrics["loss/d/class"])


def test_acgan_d_class_loss_is_the_cross_entropy_of_the_real_images_labels():
    # The step's loss/d/class is class_weight * (CE(real) + CE(fake)): relabelling the real
    # images changes it by the change of the real term alone, computed here from D's class
    # logits of those images (train mode: the batch's statistics, as the step's real pass).
    config = _tiny("model.conditioning=auxiliary", "model.num_classes=10")
    setup = build(config)
    state = drawn_state(setup)
    frozen = jax.jit(make_gan_train_step(config, generator=setup.networks["g"],
                                         discriminator=setup.networks["d"], update_d=False,
                                         update_g=False))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 28, 28, 1), np.uint8)
    labels = rng.integers(0, 10, 16).astype(np.int32)
    relabelled = (labels + 1) % 10
    key = jax.random.key(2)
    metrics, relabelled_metrics = (frozen(state, {"image": images, "label": y}, key)[1]
                                   for y in (labels, relabelled))
    d = state.nets["d"]
    (_, class_logits), _ = setup.networks["d"].module.apply(
        d.variables(), (images / 127.5 - 1).astype(np.float32), train=True,
        mutable=list(d.collections))
    class_logits = np.asarray(class_logits, np.float64)
    top = class_logits.max(axis=1, keepdims=True)
    log_p = class_logits - top - np.log(np.sum(np.exp(class_logits - top), axis=1, keepdims=True))

    def cross_entropy(y):
        return -np.mean(log_p[np.arange(16), y])

    assert abs(cross_entropy(labels) - cross_entropy(relabelled)) > 0.01  # a change to see
    np.testing.assert_allclose(
        float(metrics["loss/d/class"]) - float(relabelled_metrics["loss/d/class"]),
        config.loss.class_weight * (cross_entropy(labels) - cross_entropy(relabelled)),
        rtol=1e-3)
    assert float(metrics["d/class_accuracy"]) == np.mean(np.argmax(class_logits, 1) == labels)


def _kernels(params) -> dict:
    """A network's weight matrices by path."""
    return {jax.tree_util.keystr(path): leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if "kernel" in jax.tree_util.keystr(path)}


@pytest.mark.slow
@pytest.mark.parametrize("name", losses.LOSS_NAMES)
def test_every_loss_trains_the_2014_gan(name):
    config = _tiny(f"loss.gan_loss={name}", arch="mlp")
    setup, state, loader = _start(config)
    batch, key = loader.batch(0), jax.random.key(2)
    # Each player's update lowers its own loss: the step run again from the updated state at
    # the same step count sees the same batch, z and dropout masks. A sign-flipped update
    # raises it (Adam's first step moves every weight by about lr against its gradient).
    for player, other in (("d", "g"), ("g", "d")):
        step = jax.jit(make_gan_train_step(
            config, generator=setup.networks["g"], discriminator=setup.networks["d"],
            **{f"update_{other}": False}))
        trained, before = step(state, batch, key)
        _, after = step(trained.replace(step=state.step), batch, key)
        assert all(np.isfinite(float(v)) for m in (before, after) for v in m.values())
        assert float(after[f"loss/{player}"]) < float(before[f"loss/{player}"]), player
        for old, new in zip(jax.tree.leaves(state.nets[other].params),
                            jax.tree.leaves(trained.nets[other].params)):
            np.testing.assert_array_equal(old, new)
        # Every weight matrix has moved, to finite values. (Not every bias: under the
        # Wasserstein loss D's output bias cancels out of its loss.)
        kernels, trained_kernels = (_kernels(s.nets[player].params) for s in (state, trained))
        assert len(kernels) >= 2
        for path, old in kernels.items():
            new = trained_kernels[path]
            assert np.all(np.isfinite(new)) and not np.array_equal(old, new), f"{player}{path}"


@pytest.mark.slow
def test_everything_at_once_steps_and_keeps_its_state():
    config = tiny_everything_config()
    setup, state, history = _run(config, 2)
    assert set(state.nets["d"].collections) == {"spectral_stats"}
    assert "g_ema" in state.extra and setup.num_classes == 10
    assert {"loss/d/gp", "loss/d/r1", "loss/d/class"} <= set(history[0])


def test_conditional_gan_needs_labels_enough_classes_and_a_known_loss():
    config = _tiny("model.conditioning=input", "model.num_classes=10")
    with pytest.raises(UserError, match="dataset mnist has no class labels"):
        build(config, num_classes=0)
    with pytest.raises(UserError, match="has 100 classes .* --set model.num_classes=100"):
        build(config, num_classes=100)
    assert build(config, num_classes=10).num_classes == 10
    with pytest.raises(UserError, match="loss.gan_loss='wasserstain' is unknown"):
        build(_tiny("loss.gan_loss=wasserstain"))
    with pytest.raises(UserError, match="label smoothing"):
        build(_tiny("loss.gan_loss=hinge", "loss.real_label=0.9"))


@pytest.mark.slow
def test_feature_matching_and_minibatch_discrimination_train_the_dcgan():
    config = _tiny("loss.g_objective=feature_matching", "model.minibatch_kernels=3",
                   "model.minibatch_kernel_dim=2")
    setup = build(config)
    state = setup.init_state(jax.random.key(0))
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), np.uint8)
    new, metrics = jax.jit(setup.train_step)(state, {"image": images}, jax.random.key(2))
    assert np.isfinite(float(metrics["loss/g"])) and np.isfinite(float(metrics["loss/d"]))
    # The feature-matching gradient reaches every G weight; D's adversarial loss trains the
    # minibatch kernel.
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         state.nets["g"].params, new.nets["g"].params)
    assert all(jax.tree.leaves(moved))
    kernel = lambda s: np.asarray(s.nets["d"].params["MinibatchDiscrimination_0"]["kernel"])
    assert np.abs(kernel(new) - kernel(state)).max() > 0


def test_minibatch_discrimination_refuses_gradient_penalties_on_images():
    with pytest.raises(UserError, match="minibatch discrimination and packing mix"):
        build(_tiny("model.minibatch_kernels=3", "model.d_norm=none", "loss.r1_gamma=1"))

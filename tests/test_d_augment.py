"""Differentiable augmentation of D's inputs (jgan.augment): each op by hand, the pipelines'
identities, gradients through them to G, ADA's p by hand, resume, and the one-line refusals."""

import csv
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import build, tiny_bigan_config, tiny_config, with_train
from jgan import augment as A
from jgan.config import Config, check, override
from jgan.errors import UserError
from jgan.train import loop
from jgan.train.step_parts import GANPlayers


def images(batch=3, size=8, channels=3, seed=0):
    return jax.random.uniform(jax.random.key(seed), (batch, size, size, channels), minval=-1.0,
                              maxval=1.0)


# ---- the ops by hand -------------------------------------------------------------------------

def test_translation_moves_pixels_by_exactly_the_offset_and_pads_with_zeros():
    x = images()
    out = np.asarray(A.translate(x, jnp.array([[1, 2], [0, 0], [-3, 1]])))
    np.testing.assert_array_equal(out[0, 1:, 2:], x[0, :-1, :-2])
    assert not out[0, :1].any() and not out[0, :, :2].any()
    np.testing.assert_array_equal(out[1], x[1])
    np.testing.assert_array_equal(out[2, :5, 1:], x[2, 3:, :-1])
    assert not out[2, 5:].any()


def test_reflected_translation_mirrors_the_edge_without_repeating_it():
    x = images(batch=1)
    out = np.asarray(A.translate(x, jnp.array([[0, 2]]), padding="reflect"))
    # Column j takes source column j - 2: -2, -1 mirror to 2, 1.
    np.testing.assert_array_equal(out[0], np.asarray(x[0])[:, [2, 1, 0, 1, 2, 3, 4, 5]])


def test_cutout_zeroes_a_square_of_the_set_size_clipped_to_the_image():
    x = jnp.ones((3, 8, 8, 2))
    out = np.asarray(A.cutout(x, jnp.array([[2, 3], [-2, -2], [6, 6]]), 4))
    zero = ~out.any(-1)
    assert zero[0].sum() == 16 and zero[0, 2:6, 3:7].all()
    assert zero[1].sum() == 4 and zero[1, :2, :2].all()
    assert zero[2].sum() == 4 and zero[2, 6:, 6:].all()


def test_diffaugment_sizes_are_an_eighth_and_a_half_of_the_side():
    assert (A.translation_limit(32), A.cutout_size(32)) == (4, 16)
    assert (A.translation_limit(28), A.cutout_size(28)) == (4, 14)
    x = jnp.ones((64, 32, 32, 1))
    keys = jax.random.split(jax.random.key(0), 64)
    zero = ~np.asarray(A.diff_augment(keys, x, ("cutout",))).any(-1)
    rows, cols = zero.any(2).sum(1), zero.any(1).sum(1)
    assert (zero.sum((1, 2)) == rows * cols).all()  # one rectangle each
    assert rows.max() == cols.max() == 16 and rows.min() >= 8
    shifted = np.asarray(A.diff_augment(keys, x, ("translation",)))
    empty_rows = (~shifted.any((2, 3))).sum(1)
    assert empty_rows.max() == 4


def test_colour_ops_match_their_formulas():
    x = np.asarray(images())
    b, c = np.array([0.1, -0.3, 0.0]), np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(A.brightness(x, b), x + b[:, None, None, None], rtol=1e-6)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(A.contrast(x, c, about="mean"),
                               (x - mean) * c[:, None, None, None] + mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A.contrast(x, c, about="zero"), x * c[:, None, None, None],
                               rtol=1e-6)
    grey = x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(A.saturation(x, c), (x - grey) * c[:, None, None, None] + grey,
                               rtol=1e-5, atol=1e-6)
    single = x[..., :1]
    np.testing.assert_array_equal(A.saturation(single, c), single)  # grey stays grey


def test_geometric_ops_match_numpy():
    x = images()
    for turns in range(4):
        np.testing.assert_array_equal(A.rotate90(x, jnp.full((3,), turns)),
                                      jnp.rot90(x, turns, axes=(1, 2)))
    np.testing.assert_array_equal(A.flip_x(x, jnp.array([True, False, True]))[0], x[0, :, ::-1])
    np.testing.assert_allclose(A.scale(x, jnp.ones(3)), x, atol=1e-6)
    # Zoom 2 about the centre (3.5) of an 8 x 8 ramp down the rows: row o reads row
    # 3.5 + (o - 3.5) / 2, so the ramp's slope halves about the centre.
    ramp = jnp.broadcast_to(jnp.arange(8.0)[None, :, None, None], (1, 8, 8, 1))
    zoomed = np.asarray(A.scale(ramp, jnp.array([2.0])))[0, :, 4, 0]
    np.testing.assert_allclose(zoomed, 3.5 + (np.arange(8) - 3.5) / 2, atol=1e-5)


@pytest.mark.slow
def test_with_probability_zero_ada_is_the_identity_and_with_one_it_changes_every_image():
    x = images(batch=8)
    keys = jax.random.split(jax.random.key(3), 8)
    np.testing.assert_array_equal(A.ada_augment(keys, x, 0.0), x)
    moved = np.abs(np.asarray(A.ada_augment(keys, x, 1.0)) - np.asarray(x)).max(axis=(1, 2, 3))
    assert (moved > 0).all()
    np.testing.assert_array_equal(A.Augment()(jax.random.key(0), x), x)


@pytest.mark.slow
def test_each_image_draws_from_its_own_key_whatever_the_batch():
    x = images(batch=6)
    augment = A.Augment(kind="ada", ops=A.OPS["ada"], p=0.7)
    keys = augment.image_keys(jax.random.key(5), 6)
    whole = np.asarray(augment.apply(keys, x))
    halves = np.concatenate([augment.apply(keys[:3], x[:3]), augment.apply(keys[3:], x[3:])])
    np.testing.assert_allclose(whole, halves, atol=1e-6)


@pytest.mark.slow
def test_gradients_reach_g_through_the_augmentation():
    config = override(tiny_config(), ["train.augment=diffaugment"])
    setup = build(config)
    state = jax.jit(setup.init_state)(jax.random.key(0))
    g, d = state.nets["g"], state.nets["d"]
    x = images(batch=4, size=28, channels=1)

    # The input gradient of sum(translate(x)) is 1 where a pixel stays in the image, else 0.
    grad = jax.grad(lambda x: A.translate(x, jnp.array([[2, 0]] * 4)).sum())(x)
    np.testing.assert_array_equal(grad[:, :-2], 1.0)
    np.testing.assert_array_equal(grad[:, -2:], 0.0)

    def d_of_g(params, augment):
        players = GANPlayers(setup.networks["g"], setup.networks["d"], 8, augment=augment)
        z = jnp.ones((4, 8))
        fake, _ = players.generate(g, params, z, None)
        return players.discriminate(d, d.params, fake, None, jax.random.key(1))[0].sum()

    augmented = jax.grad(d_of_g)(g.params, setup.augment)
    plain = jax.grad(d_of_g)(g.params, A.Augment())
    norms = [float(jnp.linalg.norm(leaf)) for leaf in jax.tree.leaves(augmented)]
    assert all(np.isfinite(norms)) and max(norms) > 0
    diff = jax.tree.map(lambda a, b: jnp.abs(a - b).max(), augmented, plain)
    assert max(float(v) for v in jax.tree.leaves(diff)) > 1e-6


# ---- ADA's p ---------------------------------------------------------------------------------

def test_p_moves_by_hand_over_a_scripted_sequence_of_d_outputs():
    # Every 2 steps, p moves by sign(r_t - 0.6) x (2 steps x 10 images) / 100 images = 0.2.
    augment = A.Augment(kind="ada", ops=A.OPS["ada"], target=0.6, interval=2, ada_kimg=0.1,
                        initial_p=0.1)
    extra = augment.init_extra()
    # r_t of each step: (1, 0.4) averages 0.7 > 0.6: up; (0, 0) down; (0.6, 0.6) = target:
    # sign 0, stays; (1, 1) up, (1, 1) up, (1, 1) up to the clip at 1.
    script = [1.0, 0.4, 0.0, 0.0, 0.6, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    seen = []
    for step, r_t in enumerate(script, start=1):
        extra, metrics = augment.adapt(extra, r_t=jnp.float32(r_t), count=10, step=step)
        seen.append(round(float(metrics["augment/p"]), 6))
    assert seen == [0.1, 0.3, 0.3, 0.1, 0.1, 0.1, 0.1, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7, 0.9]
    for _ in range(4):
        step += 1
        extra, metrics = augment.adapt(extra, r_t=jnp.float32(1.0), count=10, step=step)
    assert float(metrics["augment/p"]) == 1.0
    assert float(extra["ada"]["count"]) == 0.0  # the sums start again after each move


def test_ada_kimg_zero_holds_p():
    augment = A.Augment(kind="ada", ops=A.OPS["ada"], interval=1, ada_kimg=0.0, initial_p=0.3)
    extra, metrics = augment.adapt(augment.init_extra(), r_t=jnp.float32(1.0), count=8, step=1)
    assert float(metrics["augment/p"]) == pytest.approx(0.3)


def _rows(workdir):
    with open(workdir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_resume_in_the_middle_of_an_adaptation_is_bit_identical(tmp_path):
    # p moves every 3 steps, by 3 x 16 / 20 = 2.4: to a clip at 0 or 1. The run stops at step 2,
    # with one step's signs summed and not yet spent.
    config = override(tiny_config(steps=4), ["train.augment=ada", "train.augment_p=0.5",
                                             "train.ada_interval=3", "train.ada_kimg=0.02"])
    straight = loop.train(config, tmp_path / "straight", log=lambda _: None)
    loop.train(with_train(config, steps=2), tmp_path / "resumed", log=lambda _: None)
    resumed = loop.train(config, tmp_path / "resumed", log=lambda _: None)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = _rows(tmp_path / "resumed")
    assert [float(row["augment/p"]) for row in rows[:2]] == [0.5, 0.5]
    assert float(rows[2]["augment/p"]) in (0.0, 1.0)  # moved at step 3
    assert [r["augment/p"] for r in rows] == [r["augment/p"] for r in _rows(tmp_path /
                                                                            "straight")]
    assert float(straight.extra["ada"]["count"]) == 16.0  # step 4's signs, summed


@pytest.mark.slow
def test_bigan_trains_with_augmented_x_and_keeps_p(tmp_path):
    # One kind: both reach D through the same call; ADA adds the state and the r_t metric.
    config = override(tiny_bigan_config(steps=1), ["train.augment=ada"])
    state = loop.train(config, tmp_path, log=lambda _: None)
    assert float(state.extra["ada"]["count"]) == 16.0
    row = _rows(tmp_path)[0]
    assert all(np.isfinite(float(v)) for k, v in row.items() if k != "step")
    assert "augment/r_t" in row


@pytest.mark.slow
def test_a_stylegan_step_augments_reals_fakes_and_r1_and_moves_p():
    from jgan.data import DataSpec
    from jgan.train.setup import build_setup
    from test_stylegan import tiny_stylegan_config

    config = override(tiny_stylegan_config(), ["train.augment=ada", "train.augment_p=0.5",
                                               "train.ada_interval=1", "train.ada_kimg=0.08"])
    setup = build_setup(config, DataSpec(arrays={"image": ((32, 32, 1), "uint8")}))
    state = jax.jit(setup.init_state)(jax.random.key(0))
    batch = {"image": np.random.default_rng(0).integers(0, 256, (8, 32, 32, 1), np.uint8)}
    after, metrics = jax.jit(setup.train_step)(state, batch, jax.random.key(1))
    # p moved by 8 / 80 = 0.1, up or down with r_t's side of 0.6.
    expected = 0.6 if float(metrics["augment/r_t"]) > 0.6 else 0.4
    assert float(after.extra["ada"]["p"]) == pytest.approx(expected)
    assert np.isfinite(float(metrics["loss/d/r1"])) and float(metrics["loss/d/r1"]) > 0


# ---- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("assignments, message", [
    (["train.augment=mixup"], "train.augment='mixup' is unknown: choose one of"),
    (["train.augment=diffaugment", "train.augment_ops=cutout,xflip"],
     "'xflip' is not an op of train.augment='diffaugment'"),
    (["train.augment_ops=cutout"], "train.augment is 'none'"),
    (["train.augment=ada", "train.augment_p=1.5"], "train.augment_p=1.5: ADA's probability"),
    (["train.augment=ada", "train.augment_p=nan"], "train.augment_p=nan"),
    (["train.augment=ada", "train.ada_target=2"], "train.ada_target=2.0"),
    (["train.augment=ada", "train.ada_interval=0"], "train.ada_interval=0"),
    (["train.augment=ada", "train.ada_kimg=-1"], "train.ada_kimg=-1.0"),
])
def test_bad_augmentation_settings_are_refused_in_one_line(assignments, message):
    with pytest.raises(UserError) as error:
        check(override(Config(), assignments))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_families_without_augmentation_refuse_it(tmp_path):
    from conftest import paired_folder, tiny_translation_config

    config = override(tiny_translation_config("pix2pix", paired_folder(tmp_path / "pairs")),
                      ["train.augment=diffaugment"])
    with pytest.raises(UserError, match="the pix2pix family does not augment"):
        loop.train(config, tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "checkpoints").exists()
    toy = dataclasses.replace(tiny_config(), model=dataclasses.replace(tiny_config().model,
                                                                       arch="toy"))
    with pytest.raises(UserError, match="the toy arch's D sees 2-D points"):
        build(override(toy, ["train.augment=ada"]), shape=(2,), num_classes=0)

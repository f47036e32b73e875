"""BiGAN and BigBiGAN: networks, the joint D, the encoder regularizer, mixed pooling, per-network
checkpoints, and an encoder that learns something on real MNIST."""

import dataclasses
import json
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (REPO, BackgroundWorker, build, drawn_state, drawn_variables, selected,
                      tiny_bigan_config, tiny_config, with_train)
from jgan import losses
from jgan.config import override
from jgan.errors import UserError
from jgan.families.bigan.networks import BiGANEncoder, BiGANGenerator, JointDiscriminator
from jgan.families.gan import GANModelConfig
from jgan.nn import MixedPooling
from jgan.tools.components import export_network, read_network, with_network
from jgan.tools.sample import load_run
from jgan.train import loop

SILENT = {"log": lambda _: None}


def _networks(arch, shape, **options):
    common = dict(arch=arch, base_features=8, hidden=32)
    return (BiGANGenerator(shape, head=options.get("head", "dense"),
                           crop=options.get("crop", 0), **common),
            BiGANEncoder(16, downsample=options.get("downsample", "stride"), **common),
            JointDiscriminator(unary=True, norm="none",
                               downsample=options.get("downsample", "stride"), **common))


@pytest.mark.parametrize("arch, shape, options", [
    ("mlp", (28, 28, 1), {}),
    ("mlp", (32, 32, 3), {}),
    ("dcgan", (28, 28, 1), {}),
    ("dcgan", (28, 28, 1), {"head": "conv", "crop": 2, "downsample": "mixed_pool"}),
    ("dcgan", (32, 32, 3), {"head": "conv", "crop": 3}),
    ("unet", (28, 28, 1), {"crop": 2}),
    ("unet", (32, 32, 3), {"head": "conv"}),
])
def test_every_network_has_the_right_shapes(arch, shape, options):
    # E's and D's shapes by tracing alone; G runs, on drawn weights, for the range of its images.
    g, e, d = _networks(arch, shape, **options)
    z, x = jnp.ones((3, 16)), jnp.ones((3, *shape))

    def init_and_apply(net, *inputs):
        return jax.eval_shape(lambda key: net.apply(net.init(key, *inputs, train=False), *inputs,
                                                    train=False), jax.random.key(0))

    images = jax.jit(lambda v: g.apply(v, z, train=False))(drawn_variables(g, z, train=False))
    codes, scores = init_and_apply(e, x), init_and_apply(d, x, z)
    assert images.shape == (3, *shape) and float(jnp.max(jnp.abs(images))) <= 1.0
    assert codes.shape == (3, 16)
    assert {name: s.shape for name, s in scores.items()} == {"xz": (3,), "x": (3,), "z": (3,)}


def test_pad_then_crop_cuts_the_centre_of_a_larger_canvas():
    # The crop=2 G at 28 draws 32x32: the same parameters as a 32x32 G, whose centre it returns.
    z = jax.random.normal(jax.random.key(0), (2, 16))
    cropped = BiGANGenerator((28, 28, 1), base_features=8, crop=2)
    full = BiGANGenerator((32, 32, 1), base_features=8)
    variables = drawn_variables(full, z, train=False)
    # Bits: both run the same ops at the same shapes (32x32), one then slices its centre.
    np.testing.assert_array_equal(cropped.apply(variables, z, train=False),
                                  full.apply(variables, z, train=False)[:, 2:30, 2:30])


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_joint_discriminator_uses_both_pathways_and_unary_scores_use_one(arch):
    _, _, d = _networks(arch, (28, 28, 1))
    x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    z = jax.random.normal(jax.random.key(1), (2, 16))
    variables = drawn_variables(d, x, z, train=False)

    def grads(name):
        return jax.grad(lambda x, z: jnp.sum(d.apply(variables, x, z, train=False)[name]),
                        argnums=(0, 1))(x, z)

    (xz_x, xz_z), (x_x, x_z), (z_x, z_z) = grads("xz"), grads("x"), grads("z")
    assert float(jnp.sum(xz_x ** 2)) > 0 and float(jnp.sum(xz_z ** 2)) > 0
    assert float(jnp.sum(x_x ** 2)) > 0 and float(jnp.sum(jnp.abs(x_z))) == 0
    assert float(jnp.sum(z_z ** 2)) > 0 and float(jnp.sum(jnp.abs(z_x))) == 0


@pytest.mark.slow
def test_mixed_pooling_at_its_extremes_is_max_and_average_pooling():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    layer = MixedPooling()
    variables = layer.init(jax.random.key(1), x)
    assert variables["params"]["mix_logit"].shape == (3,)

    def pooled(logits):
        return layer.apply({"params": {"mix_logit": jnp.asarray(logits, jnp.float32)}}, x)

    max_pooled, avg_pooled = nn.max_pool(x, (2, 2), (2, 2)), nn.avg_pool(x, (2, 2), (2, 2))
    np.testing.assert_allclose(pooled([100.0] * 3), max_pooled, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(pooled([-100.0] * 3), avg_pooled, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(layer.apply(variables, x), 0.5 * (max_pooled + avg_pooled),
                               rtol=1e-6)
    # Per channel: channel 0 max, channel 1 average.
    mixed = pooled([100.0, -100.0, 0.0])
    np.testing.assert_allclose(mixed[..., 0], max_pooled[..., 0], rtol=1e-6)
    np.testing.assert_allclose(mixed[..., 1], avg_pooled[..., 1], rtol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x)))(variables["params"])
    assert np.all(np.asarray(grad["mix_logit"]) > 0)  # max >= mean: more max, larger sum


def test_encoder_regularizer_values_by_hand():
    codes = jnp.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    # Pairs: (0,1) (1 + 4) / 2, (0,2) (4 + 1) / 2, (1,2) (1 + 1) / 2; mean (2.5 + 2.5 + 1) / 3.
    assert float(losses.pairwise_mse(codes)) == pytest.approx(2.0)
    assert float(losses.latent_spread_penalty(codes, weight=1.5)) == pytest.approx(
        -1.5 * np.tanh(2.0))
    # Unbiased variances are (1, 1): no variance error, no penalty whatever the multiplier.
    assert float(losses.latent_variance_penalty(codes, multiplier=7.0, tolerance=0.0)) == 0.0

    spread = jnp.array([[0.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    # Variances (0, 3): MSE(1, var) = (1 + 4) / 2 = 2.5; pairwise MSE 2 * mean(0, 3) = 3 > 2.
    assert float(losses.adaptive_variance_multiplier(spread, base=2.0)) == pytest.approx(2.0)
    assert float(losses.latent_variance_penalty(spread, multiplier=2.0, tolerance=0.5)) == (
        pytest.approx(2.0 * (2.5 - 0.5)))
    assert float(losses.latent_variance_penalty(spread, multiplier=2.0, tolerance=3.0)) == 0.0

    close = jnp.array([[0.0], [0.5], [1.0]])
    # Variance 0.25, pairwise MSE 0.5: the multiplier is 2 / 0.5 = 4 times the base.
    multiplier = losses.adaptive_variance_multiplier(close, base=1.0)
    assert float(multiplier) == pytest.approx(4.0)
    assert float(losses.latent_variance_penalty(close, multiplier=multiplier, tolerance=0.0625)) \
        == pytest.approx(4.0 * ((1 - 0.25) ** 2 - 0.0625))
    collapsed = jnp.array([[1.0], [1.0], [1.001]])
    assert float(losses.adaptive_variance_multiplier(collapsed, base=1.5,
                                                     max_multiplier=10.0)) == 15.0
    # The multiplier carries no gradient: the penalty's gradient is multiplier x the term's.
    with_adaptive = jax.grad(lambda c: losses.latent_variance_penalty(
        c, multiplier=losses.adaptive_variance_multiplier(c, base=1.0), tolerance=0.0))(close)
    fixed = jax.grad(lambda c: losses.latent_variance_penalty(c, multiplier=4.0,
                                                              tolerance=0.0))(close)
    np.testing.assert_allclose(with_adaptive, fixed, rtol=1e-6)


def test_the_step_reads_the_regularizer_form_by_name():
    from jgan.families.bigan import BiGANLossConfig
    from jgan.families.bigan.step import encoder_regularizer

    codes = jnp.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    # Each code's mean MSE to the others: (5/2, 7/4, 7/4); the batch's mean is 2, so the
    # adaptive multiplier is 1. Per-sample variances (ddof 1) are (0, 1/2, 1/2): their MSE to
    # 1 is (1 + 1/4 + 1/4) / 3 = 1/2. The batch's per-dimension variances are (1, 1): MSE 0.
    forms = {form: encoder_regularizer(codes, BiGANLossConfig(
        e_regularizer=form, e_spread_weight=1.5, e_variance_weight=1.0,
        e_variance_tolerance=0.1))[0] for form in ("batch", "per_sample")}
    assert float(forms["batch"]["loss/e/spread"]) == pytest.approx(-1.5 * np.tanh(2.0))
    assert float(forms["per_sample"]["loss/e/spread"]) == pytest.approx(
        -1.5 * (np.tanh(2.5) + 2 * np.tanh(1.75)) / 3)
    assert float(forms["batch"]["loss/e/variance"]) == 0.0
    assert float(forms["per_sample"]["loss/e/variance"]) == pytest.approx(0.5 - 0.1)
    with pytest.raises(UserError, match="loss.e_regularizer='sample' is unknown"):
        build(override(tiny_bigan_config(), ["loss.e_regularizer=sample"]))


@pytest.mark.slow
def test_step_logs_every_score_term_and_the_regularizer():
    config = tiny_bigan_config(steps=1)
    setup = build(config)
    state = drawn_state(setup)  # what follows holds whatever the weights; init is tested by runs
    batch = {"image": jax.random.randint(jax.random.key(1), (16, 28, 28, 1), 0, 256,
                                         jnp.int32).astype(jnp.uint8)}
    new_state, metrics = jax.jit(setup.train_step)(state, batch, jax.random.key(2))
    for name in ("loss/d/xz", "loss/d/x", "loss/d/z", "loss/d/gp", "loss/g/xz", "loss/g/x",
                 "loss/g/z", "loss/e/spread", "loss/e/variance", "e/variance_multiplier",
                 "e/pairwise_mse"):
        assert np.isfinite(float(metrics[name])), name
    assert float(metrics["e/variance_multiplier"]) >= 1.0
    d_terms = sum(float(metrics[f"loss/d/{n}"]) for n in ("xz", "x", "z", "gp"))
    assert float(metrics["loss/d"]) == pytest.approx(d_terms, rel=1e-5)
    for name in ("g", "e", "d"):
        moved = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                                             state.nets[name].params,
                                             new_state.nets[name].params))
        assert any(moved), f"{name} did not move"


def test_bigan_settings_that_cannot_work_are_refused():
    bigan = tiny_bigan_config()
    # A BiGAN is unconditional: it has no conditioning field to set.
    with pytest.raises(UserError, match=r"^--set model.conditioning: no field 'conditioning' in "
                                        r"BiGANModelConfig; choose one of \[.*'unary'"):
        override(bigan, ["model.conditioning=input"])
    for assignments, message in [
        (["loss.gan_loss=least_squares"], "loss.gan_loss='least_squares' is unknown"),
        (["model.arch=mlp", "model.g_crop=2", "model.g_head=dense", "model.downsample=stride"],
         "no convolutional head"),
        (["model.d_norm=batch"], "d_norm=none"),
        (["loss.e_spread_weight=-1"], "loss.e_spread_weight is negative"),
    ]:
        config = override(bigan, assignments)
        with pytest.raises(UserError, match=message):
            build(config)
    # BigBiGAN's unary scores are the bigan family's: the gan family has no such field, and a
    # config of one family does not take the other's model group.
    gan = tiny_config()
    with pytest.raises(UserError, match=r"^--set model.unary: no field 'unary' in "
                                        r"GANModelConfig; choose one of \["):
        override(gan, ["model.unary=true"])
    with pytest.raises(UserError, match=r"model=BiGANModelConfig\(...\) does not belong to "
                                        r"family 'gan'"):
        dataclasses.replace(gan, model=bigan.model)
    with pytest.raises(UserError, match=r"model=GANModelConfig\(...\) does not belong to "
                                        r"family 'bigan'"):
        dataclasses.replace(bigan, model=GANModelConfig())


def _variables(net):
    return {"params": net.params, **net.collections}


def _assert_same(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_networks_load_alone_mix_across_runs_and_export(tmp_path):
    config_a = tiny_bigan_config("mlp", steps=2)
    config_b = with_train(config_a, seed=1)
    state_a = loop.train(config_a, tmp_path / "a", **SILENT)
    state_b = loop.train(config_b, tmp_path / "b", **SILENT)
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints" / "2").iterdir()
                  if p.is_dir()) == ["d", "e", "g", "meta", "state"]

    # E loads alone: with G's and D's items gone from the checkpoint, it still reads.
    for name in ("g", "d"):
        for path in sorted((tmp_path / "a" / "checkpoints" / "2" / name).rglob("*"),
                           reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (tmp_path / "a" / "checkpoints" / "2" / name).rmdir()
    encoder_a, meta = read_network(tmp_path / "a", "e")
    _assert_same(encoder_a, _variables(state_a.nets["e"]))
    assert meta["network"] == "e" and meta["step"] == 2

    # E from run A with G and D from run B.
    setup_b, state_b_loaded, _ = load_run(tmp_path / "b")
    mixed = with_network(setup_b, state_b_loaded, "e", encoder_a, source="run a")
    _assert_same(_variables(mixed.nets["e"]), encoder_a)
    _assert_same(_variables(mixed.nets["g"]), _variables(state_b.nets["g"]))
    x = jnp.zeros((2, 28, 28, 1))
    np.testing.assert_array_equal(setup_b.encode(mixed, x), setup_b.encode(state_a, x))

    # Weights-only export, by the API and the CLI (whose process runs beside what follows),
    # reads back the same arrays.
    exporting = subprocess.Popen([sys.executable, "-m", "jgan.tools.components", "export",
                                  str(tmp_path / "b"), "--network", "d"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    export_network(tmp_path / "b", "g", tmp_path / "g.npz")
    generator_b, meta = read_network(tmp_path / "g.npz", "g")
    _assert_same(generator_b, _variables(state_b.nets["g"]))
    assert meta["config"]["family"] == "bigan"
    assert meta["data_spec"]["arrays"]["image"]["shape"] == [28, 28, 1]
    with pytest.raises(UserError, match="holds network 'g', not 'e'"):
        read_network(tmp_path / "g.npz", "e")

    # Shapes that do not match, and networks a run does not have, are named.
    wider = build(dataclasses.replace(config_a, model=dataclasses.replace(config_a.model,
                                                                          z_dim=12)))
    encoder_c = drawn_variables(wider.networks["e"].module, *wider.example_inputs["e"],
                                train=False)
    with pytest.raises(UserError, match=r"params/Dense_\d+/bias of shape \[12\], this model "
                                        r"needs \[8\].*config.json"):
        with_network(setup_b, state_b_loaded, "e", encoder_c, source="run c")
    loop.train(tiny_config("mlp", steps=1), tmp_path / "gan", **SILENT)  # any GAN run
    with pytest.raises(UserError, match="has no network 'e'"):
        read_network(tmp_path / "gan", "e")
    _, stderr = exporting.communicate(timeout=300)
    assert exporting.returncode == 0, stderr
    _assert_same(read_network(tmp_path / "b" / "discriminator.npz", "d")[0],
                 _variables(state_b.nets["d"]))


# Real MNIST (the bundled subset): 600 steps of the paper's MLP BiGAN at half width, then its
# evaluation, in a process of its own (the default XLA flags, as in this one) that the module's
# first test starts: its half minute of training goes on while the other tests run.
LEARNING_RUN = """
import json, sys
from jgan.config import Config, TrainConfig
from jgan.families.bigan import BiGANModelConfig
from jgan.tools.evaluate_bigan import evaluate_bigan
from jgan.train import loop
config = Config(name="bigan_test", family="bigan",
                model=BiGANModelConfig(arch="mlp", z_dim=50, hidden=512),
                train=TrainConfig(steps=600, batch_size=64, log_every=100, sample_every=600,
                                  checkpoint_every=600, grid_size=16))
loop.train(config, sys.argv[1], log=lambda _: None)
print(json.dumps(evaluate_bigan(sys.argv[1], num_train=5000, log=lambda _: None)))
"""


@pytest.fixture(scope="module", autouse=True)
def learning_run(request, tmp_path_factory):
    """The run directory of LEARNING_RUN and its worker, started with the module (if the
    learning test is to run at all)."""
    if not selected(request, "test_short_mnist_run_learns_an_encoder_better_than_its_"
                             "initialisation"):
        yield None
        return
    run_dir = tmp_path_factory.mktemp("bigan_learns") / "run"
    worker = BackgroundWorker(LEARNING_RUN, run_dir)
    yield run_dir, worker
    worker.stop()


@pytest.mark.slow
def test_short_mnist_run_learns_an_encoder_better_than_its_initialisation(learning_run):
    run_dir, worker = learning_run
    result = json.loads(worker.result().strip().splitlines()[-1])
    trained, initial = result["trained_encoder"], result["initial_encoder"]
    print(json.dumps(result))
    assert trained["linear_probe"] > initial["linear_probe"] + 0.03, result
    assert result["num_test"] == 2000 and 0.0 < result["reconstruction_mse"] < 1.0
    for name in ("reconstructions.png", "interpolations.png", "representation.json"):
        assert (run_dir / name).is_file()
    assert (run_dir / "samples" / "reconstruction_step_000600.png").is_file()

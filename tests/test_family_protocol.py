"""The family protocol: a family written entirely in this file trains through the shared loop.

`NoisyGAN` needs what the built-in GAN step does not: its generator draws a random stream of its
own ("noise"), its loss reads G's parameters (an L2 penalty), and its step runs G twice. It
registers, trains, checkpoints, resumes bit for bit, previews and samples, with no edit under
jgan/. The shared loop's other promises are checked here too: an image depends only on its own
latent, and a non-finite loss exits with code 3 keeping the last good checkpoint.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tiny_config, with_train
from jgan import losses
from jgan.checkpoint import Checkpointer
from jgan.config import Config, TrainConfig
from jgan.data import DataSpec
from jgan.families import FAMILIES, get_family, register
from jgan.images import make_grid, to_uint8
from jgan.tools.components import read_network
from jgan.tools.sample import generate_images, load_run
from jgan.train import family_trainer, loop
from jgan.train.setup import Family, Setup, build_setup
from jgan.train.state import Network, apply_gradients
from jgan.train.step_parts import images_to_float


class NoisyGenerator(nn.Module):
    """z -> image, with noise from the "noise" stream added to its hidden layer."""

    image_shape: tuple

    @nn.compact
    def __call__(self, z, *, train: bool = True):
        del train
        h = nn.relu(nn.Dense(32)(z))
        h = h + 0.1 * jax.random.normal(self.make_rng("noise"), h.shape)
        x = nn.Dense(int(np.prod(self.image_shape)))(h)
        return jnp.tanh(x).reshape(z.shape[0], *self.image_shape)


class SmallDiscriminator(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool = True):
        del train
        return nn.Dense(1)(nn.leaky_relu(nn.Dense(32)(x.reshape(x.shape[0], -1))))[:, 0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoisyModelConfig:
    z_dim: int = 8


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoisyLossConfig:
    l2_weight: float = 1e-3


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoisySetup(Setup):
    z_dim: int

    def sample_inputs(self, key, num, **conditions):
        k_z, k_noise = jax.random.split(key)
        return {"z": jax.random.normal(k_z, (num, self.z_dim)),
                "noise": jax.random.split(k_noise, num)}  # one key per image

    def sample(self, state, inputs):
        g = state.nets["g"]

        def one(z, key):
            return self.networks["g"].module.apply(g.variables(), z[None],
                                                   rngs={"noise": key})[0]

        return jax.vmap(one)(inputs["z"], inputs["noise"])

    def preview(self, state, fixed):
        inputs, columns = fixed
        renoised = {**inputs, "noise": jax.random.split(jax.random.key(99), len(inputs["z"]))}
        return {**super().preview(state, fixed),
                "renoised_": make_grid(to_uint8(self.sample_fn(state, renoised)),
                                       columns=columns)}


def build_noisy(config, spec) -> NoisySetup:
    image_shape = spec.shape("image")
    tx = optax.adam(1e-3)
    networks = {"g": Network(NoisyGenerator(image_shape), tx, rngs=("noise",)),
                "d": Network(SmallDiscriminator(), tx)}
    z_dim, l2_weight = config.model.z_dim, config.loss.l2_weight

    def train_step(state, batch, key):
        key = jax.random.fold_in(key, state.step)
        k_z, k_noise_d, k_noise_1, k_noise_2 = jax.random.split(key, 4)
        g, d = state.nets["g"], state.nets["d"]
        real = images_to_float(batch["image"])
        z = jax.random.normal(k_z, (real.shape[0], z_dim))

        def generate(params, noise_key):
            return networks["g"].module.apply({"params": params}, z, rngs={"noise": noise_key})

        def discriminate(params, images):
            return networks["d"].module.apply({"params": params}, images)

        fake = generate(g.params, k_noise_d)
        d_loss, d_grads = jax.value_and_grad(lambda p: losses.nonsaturating_d_loss(
            real_logits=discriminate(p, real), fake_logits=discriminate(p, fake)))(d.params)
        d = apply_gradients(networks["d"], d, d_grads, d.collections)

        def g_loss(params):
            # G runs twice, under two noise draws, and its loss reads its parameters.
            adv = sum(losses.nonsaturating_g_loss(fake_logits=discriminate(d.params,
                                                                           generate(params, k)))
                      for k in (k_noise_1, k_noise_2)) / 2
            l2 = l2_weight * sum(jnp.sum(p ** 2) for p in jax.tree.leaves(params))
            return adv + l2, {"loss/g/adv": adv, "loss/g/l2": l2}

        (loss, terms), g_grads = jax.value_and_grad(g_loss, has_aux=True)(g.params)
        g = apply_gradients(networks["g"], g, g_grads, g.collections)
        nets = {**state.nets, "g": g, "d": d}
        return (state.replace(step=state.step + 1, nets=nets),
                {"loss/d": d_loss, "loss/g": loss, **terms})

    shape = (1, *image_shape)
    return NoisySetup(networks=networks, train_step=train_step, z_dim=z_dim,
                      example_inputs={"g": (jnp.zeros((1, z_dim)),), "d": (jnp.zeros(shape),)})


@pytest.fixture(scope="module")
def noisy_family():
    family = register(Family(name="noisy_test", model_config=NoisyModelConfig,
                             loss_config=NoisyLossConfig, build=build_noisy,
                             network_names={"g": "generator", "d": "discriminator"}))
    yield family
    del FAMILIES[family.name]


def _noisy_config(**train):
    defaults = dict(steps=4, batch_size=16, log_every=1, sample_every=2, checkpoint_every=2,
                    grid_size=4)
    return Config(name="noisy", family="noisy_test", train=TrainConfig(**{**defaults, **train}))


def _same_bits(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_a_family_from_outside_jgan_trains_resumes_and_samples(tmp_path, noisy_family):
    config = _noisy_config()
    assert get_family("noisy_test") is noisy_family
    assert isinstance(config.model, NoisyModelConfig)  # the family's defaults fill its groups
    quiet = dict(log=lambda _: None)
    straight = loop.train(config, tmp_path / "straight", **quiet)
    loop.train(with_train(config, steps=2), tmp_path / "resumed", **quiet)
    resumed = loop.train(config, tmp_path / "resumed", **quiet)
    _same_bits(straight, resumed)

    # Training moved both networks, and the G loss read G's parameters.
    initial = build_setup(config, DataSpec.from_image_shape((28, 28, 1), 10)).init_state(
        family_trainer.run_keys(config.train.seed)["init"])
    for name in ("g", "d"):
        moved = [not np.array_equal(a, b) for a, b in zip(
            jax.tree.leaves(initial.nets[name].params), jax.tree.leaves(straight.nets[name].params))]
        assert all(moved), name
    with open(tmp_path / "straight" / "history.csv") as f:
        header = f.readline().strip().split(",")
    assert "loss/g/l2" in header

    # The preview is the family's own: both of its grids, at every sample step.
    assert sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir()) == [
        "renoised_step_000002.png", "renoised_step_000004.png", "step_000002.png",
        "step_000004.png"]
    assert Checkpointer(tmp_path / "straight" / "checkpoints").all_steps() == [2, 4]

    # Sampling and component loading go through the protocol too.
    images = generate_images(tmp_path / "straight", 6, seed=3)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, generate_images(tmp_path / "straight", 6, seed=3))
    assert not np.array_equal(images, generate_images(tmp_path / "straight", 6, seed=4))
    variables, meta = read_network(tmp_path / "straight", "g")
    _same_bits(variables["params"], straight.nets["g"].params)
    assert meta["data_spec"]["arrays"]["image"]["shape"] == [28, 28, 1]


@pytest.mark.slow
def test_the_generators_noise_stream_reaches_its_samples(tmp_path, noisy_family):
    config = _noisy_config(steps=2)
    loop.train(config, tmp_path, log=lambda _: None)
    setup, state, _ = load_run(tmp_path)
    inputs = setup.sample_inputs(jax.random.key(0), 4)
    renoised = {**inputs, "noise": jax.random.split(jax.random.key(1), 4)}
    a, b = setup.sample(state, inputs), setup.sample(state, renoised)
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4  # same z, other noise: other images


def test_an_image_depends_only_on_its_own_latent():
    config = tiny_config("dcgan")
    setup = build_setup(config, DataSpec.from_image_shape((28, 28, 1), 10))
    state = setup.init_state(jax.random.key(0))
    z = setup.sample_inputs(jax.random.key(1), 8)["z"]
    images = setup.sample(state, {"z": z})
    permutation = jnp.array([5, 2, 7, 0, 1, 3, 6, 4])
    shuffled = setup.sample(state, {"z": z[permutation]})
    np.testing.assert_allclose(shuffled, images[permutation], atol=1e-6, rtol=0)
    alone = setup.sample(state, {"z": z[3:4]})
    np.testing.assert_allclose(alone[0], images[3], atol=1e-6, rtol=0)
    changed = setup.sample(state, {"z": z.at[0].set(-z[0])})
    np.testing.assert_allclose(changed[1:], images[1:], atol=1e-6, rtol=0)
    assert float(jnp.max(jnp.abs(changed[0] - images[0]))) > 1e-3


@pytest.mark.slow
def test_a_non_finite_loss_exits_with_code_3_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch, capsys):
    from experiments import dcgan

    real_build = family_trainer.build_setup

    def diverging(config, spec):
        setup = real_build(config, spec)

        def train_step(state, batch, key):
            state, metrics = setup.train_step(state, batch, key)
            blown = jnp.where(state.step >= 3, jnp.nan, metrics["loss/d"])
            return state, {**metrics, "loss/d": blown}

        return dataclasses.replace(setup, train_step=train_step)

    monkeypatch.setattr(family_trainer, "build_setup", diverging)
    code = dcgan.main(["--workdir", str(tmp_path), "--steps", "6", "--batch-size", "16",
                       "--set", "model.base_features=8", "--set", "model.z_dim=8",
                       "--set", "train.checkpoint_every=2", "--set", "train.sample_every=100"])
    assert code == 3
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "loss/d = nan at step 3" in error[0]
    assert "last good checkpoint is step 2" in error[0]
    assert Checkpointer(tmp_path / "checkpoints").all_steps() == [2]

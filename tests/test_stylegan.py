"""StyleGAN: AdaIN, mapping, noise, mixing, truncation, R1, growth, and the brain-MRI workflow."""

import csv
import dataclasses
import functools
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

from conftest import QUICK_COMPILE_FLAGS, REPO, SHARED_DATASETS, BackgroundWorker, selected
from jgan import losses, workflow
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.data import DataSpec
from jgan.errors import UserError
from jgan.families.stylegan import StyleGANLossConfig, StyleGANModelConfig
from jgan.families.stylegan.networks import MappingNetwork, adain, blur, num_style_layers
from jgan.families.stylegan.step import level_of_detail, mix_styles, mixing_latents, truncate
from jgan.train.setup import build_setup
from jgan.train.state import NetworkState, TrainState

BRAIN = SHARED_DATASETS / "brain_mri_slices"


def tiny_stylegan_config(images=None, **model) -> Config:
    """32x32 grey, widths of 4 to 8, z and w of 16: seconds per run on a CPU."""
    return Config(
        name="stylegan", family="stylegan",
        data=DataConfig(images=None if images is None else str(images), channels=1,
                        crop="auto" if images is not None else "", image_size=32,
                        center=images is not None),
        model=StyleGANModelConfig(z_dim=16, w_dim=16, mapping_layers=2, base_features=4,
                                  max_features=8, **model),
        loss=StyleGANLossConfig(r1_gamma=1.0, reg_interval=2),
        optim=OptimConfig(g_lr=2.5e-3, d_lr=2e-3, b1=0.0, b2=0.99),
        train=TrainConfig(steps=4, batch_size=8, ema_kimg=0.05, grid_size=4, log_every=1,
                          sample_every=4, checkpoint_every=2))


@pytest.fixture(scope="module")
def tiny_setup():
    """A 32x32 setup and a state holding G alone, initialised eagerly (no init program to
    compile), with what training would have moved: noise strengths above their initial 0, a
    constant input with spatial structure (a uniform one, as initialised, leaves the noise the
    only structure that the first instance norm keeps), and a tracked mean w."""
    setup = build_setup(tiny_stylegan_config(), DataSpec(arrays={"image": ((32, 32, 1),
                                                                           "uint8")}))
    variables = setup.networks["g"].module.init(
        {"params": jax.random.key(0)}, *setup.example_inputs["g"], train=False)

    def trained(path, x):
        name = jax.tree_util.keystr(path)
        if "strength" in name:
            return jnp.full_like(x, 0.05)
        return jax.random.normal(jax.random.key(7), x.shape) if "const" in name else x

    params = jax.tree_util.tree_map_with_path(trained, variables["params"])
    state = TrainState(step=jnp.zeros((), jnp.int32),
                       nets={"g": NetworkState(params=params, opt_state=None, collections={})},
                       extra={"w_avg": jax.random.normal(jax.random.key(5), (16,)),
                              "lod": jnp.zeros(())})
    return setup, state


def test_blur_is_the_binomial_filter_per_channel_zero_padded():
    # An impulse in the middle of channel 0 spreads as outer([1, 2, 1], [1, 2, 1]) / 16; one in
    # the corner of channel 1 loses the taps that fall outside (zero padding): [[4, 2], [2, 1]].
    x = np.zeros((1, 5, 5, 2), np.float32)
    x[0, 2, 2, 0], x[0, 0, 0, 1] = 16.0, 16.0
    y = np.asarray(blur(x))
    expected = np.zeros((5, 5, 2), np.float32)
    expected[1:4, 1:4, 0] = np.outer([1, 2, 1], [1, 2, 1])
    expected[:2, :2, 1] = [[4, 2], [2, 1]]
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)


def test_adain_normalizes_each_channel_then_applies_the_style():
    x = jnp.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0], [7.0, 40.0]]).reshape(1, 2, 2, 2)
    scale, bias = jnp.array([[2.0, 0.5]]), jnp.array([[1.0, -1.0]])
    # channel 0: mean 4, variance 5; channel 1: mean 25, variance 125
    want = np.stack([(np.array([1, 3, 5, 7]) - 4) / np.sqrt(5) * 2 + 1,
                     (np.array([10, 20, 30, 40]) - 25) / np.sqrt(125) * 0.5 - 1], -1)
    np.testing.assert_allclose(adain(x, scale, bias).reshape(4, 2), want, rtol=1e-5)


def test_mapping_network_maps_z_to_w_of_its_width():
    module = MappingNetwork(w_dim=24, layers=3)
    variables = module.init(jax.random.key(0), jnp.zeros((5, 16)))
    w = module.apply(variables, jax.random.normal(jax.random.key(1), (5, 16)))
    assert w.shape == (5, 24)
    # pixel norm first: z and 3 z map to the same w
    z = jax.random.normal(jax.random.key(2), (2, 16))
    np.testing.assert_allclose(module.apply(variables, z), module.apply(variables, 3 * z),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_noise_changes_an_image_a_little_and_w_changes_it_a_lot(tiny_setup):
    setup, state = tiny_setup
    ws = lambda z: jnp.repeat(setup.styles_fn(state, z)[:, None], setup.num_layers, 1)  # noqa
    z = jax.random.normal(jax.random.key(1), (4, 16))
    other_z = jax.random.normal(jax.random.key(2), (4, 16))
    keys = jax.random.split(jax.random.key(3), 4)
    other_keys = jax.random.split(jax.random.key(4), 4)
    synthesize = setup.synthesize_fn
    image = synthesize(state, ws(z), keys)
    noise_change = jnp.mean(jnp.abs(synthesize(state, ws(z), other_keys) - image))
    style_change = jnp.mean(jnp.abs(synthesize(state, ws(other_z), keys) - image))
    assert 0 < noise_change < 0.5 * style_change


def test_mixing_takes_the_second_w_from_the_crossover_on():
    w1, w2 = jnp.ones((2, 3)), 2 * jnp.ones((2, 3))
    ws = mix_styles(w1, w2, jnp.array([1, 4]), num_layers=4)
    np.testing.assert_array_equal(ws[0, :, 0], [1, 2, 2, 2])
    np.testing.assert_array_equal(ws[1, :, 0], [1, 1, 1, 1])
    latents = mixing_latents(jax.random.key(0), 1000, z_dim=2, num_layers=10, probability=0.9)
    crossover = np.asarray(latents["crossover"])
    assert crossover.min() >= 1 and set(np.unique(crossover)) <= set(range(1, 11))
    assert 0.85 < np.mean(crossover < 10) < 0.95  # mixes with probability 0.9


@pytest.mark.slow
def test_truncation_at_psi_0_gives_the_mean_w_image_for_every_z(tiny_setup):
    setup, state = tiny_setup
    inputs = setup.sample_inputs(jax.random.key(0), 4, psi=0.0)
    inputs["noise_keys"] = jnp.stack([jax.random.key(9)] * 4)  # one noise for all
    images = setup.sample_fn(state, inputs)
    mean_w = jnp.broadcast_to(state.extra["w_avg"], (4, setup.num_layers, 16))
    expected = setup.synthesize_fn(state, mean_w, inputs["noise_keys"])[0]
    for image in images:
        np.testing.assert_allclose(image, expected, atol=1e-5)
    untruncated = setup.sample_fn(state, {**inputs, "psi": jnp.ones(4)})
    assert float(jnp.abs(untruncated[0] - untruncated[1]).mean()) > 1e-3


def test_r1_on_a_linear_discriminator_by_hand():
    a = jnp.array([[[1.0], [2.0]], [[-2.0], [0.5]]])  # D(x) = sum(a * x): gradient a
    real = jax.random.normal(jax.random.key(0), (3, 2, 2, 1))
    value = losses.r1_penalty(lambda x: jnp.sum(a * x, axis=(1, 2, 3)), real=real, gamma=10.0)
    np.testing.assert_allclose(value, 0.5 * 10.0 * (1 + 4 + 4 + 0.25), rtol=1e-6)


# The lazy-R1 run: a gamma large enough that R1's gradient outweighs the adversarial one in
# almost every D parameter, and a w_avg beta whose two terms are both visible.
R1_GAMMA = 1e4
W_AVG_BETA = 0.75


def drawn_stylegan_state(setup, seed: int = 0) -> TrainState:
    """A train state of `setup` drawn by NumPy: N(0, 1) parameters (the equalized-rate layers'
    own scale, with the mapping's rate multiplier at 1), optimizers at their initial zeros and a
    tracked mean w away from 0. Compiling `init_state` (threefry for each parameter) takes longer
    than the step."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(setup.init_state, jax.random.key(0))

    def drawn(tree):
        return jax.tree.map(lambda leaf: rng.normal(0.0, 1.0, leaf.shape).astype(leaf.dtype),
                            tree)

    def zeros(tree):
        return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), tree)

    nets = {name: net.replace(params=drawn(net.params), opt_state=zeros(net.opt_state))
            for name, net in shapes.nets.items()}
    extra = {**zeros(shapes.extra), "w_avg": drawn(shapes.extra["w_avg"]),
             "g_ema": nets["g"].params}
    return TrainState(step=np.zeros((), np.int32), nets=nets, extra=extra)


@pytest.fixture(scope="module")
def lazy_r1_run():
    """Two jitted steps of an 8x8 StyleGAN with R1 on every 2nd real image, from a drawn state:
    `(setup, [state before step 0, 1, 2], [batch of step 0, 1], [metrics of step 0, 1], key)`."""
    config = tiny_stylegan_config(mapping_lr_multiplier=1.0, w_avg_beta=W_AVG_BETA)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, image_size=8),
        loss=StyleGANLossConfig(r1_gamma=R1_GAMMA, reg_interval=2))
    setup = build_setup(config, DataSpec(arrays={"image": ((8, 8, 1), "uint8")}))
    rng = np.random.default_rng(1)
    batches = [{"image": rng.integers(0, 256, (8, 8, 8, 1), np.uint8)} for _ in range(2)]
    states, metrics, key = [drawn_stylegan_state(setup)], [], jax.random.key(3)
    step = jax.jit(setup.train_step)
    for batch in batches:
        state, step_metrics = step(states[-1], batch, key)
        states.append(state)
        metrics.append(step_metrics)
    return setup, states, batches, metrics, key


def r1_by_hand(setup, d_params, real):
    """gamma / 2 * mean over the images of |d/dx sum D(x)|^2, D called on `real` [N, 8, 8, 1]
    alone (its minibatch stddev couples them, as in the reference's R1)."""
    def summed_logits(x):
        return jnp.sum(setup.networks["d"].module.apply({"params": d_params}, x, 0.0,
                                                        train=True))

    grads = jax.grad(summed_logits)(real)
    return 0.5 * R1_GAMMA * jnp.mean(jnp.sum(grads ** 2, axis=(1, 2, 3)))


@pytest.mark.slow
def test_lazy_r1_takes_every_interval_th_real_image_of_every_step(lazy_r1_run):
    # The step regularizes every step, on real[::reg_interval] (jgan.families.stylegan.step): at
    # steps 0 and 1 alike the logged R1 is that of those images under the step's D, not of the
    # others.
    setup, states, batches, metrics, _ = lazy_r1_run
    r1 = jax.jit(functools.partial(r1_by_hand, setup))
    for state, batch, step_metrics in zip(states, batches, metrics):
        real = setup.preprocessing.to_model(batch["image"])
        d_params = state.nets["d"].params
        np.testing.assert_allclose(step_metrics["loss/d/r1"], r1(d_params, real[::2]), rtol=1e-5)
        assert abs(float(r1(d_params, real[1::2])) / float(step_metrics["loss/d/r1"]) - 1) > 0.05
        np.testing.assert_allclose(step_metrics["loss/d"],
                                   step_metrics["loss/d/adv"] + step_metrics["loss/d/r1"],
                                   rtol=1e-6)


@pytest.mark.slow
def test_lazy_r1_steers_d_s_update(lazy_r1_run):
    # Adam's first update (b1 = 0) moves each parameter by -lr sign(its gradient): with R1's
    # gradient the larger, D moves down R1's gradient in (nearly) every parameter. Without R1
    # in D's gradient half of them would agree; with its sign flipped, almost none.
    setup, states, batches, _, _ = lazy_r1_run
    real = setup.preprocessing.to_model(batches[0]["image"])[::2]
    grads = jax.jit(jax.grad(functools.partial(r1_by_hand, setup)))(states[0].nets["d"].params,
                                                                    real)
    moves = jax.tree.map(lambda new, old: np.sign(np.asarray(new) - np.asarray(old)),
                         states[1].nets["d"].params, states[0].nets["d"].params)
    agree = np.concatenate([np.ravel(move == -np.sign(grad)) for move, grad in zip(
        jax.tree.leaves(moves), jax.tree.leaves(grads))])
    assert agree.mean() > 0.95, agree.mean()


@pytest.mark.slow
def test_w_avg_moves_towards_each_step_s_mean_w_by_beta(lazy_r1_run):
    # w_avg <- beta w_avg + (1 - beta) mean_B w, w the mapped first latent z (not the mixing z2)
    # of the step's own draw (the run key folded with the step), under G before its update.
    setup, states, _, _, key = lazy_r1_run
    for step in range(2):
        latents = mixing_latents(jax.random.fold_in(key, step), 8, z_dim=setup.z_dim,
                                 num_layers=setup.num_layers,
                                 probability=StyleGANModelConfig.style_mixing)
        w = setup.networks["g"].module.apply({"params": states[step].nets["g"].params},
                                             latents["z"], method="map")
        expected = (W_AVG_BETA * np.asarray(states[step].extra["w_avg"])
                    + (1 - W_AVG_BETA) * np.mean(np.asarray(w), axis=0))
        np.testing.assert_allclose(states[step + 1].extra["w_avg"], expected, rtol=1e-5,
                                   atol=1e-6)


def test_truncation_by_hand_stops_at_the_cutoff():
    # w' = w_avg + psi (w - w_avg) in the layers before each example's cutoff, w after it.
    ws = jnp.tile(jnp.array([1.0, 2.0, 3.0, 4.0])[None, :, None], (3, 1, 1))  # [3, 4 layers, 1]
    psi, cutoff = jnp.array([0.5, 0.0, 0.0]), jnp.array([2, 4, 0])
    got = truncate(ws, jnp.array([10.0]), psi, cutoff)[..., 0]
    np.testing.assert_array_equal(got, [[10 - 4.5, 10 - 4, 3, 4], [10, 10, 10, 10], [1, 2, 3, 4]])


@pytest.mark.slow
def test_sampling_truncates_only_the_layers_before_the_cutoff(tiny_setup):
    setup, state = tiny_setup
    inputs = setup.sample_inputs(jax.random.key(0), 4, psi=0.5, cutoff=3)  # 4: psi = 0's shapes
    w = np.asarray(setup.styles_fn(state, inputs["z"]))
    w_avg = np.asarray(state.extra["w_avg"])
    ws = np.repeat(w[:, None], setup.num_layers, axis=1)
    ws[:, :3] = w_avg + 0.5 * (ws[:, :3] - w_avg)
    np.testing.assert_allclose(setup.sample_fn(state, inputs),
                               setup.synthesize_fn(state, ws, inputs["noise_keys"]), atol=1e-5)


def test_growth_schedule_by_hand():
    lod = lambda step: float(level_of_detail(step, max_lod=2, phase_steps=10))  # noqa: E731
    assert [lod(s) for s in (0, 9, 10, 15, 20, 29, 30, 35, 40, 100)] == [
        2, 2, 2, 1.5, 1, 1, 1, 0.5, 0, 0]
    assert num_style_layers(32) == 8


def test_bad_folders_and_settings_get_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="image_source=DIR"):
        workflow.train(epochs=1)
    with pytest.raises(Exception, match="no image|PNG, JPEG"):
        workflow.train(image_source=empty, epochs=1, run_dir=tmp_path / "r",
                       config=tiny_stylegan_config(empty))
    odd = tmp_path / "odd"
    odd.mkdir()
    for index in range(4):
        PIL.Image.fromarray(np.full((48, 40), 50 * index, np.uint8)).save(odd / f"{index}.png")
    config = dataclasses.replace(tiny_stylegan_config(), data=DataConfig(images=str(odd)))
    with pytest.raises(UserError, match="power of two.*data.image_size"):
        workflow.train(image_source=odd, epochs=1, run_dir=tmp_path / "r2", config=config)
    with pytest.raises(UserError, match="mbstd_group"):
        build_setup(dataclasses.replace(config, train=TrainConfig(batch_size=6)),
                    DataSpec(arrays={"image": ((32, 32, 1), "uint8")}))
    with pytest.raises(UserError, match="data.center"):
        build_setup(Config(data=DataConfig(center=True)),
                    DataSpec(arrays={"image": ((28, 28, 1), "uint8")}))
    assert not (tmp_path / "r").exists() and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_the_shipped_generator_draws_slices_and_refuses_a_changed_file(tmp_path):
    images = workflow.generate_images(workflow.PRETRAINED, 2, tmp_path / "out", seed=3)
    assert images.shape == (2, 256, 256, 1) and images.dtype == np.uint8
    assert (images[:, :30] == 0).all() and images[:, 100:156, 100:156].mean() > 20
    assert len(list((tmp_path / "out").iterdir())) == 2
    changed = tmp_path / "changed.npz"
    data = bytearray(workflow.PRETRAINED_FILE.read_bytes())
    data[len(data) // 2] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged or replaced"):
        workflow.load_pretrained(changed)


# The three calls of the workflow test, in a process of their own: XLA's LLVM optimizations off
# and a persistent cache, so the second and third calls reuse the first one's programs. The
# module's first test starts it, so that it runs beside the module's other tests (this one is
# last, to wait for it once they are done).
WORKFLOW_CALLS = """
import sys
sys.path.insert(0, sys.argv[3])
from pathlib import Path
import numpy as np
from jgan import workflow
from test_stylegan import tiny_stylegan_config
folder, root = Path(sys.argv[1]), Path(sys.argv[2])
config = tiny_stylegan_config(folder, progressive=True, start_resolution=8, phase_steps=2)
quiet = lambda *args: None
run = workflow.train(image_source=folder, epochs=2, run_dir=root / "run", config=config,
                     log=quiet)
workflow.train(run, epochs=2, log=quiet)
workflow.train(image_source=folder, epochs=4, run_dir=root / "whole", config=config, log=quiet)
np.save(root / "generated.npy", workflow.generate_images(run, 3, root / "out", psi=0.5))
from experiments import stylegan
assert stylegan.main(["--generate", str(run), "--num", "3", "--psi", "0.5", "--out",
                      str(root / "cli"), "--truncation-grid", str(root / "truncation.png")]) == 0
workflow.plot_history(run, epochs=(1, 3))
"""


@pytest.fixture(scope="module", autouse=True)
def workflow_calls(request, tmp_path_factory):
    """The folder WORKFLOW_CALLS writes to and its worker, which trains on 24 real slices of the
    brain MRI folder (the OASIS stand-in: three steps an epoch); None where the workflow test is
    not to run or the slices are missing."""
    if not BRAIN.is_dir() or not selected(
            request, "test_workflow_trains_resumes_bit_identical_grows_and_generates_like_the_"
                     "source"):
        yield None
        return
    root = tmp_path_factory.mktemp("workflow")
    folder = root / "slices"
    folder.mkdir()
    for path in sorted(BRAIN.rglob("*.png"))[::19][:24]:
        shutil.copy(path, folder / path.name)
    worker = BackgroundWorker(WORKFLOW_CALLS, folder, root, REPO / "tests",
                              env={"XLA_FLAGS": QUICK_COMPILE_FLAGS})
    yield root, worker
    worker.stop()


@pytest.mark.slow
def test_workflow_trains_resumes_bit_identical_grows_and_generates_like_the_source(
        workflow_calls):
    if not BRAIN.is_dir():
        pytest.skip(f"the brain MRI slices are not at {BRAIN} (clone beside ../shared)")
    root, worker = workflow_calls  # written by WORKFLOW_CALLS
    worker.result()
    run, whole = root / "run", root / "whole"
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["step"]) for row in rows] == list(range(3, 13, 3))  # appended, per epoch
    lods = [float(row["lod"]) for row in rows]  # each row: the mean over its epoch's steps
    assert lods[0] == 2.0 and 0 < lods[1] < 2 and lods[-1] == 0  # grows from 8x8 to 32x32
    (_, resumed, _), (_, uninterrupted, _) = [workflow.load_generator(r) for r in (run, whole)]
    assert int(resumed.step) == 12 and float(resumed.extra["lod"]) == 0.0
    for x, y in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted)):
        np.testing.assert_array_equal(x, y)
    images = np.load(root / "generated.npy")  # generate_images(run, 3, out, psi=0.5)
    assert images.shape == (3, 256, 256, 1) and images.dtype == np.uint8
    assert (images[:, :30] == 0).all() and (images[:, :, -30:] == 0).all()  # the border
    for folder in "out", "cli":  # saved by generate_images, and by the command line
        assert sorted(p.name for p in (root / folder).iterdir()) == [
            "000000.png", "000001.png", "000002.png"]
        np.testing.assert_array_equal(
            np.asarray(PIL.Image.open(root / folder / "000001.png"))[..., None], images[1])
    assert (root / "truncation.png").is_file()
    assert (run / "history_epochs_1-3.png").is_file()
    assert {"step_000003.png", "mixing_step_000012.png", "truncation_step_000012.png"} <= {
        p.name for p in (run / "samples").iterdir()}
    assert (run / "training.gif").is_file()

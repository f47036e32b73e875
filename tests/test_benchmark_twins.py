"""The PyTorch twins of benchmarks/vs_pytorch.py (issue 19): jgan's networks, and a step that
trains every one of them. Skipped without torch, an optional extra."""

import json
import sys

import jax
import numpy as np
import pytest

from jgan.train.setup import build_setup

from conftest import REPO

torch = pytest.importorskip("torch")
sys.path.insert(0, str(REPO / "benchmarks"))
import stylegan_twin  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import vs_pytorch  # noqa: E402



def twin(family: str):
    """The twin as a row's subprocess builds it: from the config sent through JSON."""
    inputs = json.loads(json.dumps(vs_pytorch.row_inputs(family)))
    torch.manual_seed(0)
    nets, make_step = vs_pytorch.torch_twin(torch, family, vs_pytorch.namespace(
        inputs["config"]), inputs)
    return nets, make_step, inputs


@pytest.mark.parametrize("family", vs_pytorch.TWINS)
def test_twin_has_jgans_parameter_counts(family):
    config = vs_pytorch.experiment_config(family)
    setup = build_setup(config, vs_pytorch.data_spec(family, config))
    state = jax.eval_shape(setup.init_state, jax.random.key(0))
    jgan_counts = {name: sum(leaf.size for leaf in jax.tree.leaves(state.nets[name].params))
                   for name in setup.networks}
    nets, _, _ = twin(family)
    assert {name: sum(p.numel() for p in net.parameters())
            for name, net in nets.items()} == jgan_counts


@pytest.mark.slow
@pytest.mark.parametrize("family", ("wgan_gp", "bigan"))
def test_twin_step_updates_every_network(family):
    nets, make_step, inputs = twin(family)
    n_critic = inputs["config"]["train"]["n_critic"]
    rows = 4 * n_critic
    batch = {"image": torch.randint(0, 256, (rows, 1, 28, 28), dtype=torch.uint8),
             "label": torch.randint(0, 10, (rows,), dtype=torch.int32)}
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
    make_step(nets, "cpu")(batch)
    for name, net in nets.items():
        # Any, not all: the critic's output bias has gradient 0 under the Wasserstein loss.
        assert any(not torch.equal(old, new)
                   for old, new in zip(before[name], net.parameters())), name


def copy_stylegan_weights(nets, g_params, d_params) -> None:
    """jgan's StyleGAN parameters into the twin's layers (HWIO kernels to OIHW, dense kernels
    transposed; D's dense rows from jgan's (h, w, c) flattening to torch's (c, h, w))."""
    def tensor(array):
        return torch.from_numpy(np.array(array))

    def dense(module, params):
        module.weight.data, module.bias.data = tensor(params["kernel"]).T, tensor(params["bias"])

    def conv(module, params):
        module.weight.data = tensor(params["kernel"]).permute(3, 2, 0, 1)
        if "bias" in params:
            module.bias.data = tensor(params["bias"])

    g, d = nets["g"], nets["d"]
    for index, layer in enumerate(g.mapping):
        dense(layer, g_params["mapping"][f"EqualizedDense_{index}"])
    synthesis = g_params["synthesis"]
    g.const.data = tensor(synthesis["const"]).permute(2, 0, 1)
    for index, layer in enumerate(g.layers):
        params = synthesis[f"layer{index}"]
        dense(layer.style, params["EqualizedDense_0"])
        layer.bias.data = tensor(params["bias"])
        layer.noise.strength.data = tensor(params["NoiseInput_0"]["strength"])
        if layer.conv is not None:
            conv(layer.conv, params["EqualizedConv_0"])
    conv(g.to_rgb, synthesis[f"to_rgb{len(g.layers) // 2 - 1}"])
    top = len(d.blocks)
    conv(d.from_rgb, d_params[f"from_rgb{top}"])
    for block, level in zip(d.blocks, range(top, 0, -1)):
        for index, module in enumerate((block.conv1, block.conv2, block.skip)):
            conv(module, d_params[f"block{level}"][f"EqualizedConv_{index}"])
    conv(d.conv, d_params["EqualizedConv_0"])
    kernel = np.asarray(d_params["EqualizedDense_0"]["kernel"])
    side, channels = 4, kernel.shape[1]
    d.dense.weight.data = tensor(kernel.reshape(side, side, -1, channels).transpose(3, 2, 0, 1)
                                 .reshape(channels, -1))
    d.dense.bias.data = tensor(d_params["EqualizedDense_0"]["bias"])
    dense(d.output, d_params["EqualizedDense_1"])


@pytest.mark.slow
def test_stylegan_twin_computes_jgans_g_d_and_r1():
    """With jgan's weights (random, biases too; noise strengths 0, as the noise streams differ),
    the twin's G with style mixing, its mean w, D and R1 equal jgan's to float rounding: the
    benchmark's ratio compares the same computation."""
    import jax.numpy as jnp

    from jgan import losses
    from jgan.families.stylegan.step import generate

    config = vs_pytorch.experiment_config("stylegan")
    setup = build_setup(config, vs_pytorch.data_spec("stylegan", config))
    shapes = jax.eval_shape(setup.init_state, jax.random.key(0)).nets
    rng = np.random.default_rng(1)

    def drawn(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: np.zeros(leaf.shape, np.float32)
            if "strength" in jax.tree_util.keystr(path)
            else rng.normal(0, 0.5, leaf.shape).astype(np.float32), params)

    g_params, d_params = drawn(shapes["g"].params), drawn(shapes["d"].params)
    nets, _, _ = twin("stylegan")
    copy_stylegan_weights(nets, g_params, d_params)
    z, z2 = rng.normal(size=(2, 16, config.model.z_dim)).astype(np.float32)
    crossover = np.array([1, 3, 5, 10] * 4)  # mixing at several layers, and none (10 = L)
    latents = {"z": z, "z2": z2, "crossover": crossover,
               "noise_keys": jax.random.split(jax.random.key(2), 16)}
    images, w_mean = generate(setup.networks["g"], g_params, {}, latents, 0.0)
    with torch.no_grad():
        twin_images, twin_w = nets["g"](*(torch.from_numpy(a) for a in (z, z2, crossover)))
    np.testing.assert_allclose(twin_images.numpy(), np.asarray(images).transpose(0, 3, 1, 2),
                               rtol=1e-4, atol=1e-4 * float(np.abs(images).max()))
    np.testing.assert_allclose(twin_w.mean(0).numpy(), w_mean, rtol=1e-5, atol=1e-6)
    x = rng.normal(size=(16, 64, 64, 1)).astype(np.float32)
    d = setup.networks["d"].module
    twin_x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    np.testing.assert_allclose(nets["d"](twin_x).detach().numpy(),
                               d.apply({"params": d_params}, jnp.asarray(x)), rtol=1e-4,
                               atol=1e-5)
    r1 = losses.r1_penalty(lambda v: d.apply({"params": d_params}, v), real=x[::4], gamma=1.0)
    twin_r1 = float(stylegan_twin.r1_penalty(torch, nets["d"], twin_x[::4], 1.0).detach())
    assert twin_r1 == pytest.approx(float(r1), rel=1e-4)

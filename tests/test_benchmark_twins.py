"""The PyTorch twins of benchmarks/vs_pytorch.py (issue 19): jgan's networks, and a step that
trains every one of them. Skipped without torch, an optional extra."""

import json
import sys

import jax
import pytest

from jgan.train.setup import build_setup

from conftest import REPO

torch = pytest.importorskip("torch")
sys.path.insert(0, str(REPO / "benchmarks"))
import vs_pytorch  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)



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

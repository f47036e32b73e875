import pytest

from jgan import config as config_lib
from jgan.config import Config


def test_override_parses_by_field_type():
    config = config_lib.override(Config(), ["optim.g_lr=1e-4", "train.steps=7",
                                            "data.data_dir=none", "loss.gan_loss=minimax"])
    assert config.optim.g_lr == 1e-4 and config.train.steps == 7
    assert config.data.data_dir is None and config.loss.gan_loss == "minimax"
    assert Config().optim.g_lr == 2e-4  # the default is untouched


@pytest.mark.parametrize("assignment,message", [
    ("optim.glr=1", "no field 'glr'"),
    ("train.steps=many", "expected a int"),
    ("optim", "group.field=value"),
    ("optim=3", "name a field inside it"),
])
def test_bad_overrides_name_the_fix(assignment, message):
    with pytest.raises(ValueError, match=message):
        config_lib.override(Config(), [assignment])


def test_json_round_trip(tmp_path):
    config = config_lib.override(Config(), ["model.base_features=16"])
    config_lib.save(config, tmp_path / "config.json")
    assert config_lib.load(tmp_path / "config.json") == config


def test_differences_lists_changed_fields():
    old = config_lib.to_dict(Config())
    new = config_lib.to_dict(config_lib.override(Config(), ["train.seed=3"]))
    assert config_lib.differences(old, new) == [("train.seed", 0, 3)]

import dataclasses

import pytest

from jgan import config as config_lib
from jgan.config import Config
from jgan.errors import UserError
from jgan.families.bigan import BiGANLossConfig, BiGANModelConfig
from jgan.families.gan import GANLossConfig, GANModelConfig


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


def _bigan_config() -> Config:
    return Config(name="bigbigan", family="bigan",
                  model=BiGANModelConfig(arch="mlp", z_dim=12, unary=True),
                  loss=BiGANLossConfig(gan_loss="hinge", e_spread_weight=1.5))


@pytest.mark.parametrize("family", ["gan", "bigan"])
def test_each_family_round_trips_through_json(tmp_path, family):
    config = Config() if family == "gan" else _bigan_config()
    config = config_lib.override(config, ["model.base_features=16"])
    config_lib.save(config, tmp_path / "config.json")
    loaded = config_lib.load(tmp_path / "config.json")
    assert loaded == config and loaded.family == family
    assert type(loaded.model) is type(config.model) and type(loaded.loss) is type(config.loss)


def test_a_config_json_from_before_families_is_read_as_its_family():
    # Then the family was model.family, and model and loss held every family's fields.
    for config in (Config(), _bigan_config()):
        data = config_lib.to_dict(config)
        legacy = {k: v for k, v in data.items() if k != "family"}
        legacy["model"] = {**dataclasses.asdict(GANModelConfig()),
                           **dataclasses.asdict(BiGANModelConfig()), **data["model"],
                           "family": config.family}
        legacy["loss"] = {**dataclasses.asdict(GANLossConfig()),
                          **dataclasses.asdict(BiGANLossConfig()), **data["loss"]}
        assert config_lib.from_dict(legacy) == config


def test_unknown_family_is_refused():
    with pytest.raises(UserError, match=r"family='bigbigan' is unknown: choose one of "
                                        r"\['bigan', 'biggan', 'cyclegan', 'gan', 'pix2pix', "
                                        r"'ssgan', 'stylegan'\]"):
        Config(family="bigbigan")

"""Experiment loading, override parsing and the unknown-key error."""

import pytest

from xferlab.config import (ConfigError, apply_overrides, from_json, load_experiment,
                            parse_override, parse_value, to_json)
from tests.conftest import QUICKSTART


def test_values_are_literals_never_evaluated():
  assert parse_value("0.1") == 0.1
  assert parse_value("(32, 64)") == (32, 64)
  assert parse_value("True") is True
  assert parse_value("dvd") == "dvd"                    # not a literal: stays text
  assert parse_value("__import__('os').getcwd()") == "__import__('os').getcwd()"
  assert parse_override("transfer.lam = 0.3") == ("transfer.lam", 0.3)
  with pytest.raises(ConfigError, match="key=value"):
    parse_override("transfer.lam")


def test_overrides_apply_and_keep_types():
  config, _ = load_experiment(QUICKSTART)
  c = apply_overrides(config, ["transfer.lam=0.3", "data.source=kitchen", "model.cell=lstm",
                               "data.buckets=(16,32)", "train.num_epochs=2",
                               "classification.pooling=max"])
  assert c.transfer.lam == 0.3 and c.data.source == "kitchen" and c.model.cell == "lstm"
  assert c.data.buckets == (16, 32) and c.train.num_epochs == 2
  assert c.classification.pooling == ("max",)
  assert config.transfer.lam == 0.1          # the original is untouched
  c = apply_overrides(config, {"transfer.lam": 0})   # int into a float field
  assert c.transfer.lam == 0


def test_unknown_key_names_the_closest_valid_keys():
  config, _ = load_experiment(QUICKSTART)
  with pytest.raises(ConfigError) as e:
    apply_overrides(config, ["transfer.lamda=0.3"])
  assert "transfer.lam" in str(e.value) and "transfer.schedule" in str(e.value)
  with pytest.raises(ConfigError, match="optimizer.learning_rate"):
    apply_overrides(config, {"optimiser.learning_rate": 0.1})


def test_wrong_type_is_a_clear_error():
  config, _ = load_experiment(QUICKSTART)
  with pytest.raises(ConfigError, match="train.num_epochs"):
    apply_overrides(config, ["train.num_epochs=0.5"])


def test_experiment_argument_and_missing_file():
  config, module = load_experiment(QUICKSTART + ":dann")
  assert not config.arms and hasattr(module, "sweep")
  with pytest.raises(ConfigError, match="not found"):
    load_experiment("experiments/nope.py")


def test_json_round_trip():
  config, _ = load_experiment(QUICKSTART)
  again = from_json(to_json(config))
  assert again.to_dict() == config.to_dict()

"""Experiment files and overrides.

An experiment is a Python file with ``get_config(arg=None) -> ConfigDict`` and
optionally ``sweep(add)``. It is named by path, optionally with an argument
after a colon: ``experiments/quickstart.py:dann``.

Overrides are ``"a.b=value"`` strings (or a ``{"a.b": value}`` dict). Values are
parsed as Python literals with ``ast.literal_eval`` -- never evaluated -- and a
word that is not a literal stays a string (``data.source=dvd``). An unknown key
fails with an error naming the closest valid keys.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import sys
from types import ModuleType
from typing import Any, Iterable, Mapping

import ml_collections


class ConfigError(ValueError):
  """A bad experiment name, override key or override value."""


def load_experiment(spec: str) -> tuple[ml_collections.ConfigDict, ModuleType]:
  """Loads ``path/to/experiment.py[:arg]`` and returns ``(get_config(arg), module)``."""
  path, _, arg = spec.partition(":")
  if not path.endswith(".py"):
    path = path.replace(".", os.sep) + ".py" if not os.path.exists(path) else path
  if not os.path.isfile(path):
    raise ConfigError(f"Experiment file {path!r} not found (from {spec!r}); "
                      "name a Python file that defines get_config(arg=None), "
                      "e.g. experiments/quickstart.py")
  name = "xferlab_experiment_" + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[name] = module
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:   # a syntax error, a failing import: name the file
    raise ConfigError(f"Experiment file {path} fails to load: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"{path} defines no get_config(arg=None)")
  try:
    config = module.get_config(arg or None)
  except (ValueError, KeyError, TypeError, IndexError) as e:   # an argument it does not accept
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    raise ConfigError(f"{path} does not accept the argument {arg!r}: {message}"
                      + (" (see the experiment file's docstring)" if arg else "")) from e
  return config, module


def flatten(tree: Mapping[str, Any] | ml_collections.ConfigDict, prefix: str = "") -> dict[str, Any]:
  """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (ConfigDicts and dicts alike)."""
  items = tree.items() if not isinstance(tree, ml_collections.ConfigDict) else tree.items()
  out = {}
  for key, value in items:
    full = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)) and len(value) > 0:
      out.update(flatten(value, full + "."))
    else:
      out[full] = value
  return out


def parse_value(text: str) -> Any:
  """A Python literal (``0.1``, ``(32, 64)``, ``True``, ``'x'``), else the text itself."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_override(item: str) -> tuple[str, Any]:
  """``"a.b=value"`` -> ``("a.b", parsed value)``."""
  key, sep, value = item.partition("=")
  if not sep or not key.strip():
    raise ConfigError(f"Override {item!r} is not of the form key=value (e.g. transfer.lam=0.1)")
  return key.strip(), parse_value(value.strip())


def _valid_keys(config: ml_collections.ConfigDict) -> list[str]:
  keys = []
  for key, value in flatten(config).items():
    keys.append(key)
    parts = key.split(".")
    keys.extend(".".join(parts[:i]) for i in range(1, len(parts)))
  return sorted(set(keys))


def _unknown_key_error(config, key: str) -> ConfigError:
  parts = key.split(".")
  node, depth = config, 0
  while depth < len(parts) - 1 and isinstance(node, ml_collections.ConfigDict) and (
      parts[depth] in node and isinstance(node[parts[depth]], ml_collections.ConfigDict)):
    node, depth = node[parts[depth]], depth + 1
  if depth < len(parts) - 1:   # a section on the way does not exist
    where = ".".join(parts[:depth])
    missing = ".".join(parts[:depth + 1])
    sections = sorted(k for k, v in node.items() if isinstance(v, ml_collections.ConfigDict))
    close = difflib.get_close_matches(parts[depth], sections, n=3, cutoff=0.5)
    if parts[depth] in node:
      return ConfigError(f"Unknown config key {key!r}: {missing!r} is a value "
                         f"({node[parts[depth]]!r}), not a section; set it as {missing}=...")
    keys = difflib.get_close_matches(key, _valid_keys(config), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    hint += f" Closest keys: {', '.join(keys)}." if keys else ""
    return ConfigError(f"Unknown config key {key!r}: there is no section {missing!r}"
                       f"{' under ' + repr(where) if where else ''}.{hint} Sections: "
                       f"{', '.join(sections) or '(none)'}")
  valid = _valid_keys(config)
  close = difflib.get_close_matches(key, valid, n=5, cutoff=0.5)
  parent = key.rpartition(".")[0]
  siblings = [k for k in valid if k.rpartition(".")[0] == parent]
  hint = f" Did you mean: {', '.join(close)}?" if close else ""
  return ConfigError(f"Unknown config key {key!r}.{hint} Valid keys"
                     f"{' under ' + repr(parent) if parent else ''}: {', '.join(siblings)}")


def set_value(config: ml_collections.ConfigDict, key: str, value: Any, raw: str | None = None):
  """Sets dotted ``key`` in place, checking that it exists and keeps its type."""
  node = config
  parts = key.split(".")
  for part in parts[:-1]:
    if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
      raise _unknown_key_error(config, key)
    node = node[part]
  leaf = parts[-1]
  # Free-form dicts (the arms table, the synthetic spec) accept new keys.
  open_dicts = {"arms", "data.synthetic"}
  parent = ".".join(parts[:-1])
  if leaf not in node and not any(parent == d or parent.startswith(d + ".") for d in open_dicts):
    raise _unknown_key_error(config, key)
  current = node.get(leaf) if leaf in node else None
  if isinstance(current, str) and not isinstance(value, str):
    value = raw if raw is not None else str(value)   # data.source=1 stays the string "1"
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, tuple) and not isinstance(value, tuple) and value is not None:
    value = (value,)
  try:
    node[leaf] = value
  except TypeError as e:
    raise ConfigError(f"Config key {key!r} holds {type(current).__name__} "
                      f"({current!r}); cannot set it to {value!r} "
                      f"({type(value).__name__})") from None


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any] | Iterable[str] | None) -> ml_collections.ConfigDict:
  """Returns a copy of ``config`` with the overrides applied.

  ``overrides`` is a dict ``{"a.b": value}`` (values used as given), or an
  iterable of ``"a.b=value"`` strings (values parsed as literals).
  """
  config = ml_collections.ConfigDict(config.to_dict(), type_safe=True)
  if not overrides:
    return config
  if isinstance(overrides, Mapping):
    for key, value in overrides.items():
      set_value(config, key, value)
  else:
    for item in overrides:
      key, value = parse_override(item)
      set_value(config, key, value, raw=item.partition("=")[2].strip())
  return config


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
  """Inverse of ``to_json`` (lists come back as tuples, as in the base config)."""
  def tuples(x):
    if isinstance(x, dict):
      return {k: tuples(v) for k, v in x.items()}
    if isinstance(x, list):
      return tuple(tuples(v) for v in x)
    return x
  return ml_collections.ConfigDict(tuples(json.loads(text)))


# The values a key may take, and the ranges of numbers: checked by ``validate`` before a
# run writes anything, so a typo fails in one line instead of deep inside a build.
CHOICES = {
    "task": ("classification", "language_model", "translation", "summarization"),
    "data.tokenizer": ("word", "sentencepiece", "bpe"),
    "data.word_split": ("words", "whitespace"),
    "model.cell": ("rnn", "lstm", "gru"),
    "model.attention": ("luong", "bahdanau"),
    "model.scan_implementation": ("auto", "fused", "autodiff", "cudnn"),
    "transfer.method": ("none", "dann", "coral", "mmd"),
    "transfer.schedule": ("constant", "dann"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "optimizer.schedule": ("constant", "cosine", "warmup_cosine", "slanted_triangular"),
    "train.early_stopping_mode": ("max", "min"),
    "train.precision": ("float32", "bfloat16"),
    "privacy.accountant": ("rdp", "pld"),
}
AT_LEAST = {   # key -> smallest valid value
    "data.batch_size": 1, "data.eval_batch_size": 1, "data.vocab_size": 0, "data.bptt": 1,
    "model.embed_dim": 1, "model.hidden_size": 1, "model.num_layers": 1, "model.num_classes": 2,
    "model.unroll": 1, "model.adversarial_epsilon": 0, "train.num_steps": 0,
    "train.num_epochs": 0, "train.log_every": 1,
    "train.eval_every": 0, "train.checkpoint_every": 0, "train.keep_checkpoints": 1,
    "train.patience": 0, "train.max_train_minutes": 0, "train.devices": 0,
    "optimizer.learning_rate": 0, "optimizer.grad_clip": 0, "decode.beam_size": 1,
    "decode.max_length": 1, "privacy.clip_norm": 0, "privacy.noise_multiplier": 0,
    "privacy.target_epsilon": 0,
}
BETWEEN = {   # key -> closed interval
    "data.fraction": (0.0, 1.0), "model.dropout": (0.0, 1.0), "model.embed_dropout": (0.0, 1.0),
    "model.weight_dropout": (0.0, 1.0), "model.output_dropout": (0.0, 1.0),
    "train.ema_decay": (0.0, 1.0), "optimizer.cut_frac": (0.0, 1.0),
    "privacy.delta": (0.0, 1.0),
}


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``ConfigError`` naming every key whose value cannot work: a value outside its
  ``CHOICES``, a number below ``AT_LEAST`` or outside ``BETWEEN``, or a training budget of
  no steps. Keys a configuration lacks are not checked."""
  flat, problems = flatten(config), []
  for key, choices in CHOICES.items():
    if key in flat and flat[key] not in choices:
      close = difflib.get_close_matches(str(flat[key]), choices, n=1)
      hint = f" (did you mean {close[0]!r}?)" if close else ""
      problems.append(f"{key} = {flat[key]!r} is not one of {', '.join(choices)}{hint}")
  for key, low in AT_LEAST.items():
    if key in flat and isinstance(flat[key], (int, float)) and flat[key] < low:
      problems.append(f"{key} = {flat[key]!r} must be at least {low}")
  for key, (low, high) in BETWEEN.items():
    if key in flat and isinstance(flat[key], (int, float)) and not low <= flat[key] <= high:
      problems.append(f"{key} = {flat[key]!r} must lie in [{low}, {high}]")
  if flat.get("train.num_steps") == 0 and flat.get("train.num_epochs") == 0:
    problems.append("train.num_steps and train.num_epochs are both 0: nothing would train")
  if problems:
    raise ConfigError("Invalid configuration: " + "; ".join(problems))

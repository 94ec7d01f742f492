"""Experiment files and overrides.

An experiment is a Python file with ``get_config(arg=None) -> ConfigDict`` and
optionally ``sweep(add)``. It is named by path, optionally with an argument
after a colon: ``experiments/quickstart.py:dann``.

Overrides are ``"a.b=value"`` strings (or a ``{"a.b": value}`` dict). Values are
parsed as Python literals with ``ast.literal_eval`` -- never evaluated -- and a
word that is not a literal stays a string (``data.source=dvd``). An unknown key
fails with an error naming the closest valid keys. A key renamed since a run was
written (``OLD_KEYS``) is mapped to its new name with a warning, for one release; a
configuration read back from disk (``from_json``) is migrated silently (``migrate``).
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.util
import json
import os
import sys
import warnings
from types import ModuleType
from typing import Any, Iterable, Mapping

import ml_collections


class ConfigError(ValueError):
  """A bad experiment name, override key or override value."""


def load_experiment(spec: str) -> tuple[ml_collections.ConfigDict, ModuleType]:
  """Loads ``path/to/experiment.py[:arg]`` and returns ``(get_config(arg), module)``; old keys
  the file sets (``OLD_KEYS``) are mapped with a warning (``migrate``)."""
  path, _, arg = spec.partition(":")
  if not path.endswith(".py"):
    path = path.replace(".", os.sep) + ".py" if not os.path.exists(path) else path
  if not os.path.isfile(path):
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    beside = os.path.join(checkout, path)
    hint = (f"; did you mean {beside}? (a relative path is read from the current directory, "
            f"{os.getcwd()})" if not os.path.isabs(path) and os.path.isfile(beside) else
            "; name a Python file that defines get_config(arg=None), e.g. "
            f"{os.path.join(checkout, 'experiments', 'quickstart.py')}")
    raise ConfigError(f"Experiment file {path!r} not found (from {spec!r}){hint}")
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
  return migrate(config, warn=True), module


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


def _other_task_hint(config, section: str) -> str:
  """A note when ``section`` belongs to another task (``xferlab.defaults.TASK_SECTIONS``)."""
  from xferlab.defaults import TASK_SECTIONS   # pylint: disable=import-outside-toplevel
  tasks = [t for t, sections in TASK_SECTIONS.items() if section in sections]
  if not tasks:
    return ""
  return (f" {section!r} is a section of {' and '.join(tasks)} runs; this configuration has "
          f"task = {config.get('task')!r}.")


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
    hint = (_other_task_hint(config, parts[0]) if depth == 0 else "") or hint
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
  """Sets dotted ``key`` in place, checking that it exists and keeps its type. An old key
  (``OLD_KEYS``) sets its new one, with a warning."""
  if key in OLD_KEYS:
    converted = rename_old_key(config, key, value)
    raw = raw if converted[1] is value else None
    key, value = converted
  node = config
  parts = key.split(".")
  for part in parts[:-1]:
    if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
      raise _unknown_key_error(config, key)
    node = node[part]
  leaf = parts[-1]
  # Free-form dicts (the arms table, the synthetic spec) accept new keys.
  parent = ".".join(parts[:-1])
  if leaf not in node and not any(parent == d or parent.startswith(d + ".") for d in OPEN_DICTS):
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
    hint = "; write True or False" if isinstance(current, bool) else ""
    raise ConfigError(f"Config key {key!r} holds {type(current).__name__} "
                      f"({current!r}); cannot set it to {value!r} "
                      f"({type(value).__name__}){hint}") from None


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any] | Iterable[str] | None) -> ml_collections.ConfigDict:
  """Returns a copy of ``config`` with the overrides applied.

  ``overrides`` is a dict ``{"a.b": value}`` (values used as given), or an
  iterable of ``"a.b=value"`` strings (values parsed as literals). A ``task`` override is
  applied first and swaps the task sections (``match_sections``), so that the others may
  name keys of the new task's sections.
  """
  config = ml_collections.ConfigDict(config.to_dict(), type_safe=True)
  if not overrides:
    return config
  if isinstance(overrides, Mapping):
    items = [(key, value, None) for key, value in overrides.items()]
  else:
    items = [(*parse_override(item), item.partition("=")[2].strip()) for item in overrides]
  for key, value, raw in items:
    if key == "task":
      set_value(config, key, value, raw)
      config = match_sections(config)
  for key, value, raw in items:
    if key != "task":
      set_value(config, key, value, raw)
  keys = {key for key, _, _ in items}
  if "seed" in keys and "seeds" not in keys and tuple(config.get("seeds", ())):
    raise ConfigError(f"seed = {config.seed} would not be used: this experiment runs the seeds "
                      f"{tuple(config.seeds)} (the key seeds); set seeds=({config.seed},) to run "
                      "that seed alone")
  return config


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
  """Inverse of ``to_json`` (lists come back as tuples, as in the base config). A whole run
  configuration written before a key was renamed comes back in today's keys (``migrate``)."""
  def tuples(x):
    if isinstance(x, dict):
      return {k: tuples(v) for k, v in x.items()}
    if isinstance(x, list):
      return tuple(tuples(v) for v in x)
    return x
  return migrate(tuples(json.loads(text)))


# ------------------------------------------------------------------------------
# Renamed keys (the per-task configuration, issue #29). Mapped for one release: an override or
# an experiment file naming an old key warns once and sets the new one; a configuration read
# from disk (a run's config.json, a benchmark record's) is migrated silently, so that a run
# written before the rename resumes and compares equal. They will fail in the next release.

_MOVED = {
    "data": {"pair": "translation", "language_tags": "translation", "mix_pair": "translation",
             "mix_repeat": "translation", "synthetic_pairs": "translation",
             "synthetic_limit": "translation", "synthetic_tag": "translation",
             "real_repeat": "translation", "monolingual_target": "translation",
             "target_field": "summarization", "max_target_length": "summarization",
             "target_buckets": "seq2seq", "bptt": "language_model"},
    "model": {"num_classes": "classification", "pooling": "classification",
              "head_hidden": "classification", "adversarial_epsilon": "classification",
              "adaptive_softmax_cutoffs": "language_model",
              "adaptive_softmax_div": "language_model", "decoder_hidden": "seq2seq",
              "attention": "seq2seq", "input_feeding": "seq2seq", "share_embeddings": "seq2seq",
              "label_smoothing": "seq2seq", "copy": "seq2seq", "coverage": "seq2seq",
              "coverage_loss_weight": "seq2seq"},
}
OLD_KEYS = {   # old dotted key -> new dotted key
    **{f"{old}.{key}": f"{new}.{key}" for old, keys in _MOVED.items() for key, new in keys.items()},
    "data.num_labels": "data.subset_size",          # a count
    "data.fraction": "data.subset_size",            # a share; 1.0 (all) -> 0
    "data.label_seed": "data.subset_seed",
    "data.vocab_languages": "seq2seq.vocab_sources",
    "data.vocab_corpora": "seq2seq.vocab_sources",
    "data.adversarial_pair": "seq2seq.adversarial_domain",
    "data.adversarial_corpus": "seq2seq.adversarial_domain",
    "model.freeze_embeddings": "finetune.frozen",   # True -> the entry "embedding"
}
# The merged twins: which task's value a written configuration carries over (the other
# twin's value was never read by that task).
_SEQ2SEQ = ("translation", "summarization")
_OLD_KEY_TASKS = {
    "data.num_labels": ("classification", "language_model"),
    "data.label_seed": ("classification", "language_model"),
    "data.fraction": _SEQ2SEQ,
    "data.vocab_languages": ("translation",), "data.adversarial_pair": ("translation",),
    "data.vocab_corpora": ("summarization",), "data.adversarial_corpus": ("summarization",),
}
OPEN_DICTS = ("arms", "data.synthetic")   # free-form: they accept new keys
WARNED_OLD_KEYS: set[str] = set()   # the old keys warned about so far (each warns once)


class RenamedKeyWarning(FutureWarning):
  """A configuration names a key by its old name (``OLD_KEYS``); it was mapped."""


def _convert(old: str, value: Any, tree: Mapping[str, Any]) -> Any:
  """An old key's value, as its new key holds it."""
  if old == "data.fraction":
    return 0.0 if value == 1.0 else float(value)
  if old == "data.num_labels":
    return float(value)
  if old == "model.freeze_embeddings":
    from xferlab.defaults import FROZEN_EMBEDDING   # pylint: disable=import-outside-toplevel
    frozen = tuple(e for e in tree.get("finetune", {}).get("frozen", ()) if e != FROZEN_EMBEDDING)
    return frozen + (FROZEN_EMBEDDING,) if value else frozen
  return value


def rename_old_key(config, key: str, value: Any) -> tuple[str, Any]:
  """``(new key, its value)`` for an old ``key`` of ``OLD_KEYS``, warning once per key."""
  new = OLD_KEYS[key]
  if key not in WARNED_OLD_KEYS:
    WARNED_OLD_KEYS.add(key)
    note = {"data.fraction": " (a share; 1.0 = all becomes 0)",
            "model.freeze_embeddings": " (True adds the entry 'embedding')"}.get(key, "")
    warnings.warn(f"Config key {key!r} is now {new!r}{note}; the old name is mapped for one "
                  "release, then fails", RenamedKeyWarning, stacklevel=4)
  tree = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config
  return new, _convert(key, value, tree)


def _pop(tree: dict, key: str) -> tuple[bool, Any]:
  *path, leaf = key.split(".")
  for part in path:
    tree = tree.get(part)
    if not isinstance(tree, dict):
      return False, None
  return (True, tree.pop(leaf)) if leaf in tree else (False, None)


def _put(tree: dict, key: str, value: Any) -> None:
  *path, leaf = key.split(".")
  for part in path:
    tree = tree.setdefault(part, {})
  tree[leaf] = value


def _old_subset_seed(tree: dict, task: str) -> None:
  """Before the merge ``data.subset_seed`` (default 0) served the encoder-decoder tasks only
  and ``data.label_seed`` (default -1) classification: keep the one the task read."""
  data = tree.get("data", {})
  if not any(k in data for k in ("num_labels", "label_seed", "fraction")):
    return   # today's keys
  if task in _SEQ2SEQ:
    data.setdefault("subset_seed", 0)
  else:
    data.pop("subset_seed", None)


def _fill(tree: dict, defaults: dict, prefix: str = "") -> None:
  """Adds the keys of ``defaults`` that ``tree`` lacks (a run written before they existed)."""
  for key, value in defaults.items():
    if key not in tree:
      tree[key] = copy.deepcopy(value)
    elif isinstance(value, dict) and isinstance(tree[key], dict) and (
        prefix + key) not in OPEN_DICTS:
      _fill(tree[key], value, prefix + key + ".")


def _match_tree(tree: dict, task: str) -> dict:
  """``tree`` with the sections of other tasks dropped and the keys of ``task``'s
  ``base_config`` it lacks added."""
  from xferlab.defaults import TASK_SECTIONS, base_config   # pylint: disable=import-outside-toplevel
  own = TASK_SECTIONS[task]
  for section in {s for sections in TASK_SECTIONS.values() for s in sections} - set(own):
    tree.pop(section, None)
  _fill(tree, base_config(task).to_dict())
  return tree


def match_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` with the task sections of its ``task`` (``xferlab.defaults.TASK_SECTIONS``):
  those of other tasks dropped, missing ones added with their defaults."""
  from xferlab.defaults import TASK_SECTIONS   # pylint: disable=import-outside-toplevel
  if config.get("task") not in TASK_SECTIONS:
    return config
  return ml_collections.ConfigDict(_match_tree(config.to_dict(), config.task), type_safe=True)


def migrate(config, warn: bool = False) -> ml_collections.ConfigDict:
  """A whole run configuration (a ConfigDict or a nested dict) in today's keys.

  Old keys (``OLD_KEYS``) move to their new ones (with ``warn``, a warning each): a key that
  moved to a section of another task, or the twin the task never read, is dropped (it had no
  effect); the sections match the task (``match_sections``). A configuration without a known
  ``task`` (a part of one) comes back unchanged.
  """
  from xferlab.defaults import TASK_SECTIONS   # pylint: disable=import-outside-toplevel
  tree = (config.to_dict() if isinstance(config, ml_collections.ConfigDict)
          else copy.deepcopy(dict(config)))
  task = tree.get("task")
  if task not in TASK_SECTIONS:
    return ml_collections.ConfigDict(tree)
  _old_subset_seed(tree, task)
  sections = {s for own in TASK_SECTIONS.values() for s in own}
  for old, new in OLD_KEYS.items():
    found, value = _pop(tree, old)
    if not found:
      continue
    if warn:
      rename_old_key(tree, old, value)
    section = new.partition(".")[0]
    if task not in _OLD_KEY_TASKS.get(old, (task,)) or (
        section in sections and section not in TASK_SECTIONS[task]):
      continue
    _put(tree, new, _convert(old, value, tree))
  return ml_collections.ConfigDict(_match_tree(tree, task))


# The values a key may take, and the ranges of numbers: checked by ``validate`` before a
# run writes anything, so a typo fails in one line instead of deep inside a build.
CHOICES = {
    "task": ("classification", "language_model", "translation", "summarization"),
    "data.tokenizer": ("word", "sentencepiece", "bpe"),
    "data.word_split": ("words", "whitespace"),
    "model.cell": ("rnn", "lstm", "gru"),
    "seq2seq.attention": ("luong", "bahdanau"),
    "model.scan_implementation": ("auto", "fused", "autodiff", "cudnn", "native"),
    "transfer.method": ("none", "dann", "coral", "mmd"),
    "transfer.schedule": ("constant", "dann"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "optimizer.schedule": ("constant", "cosine", "warmup_cosine", "slanted_triangular"),
    "train.early_stopping_mode": ("max", "min"),
    "train.precision": ("float32", "bfloat16"),
    "privacy.accountant": ("rdp", "pld"),
}
AT_LEAST = {   # key -> smallest valid value
    "data.batch_size": 1, "data.eval_batch_size": 1, "data.vocab_size": 0,
    "data.subset_size": 0, "data.subset_seed": -1, "language_model.bptt": 1,
    "model.embed_dim": 1, "model.hidden_size": 1, "model.num_layers": 1,
    "classification.num_classes": 2, "model.unroll": 1, "classification.adversarial_epsilon": 0,
    "train.num_steps": 0,
    "train.num_epochs": 0, "train.log_every": 1,
    "train.eval_every": 0, "train.checkpoint_every": 0, "train.keep_checkpoints": 1,
    "train.patience": 0, "train.max_train_minutes": 0, "train.devices": 0,
    "optimizer.learning_rate": 0, "optimizer.grad_clip": 0, "decode.beam_size": 1,
    "decode.max_length": 1, "privacy.clip_norm": 0, "privacy.noise_multiplier": 0,
    "privacy.target_epsilon": 0,
}
BETWEEN = {   # key -> closed interval
    "model.dropout": (0.0, 1.0), "model.embed_dropout": (0.0, 1.0),
    "model.weight_dropout": (0.0, 1.0), "model.output_dropout": (0.0, 1.0),
    "train.ema_decay": (0.0, 1.0), "optimizer.cut_frac": (0.0, 1.0),
    "privacy.delta": (0.0, 1.0),
}


def _section_problems(config: ml_collections.ConfigDict) -> list[str]:
  """A configuration whose task sections are not its task's (``TASK_SECTIONS``)."""
  from xferlab.defaults import TASK_SECTIONS   # pylint: disable=import-outside-toplevel
  if config.get("task") not in TASK_SECTIONS:
    return []
  own = TASK_SECTIONS[config.task]
  others = {s for sections in TASK_SECTIONS.values() for s in sections} - set(own)
  missing = [s for s in own if s not in config]
  extra = sorted(s for s in others if s in config)
  if not missing and not extra:
    return []
  return [f"task = {config.task!r} needs the sections {', '.join(own)}"
          + (f" (missing: {', '.join(missing)})" if missing else "")
          + (f" and none of {', '.join(extra)}" if extra else "")
          + f"; build it with base_config({config.task!r})"]


def _subset_problems(flat: Mapping[str, Any]) -> list[str]:
  size = flat.get("data.subset_size", 0)
  if isinstance(size, (int, float)) and size >= 1 and size != int(size):
    return [f"data.subset_size = {size!r} must be 0 (all), a share in (0, 1) or a whole count"]
  return []


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ``ConfigError`` naming every key whose value cannot work: a value outside its
  ``CHOICES``, a number below ``AT_LEAST`` or outside ``BETWEEN``, a ``data.subset_size``
  that is neither a share nor a count, the sections of another task, a training budget
  of no steps, or a model selected on a set scored only after training. Keys a
  configuration lacks are not checked."""
  flat, problems = flatten(config), _section_problems(config)
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
  problems += _subset_problems(flat)
  if flat.get("train.num_steps") == 0 and flat.get("train.num_epochs") == 0:
    problems.append("train.num_steps and train.num_epochs are both 0: nothing would train")
  metric = flat.get("train.early_stopping_metric") or ""
  final_only = [s for s in flat.get("train.final_eval_sets", ()) if metric.startswith(f"{s}_")]
  if final_only:
    problems.append(f"train.early_stopping_metric = {metric!r} reads {final_only[0]!r}, which "
                    "train.final_eval_sets scores only once, after training")
  if problems:
    raise ConfigError("Invalid configuration: " + "; ".join(problems))

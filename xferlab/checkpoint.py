"""Checkpoints: the only module that speaks orbax.

A checkpoint is a step directory holding two items:

* ``state`` -- a pytree of arrays (parameters, optimizer state, step, RNG key),
  written with ``StandardSave``;
* ``meta`` -- JSON (data-iterator position, early-stopping bookkeeping, ...).

A run's workdir holds ``checkpoints/`` (the latest few, for resuming) and
``best/`` (the model selected on validation, for ``restore`` and ``init_from``).

``restore_subtrees`` takes named parameter subtrees of a checkpoint into a new
model (``config.init_from``); a vocabulary map (``vocab_mapping``,
``init_from_vocab_map``) carries embedding rows across vocabularies.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from xferlab.data import load_tokenizer   # the package import registers every tokenizer kind
from xferlab.data.tokenizer import vocabulary
from xferlab.param_paths import map_with_paths


class Checkpointer:
  """Saves and restores ``(state pytree, meta dict)`` pairs by step under ``directory``."""

  def __init__(self, directory: str, max_to_keep: int | None = 2):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False),
        item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, meta: Mapping[str, Any]) -> None:
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(dict(meta))), force=True)
    self._manager.wait_until_finished()

  def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores into the structure (and dtypes) of ``target``; latest step by default."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored.state, dict(restored.meta)

  def close(self) -> None:
    self._manager.close()


def _step_dir(path: str) -> str:
  """A step directory from a workdir, a ``best``/``checkpoints`` dir or a step dir."""
  path = os.path.abspath(path)
  if os.path.isdir(os.path.join(path, "state")):
    return path
  for sub in ("best", "checkpoints"):
    if os.path.isdir(os.path.join(path, sub)):
      path = os.path.join(path, sub)
      break
  steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
  if not steps:
    raise FileNotFoundError(
        f"No orbax checkpoint found at {path}: expected a run's workdir (with best/ or "
        "checkpoints/), a checkpoint directory, or one of its numbered step directories.")
  return os.path.join(path, str(max(steps)))


def load_state(path: str) -> dict:
  """Reads a checkpoint's ``state`` item without a target: nested dicts of numpy arrays."""
  step_dir = _step_dir(path)
  with ocp.PyTreeCheckpointer() as ckptr:
    return ckptr.restore(os.path.join(step_dir, "state"))


def _flatten_paths(tree: Any, prefix: tuple = ()) -> dict[tuple, Any]:
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      out.update(_flatten_paths(v, prefix + (str(k),)))
    return out
  return {prefix: tree}


def _get_subtree(tree: Mapping, dotted: str) -> Any:
  node = tree
  for part in dotted.split("."):
    lookup = {str(k): k for k in node} if isinstance(node, Mapping) else {}
    if part not in lookup:
      raise KeyError(dotted)
    node = node[lookup[part]]
  return node


def restore_subtrees(params: dict, path: str, subtrees: Sequence[str],
                     vocab_map: np.ndarray | None = None) -> dict:
  """Copies named parameter subtrees (``"encoder"``, ``"encoder.embed"``) from a checkpoint.

  ``params`` is the new model's pure parameter dict; the result is a copy with
  each named subtree replaced by the checkpoint's values. ``"new=old"`` takes
  the checkpoint's ``old`` subtree into the model's ``new`` one (a language
  model's ``encoder`` into a classifier: ``"classifier.encoder=encoder"``).
  Structure and shapes must match; otherwise a ``ValueError`` lists every
  offending path.

  ``vocab_map int[new_vocab]`` (``vocab_mapping``) carries vocabulary-indexed
  parameters across vocabularies: row ``i`` of the new model is row
  ``vocab_map[i]`` of the checkpoint, and rows with ``vocab_map[i] == -1``
  (tokens the checkpoint's vocabulary lacks) get the mean of the checkpoint's
  rows. Vocabulary-indexed are every leaf named ``embedding`` (axis 0) and, as
  an output projection, every ``kernel`` / ``bias`` whose last axis has the
  checkpoint's vocabulary size (the rows of its embedding) there and
  ``len(vocab_map)`` in the new model, all other axes equal. (A hidden layer
  exactly as wide as both vocabularies would be taken for one: give the
  vocabularies sizes no layer has.)
  """
  source = load_state(path)
  source_params = source.get("params", source)
  out = jax.tree.map(lambda x: x, params)
  problems = []
  old_vocab = _embedding_rows(source_params) if vocab_map is not None else None
  if vocab_map is not None:
    vocab_map = np.asarray(vocab_map)
    if vocab_map.ndim != 1 or not np.issubdtype(vocab_map.dtype, np.integer):
      raise ValueError(f"vocab_map must be a 1-D integer array, got {vocab_map.dtype}"
                       f"{list(vocab_map.shape)}")
  for spec in subtrees:
    name, _, old_name = spec.partition("=")
    name, old_name = name.strip(), (old_name or name).strip()
    if not _has(out, name):
      problems.append(f"{name}: missing in the new model")
      continue
    if not _has(source_params, old_name):
      problems.append(f"{old_name}: missing in the checkpoint")
      continue
    new_sub, old_sub = _get_subtree(out, name), _get_subtree(source_params, old_name)
    new_leaves, old_leaves = _flatten_paths(new_sub), _flatten_paths(old_sub)
    axes = {}
    for p in sorted(set(new_leaves) | set(old_leaves)):
      where = ".".join((name,) + p)
      if p not in old_leaves:
        problems.append(f"{where}: missing in the checkpoint")
      elif p not in new_leaves:
        problems.append(f"{where}: missing in the new model")
      else:
        old_shape, new_shape = np.shape(old_leaves[p]), np.shape(new_leaves[p])
        axis = (None if vocab_map is None else
                _vocab_axis(where.split(".")[-1], old_shape, new_shape, old_vocab, len(vocab_map)))
        if axis is not None:
          axes[p] = axis
          if not _fits(old_shape, new_shape, axis, len(vocab_map)):
            problems.append(f"{where}: checkpoint {old_shape} vs model {new_shape} "
                            f"with a vocab map of {len(vocab_map)} entries")
          elif np.any(vocab_map >= old_shape[axis]) or np.any(vocab_map < -1):
            problems.append(f"{where}: the vocab map points outside the checkpoint's "
                            f"{old_shape[axis]} rows")
        elif new_shape != old_shape:
          problems.append(f"{where}: checkpoint {old_shape} vs model {new_shape}")
    if not problems:
      _set_subtree(out, name, map_with_paths(
          lambda p, new: _carry(old_leaves[p], new, axes.get(p), vocab_map), new_sub))
  if problems:
    raise ValueError(f"Cannot restore {list(subtrees)} from {path}; mismatched parameters:\n  "
                     + "\n  ".join(problems))
  return out


def _carry(old: Any, new: Any, axis: int | None, vocab_map: np.ndarray | None) -> np.ndarray:
  """The checkpoint's value in the new leaf's dtype, remapped along ``axis`` if given."""
  old = np.asarray(old)
  if axis is not None:
    mean = np.mean(old, axis=axis, keepdims=True)
    taken = np.take(old, np.maximum(vocab_map, 0), axis=axis)
    missing = (vocab_map < 0).reshape([-1 if a == axis else 1 for a in range(old.ndim)])
    old = np.where(missing, mean, taken)
  return np.asarray(old, dtype=np.asarray(new).dtype)


def _embedding_rows(tree: Any) -> int | None:
  """The vocabulary size of a parameter tree: the rows of its ``embedding`` leaves, if one size."""
  rows = {np.shape(v)[0] for p, v in _flatten_paths(tree).items()
          if p and p[-1] == "embedding" and np.ndim(v) == 2}
  return rows.pop() if len(rows) == 1 else None


def _vocab_axis(leaf_name: str, old_shape: tuple, new_shape: tuple, old_vocab: int | None,
                new_vocab: int) -> int | None:
  """The vocabulary axis of a leaf, or ``None`` if it is not vocabulary-indexed.

  An ``embedding`` always is (axis 0; ``_fits`` then checks its shapes); a
  ``kernel`` / ``bias`` (or ``*_bias``, e.g. a tied softmax's ``softmax_bias``) only where
  its last axis fits both vocabularies.
  """
  if leaf_name == "embedding" and len(old_shape) >= 1:
    return 0
  weight = leaf_name in ("kernel", "bias") or leaf_name.endswith("_bias")
  if weight and old_vocab is not None and len(old_shape) >= 1:
    axis = len(old_shape) - 1
    if old_shape[axis] == old_vocab and _fits(old_shape, new_shape, axis, new_vocab):
      return axis
  return None


def _fits(old_shape: tuple, new_shape: tuple, axis: int, new_vocab: int) -> bool:
  """Whether ``new_shape`` is ``old_shape`` with ``new_vocab`` entries on ``axis``."""
  rest = lambda shape: shape[:axis] + shape[axis + 1:]
  return (len(old_shape) == len(new_shape) and new_shape[axis] == new_vocab
          and rest(old_shape) == rest(new_shape))


def vocab_mapping(old_tokenizer, new_tokenizer) -> np.ndarray:
  """``int32[new_vocab]``: the checkpoint's id of each new token (by string), -1 where absent.

  A token without an exact match takes the id of the first checkpoint token
  with the same lowercased, ``▁``-stripped form (``_loose``).

  Either argument may be a tokenizer or a list of token strings in id order.
  The special tokens (``<pad>``, ``<unk>``, ``<s>``, ``</s>``) have the same
  strings in every xferlab tokenizer, so they always map to each other.
  """
  listed = lambda t: list(t) if isinstance(t, (list, tuple)) else vocabulary(t)
  old_ids, loose_ids = {}, {}
  for i, token in enumerate(listed(old_tokenizer)):
    old_ids.setdefault(token, i)
    loose_ids.setdefault(_loose(token), i)
  return np.array([old_ids.get(t, loose_ids.get(_loose(t), -1)) for t in listed(new_tokenizer)],
                  dtype=np.int32)


def _loose(token: str) -> str:
  """The fallback key of a token: lowercased, sentencepiece's word-start mark ``▁`` removed
  (so the piece ``▁Great`` finds the word ``great`` of a word-level vocabulary)."""
  return token.replace("\u2581", "").lower() or token


def tokenizer_dir(path: str) -> str:
  """The ``tokenizer/`` folder of the run a checkpoint belongs to.

  ``path`` is what ``init_from.path`` accepts: a workdir, its ``best/`` or
  ``checkpoints/``, or a step directory below them.
  """
  here = os.path.abspath(path)
  looked = []
  for _ in range(4):
    candidate = os.path.join(here, "tokenizer")
    looked.append(candidate)
    if os.path.exists(os.path.join(candidate, "tokenizer.json")):
      return candidate
    here = os.path.dirname(here)
  raise FileNotFoundError(f"No tokenizer for the checkpoint {path}; looked in: {', '.join(looked)}."
                          " Set init_from.vocab to the source run's tokenizer directory.")


def check_prerequisites(config) -> None:
  """Fails before any work when a model or tokenizer a run starts from does not exist.

  Checks ``init_from.path`` and ``data.tokenizer_path`` (for every task: the
  trainer calls it before it writes anything). The error names
  ``init_from.made_by``, the command that trains the missing model.
  """
  missing = [(key, path) for key, path in (("init_from.path", config.init_from.path),
                                           ("data.tokenizer_path", config.data.tokenizer_path))
             if path and not os.path.exists(path)]
  if missing:
    made_by = config.init_from.get("made_by", "")
    raise FileNotFoundError(
        " and ".join(f"{key} = {path!r}" for key, path in missing) + " not found (relative to "
        f"{os.getcwd()}). " + (f"Make it first: {made_by}" if made_by else
                               "Train that model first, or point the key at it."))


def init_from_vocab_map(init_config, tokenizer) -> np.ndarray | None:
  """The ``vocab_map`` for ``restore_subtrees`` that ``config.init_from`` asks for.

  ``init_config.vocab``: ``''`` -> ``None`` (the checkpoint has this run's
  vocabulary); ``'auto'`` -> the tokenizer saved in the checkpoint's workdir
  (``tokenizer_dir(init_config.path)``); else a tokenizer directory. The map
  is ``vocab_mapping(that tokenizer, tokenizer)``.
  """
  spec = init_config.vocab
  if not spec:
    return None
  directory = tokenizer_dir(init_config.path) if spec == "auto" else spec
  return vocab_mapping(load_tokenizer(directory), tokenizer)


def _has(tree, dotted):
  try:
    _get_subtree(tree, dotted)
    return True
  except KeyError:
    return False


def _rekey(source: Any, like: Any) -> Any:
  """``source`` with its dict keys converted to the key types of ``like`` (orbax stores str)."""
  if isinstance(like, Mapping):
    lookup = {str(k): k for k in source}
    return {k: _rekey(source[lookup[str(k)]], v) for k, v in like.items()}
  return source


def _set_subtree(tree: dict, dotted: str, value: Any) -> None:
  parts = dotted.split(".")
  node = _get_subtree(tree, ".".join(parts[:-1])) if len(parts) > 1 else tree
  key = {str(k): k for k in node}[parts[-1]]
  node[key] = value

"""Checkpoints: the only module that speaks orbax.

A checkpoint is a step directory holding two items:

* ``state`` -- a pytree of arrays (parameters, optimizer state, step, RNG key),
  written with ``StandardSave``;
* ``meta`` -- JSON (data-iterator position, early-stopping bookkeeping, ...).

A run's workdir holds ``checkpoints/`` (the latest few, for resuming) and
``best/`` (the model selected on validation, for ``restore`` and ``init_from``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp


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


def restore_subtrees(params: dict, path: str, subtrees: Sequence[str]) -> dict:
  """Copies named parameter subtrees (``"encoder"``, ``"encoder.embed"``) from a checkpoint.

  ``params`` is the new model's pure parameter dict; the result is a copy with
  each named subtree replaced by the checkpoint's values. Names, structure and
  shapes must match; otherwise a ``ValueError`` lists every offending path.
  """
  source = load_state(path)
  source_params = source.get("params", source)
  out = jax.tree.map(lambda x: x, params)
  problems = []
  for name in subtrees:
    try:
      new_sub, old_sub = _get_subtree(out, name), _get_subtree(source_params, name)
    except KeyError:
      problems.append(f"{name}: missing in {'the checkpoint' if _has(out, name) else 'the new model'}")
      continue
    new_leaves, old_leaves = _flatten_paths(new_sub), _flatten_paths(old_sub)
    for p in sorted(set(new_leaves) | set(old_leaves)):
      where = ".".join((name,) + p)
      if p not in old_leaves:
        problems.append(f"{where}: missing in the checkpoint")
      elif p not in new_leaves:
        problems.append(f"{where}: missing in the new model")
      elif np.shape(new_leaves[p]) != np.shape(old_leaves[p]):
        problems.append(f"{where}: checkpoint {np.shape(old_leaves[p])} vs model {np.shape(new_leaves[p])}")
    if not problems:
      _set_subtree(out, name, jax.tree.map(
          lambda new, old: np.asarray(old, dtype=np.asarray(new).dtype), new_sub, _rekey(old_sub, new_sub)))
  if problems:
    raise ValueError(f"Cannot restore {list(subtrees)} from {path}; mismatched parameters:\n  "
                     + "\n  ".join(problems))
  return out


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

"""Checkpoints: the only module that speaks orbax.

A checkpoint is a step directory holding two items:

* ``state`` -- a pytree of arrays (parameters, optimizer state, step, RNG key),
  written with ``StandardSave``;
* ``meta`` -- JSON (data-iterator position, early-stopping bookkeeping, ...).

A run's workdir holds ``checkpoints/`` (the latest few, for resuming) and
``best/`` (the model selected on validation, for ``restore`` and ``init_from``).

Restoring parts of a checkpoint into another model (``config.init_from``) is
model-based transfer: ``xferlab.transfer.model_based``.
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

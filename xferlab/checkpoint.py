"""Checkpoints: the only module that speaks orbax.

A checkpoint is a step directory holding two items:

* ``state`` -- a pytree of arrays (parameters, optimizer state, step, RNG key),
  written with ``StandardSave``;
* ``meta`` -- JSON (data-iterator position, early-stopping bookkeeping, ...).

A run's workdir holds ``checkpoints/`` (the latest few, for resuming) and
``best/`` (the model selected on validation, for ``restore`` and ``init_from``).

Restoring parts of a checkpoint into another model (``config.init_from``) is
model-based transfer: ``xferlab.transfer.model_based``.

A corrupt checkpoint (a truncated or deleted file after a full disk or a kill
during a copy) is skipped: ``Checkpointer.restore`` (latest step),
``restore_selected`` and ``load_state`` fall back to the previous readable one
with a ``CheckpointFallbackWarning`` naming both; if none is readable a
``CheckpointError`` names the directory.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(OSError):
  """No readable checkpoint where one was expected (names the directory)."""


class CheckpointMismatchError(CheckpointError):
  """Weights that do not fit the model the run's configuration builds (a shape differs, or a
  parameter is missing): the configuration no longer describes the checkpoint."""


class CheckpointFallbackWarning(UserWarning):
  """The newest checkpoint was unreadable; an older one was used."""


def _reason(error: BaseException) -> str:
  """An orbax / TensorStore error in one short line."""
  text = " ".join(str(error).split()) or type(error).__name__
  text = text.split(" See full TensorStore details")[0]
  return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _warn_fallback(failed: list[tuple[str, BaseException]], used: str) -> None:
  warnings.warn(
      "unreadable checkpoint " + "; ".join(f"{path} ({_reason(e)})" for path, e in failed)
      + f"; using the previous one, {used}", CheckpointFallbackWarning, stacklevel=3)


def _like(source: Any, like: Any, path: str = "") -> Any:
  """``source`` (nested dicts from orbax, str keys) in the structure, key types and dtypes of
  ``like``; ``CheckpointMismatchError`` where a parameter is missing or its shape differs."""
  if isinstance(like, Mapping):
    lookup = {str(k): k for k in source} if isinstance(source, Mapping) else {}
    missing = [str(k) for k in like if str(k) not in lookup]
    if missing:
      raise CheckpointMismatchError(f"the checkpoint has no parameter {path}{missing[0]}")
    return {k: _like(source[lookup[str(k)]], v, f"{path}{k}.") for k, v in like.items()}
  like = np.asarray(like)
  source = np.asarray(source, dtype=like.dtype)
  if source.shape != like.shape:
    raise CheckpointMismatchError(f"parameter {path.rstrip('.')} has shape {source.shape} in the "
                                  f"checkpoint and {like.shape} in the model the configuration "
                                  "builds")
  return source


def restore_selected(workdir: str, params_like: Any, selected_step: int | None = None) -> Any:
  """The selected (best) parameters of a run, in the structure of ``params_like``.

  Reads ``workdir/best``'s newest readable step. If no step of ``best/`` is readable, takes
  the parameters (the moving average when the run kept one, as ``best/`` does) of
  ``checkpoints/``: the step ``best/`` held if it is there and readable, else the newest
  readable one. A fallback warns (``CheckpointFallbackWarning``) naming the unreadable and
  the used checkpoint; if nothing is readable, ``CheckpointError`` names ``workdir``.
  ``selected_step`` (the run's ``results.json`` ``best_step``, where known) is the step to
  prefer in ``checkpoints/`` when ``best/`` holds none, e.g. after a kill during its first
  save; a ``best/`` that exists but holds no step counts as unreadable (it warns).
  """
  workdir = os.path.abspath(workdir)
  best_dir, ckpt_dir = os.path.join(workdir, "best"), os.path.join(workdir, "checkpoints")
  failed: list[tuple[str, BaseException]] = []
  best_steps = _steps(best_dir)
  if os.path.isdir(best_dir) and not best_steps:
    failed.append((best_dir, CheckpointError("holds no saved step")))
  for step in best_steps:
    path = os.path.join(best_dir, str(step))
    try:
      state = _read_state(path)
      params = _like(state["params"], params_like)
    except CheckpointMismatchError as e:
      raise _mismatch(workdir, path, e) from None
    except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
      failed.append((path, e))
      continue
    if failed:
      _warn_fallback(failed, path)
    return params
  ckpt_steps = _steps(ckpt_dir)
  selected = best_steps[0] if best_steps else selected_step
  if selected in ckpt_steps:   # the selected step first
    ckpt_steps.remove(selected)
    ckpt_steps.insert(0, selected)
  for step in ckpt_steps:
    path = os.path.join(ckpt_dir, str(step))
    try:
      state = _read_state(path)
      kept = state.get("ema_params") if isinstance(state.get("ema_params"), Mapping) else None
      params = _like(kept if kept else state["params"], params_like)
    except CheckpointMismatchError as e:
      raise _mismatch(workdir, path, e) from None
    except Exception as e:  # pylint: disable=broad-except
      failed.append((path, e))
      continue
    if failed:
      _warn_fallback(failed, path + ("" if step == selected else
                                     " (not the selected step: the latest readable one)"))
    return params
  if not failed:
    raise CheckpointError(f"No checkpoint in {workdir}: expected best/ or checkpoints/ with "
                          "numbered step directories")
  raise CheckpointError(f"No readable checkpoint in {workdir}: "
                        + "; ".join(f"{p} ({_reason(e)})" for p, e in failed))


def _mismatch(workdir: str, path: str, error: CheckpointMismatchError) -> CheckpointMismatchError:
  return CheckpointMismatchError(
      f"{path} does not fit the model of {os.path.join(workdir, 'config.json')}: {error}; the "
      "configuration no longer describes these weights (edited by hand, or another run's)")


def _steps(directory: str) -> list[int]:
  """The numbered step directories of ``directory``, newest first."""
  if not os.path.isdir(directory):
    return []
  return sorted((int(d) for d in os.listdir(directory)
                 if d.isdigit() and os.path.isdir(os.path.join(directory, d))), reverse=True)


def _read_state(step_dir: str) -> dict:
  """A step directory's ``state`` item without a target (nested dicts of numpy arrays)."""
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Sharding info not provided")
    with ocp.PyTreeCheckpointer() as ckptr:
      return ckptr.restore(os.path.join(step_dir, "state"))


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

  def all_steps(self) -> list[int]:
    """Every step directory, oldest first (readable or not)."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: Mapping[str, Any]) -> None:
    """Saves ``step``; an existing step of that number (an unreadable one that a resume fell
    back from) is replaced."""
    if step in self._manager.all_steps():
      self._manager.delete(step)
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(dict(meta))), force=True)
      self._manager.wait_until_finished()
    except KeyboardInterrupt:   # Ctrl-C or SIGTERM mid-write: end the write, then stop. Exiting
      self._manager.wait_until_finished()   # under orbax's writer threads printed a traceback
      raise

  def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores into the structure (and dtypes) of ``target``.

    ``step=None`` takes the latest readable step: an unreadable newer one (a truncated or
    deleted file) is skipped with a ``CheckpointFallbackWarning`` naming both; if no step is
    readable, ``CheckpointError`` names the directory. An explicit ``step`` is read or fails.
    """
    if step is not None:
      return self._restore_step(target, step)
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f"No checkpoint in {self.directory}")
    failed: list[tuple[str, BaseException]] = []
    for candidate in steps:
      try:
        out = self._restore_step(target, candidate)
      except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
        failed.append((os.path.join(self.directory, str(candidate)), e))
        continue
      if failed:
        _warn_fallback(failed, os.path.join(self.directory, str(candidate)))
      return out
    raise CheckpointError(f"No readable checkpoint in {self.directory}: "
                          + "; ".join(f"{p} ({_reason(e)})" for p, e in failed)) from failed[0][1]

  def _restore_step(self, target: Any, step: int) -> tuple[Any, dict]:
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
  """Reads a checkpoint's ``state`` item without a target: nested dicts of numpy arrays.

  Given a workdir or a checkpoint directory, an unreadable newest step falls back to the
  previous readable one (``CheckpointFallbackWarning``); a step directory is read or fails.
  """
  step_dir = _step_dir(path)
  if os.path.abspath(path) == step_dir:
    return _read_state(step_dir)
  parent = os.path.dirname(step_dir)
  failed: list[tuple[str, BaseException]] = []
  for step in _steps(parent):
    candidate = os.path.join(parent, str(step))
    try:
      state = _read_state(candidate)
    except Exception as e:  # pylint: disable=broad-except
      failed.append((candidate, e))
      continue
    if failed:
      _warn_fallback(failed, candidate)
    return state
  raise CheckpointError(f"No readable checkpoint in {parent}: "
                        + "; ".join(f"{p} ({_reason(e)})" for p, e in failed))

"""The trainer's callbacks: small named pieces that watch one loop and act at its events.

The loop (``xferlab.train.run_loop``) trains step after step and calls, in
the order the trainer lists them:

* ``start(loop)`` once;
* ``after_step(loop, out, tokens)`` after every step (``out``: the step's
  metrics, still on the device);
* ``on_log(loop)`` at every log, evaluation or checkpoint boundary and at the
  last step -- the step metrics come to the host here, before anything is
  evaluated or saved;
* ``on_eval(loop)`` at every evaluation and at the last step, then
  ``wants_stop(loop)`` decides whether training ends;
* ``on_checkpoint(loop)`` at every checkpoint boundary and when training ends;
* ``after_eval(loop)`` once the evaluation boundary is past;
* ``end(loop)`` once, whatever happened.

Each callback reads and writes the loop's public fields (``step``, ``state``,
``members``, ...); ``loop.members`` are the runs of a (possibly vmapped)
population, each with its workdir, checkpointers, metric writer and
``tracker`` (best metric, evaluations without improvement, training
seconds, tokens, stopped).
"""

from __future__ import annotations

import glob
import os
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from xferlab.metrics import (DegenerateResultWarning, degenerate_classification,
                             degenerate_scores, empty_outputs, first_non_finite)


class Callback:
  """Does nothing at every event; a callback overrides the events it acts on."""

  def start(self, loop) -> None:
    pass

  def after_step(self, loop, out, tokens: int) -> None:
    pass

  def on_log(self, loop) -> None:
    pass

  def on_eval(self, loop) -> None:
    pass

  def wants_stop(self, loop) -> bool:
    return False

  def on_checkpoint(self, loop) -> None:
    pass

  def after_eval(self, loop) -> None:
    pass

  def end(self, loop) -> None:
    pass


class NonFiniteError(FloatingPointError):
  """A training metric became NaN or infinite; the run stopped before saving it."""


class NanGuard:
  """Stops a run whose step metrics hold a NaN or infinity, naming the metric and step and
  the last good checkpoint (nothing past the NaN is ever saved)."""

  def check(self, member, records) -> None:
    bad = first_non_finite(records)
    if bad:
      step, name, value = bad
      raise NonFiniteError(
          f"Training metric {name!r} is {value} at step {step} (run {member.workdir}); stopped "
          f"without saving it. Last good checkpoint: step {member.ckpt.latest_step()} in "
          f"{member.ckpt.directory}.")


class StepMetrics(Callback):
  """Keeps each step's metrics on the device and, at a log boundary, brings them to the
  host, checks them (``NanGuard``) and writes their mean as one ``train`` row per run."""

  def __init__(self, guard: NanGuard):
    self.guard = guard
    self.pending: list = []
    self.last_means: list[dict] = []

  def after_step(self, loop, out, tokens: int) -> None:
    self.pending.append((loop.step, out))

  def on_log(self, loop) -> None:
    if not self.pending:
      return
    fetched, self.pending = jax.device_get(self.pending), []
    self.last_means = []
    for i, member in enumerate(loop.members):
      records = [(s, {k: float(v[i] if loop.population else v) for k, v in m.items()})
                 for s, m in fetched]
      self.guard.check(member, records)
      mean = {k: float(np.mean([r[k] for _, r in records])) for k in records[0][1]}
      if not member.tracker["stopped"]:
        member.writer.write(records[-1][0], "train", mean)
      self.last_means.append(mean)


class TimeLimit(Callback):
  """Counts training time (evaluation excluded) and tokens per run; with
  ``train.max_train_minutes`` > 0, ends training once that much is spent."""

  def __init__(self, max_minutes: float):
    self.max_seconds = 60.0 * max_minutes
    self.window_start, self.window_tokens, self.window_seconds = time.perf_counter(), 0, 0.0

  def start(self, loop) -> None:
    self.window_start = time.perf_counter()

  def after_step(self, loop, out, tokens: int) -> None:
    self.window_tokens += tokens
    for member in loop.members:
      member.tracker["tokens"] += tokens if not member.tracker["stopped"] else 0

  def spent(self, loop, running: bool = False) -> bool:
    """Whether the budget is spent (``running``: counting the open window too). With several
    processes, process 0's clock decides for all, so they stop at the same step."""
    seconds = sum(m.tracker["train_seconds"] for m in loop.members)
    if running:
      seconds += time.perf_counter() - self.window_start
    spent = bool(self.max_seconds) and seconds >= self.max_seconds
    if self.max_seconds and jax.process_count() > 1:
      spent = bool(multihost_utils.broadcast_one_to_all(np.bool_(spent)))
    return spent

  def on_log(self, loop) -> None:
    now = time.perf_counter()
    self.window_seconds = now - self.window_start
    for member in loop.members:
      member.tracker["train_seconds"] += self.window_seconds / len(loop.members)
    self.tokens_per_second = self.window_tokens / max(self.window_seconds, 1e-9)
    self.window_start, self.window_tokens = now, 0

  def wants_stop(self, loop) -> bool:
    return self.spent(loop)

  def after_eval(self, loop) -> None:
    self.window_start = time.perf_counter()


class EMA:
  """Polyak averaging of the weights (``train.ema_decay`` > 0): the average is carried in
  the train state, updated inside the jitted step, and is what evaluation, model
  selection and ``best/`` use."""

  def __init__(self, decay: float):
    self.decay = decay

  def init(self, params):
    """The average at step 0 (a copy of the parameters), or None when off."""
    return jax.tree.map(jnp.copy, params) if self.decay else None

  def update(self, ema_params, params, step):
    """``ema <- d·ema + (1 - d)·params`` with ``d = min(decay, (1 + step) / (10 + step))``
    (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so the first steps
    do not leave the average at the initial weights. Traced."""
    if not self.decay:
      return ema_params
    return ema_update(ema_params, params, step, self.decay)

  @staticmethod
  def evaluated(state):
    """The parameters evaluated and kept: the moving average when there is one."""
    return state.params if state.ema_params is None else state.ema_params


def ema_update(ema_params, params, step, decay: float):
  """One step of Polyak averaging (``EMA.update``)."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema_params, params)


class EvaluateAndSelect(Callback):
  """Evaluates the kept parameters on every evaluation set, keeps each run's best model in
  ``best/`` (on ``train.early_stopping_metric``) and stops a run after ``train.patience``
  evaluations without improvement; training ends when every run has stopped."""

  def __init__(self, evaluate_fn):
    self.evaluate_fn = evaluate_fn      # (loop, params) -> one metrics dict per run
    self.last_results: list[dict] = []

  def on_eval(self, loop) -> None:
    kept = EMA.evaluated(loop.state)
    self.last_results = self.evaluate_fn(loop, kept)
    for i, member in enumerate(loop.members):
      member.record_eval(loop.step, self.last_results[i], loop.member_of(kept, i))

  def wants_stop(self, loop) -> bool:
    return all(m.tracker["stopped"] for m in loop.members)


class DegenerateCheck(Callback):
  """Warns, once a run has its results, when its selected model is degenerate: a classifier
  that predicts one class for every evaluated example or whose accuracy is at chance (within
  a point of the majority-class rate), a translation or summarization model whose outputs are
  all empty or whose BLEU / ROUGE is 0. Each finding is one ``DegenerateResultWarning`` and
  one printed line (process 0 only: ``enabled``)."""

  def __init__(self, enabled: bool = True, stream=None):
    self.enabled = enabled
    self.stream = stream or sys.stderr
    self.latest: dict[int, dict[str, str | None]] = {}     # run -> set -> finding
    self.selected: dict[int, dict[str, str | None]] = {}   # the same, of the selected model

  def observe(self, i: int, name: str, sums) -> None:
    """``xferlab.train.evaluate``'s ``on_sums``: run ``i``'s summed sums of set ``name``."""
    self.latest.setdefault(i, {})[name] = degenerate_classification(sums)

  def on_eval(self, loop) -> None:
    for i, member in enumerate(loop.members):
      if member.tracker["best_step"] == loop.step:   # this evaluation selected the model
        self.selected[i] = dict(self.latest.get(i, {}))

  def findings(self, i: int, workdir: str, results: dict) -> list[str]:
    """What is degenerate about run ``i``: its selected model's sets, its final scores and
    the outputs its task wrote (``translations/``, ``summaries/``)."""
    found = [f"{name}: {text}" for name, text in sorted(self.selected.get(i, {}).items())
             if text]
    found += degenerate_scores(results)
    outputs = sorted(glob.glob(os.path.join(workdir, "translations", "*.txt"))
                     + glob.glob(os.path.join(workdir, "summaries", "*.jsonl")))
    found += [text for text in map(empty_outputs, outputs) if text]
    return found

  def report(self, loop, final: list[dict]) -> None:
    """Warns about each run's findings, given its final metrics (one dict per run)."""
    if not self.enabled:
      return
    for i, member in enumerate(loop.members):
      results = dict(member.tracker["best_metrics"], **final[i])
      for text in self.findings(i, member.workdir, results):
        line = f"degenerate result in {member.workdir}: {text}"
        warnings.warn(line, DegenerateResultWarning, stacklevel=2)
        print(f"[xferlab] warning: {line}", file=self.stream, flush=True)


class Checkpoint(Callback):
  """Saves each run's train state with the data position and its tracker, so a killed run
  resumes at the same batch with the same bookkeeping."""

  def on_checkpoint(self, loop) -> None:
    for i, member in enumerate(loop.members):
      member.ckpt.save(loop.step, loop.member_of(loop.state, i),
                       {"data": loop.data.train.state(), "tracker": member.tracker})


class Progress(Callback):
  """What a person watching sees. In a terminal: a progress bar with ETA whose label says
  when XLA compiles and when evaluation runs. Elsewhere: a plain line at every log
  boundary. Both print one line of metrics after each evaluation."""

  def __init__(self, enabled: bool, name: str, metrics: StepMetrics, timer: TimeLimit,
               evaluation: EvaluateAndSelect, stream=None):
    self.enabled, self.name = enabled, name
    self.metrics, self.timer, self.evaluation = metrics, timer, evaluation
    self.stream = stream or sys.stderr
    self.bar = None

  def start(self, loop) -> None:
    if not self.enabled:
      return
    if self.stream.isatty():
      self.bar = tqdm(total=loop.total_steps, initial=loop.step, desc=f"{self.name} compiling",
                      dynamic_ncols=True, file=self.stream)
    else:
      self._line(f"step {loop.step}/{loop.total_steps}: compiling the train step")

  def after_step(self, loop, out, tokens: int) -> None:
    if self.bar is not None:
      if loop.step == 1 or self.bar.n == 0:
        self.bar.set_description(f"{self.name} training")
      self.bar.update(1)

  def on_log(self, loop) -> None:
    if not self.enabled or not self.metrics.last_means:
      return
    loss = self.metrics.last_means[0].get("loss", float("nan"))
    tok_s = getattr(self.timer, "tokens_per_second", 0.0)
    if self.bar is not None:
      self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tok_s:,.0f}")
    else:
      self._line(f"step {loop.step}/{loop.total_steps}: loss {loss:.4f}, {tok_s:,.0f} tokens/s")

  def on_eval(self, loop) -> None:
    if self.enabled and self.bar is not None:
      self.bar.set_description(f"{self.name} evaluating")
      self.bar.refresh()

  def after_eval(self, loop) -> None:
    if not self.enabled or not self.evaluation.last_results:
      return
    if self.bar is not None:
      self.bar.set_description(f"{self.name} training")
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(self.evaluation.last_results[0].items())
                      if isinstance(v, (int, float)))
    self._line(f"step {loop.step}/{loop.total_steps} eval: {shown}")

  def end(self, loop) -> None:
    if self.bar is not None:
      self.bar.close()

  def _line(self, text: str) -> None:
    line = f"[{self.name}] {text}"
    if self.bar is not None:
      self.bar.write(line, file=self.stream)
    else:
      print(line, file=self.stream, flush=True)

"""The one training loop: pure jitted steps, evaluation, early stopping, checkpoints.

``train_and_evaluate(config, workdir)`` serves every task (``xferlab.tasks``).
The model is split once into a graph definition and a pure parameter dict; the
jitted steps are functions of arrays only::

  train_step(state, rest, batch, hparams) -> (state, metrics)
  eval_step(params, rest, batch) -> sums

``state`` is a ``TrainState`` (step, params, optimizer state, RNG key).
``hparams`` holds λ and its schedule's parameters as traced arrays, so a
λ sweep or schedule never recompiles. Steps are cached per model structure and
configuration, so the arms and seeds of one experiment compile once, and one
compilation happens per bucket shape.

Restore order: resume from ``workdir/checkpoints`` if present, else take
``config.init_from.subtrees`` from ``config.init_from.path``, else start fresh.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from xferlab import checkpoint, losses
from xferlab.config import from_json, to_json
from xferlab.metrics import MetricWriter, first_non_finite
from xferlab.tasks import get_task


class NonFiniteError(FloatingPointError):
  """A training metric became NaN or infinite; the run stopped before saving it."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32[]
  params: Any              # pure dict of arrays (nnx.Param leaves)
  opt_state: Any
  rng: jax.Array           # uint32[2], raw PRNG key; dropout key = fold_in(rng, step)


def make_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
  """optax chain: optional global-norm clipping, then the named optimizer and schedule."""
  lr = opt_config.learning_rate
  if opt_config.schedule == "constant":
    schedule = lr
  elif opt_config.schedule == "cosine":
    schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1))
  elif opt_config.schedule == "warmup_cosine":
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, opt_config.warmup_steps,
                                                  max(total_steps, opt_config.warmup_steps + 1))
  else:
    raise ValueError(f"Unknown optimizer.schedule {opt_config.schedule!r}; "
                     "choose constant, cosine or warmup_cosine")
  if opt_config.name == "adam":
    tx = optax.adam(schedule)
  elif opt_config.name == "adamw":
    tx = optax.adamw(schedule, weight_decay=opt_config.weight_decay)
  elif opt_config.name == "sgd":
    tx = optax.sgd(schedule, momentum=opt_config.momentum or None)
  else:
    raise ValueError(f"Unknown optimizer.name {opt_config.name!r}; choose adam, adamw or sgd")
  if opt_config.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(opt_config.grad_clip), tx)
  return tx


def lambda_hparams(config) -> dict[str, jax.Array]:
  """The traced parameters of the λ schedule."""
  t = config.transfer
  return {"lam": jnp.float32(t.lam), "lam_min": jnp.float32(t.lam_min),
          "gamma": jnp.float32(t.gamma)}


_STEP_CACHE: dict[str, tuple] = {}


def compiled_steps(task, config, graphdef, tx, total_steps: int):
  """``(train_step, eval_step)`` jitted once per model structure and static configuration."""
  static = {k: config[k].to_dict() for k in ("model", "transfer", "optimizer")}
  for traced in ("lam", "lam_min", "gamma"):
    static["transfer"].pop(traced)
  key = json.dumps([task.name, repr(graphdef), static, total_steps], sort_keys=True, default=str)
  if key in _STEP_CACHE:
    return _STEP_CACHE[key]
  schedule = config.transfer.schedule

  def train_step(state: TrainState, rest, batch, hparams):
    dropout_key = jax.random.fold_in(state.rng, state.step)
    lam = losses.transfer_weight(state.step / total_steps, schedule, hparams["lam"],
                                 hparams["lam_min"], hparams["gamma"])

    def loss_fn(params):
      model = nnx.merge(graphdef, params, rest)
      return task.loss(model, batch, lam, nnx.Rngs(dropout=dropout_key))

    (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    out = dict(out, loss=loss, lam=lam, grad_norm=optax.global_norm(grads))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), out

  def eval_step(params, rest, batch):
    return task.eval_sums(nnx.merge(graphdef, params, rest), batch)

  steps = (jax.jit(train_step, donate_argnums=0), jax.jit(eval_step))
  _STEP_CACHE[key] = steps
  return steps


def evaluate(task, eval_step, params, rest, eval_sets) -> dict[str, float]:
  """Metrics over every evaluation set, named ``f"{set}_{metric}"``."""
  out = {}
  for name, batches in eval_sets.items():
    sums = None
    for batch in batches:
      s = eval_step(params, rest, batch)
      sums = s if sums is None else jax.tree.map(jnp.add, sums, s)
    for metric, value in task.eval_metrics(jax.device_get(sums)).items():
      out[f"{name}_{metric}"] = value
  return out


def check_workdir_config(config, workdir: str) -> None:
  """Refuses to resume a workdir that was started with a different configuration."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = from_json(f.read())
  from xferlab.config import flatten
  ignore = {"train.progress_bar"}
  a, b = flatten(old), flatten(from_json(to_json(config)))
  diff = sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))
  if diff:
    raise ValueError(f"{workdir} holds a run with a different configuration "
                     f"(differs in: {', '.join(diff)}); use another workdir to start a new run.")


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains (or resumes) the run described by ``config`` in ``workdir``; returns its results.

  Writes ``config.json``, ``metrics.jsonl``, ``tensorboard/``, ``tokenizer/``,
  ``checkpoints/`` (latest, for resuming), ``best/`` (selected on
  ``train.early_stopping_metric``) and ``results.json``: the evaluation metrics
  of the selected model plus ``best_step``, ``steps``, ``train_seconds`` and
  ``tokens_per_second``.
  """
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  check_workdir_config(config, workdir)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(to_json(config))

  task = get_task(config.task)
  data = task.prepare(config, workdir)
  model = task.build_model(config, data.tokenizer.vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)

  t = config.train
  total_steps = t.num_steps or t.num_epochs * data.train.batches_per_epoch
  eval_every = t.eval_every or data.train.batches_per_epoch
  checkpoint_every = t.checkpoint_every or eval_every
  tx = make_optimizer(config.optimizer, total_steps)
  train_step, eval_step = compiled_steps(task, config, graphdef, tx, total_steps)
  state = TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                     rng=jax.random.PRNGKey(config.seed))

  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), t.keep_checkpoints)
  best_ckpt = checkpoint.Checkpointer(os.path.join(workdir, "best"), 1)
  sign = 1.0 if t.early_stopping_mode == "max" else -1.0
  tracker = {"best_value": None, "best_step": None, "best_metrics": {}, "bad_evals": 0,
             "train_seconds": 0.0, "tokens": 0}
  if ckpt.latest_step() is not None:
    state, meta = ckpt.restore(state)
    data.train.restore(meta["data"])
    tracker = meta["tracker"]
  elif config.init_from.path:
    state = state.replace(params=checkpoint.restore_subtrees(
        state.params, config.init_from.path, tuple(config.init_from.subtrees)))
  state = jax.device_put(state)

  hparams = lambda_hparams(config)
  writer = MetricWriter(workdir)
  pending: list[tuple[int, Any]] = []
  step = int(state.step)
  stop = step >= total_steps or (t.patience and tracker["bad_evals"] >= t.patience)
  bar = tqdm(total=total_steps, initial=step, disable=not t.progress_bar, leave=False,
             desc=config.name, dynamic_ncols=True)
  window_start, window_tokens = time.perf_counter(), 0

  def flush():
    """Moves pending step metrics to the host, stops on NaN/inf, logs their mean."""
    nonlocal pending
    if not pending:
      return {}
    records = [(s, {k: float(v) for k, v in m.items()}) for s, m in jax.device_get(pending)]
    pending = []
    bad = first_non_finite(records)
    if bad:
      s, name, value = bad
      raise NonFiniteError(
          f"Training metric {name!r} is {value} at step {s}; stopped without saving it. "
          f"Last good checkpoint: step {ckpt.latest_step()} in {ckpt.directory}.")
    mean = {k: float(np.mean([r[k] for _, r in records])) for k in records[0][1]}
    writer.write(records[-1][0], "train", mean)
    return mean

  try:
    while not stop:
      batch = next(data.train)
      state, out = train_step(state, rest, batch, hparams)
      step += 1
      pending.append((step, out))
      tokens = data.tokens_per_batch(batch)
      window_tokens += tokens
      tracker["tokens"] += tokens
      bar.update(1)
      is_last = step >= total_steps
      if (step % t.log_every == 0 or step % eval_every == 0 or step % checkpoint_every == 0
          or is_last):
        mean = flush()   # before any evaluation or checkpoint: never save past a NaN
        now = time.perf_counter()
        tracker["train_seconds"] += now - window_start
        bar.set_postfix(loss=f"{mean['loss']:.4f}",
                        tok_s=f"{window_tokens / max(now - window_start, 1e-9):,.0f}")
        window_start, window_tokens = now, 0
      if step % eval_every == 0 or is_last:
        results = evaluate(task, eval_step, state.params, rest, data.eval_sets)
        writer.write(step, "eval", results)
        # An empty early_stopping_metric selects the latest evaluation (a fixed budget).
        value = results.get(t.early_stopping_metric) if t.early_stopping_metric else float(step)
        if value is None:
          raise ValueError(f"train.early_stopping_metric {t.early_stopping_metric!r} is not an "
                           f"evaluation metric; available: {sorted(results)}")
        if tracker["best_value"] is None or sign * value > sign * tracker["best_value"]:
          tracker.update(best_value=value, best_step=step, best_metrics=results, bad_evals=0)
          best_ckpt.save(step, {"params": state.params}, {"metrics": results})
        else:
          tracker["bad_evals"] += 1
        stop = is_last or bool(t.patience and tracker["bad_evals"] >= t.patience)
      if step % checkpoint_every == 0 or stop:
        ckpt.save(step, state, {"data": data.train.state(), "tracker": tracker})
      window_start = time.perf_counter() if step % eval_every == 0 else window_start
  finally:
    bar.close()
    writer.close()
    ckpt.close()
    best_ckpt.close()

  results = dict(tracker["best_metrics"])
  results.update(best_step=tracker["best_step"], steps=step,
                 train_seconds=tracker["train_seconds"],
                 tokens_per_second=tracker["tokens"] / max(tracker["train_seconds"], 1e-9),
                 train_step_compilations=train_step._cache_size())   # one per batch shape
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results

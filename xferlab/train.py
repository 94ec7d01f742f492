"""The one training loop: pure jitted steps, evaluation, early stopping, checkpoints.

``train_and_evaluate(config, workdir)`` serves every task (``xferlab.tasks``).
The model is split once into a graph definition and a pure parameter dict; the
jitted steps are functions of arrays only::

  train_step(state, rest, batch, hparams) -> (state, metrics)
  eval_step(params, rest, batch) -> sums

``state`` is a ``TrainState`` (step, params, optimizer state, RNG key, and with
``train.ema_decay > 0`` the moving average of the parameters that evaluation,
model selection and ``best/`` then use instead of the raw parameters).
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
from typing import Any, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from xferlab import checkpoint, losses, optim
from xferlab.transfer import feature_based, model_based
from xferlab.config import flatten, from_json, to_json
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
  task_state: Any = None   # carried across steps by stateful tasks (an LM's hidden state)
  ema_params: Any = None   # the parameters' exponential moving average (train.ema_decay > 0)


def ema_update(ema_params, params, step, decay: float):
  """One step of Polyak averaging: ``ema <- d·ema + (1 - d)·params``, ``d = min(decay,
  (1 + step) / (10 + step))`` (TensorFlow's ``ExponentialMovingAverage`` with
  ``num_updates``), so the first steps do not leave the average at the initial weights."""
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema_params, params)


def eval_params(state: TrainState):
  """The parameters evaluated and kept: the moving average when there is one."""
  return state.params if state.ema_params is None else state.ema_params


make_optimizer = optim.make_optimizer   # the plain optimizer; model_based.build_optimizer adds controls


def lambda_hparams(config) -> dict[str, jax.Array]:
  """The traced parameters of the λ schedule."""
  t = config.transfer
  return {"lam": jnp.float32(t.lam), "lam_min": jnp.float32(t.lam_min),
          "gamma": jnp.float32(t.gamma)}


# Keys that may differ between the members of one vmapped population: they
# are traced values, not part of the compiled program. `seed` joins them when
# the data order does not follow it (data.shuffle_seed >= 0).
TRACED_KEYS = ("transfer.lam", "transfer.lam_min", "transfer.gamma")


def vectorizable_keys(config) -> tuple[str, ...]:
  return TRACED_KEYS + (("seed",) if config.data.shuffle_seed >= 0 else ())


def population_key(config) -> str:
  """Configurations with equal keys can train as one vmapped program over the same batches."""
  flat = flatten(config)
  for key in vectorizable_keys(config) + ("name", "train.progress_bar"):
    flat.pop(key, None)
  return json.dumps(flat, sort_keys=True, default=str)


def cast_floats(tree, dtype):
  """Casts the floating-point leaves of ``tree`` to ``dtype`` (mixed precision)."""
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                      tree)


_STEP_CACHE: dict[str, tuple] = {}


def compiled_steps(task, config, graphdef, tx, total_steps: int, population: int = 0):
  """``(train_step, eval_step)`` jitted once per model structure and static configuration.

  ``population > 0`` vmaps both over a leading member axis of the state, the
  parameters and ``hparams`` (the batch is shared); 0 is a single run.
  """
  static = {k: config[k].to_dict() for k in ("model", "transfer", "optimizer", "finetune")}
  static["precision"] = config.train.precision
  static["ema_decay"] = ema_decay = config.train.ema_decay
  for traced in ("lam", "lam_min", "gamma"):
    static["transfer"].pop(traced)
  key = json.dumps([task.name, repr(graphdef), static, total_steps, population], sort_keys=True,
                   default=str)
  if key in _STEP_CACHE:
    return _STEP_CACHE[key]
  schedule = config.transfer.schedule
  compute_dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.train.precision]
  stateful = getattr(task, "stateful", False)

  def train_step(state: TrainState, rest, batch, hparams):
    dropout_key = jax.random.fold_in(state.rng, state.step)
    lam = losses.transfer_weight(state.step / total_steps, schedule, hparams["lam"],
                                 hparams["lam_min"], hparams["gamma"])

    def loss_fn(params):
      model = nnx.merge(graphdef, cast_floats(params, compute_dtype), rest)
      rngs = nnx.Rngs(dropout=dropout_key)
      if stateful:
        return task.loss(model, batch, lam, rngs, state.task_state)
      loss, out = task.loss(model, batch, lam, rngs)
      return loss, (out, state.task_state)

    (loss, (out, task_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    out = dict(out, loss=loss, lam=lam, grad_norm=optax.global_norm(grads))
    out = jax.tree.map(lambda x: x.astype(jnp.float32), out)
    ema_params = (ema_update(state.ema_params, params, state.step, ema_decay) if ema_decay
                  else state.ema_params)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         task_state=jax.lax.stop_gradient(task_state),
                         ema_params=ema_params), out

  def eval_step(params, rest, batch):
    return task.eval_sums(nnx.merge(graphdef, params, rest), batch)

  if population:
    train_step = jax.vmap(train_step, in_axes=(0, None, None, 0))
    eval_step = jax.vmap(eval_step, in_axes=(0, None, None))
  steps = (jax.jit(train_step, donate_argnums=0), jax.jit(eval_step))
  _STEP_CACHE[key] = steps
  return steps


def evaluate(task, eval_step, params, rest, eval_sets, place=lambda b: b,
             population: int = 0) -> list[dict[str, float]]:
  """Metrics over every evaluation set, named ``f"{set}_{metric}"``; one dict per member."""
  out = [{} for _ in range(max(population, 1))]
  for name, batches in eval_sets.items():
    sums = None
    for batch in batches:
      s = eval_step(params, rest, place(batch))
      sums = s if sums is None else jax.tree.map(jnp.add, sums, s)
    sums = jax.device_get(sums)
    for i, member in enumerate(out):
      member_sums = jax.tree.map(lambda x: x[i], sums) if population else sums
      for metric, value in task.eval_metrics(member_sums).items():
        member[f"{name}_{metric}"] = value
  return out


def config_differences(old, new) -> list[str]:
  """The flattened keys (sorted) where configuration ``new`` differs from ``old``, a run's
  written one: ``train.progress_bar`` aside, and keys added to xferlab after ``old`` was
  written as long as ``new`` holds their default."""
  from xferlab.defaults import base_config
  a, b = flatten(old), flatten(from_json(to_json(new)))
  defaults = flatten(from_json(to_json(base_config())))
  added = {k for k in set(b) - set(a) if k in defaults and b[k] == defaults[k]}
  ignore = {"train.progress_bar"} | added
  return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))


def check_workdir_config(config, workdir: str) -> None:
  """Refuses to resume a workdir that was started with a different configuration."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    diff = config_differences(from_json(f.read()), config)
  if diff:
    raise ValueError(f"{workdir} holds a run with a different configuration "
                     f"(differs in: {', '.join(diff)}); use another workdir to start a new run.")


def finished_results(config, workdir: str) -> dict | None:
  """The results of a finished run of ``config`` in ``workdir``, else None."""
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return None
  check_workdir_config(config, workdir)
  with open(path) as f:
    return json.load(f)


def data_mesh(config) -> Mesh:
  """A one-axis mesh ``("data",)`` over ``train.devices`` local devices (0 = all)."""
  devices = jax.local_devices()
  n = config.train.devices or len(devices)
  if n > len(devices):
    raise ValueError(f"train.devices = {n}, but JAX sees only {len(devices)} local devices")
  return Mesh(np.array(devices[:n]), ("data",))


def batch_placer(mesh: Mesh):
  """Puts a batch (a pytree of ``[batch, ...]`` arrays) on the mesh, split on the batch axis."""
  n = mesh.devices.size
  sharding = NamedSharding(mesh, PartitionSpec("data"))

  def place(batch):
    for leaf in jax.tree.leaves(batch):
      if leaf.shape[0] % n:
        raise ValueError(f"A batch of {leaf.shape[0]} rows cannot be split over {n} devices; "
                         "make data.batch_size and data.eval_batch_size multiples of the "
                         "device count, or set train.devices")
    return jax.device_put(batch, sharding) if n > 1 else batch

  return place


class _Member:
  """One run of a (possibly vmapped) population: its workdir, logs, checkpoints, early stopping."""

  def __init__(self, config, workdir: str):
    self.config, self.workdir = config, workdir
    t = config.train
    self.ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), t.keep_checkpoints)
    self.best_ckpt = checkpoint.Checkpointer(os.path.join(workdir, "best"), 1)
    self.writer = MetricWriter(workdir)
    self.sign = 1.0 if t.early_stopping_mode == "max" else -1.0
    self.tracker = {"best_value": None, "best_step": None, "best_metrics": {}, "bad_evals": 0,
                    "train_seconds": 0.0, "tokens": 0, "stopped": False}

  def check_finite(self, records) -> None:
    bad = first_non_finite(records)
    if bad:
      s, name, value = bad
      raise NonFiniteError(
          f"Training metric {name!r} is {value} at step {s} (run {self.workdir}); stopped without "
          f"saving it. Last good checkpoint: step {self.ckpt.latest_step()} in "
          f"{self.ckpt.directory}.")

  def record_eval(self, step: int, results: dict, params) -> None:
    """Logs an evaluation, keeps the best model, counts evaluations without improvement."""
    t, tracker = self.config.train, self.tracker
    if tracker["stopped"]:
      return   # a stopped member of a population trains on, but its results are final
    self.writer.write(step, "eval", results)
    # An empty early_stopping_metric selects the latest evaluation (a fixed budget).
    value = results.get(t.early_stopping_metric) if t.early_stopping_metric else float(step)
    if value is None:
      raise ValueError(f"train.early_stopping_metric {t.early_stopping_metric!r} is not an "
                       f"evaluation metric; available: {sorted(results)}")
    if tracker["best_value"] is None or self.sign * value > self.sign * tracker["best_value"]:
      tracker.update(best_value=value, best_step=step, best_metrics=results, bad_evals=0)
      self.best_ckpt.save(step, {"params": params}, {"metrics": results})
    else:
      tracker["bad_evals"] += 1
    tracker["stopped"] = bool(t.patience and tracker["bad_evals"] >= t.patience)

  def results(self, steps: int, compilations: int, extra: dict | None = None) -> dict:
    tracker = self.tracker
    results = dict(tracker["best_metrics"], **(extra or {}))
    results.update(best_step=tracker["best_step"], steps=steps,
                   train_seconds=tracker["train_seconds"],
                   tokens_per_second=tracker["tokens"] / max(tracker["train_seconds"], 1e-9),
                   train_step_compilations=compilations)   # one per batch shape
    with open(os.path.join(self.workdir, "results.json"), "w") as f:
      json.dump(results, f, indent=2)
    return results

  def close(self) -> None:
    for closable in (self.writer, self.ckpt, self.best_ckpt):
      closable.close()


def init_params(task, config, vocab_size: int, tokenizer, workdir: str):
  """``(graphdef, params, rest)`` of a new model: pretrained word vectors, then
  ``init_from`` subtrees (which win where both write) applied.

  Word-vector coverage is written to ``workdir/word_vectors.json``.
  """
  model = task.build_model(config, vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  if config.model.pretrained_vectors:
    params, coverage = feature_based.apply_pretrained_vectors(params, config, tokenizer)
    with open(os.path.join(workdir, "word_vectors.json"), "w") as f:
      json.dump(coverage, f, indent=2)
  if config.init_from.path:
    params = model_based.restore_subtrees(
        params, config.init_from.path, tuple(config.init_from.subtrees),
        model_based.init_from_vocab_map(config.init_from, tokenizer))
  return graphdef, params, rest


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains (or resumes) the run described by ``config`` in ``workdir``; returns its results.

  Writes ``config.json``, ``metrics.jsonl``, ``tensorboard/``, ``tokenizer/``,
  ``checkpoints/`` (latest, for resuming), ``best/`` (selected on
  ``train.early_stopping_metric``) and ``results.json``: the evaluation metrics
  of the selected model (and the task's ``final_metrics`` of it) plus ``best_step``, ``steps``, ``train_seconds`` and
  ``tokens_per_second``.
  """
  return train_population([config], [workdir])[0]


def train_population(configs: Sequence[Any], workdirs: Sequence[str]) -> list[dict[str, float]]:
  """Trains K runs at once; each gets the workdir and results a single run would.

  With K > 1 the runs must differ only in ``vectorizable_keys`` (λ and its
  schedule's values; ``seed`` if ``data.shuffle_seed`` is fixed): their states
  are stacked on a leading axis and one ``jax.vmap``-ed, jitted step trains all
  of them on the same batches. K = 1 is the plain single run (no vmap).

  Batches are split over a ``("data",)`` device mesh (``train.devices``),
  parameters replicated: the same code runs on one device or many.
  """
  configs, workdirs = list(configs), [os.path.abspath(w) for w in workdirs]
  for config in configs:
    model_based.check_prerequisites(config)   # a missing init_from model: fail before writing
  if len({population_key(c) for c in configs}) > 1:
    raise ValueError("A vmapped population may differ only in "
                     f"{vectorizable_keys(configs[0])}; these configurations differ elsewhere")
  population = len(configs) if len(configs) > 1 else 0
  for config, workdir in zip(configs, workdirs):
    os.makedirs(workdir, exist_ok=True)
    check_workdir_config(config, workdir)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(to_json(config))

  config = configs[0]
  task = get_task(config.task)
  data = task.prepare(config, workdirs[0])
  for workdir in workdirs[1:]:
    data.tokenizer.save(os.path.join(workdir, "tokenizer"))
  inits = [init_params(task, c, data.tokenizer.vocab_size, data.tokenizer, w)
           for c, w in zip(configs, workdirs)]
  graphdef, rest = inits[0][0], inits[0][2]
  t = config.train
  total_steps = t.num_steps or t.num_epochs * data.train.batches_per_epoch
  eval_every = t.eval_every or max(1, round(t.eval_every_epochs * data.train.batches_per_epoch))
  checkpoint_every = t.checkpoint_every or eval_every
  tx = model_based.build_optimizer(config, inits[0][1], total_steps)
  train_step, eval_step = compiled_steps(task, config, graphdef, tx, total_steps, population)

  def initial_state(c, params):
    task_state = task.initial_task_state(c) if hasattr(task, "initial_task_state") else None
    return TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                      rng=jax.random.PRNGKey(c.seed), task_state=task_state,
                      ema_params=jax.tree.map(jnp.copy, params) if c.train.ema_decay else None)

  members = [_Member(c, w) for c, w in zip(configs, workdirs)]
  states = [initial_state(c, params) for c, (_, params, _) in zip(configs, inits)]
  latest = [m.ckpt.latest_step() for m in members]
  if any(s is not None for s in latest):
    if len(set(latest)) > 1:
      raise ValueError(f"The runs of this population stopped at different steps {latest}; "
                       "resume them one by one (vectorize=False)")
    for i, member in enumerate(members):
      states[i], meta = member.ckpt.restore(states[i])
      member.tracker = meta["tracker"]
    data.train.restore(meta["data"])
  stack = lambda *xs: jnp.stack(xs)
  state = jax.tree.map(stack, *states) if population else states[0]
  hparams = [lambda_hparams(c) for c in configs]
  hparams = jax.tree.map(stack, *hparams) if population else hparams[0]

  mesh = data_mesh(config)
  place = batch_placer(mesh)
  state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))   # replicated
  member_of = (lambda tree, i: jax.tree.map(lambda x: x[i], tree)) if population else (
      lambda tree, i: tree)

  pending: list[tuple[int, Any]] = []
  step = int(np.max(np.asarray(state.step)))
  done = lambda: (step >= total_steps or all(m.tracker["stopped"] for m in members)
                  or bool(t.max_train_minutes and sum(m.tracker["train_seconds"] for m in members)
                          >= 60 * t.max_train_minutes))
  stop = done()
  bar = tqdm(total=total_steps, initial=step, disable=not t.progress_bar, leave=False,
             desc=config.name, dynamic_ncols=True)
  window_start, window_tokens = time.perf_counter(), 0

  def out_of_time() -> bool:
    """``train.max_train_minutes`` of training (evaluation excluded) are spent."""
    spent = sum(m.tracker["train_seconds"] for m in members) + time.perf_counter() - window_start
    return bool(t.max_train_minutes) and spent >= 60 * t.max_train_minutes

  def flush():
    """Moves pending step metrics to the host, stops on NaN/inf, logs their mean."""
    nonlocal pending
    if not pending:
      return {}
    fetched = jax.device_get(pending)
    pending = []
    means = []
    for i, member in enumerate(members):
      records = [(s, {k: float(v[i] if population else v) for k, v in m.items()})
                 for s, m in fetched]
      member.check_finite(records)
      mean = {k: float(np.mean([r[k] for _, r in records])) for k in records[0][1]}
      if not member.tracker["stopped"]:
        member.writer.write(records[-1][0], "train", mean)
      means.append(mean)
    return means[0]

  try:
    while not stop:
      batch = next(data.train)
      state, out = train_step(state, rest, place(batch), hparams)
      step += 1
      pending.append((step, out))
      tokens = data.tokens_per_batch(batch)
      window_tokens += tokens
      bar.update(1)
      is_last = step >= total_steps or out_of_time()
      for member in members:
        member.tracker["tokens"] += tokens if not member.tracker["stopped"] else 0
      if (step % t.log_every == 0 or step % eval_every == 0 or step % checkpoint_every == 0
          or is_last):
        mean = flush()   # before any evaluation or checkpoint: never save past a NaN
        now = time.perf_counter()
        for member in members:
          member.tracker["train_seconds"] += (now - window_start) / len(members)
        bar.set_postfix(loss=f"{mean['loss']:.4f}",
                        tok_s=f"{window_tokens / max(now - window_start, 1e-9):,.0f}")
        window_start, window_tokens = now, 0
      if step % eval_every == 0 or is_last:
        kept = eval_params(state)
        results = evaluate(task, eval_step, kept, rest, data.eval_sets, place, population)
        for i, member in enumerate(members):
          member.record_eval(step, results[i], member_of(kept, i))
        stop = is_last or done()
      if step % checkpoint_every == 0 or stop:
        for i, member in enumerate(members):
          member.ckpt.save(step, member_of(state, i),
                           {"data": data.train.state(), "tracker": member.tracker})
      window_start = time.perf_counter() if step % eval_every == 0 else window_start
    final = [final_metrics(task, data.tokenizer, m, graphdef, member_of(state.params, i), rest)
             for i, m in enumerate(members)]
  finally:
    bar.close()
    for member in members:
      member.close()
  return [m.results(step, train_step._cache_size(), extra)
          for m, extra in zip(members, final)]


def final_metrics(task, tokenizer, member: _Member, graphdef, params_like, rest) -> dict:
  """The task's after-training metrics of a member's selected (best) model, e.g. the BLEU
  of beam-search translations; ``{}`` for tasks without ``final_metrics``."""
  if not hasattr(task, "final_metrics"):
    return {}
  best, _ = member.best_ckpt.restore({"params": params_like})
  model = nnx.merge(graphdef, best["params"], rest)
  return task.final_metrics(model, tokenizer, member.config, member.workdir)

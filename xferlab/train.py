"""The one training loop: pure jitted steps, then small callbacks around them.

``train_and_evaluate(config, workdir)`` serves every task (``xferlab.tasks``).
Read from the top: the state a step transforms, the steps themselves
(compiled once per model structure by a ``StepCache``), a run's outputs
(``Member``), the parameters a run starts from (``init_params``), and the loop
(``run_loop``) with its callbacks (``xferlab.callbacks``).

The model is split once into a graph definition and a pure parameter dict; the
jitted steps are functions of arrays only::

  train_step(state, rest, batch, hparams) -> (state, metrics)
  eval_step(params, rest, batch) -> sums

``hparams`` holds λ and its schedule's parameters as traced arrays, so a λ
sweep or schedule never recompiles. One compilation happens per bucket shape.

A population of K runs that differ only in traced values (a λ sweep) is the
same loop over a state stacked on a leading axis, with ``jax.vmap``-ed steps;
K = 1 is the plain single run.

Restore order: resume from ``workdir/checkpoints`` if present, else take
``config.init_from.subtrees`` from ``config.init_from.path``, else start fresh.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xferlab import callbacks as cb, checkpoint, decisions, losses, optim, privacy
from xferlab import workdir as workdir_lib
from xferlab.callbacks import NonFiniteError, ema_update   # noqa: F401  (public names)
from xferlab.config import flatten
from xferlab.metrics import MetricWriter, NullWriter
from xferlab.tasks import Task, get_task
from xferlab.transfer import feature_based, model_based

# The workdir contract, under the names callers have used.
config_differences = workdir_lib.config_differences
check_workdir_config = workdir_lib.check_config
finished_results = workdir_lib.finished_results
make_optimizer = optim.make_optimizer   # the plain optimizer; model_based.build_optimizer adds controls


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32[]
  params: Any              # pure dict of arrays (nnx.Param leaves)
  opt_state: Any
  rng: jax.Array           # uint32[2], raw PRNG key; dropout key = fold_in(rng, step)
  task_state: Any = None   # carried across steps by stateful tasks (an LM's hidden state)
  ema_params: Any = None   # the parameters' exponential moving average (train.ema_decay > 0)


def eval_params(state: TrainState):
  """The parameters evaluated and kept: the moving average when there is one."""
  return cb.EMA.evaluated(state)


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


# ------------------------------------------------------------------------------
# The steps.

def make_steps(task: Task, config, graphdef, tx, total_steps: int, population: int = 0):
  """``(train_step, eval_step)``, jitted; ``population > 0`` vmaps both over a leading member
  axis of the state, the parameters and ``hparams`` (the batch is shared)."""
  schedule = config.transfer.schedule
  compute_dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[config.train.precision]
  ema = cb.EMA(config.train.ema_decay)
  private = privacy.enabled(config)   # DP-SGD: per-example clipping and noise (xferlab.privacy)

  def train_step(state: TrainState, rest, batch, hparams):
    dropout_key = jax.random.fold_in(state.rng, state.step)
    lam = losses.transfer_weight(state.step / total_steps, schedule, hparams["lam"],
                                 hparams["lam_min"], hparams["gamma"])

    def loss_fn(params, batch=batch, key=dropout_key):
      model = nnx.merge(graphdef, cast_floats(params, compute_dtype), rest)
      return task.loss(model, batch, lam, nnx.Rngs(dropout=key), state.task_state)

    if private:
      (loss, (out, task_state)), grads = privacy.value_and_grad(
          loss_fn, state.params, batch, dropout_key, hparams,
          privacy.frozen_prefixes(config, state.params))
    else:
      (loss, (out, task_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    out = dict(out, loss=loss, lam=lam, grad_norm=optax.global_norm(grads))
    out = jax.tree.map(lambda x: x.astype(jnp.float32), out)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         task_state=jax.lax.stop_gradient(task_state),
                         ema_params=ema.update(state.ema_params, params, state.step)), out

  def eval_step(params, rest, batch):
    return task.eval_sums(nnx.merge(graphdef, params, rest), batch)

  if population:
    train_step = jax.vmap(train_step, in_axes=(0, None, None, 0))
    eval_step = jax.vmap(eval_step, in_axes=(0, None, None))
  return jax.jit(train_step, donate_argnums=0), jax.jit(eval_step)


class StepCache:
  """Jitted steps kept per model structure and static configuration, so the arms and seeds
  of one experiment compile once. ``clear()`` forgets them (benchmarks timing compilation)."""

  def __init__(self):
    self._steps: dict[str, tuple] = {}

  def __len__(self) -> int:
    return len(self._steps)

  def clear(self) -> None:
    self._steps.clear()

  @staticmethod
  def key(task: Task, config, graphdef, total_steps: int, population: int) -> str:
    static = {k: config[k].to_dict() for k in ("model", "transfer", "optimizer", "finetune")}
    static["precision"] = config.train.precision
    static["ema_decay"] = config.train.ema_decay
    static["private"] = privacy.enabled(config)   # C and σ are traced (hparams)
    for traced in ("lam", "lam_min", "gamma"):
      static["transfer"].pop(traced)
    return json.dumps([task.name, repr(graphdef), static, total_steps, population],
                      sort_keys=True, default=str)

  def steps(self, task: Task, config, graphdef, tx, total_steps: int, population: int = 0):
    """``(train_step, eval_step)`` of ``make_steps``, built on first use."""
    key = self.key(task, config, graphdef, total_steps, population)
    if key not in self._steps:
      self._steps[key] = make_steps(task, config, graphdef, tx, total_steps, population)
    return self._steps[key]


STEP_CACHE = StepCache()   # the process's shared cache


def compiled_steps(task, config, graphdef, tx, total_steps: int, population: int = 0,
                   cache: StepCache = STEP_CACHE):
  """``(train_step, eval_step)`` jitted once per model structure and static configuration."""
  return cache.steps(task, config, graphdef, tx, total_steps, population)


def evaluate(task, eval_step, params, rest, eval_sets, place=lambda b: b,
             population: int = 0, on_sums: Callable | None = None) -> list[dict[str, float]]:
  """Metrics over every evaluation set, named ``f"{set}_{metric}"``; one dict per member.
  ``on_sums(member, set, sums)`` sees each member's summed ``eval_sums`` of each set."""
  out = [{} for _ in range(max(population, 1))]
  for name, batches in eval_sets.items():
    sums = None
    for batch in batches:
      s = eval_step(params, rest, place(batch))
      sums = s if sums is None else jax.tree.map(jnp.add, sums, s)
    sums = jax.device_get(sums)
    for i, member in enumerate(out):
      member_sums = jax.tree.map(lambda x: x[i], sums) if population else sums
      if on_sums is not None:
        on_sums(i, name, member_sums)
      for metric, value in task.eval_metrics(member_sums).items():
        member[f"{name}_{metric}"] = value
  return out


# ------------------------------------------------------------------------------
# Devices and processes.
#
# One process (the default) or several joined by ``jax.distributed``
# (``python -m xferlab.launch_local --processes N -- ...``, docs/multihost.md).
# With several, every process runs this same loop: it draws the same global
# batches, feeds the rows its devices hold, and the jitted steps see one
# global array. Process 0 alone writes a run's files; orbax checkpoints are
# saved by all processes together and written once.

def is_primary() -> bool:
  """Whether this process writes a run's files: process 0 (the only one without
  ``jax.distributed``). The others compute the same steps and write nothing into the run."""
  return jax.process_index() == 0


def sync_processes(name: str) -> None:
  """Waits until every process got here (a no-op in a single process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


_SCRATCH: list[str] = []


def output_dir(workdir: str) -> str:
  """Where this process writes a run's side outputs (tokenizer, translations): ``workdir`` on
  process 0, else a private temporary folder removed at exit."""
  if is_primary():
    return workdir
  if not _SCRATCH:
    _SCRATCH.append(tempfile.mkdtemp(prefix=f"xferlab-process{jax.process_index()}-"))
    atexit.register(shutil.rmtree, _SCRATCH[0], True)
  return _SCRATCH[0]


def data_mesh(config) -> Mesh:
  """A one-axis mesh ``("data",)`` over ``train.devices`` local devices (0 = all) of every
  process, in process order: process ``i`` of ``N`` (each with as many devices) holds rows
  ``[i·B/N, (i+1)·B/N)`` of a batch of ``B``."""
  local = jax.local_devices()
  n = config.train.devices or len(local)
  if n > len(local):
    raise ValueError(f"train.devices = {n}, but JAX sees only {len(local)} local devices")
  if jax.process_count() == 1:
    return Mesh(np.array(local[:n]), ("data",))
  by_process: dict[int, list] = {}
  for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
    by_process.setdefault(device.process_index, []).append(device)
  return Mesh(np.array([d for p in sorted(by_process) for d in by_process[p][:n]]), ("data",))


def process_rows(rows: int, sharding: NamedSharding) -> slice:
  """The rows of a ``[rows, ...]`` batch split on ``sharding`` that this process's devices
  hold (one contiguous block on a ``data_mesh``)."""
  held = [index[0] for index in sharding.addressable_devices_indices_map((rows,)).values()]
  start, stop = min(i.start or 0 for i in held), max(rows if i.stop is None else i.stop
                                                        for i in held)
  return slice(start, stop)


def batch_placer(mesh: Mesh):
  """Puts a batch (a pytree of ``[batch, ...]`` arrays) on the mesh, split on the batch axis.

  With several processes each is given the same global batch, keeps its own rows
  (``process_rows``) and ``jax.make_array_from_process_local_data`` assembles the global
  array, so N processes compute what one process does with the same global batch."""
  n = mesh.devices.size
  sharding = NamedSharding(mesh, PartitionSpec("data"))
  processes = jax.process_count()

  def to_global(x):
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(
        sharding, x[process_rows(x.shape[0], sharding)], x.shape)

  def place(batch):
    for leaf in jax.tree.leaves(batch):
      if leaf.shape[0] % n:
        where = f"{n} devices" + (f" of {processes} processes" if processes > 1 else "")
        raise ValueError(f"A batch of {leaf.shape[0]} rows cannot be split over {where}; "
                         "make data.batch_size and data.eval_batch_size multiples of the "
                         "device count, or set train.devices")
    if processes > 1:
      return jax.tree.map(to_global, batch)
    return jax.device_put(batch, sharding) if n > 1 else batch

  return place


def replicate(tree, mesh: Mesh):
  """``tree`` on every device of ``mesh``. Across processes each gives its (equal) host copy:
  a process-local ``jax.Array`` cannot be ``device_put`` onto other processes' devices."""
  sharding = NamedSharding(mesh, PartitionSpec())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def prepare_data(task: Task, config, workdirs: Sequence[str]):
  """The task's data (``Task.prepare``), its tokenizer saved into every workdir.

  With several processes, process 0 prepares first (it trains and saves the tokenizer and
  fills any cache); the others then prepare the same data into a private folder, and all
  check that they hold the same vocabulary, epoch and evaluation batches."""
  data = task.prepare(config, workdirs[0]) if is_primary() else None
  sync_processes("xferlab: data prepared")
  if data is None:
    data = task.prepare(config, output_dir(workdirs[0]))
  for workdir in workdirs[1:] if is_primary() else ():
    data.tokenizer.save(os.path.join(workdir, "tokenizer"))
  if jax.process_count() > 1:
    multihost_utils.assert_equal(data_digest(data), "The processes prepared different data "
                                 "(tokenizer, batches per epoch or evaluation sets)")
  return data


def data_digest(data) -> np.ndarray:
  """A fingerprint (``uint32[2]``) of a task's vocabulary size, epoch length and evaluation
  batches."""
  h = hashlib.sha256(repr((data.tokenizer.vocab_size,
                           data.train.batches_per_epoch)).encode())
  for name in sorted(data.eval_sets):
    for leaf in jax.tree.leaves(data.eval_sets[name]):
      h.update(np.ascontiguousarray(leaf).tobytes())
  return np.frombuffer(h.digest()[:8], np.uint32)


# ------------------------------------------------------------------------------
# A run's outputs.

class Member:
  """One run of a (possibly vmapped) population: its workdir, metric log, checkpoints
  (``checkpoints/`` to resume, ``best/`` the selected model) and early-stopping tracker."""

  def __init__(self, config, workdir: str):
    self.config, self.workdir = config, workdir
    t = config.train
    self.ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), t.keep_checkpoints)
    self.best_ckpt = checkpoint.Checkpointer(os.path.join(workdir, "best"), 1)
    self.writer = MetricWriter(workdir) if is_primary() else NullWriter()   # process 0 writes
    self.sign = 1.0 if t.early_stopping_mode == "max" else -1.0
    self.tracker = {"best_value": None, "best_step": None, "best_metrics": {}, "bad_evals": 0,
                    "train_seconds": 0.0, "tokens": 0, "stopped": False}

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
                   train_step_compilations=compilations,   # one per batch shape
                   native_loops=native_loops(self.config))
    if is_primary():
      workdir_lib.write_results(self.workdir, results)
    return results

  def close(self) -> None:
    for closable in (self.writer, self.ckpt, self.best_ckpt):
      closable.close()


def init_params(task: Task, config, vocab_size: int, tokenizer, workdir: str):
  """``(graphdef, params, rest)`` of a new model: pretrained word vectors, then
  ``init_from`` subtrees (which win where both write) applied.

  Word-vector coverage is written to ``workdir/word_vectors.json`` (by process 0).
  """
  model = task.build_model(config, vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  if config.model.pretrained_vectors:
    params, coverage = feature_based.apply_pretrained_vectors(params, config, tokenizer)
    with open(os.path.join(output_dir(workdir), "word_vectors.json"), "w") as f:
      json.dump(coverage, f, indent=2)
  # init_from.path's subtrees, then each init_from.extra source's (model_based.init_sources)
  params = model_based.restore_init_from(params, config.init_from, tokenizer)
  return graphdef, params, rest


# ------------------------------------------------------------------------------
# The loop.

@dataclasses.dataclass
class Loop:
  """What the callbacks see of a running population."""
  config: Any
  task: Task
  data: Any                      # the task's TaskData
  members: list[Member]
  graphdef: Any                  # the model's structure (nnx.split)
  train_step: Callable
  eval_step: Callable
  rest: Any                      # the model's non-parameter state
  hparams: Any
  place: Callable                # puts a batch on the device mesh
  state: Any                     # TrainState, stacked on axis 0 for a population
  total_steps: int
  eval_every: int
  checkpoint_every: int
  population: int = 0            # 0: a single run
  step: int = 0
  stop: bool = False

  def member_of(self, tree, i: int):
    """Member ``i``'s slice of a stacked tree (the tree itself for a single run)."""
    return jax.tree.map(lambda x: x[i], tree) if self.population else tree


def run_loop(loop: Loop, callbacks: Sequence[cb.Callback], timer: cb.TimeLimit) -> None:
  """Trains until the last step, a callback's stop or the time budget."""
  t = loop.config.train
  every = lambda n: loop.step % n == 0
  for c in callbacks:
    c.start(loop)
  try:
    while not loop.stop:
      batch = next(loop.data.train)
      loop.state, out = loop.train_step(loop.state, loop.rest, loop.place(batch), loop.hparams)
      loop.step += 1
      tokens = loop.data.tokens_per_batch(batch)
      for c in callbacks:
        c.after_step(loop, out, tokens)
      is_last = loop.step >= loop.total_steps or timer.spent(loop, running=True)
      evaluating = every(loop.eval_every) or is_last
      if every(t.log_every) or evaluating or every(loop.checkpoint_every):
        for c in callbacks:          # step metrics to the host, NaN checked, time counted
          c.on_log(loop)
      if evaluating:
        for c in callbacks:
          c.on_eval(loop)
        loop.stop = is_last or any(c.wants_stop(loop) for c in callbacks)
      if every(loop.checkpoint_every) or loop.stop:
        for c in callbacks:
          c.on_checkpoint(loop)
      if evaluating:
        for c in callbacks:
          c.after_eval(loop)
  finally:
    for c in callbacks:
      c.end(loop)


def native_loops(config) -> str | None:
  """The native CPU loops' instruction set where this run's recurrent layers run them
  (``xferlab.native``: LSTM and GRU layers in float32 on one CPU device, where the loops
  built), else None: the pure-JAX scan, as in a checkout that was never ``pip install``-ed.
  Kept in ``results.json``: the two round floats differently, so a run repeats bit for bit
  only on the same loops."""
  from xferlab import native   # pylint: disable=import-outside-toplevel
  from xferlab.models.rnn import native_runs_here   # pylint: disable=import-outside-toplevel
  dtype = jnp.float32 if config.train.get("precision", "float32") == "float32" else jnp.bfloat16
  runs_them = (config.model.get("cell") in ("lstm", "gru")
               and config.model.get("scan_implementation", "auto") in ("auto", "native")
               and native_runs_here(dtype))
  return native.instruction_set() if runs_them else None


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains (or resumes) the run described by ``config`` in ``workdir``; returns its results.

  Writes ``config.json``, ``metrics.jsonl``, ``tensorboard/``, ``tokenizer/``,
  ``checkpoints/`` (latest, for resuming), ``best/`` (selected on
  ``train.early_stopping_metric``) and ``results.json``: the evaluation metrics
  of the selected model (and the task's ``final_metrics`` of it) plus
  ``best_step``, ``steps``, ``train_seconds``, ``tokens_per_second`` and ``native_loops``.
  """
  return train_population([config], [workdir])[0]


def check_runs(configs) -> None:
  """Fails in one line, before anything is written, on what would stop one of these single
  runs: a bad value, a bad data source or target, a missing ``init_from`` model, DP-SGD where
  it cannot apply, a missing corpus (every one, at once)."""
  from xferlab.config import validate   # pylint: disable=import-outside-toplevel
  from xferlab.data.catalog import check_available   # pylint: disable=import-outside-toplevel
  for config in configs:
    validate(config)                         # bad values fail in one line, before any write
    model_based.check_prerequisites(config)  # a missing init_from model: fail before writing
    privacy.check(config)                    # DP-SGD only where rows are independent examples
    check_available(get_task(config.task).corpora(config),   # every missing corpus, at once
                    manual_dir=config.data.manual_dir or None)


def _check_population(configs) -> None:
  check_runs(configs)
  if len({population_key(c) for c in configs}) > 1:
    raise ValueError("A vmapped population may differ only in "
                     f"{vectorizable_keys(configs[0])}; these configurations differ elsewhere")


def _start_states(task, configs, inits, tx, members) -> tuple[list[TrainState], dict | None]:
  """Each run's state at step 0, or as its latest checkpoint left it (with the data
  iterator's position, returned for ``data.train.restore``)."""
  states = [TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                       rng=jax.random.PRNGKey(c.seed), task_state=task.initial_task_state(c),
                       ema_params=cb.EMA(c.train.ema_decay).init(params))
            for c, (_, params, _) in zip(configs, inits)]
  latest = [m.ckpt.latest_step() for m in members]
  if all(s is None for s in latest):
    for member in members:   # rows of an attempt killed before its first checkpoint
      member.writer.keep_until(None)
    return states, None
  if len(set(latest)) > 1:
    raise ValueError(f"The runs of this population stopped at different steps {latest}; "
                     "resume them one by one (vectorize=False)")
  for i, member in enumerate(members):
    states[i], meta = member.ckpt.restore(states[i])
    member.tracker = meta["tracker"]
    step = int(np.max(np.asarray(states[i].step)))
    member.writer.keep_until(step)   # the later steps are logged again
    if is_primary():
      print(f"[xferlab] {member.workdir}: resuming from its checkpoint at step {step}", flush=True)
  return states, meta["data"]


def build_loop(configs, workdirs, members: list[Member], data=None) -> Loop:
  """The data, the initial parameters, the optimizer, the compiled steps and the placed
  state of a population; ``data``: the task's data already prepared for ``configs[0]``
  (``prepare_data``), else prepared here."""
  config = configs[0]
  task = get_task(config.task)
  data = data if data is not None else prepare_data(task, config, workdirs)
  inits = [init_params(task, c, data.tokenizer.vocab_size, data.tokenizer, w)
           for c, w in zip(configs, workdirs)]
  graphdef, rest = inits[0][0], inits[0][2]
  t = config.train
  total_steps = t.num_steps or t.num_epochs * data.train.batches_per_epoch
  eval_every = t.eval_every or max(1, round(t.eval_every_epochs * data.train.batches_per_epoch))
  tx = model_based.build_optimizer(config, inits[0][1], total_steps)
  population = len(configs) if len(configs) > 1 else 0
  train_step, eval_step = compiled_steps(task, config, graphdef, tx, total_steps, population)
  states, data_position = _start_states(task, configs, inits, tx, members)
  if data_position is not None:
    data.train.restore(data_position)
  stack = lambda *xs: jnp.stack(xs)
  state = jax.tree.map(stack, *states) if population else states[0]
  dp_hparams = privacy.hparams(privacy.budget(config, data.train, total_steps))
  hparams = [dict(lambda_hparams(c), **dp_hparams) for c in configs]
  hparams = jax.tree.map(stack, *hparams) if population else hparams[0]
  mesh = data_mesh(config)
  state = replicate(state, mesh)
  return Loop(config=config, task=task, data=data, members=members, graphdef=graphdef,
              train_step=train_step,
              eval_step=eval_step, rest=rest, hparams=hparams, place=batch_placer(mesh),
              state=state, total_steps=total_steps, eval_every=eval_every,
              checkpoint_every=t.checkpoint_every or eval_every, population=population,
              step=int(np.max(np.asarray(state.step))))


def make_callbacks(loop: Loop) -> tuple[list[cb.Callback], cb.TimeLimit]:
  """The callbacks of a run, in the order they act at each event."""
  t = loop.config.train
  metrics = cb.StepMetrics(cb.NanGuard())
  timer = cb.TimeLimit(t.max_train_minutes)

  degenerate = cb.DegenerateCheck(enabled=is_primary())
  budget = privacy.budget(loop.config, loop.data.train, loop.total_steps)

  def evaluate_fn(loop, params):
    sets = {k: v for k, v in loop.data.eval_sets.items() if k not in t.final_eval_sets}
    results = evaluate(loop.task, loop.eval_step, params, loop.rest, sets, loop.place,
                       loop.population, on_sums=degenerate.observe)
    return [dict(r, **privacy.evaluation_metrics(budget, loop.step)) for r in results]

  evaluation = cb.EvaluateAndSelect(evaluate_fn)
  progress = cb.Progress(t.progress_bar, loop.config.name, metrics, timer, evaluation)
  return [metrics, timer, progress, evaluation, degenerate, cb.Checkpoint()], timer


def train_population(configs: Sequence[Any], workdirs: Sequence[str]) -> list[dict[str, float]]:
  """Trains K runs at once; each gets the workdir and results a single run would.

  With K > 1 the runs must differ only in ``vectorizable_keys`` (λ and its
  schedule's values; ``seed`` if ``data.shuffle_seed`` is fixed): their states
  are stacked on a leading axis and one ``jax.vmap``-ed, jitted step trains all
  of them on the same batches. K = 1 is the plain single run (no vmap).

  Batches are split over a ``("data",)`` device mesh (``train.devices``),
  parameters replicated: the same code runs on one device or many, in one process or
  several (``jax.distributed``: each feeds its rows, process 0 writes the files).
  """
  configs, workdirs = list(configs), [os.path.abspath(w) for w in workdirs]
  _check_population(configs)
  for config, workdir in zip(configs, workdirs) if is_primary() else ():
    workdir_lib.claim(config, workdir)
  sync_processes("xferlab: workdirs claimed")
  members = [Member(c, w) for c, w in zip(configs, workdirs)]
  try:
    loop = build_loop(configs, workdirs, members)
    unknown = set(configs[0].train.final_eval_sets) - set(loop.data.eval_sets)
    if unknown:
      raise ValueError(f"train.final_eval_sets names {sorted(unknown)}; this task's evaluation "
                       f"sets are {sorted(loop.data.eval_sets)}")
    callbacks, timer = make_callbacks(loop)
    loop.stop = (loop.step >= loop.total_steps or all(m.tracker["stopped"] for m in members)
                 or timer.spent(loop))
    run_loop(loop, callbacks, timer)
    rates = {f"unk_rate_{split}": rate for split, rate in loop.data.unknown_rates.items()}
    scored = final_evaluation(loop)
    spent = privacy.budget(loop.config, loop.data.train, loop.total_steps)
    spent = spent.report(loop.step) if spent else {}   # ε of the steps trained
    final = [dict(rates, **scored[i], **final_metrics(loop, i), **spent)
             for i in range(len(members))]
    for c in callbacks:
      if isinstance(c, cb.DegenerateCheck):
        c.report(loop, final)
  finally:
    for member in members:
      member.close()
  return [m.results(loop.step, loop.train_step._cache_size(), extra)
          for m, extra in zip(members, final)]


def final_evaluation(loop: Loop) -> list[dict]:
  """Each run's selected model scored on ``train.final_eval_sets``, the evaluation sets too
  large to score at every evaluation (one dict per run; empty without such sets)."""
  names = tuple(loop.config.train.final_eval_sets)
  if not names:
    return [{} for _ in loop.members]
  best = [m.best_ckpt.restore({"params": loop.member_of(loop.state.params, i)})[0]["params"]
          for i, m in enumerate(loop.members)]
  params = jax.tree.map(lambda *xs: jnp.stack(xs), *best) if loop.population else best[0]
  sets = {k: loop.data.eval_sets[k] for k in names}
  return evaluate(loop.task, loop.eval_step, params, loop.rest, sets, loop.place,
                  loop.population)


def final_metrics(loop: Loop, i: int) -> dict:
  """The task's after-training metrics of member ``i``'s selected (best) model, e.g. the
  BLEU of beam-search translations; ``{}`` for tasks that keep the default (no restore)."""
  if type(loop.task).final_metrics is Task.final_metrics:
    return {}
  member = loop.members[i]
  best, _ = member.best_ckpt.restore({"params": loop.member_of(loop.state.params, i)})
  params = best["params"]
  if jax.process_count() > 1:   # decode on this process's devices alone, no collectives
    params = jax.tree.map(jnp.asarray, jax.device_get(params))
  model = nnx.merge(loop.graphdef, params, loop.rest)
  return loop.task.final_metrics(model, loop.data.tokenizer, member.config,
                                 output_dir(member.workdir))


def _steps_per_second(loop: Loop, steps: int) -> float:
  """Seconds of ``steps`` train steps of a built loop, after one step that compiles."""
  import time   # pylint: disable=import-outside-toplevel
  batches = [loop.place(next(loop.data.train)) for _ in range(steps + 1)]
  loop.state, out = loop.train_step(loop.state, loop.rest, batches[0], loop.hparams)
  jax.block_until_ready(out["loss"])
  start = time.perf_counter()
  for batch in batches[1:]:
    loop.state, out = loop.train_step(loop.state, loop.rest, batch, loop.hparams)
  jax.block_until_ready(out["loss"])
  return time.perf_counter() - start


def vectorization_choice(configs: Sequence[Any], steps: int = 8) -> dict:
  """Whether a population of ``configs`` trains faster as one vmapped program than as its
  runs one after the other, measured here: ``steps`` steps of the vmapped program against
  ``len(configs)`` times ``steps`` steps of one run, on the same batches, compilation
  excluded, in scratch folders that are removed. Returns ``{"vmapped_s", "sequential_s",
  "vectorize": bool, "runs", "steps", "remembered": bool, "measured_at"}``.

  The answer is remembered for this program on this machine (``xferlab.decisions``): a
  later population with the same key reuses it without measuring (``"remembered": True``,
  with the timings and time of the measurement that made it). Not across several processes:
  each keeps its own file, and one that remembers while another measures would leave the
  other waiting at the measurement's data barrier, so there every population measures."""
  if jax.process_count() > 1:
    return dict(_measure_vectorization(configs, steps), remembered=False)
  choice_key = decisions.key("vectorize", population_key(configs[0]), runs=len(configs),
                             steps=steps)
  remembered = decisions.recall(choice_key)
  if remembered is not None:
    return dict(remembered, remembered=True)
  return dict(decisions.remember(choice_key, _measure_vectorization(configs, steps)),
              remembered=False)


def _measure_vectorization(configs: Sequence[Any], steps: int) -> dict:
  """``vectorization_choice``'s measurement, made every time."""
  scratch = tempfile.mkdtemp(prefix="xferlab-vmap-probe-")
  try:
    timings, data, start = {}, None, None
    for name, group in (("vmapped_s", list(configs)), ("sequential_s", list(configs[:1]))):
      dirs = [os.path.join(scratch, name, str(i)) for i in range(len(group))]
      members = [Member(c, d) for c, d in zip(group, dirs)]
      try:
        if data is not None:            # prepared once; both ways read the same batches
          data.train.restore(start)
        loop = build_loop(group, dirs, members, data)
        data, start = loop.data, start or loop.data.train.state()
        seconds = _steps_per_second(loop, steps)
      finally:
        for member in members:
          member.close()
      timings[name] = seconds * (len(configs) if name == "sequential_s" else 1)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return dict(timings, vectorize=timings["vmapped_s"] < timings["sequential_s"],
              runs=len(configs), steps=steps)

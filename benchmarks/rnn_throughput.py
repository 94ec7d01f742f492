"""RNN training throughput on the CPU: xferlab against PyTorch, and against this CPU's peak.

  python -m benchmarks.rnn_throughput [--quick] [--out rnn_throughput.json]
      [--cells lstm,gru] [--repeats 5] [--unroll 1] [--sections layers,classifier,sweep]

Everything is forward + backward in float32, measured in one process:

* ``layers``: one ``xferlab.models.rnn.RecurrentLayer`` (LSTM, GRU) called on
  ``inputs float[B, T, I]`` with every length = T; loss = sum of the outputs;
  gradients w.r.t. the parameters and the inputs (one jitted
  ``jax.value_and_grad``). PyTorch: ``nn.LSTM`` / ``nn.GRU`` (batch_first),
  ``out.sum().backward()`` with ``x.requires_grad_()``. Beside them, the
  *matmul-only ceiling*: the layer's matmuls alone, same shapes, same order
  and dependencies, no gate arithmetic (``matmul_ceiling``) -- what no XLA
  implementation of the layer can beat on this machine.
* ``classifier``: the whole train step of the project's classifier, built from
  ``base_config()``: embedding 256, 2-layer LSTM of ``H`` units, mean+max pooling,
  linear head, DANN discriminator (gradient reversal, MLP 100), Adam with
  global-norm clipping (``xferlab.train.compiled_steps``). Each step reads ``B``
  source and ``B`` target rows, so it counts ``2·B·T`` tokens. PyTorch: the
  same network as an ``nn.Module`` and an Adam step.
* ``sweep``: the quick start's λ sweep with K = 4 values, as four sequential
  runs and as one vmapped program (``launch.sweep(..., vectorize=True)``),
  whole sweeps timed end to end and alternated; prints the speed-up.
* ``loop``: where the time goes: a cell's elementwise gate step inside
  ``lax.scan`` against the same arithmetic as one ``vmap`` over the steps (no
  loop), at the acceptance point and at the quick start's GRU; and the quick
  start's train step for one run against 4 runs vmapped (the sweep's program).

Grid: batch {32, 64} × hidden {256, 512, 1024} × length {64, 128, 256}, input 256.
``--quick``: the acceptance point (B 64, T 128, H 512) for each cell, and one
reduced classifier point (B 32, T 64, H 256); it also estimates how long the
full grid would take.

Method: each callable is compiled and warmed up (its first call, timed apart as
the compile time, then 2 more calls); then ``--repeats`` rounds alternate
xferlab and PyTorch, each timing ``k`` iterations (``k`` such that a round lasts
at least ~0.5 s); the median seconds per iteration is reported. Alternating in
one process makes the ratio meaningful on a shared, noisy machine; absolute
figures from different runs are not comparable.

FLOPs are the matmul FLOPs, counted analytically: a layer with ``G`` gates
(LSTM 4, GRU 3) does ``2·B·T·(I+H)·G·H`` forward, twice that backward (gradients
of the inputs and of the weights), so 3× forward in all. The practical peak is
the GFLOP/s of a jitted 2048×2048 float32 ``jnp.dot`` measured in the same
invocation (and of ``torch.mm``); the theoretical peak is printed with its
arithmetic.

PyTorch is optional (``pip install -e ".[bench]"``; its models are in
``benchmarks/torch_reference.py``); without it only the xferlab side runs. The
results file holds every number; do not commit it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import report as rep, torch_reference
from xferlab import decisions as xdecisions, train
from xferlab.defaults import base_config
from xferlab.models import cells
from xferlab.models.cells import make_cell
from xferlab.models.rnn import RecurrentLayer
from xferlab.tasks.classification import ClassificationTask

GATES = {"lstm": 4, "gru": 3}
INPUT_SIZE = 256          # layer input size = classifier embedding size
VOCAB_SIZE = 20000        # base_config().data.vocab_size
GRID = {"batch": (32, 64), "hidden": (256, 512, 1024), "length": (64, 128, 256)}
ACCEPTANCE = {"batch": 64, "length": 128, "hidden": 512}   # issue 6, LSTM
QUICK_CLASSIFIER = {"batch": 32, "length": 64, "hidden": 256}
MATMUL_SIZE = 2048
PEAK_OF = {"xferlab": "jax_gflops", "ceiling": "jax_gflops", "torch": "torch_gflops",
           "xferlab_fused": "jax_gflops"}  # matmul peaks
MIN_ROUND_SECONDS = 0.5
WARMUP_CALLS = 2          # after the first (compiling) call


# --- timing

def seconds_per_iteration(fn: Callable[[], object], iterations: int) -> float:
  """Wall seconds per call of ``fn`` (which must block until its work is done)."""
  start = time.perf_counter()
  for _ in range(iterations):
    fn()
  return (time.perf_counter() - start) / iterations


def compare(candidates: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict]:
  """Warms every candidate up, then times them in alternation; medians per iteration.

  Returns ``{name: {"seconds": median s/iteration, "rounds_s": [...],
  "iterations_per_round": k, "first_call_s": compile + first run}}``.
  """
  out = {}
  for name, fn in candidates.items():
    first = seconds_per_iteration(fn, 1)
    warm = seconds_per_iteration(fn, WARMUP_CALLS)
    k = max(1, math.ceil(MIN_ROUND_SECONDS / max(warm, 1e-9)))
    out[name] = {"first_call_s": first, "iterations_per_round": k, "rounds_s": []}
  for _ in range(rounds):
    for name, fn in candidates.items():
      out[name]["rounds_s"].append(seconds_per_iteration(fn, out[name]["iterations_per_round"]))
  for r in out.values():
    r["seconds"] = statistics.median(r["rounds_s"])
  return out


# --- FLOPs and peaks

def layer_flops(cell: str, rows: int, time_steps: int, inputs: int, hidden: int) -> int:
  """Matmul FLOPs of one recurrent layer, forward + backward (3 × forward)."""
  return 3 * 2 * rows * time_steps * (inputs + hidden) * GATES[cell] * hidden


def linear_flops(rows: int, inputs: int, outputs: int) -> int:
  """Matmul FLOPs of one dense layer, forward + backward."""
  return 3 * 2 * rows * inputs * outputs


def classifier_flops(batch: int, time_steps: int, hidden: int, num_classes: int = 2,
                     discriminator_hidden: int = 100) -> int:
  """FLOPs of one DANN train step: 2 LSTM layers over 2·B rows, head, discriminator."""
  rows = 2 * batch                      # source + target rows
  features = 2 * hidden                 # mean + max pooling
  return (layer_flops("lstm", rows, time_steps, INPUT_SIZE, hidden)
          + layer_flops("lstm", rows, time_steps, hidden, hidden)
          + linear_flops(batch, features, num_classes)
          + linear_flops(rows, features, discriminator_hidden)
          + linear_flops(rows, discriminator_hidden, 1))


def _cpu_info() -> tuple[str, float | None, set[str]]:
  """(model name, clock MHz, flags) from /proc/cpuinfo, else lscpu."""
  text = ""
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
  except OSError:
    pass
  fields: dict[str, str] = {}
  for line in text.splitlines():
    key, _, value = line.partition(":")
    fields.setdefault(key.strip(), value.strip())
  if "cpu MHz" not in fields:
    try:
      lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
      for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault({"CPU max MHz": "cpu MHz", "CPU MHz": "cpu MHz", "Flags": "flags",
                           "Model name": "model name"}.get(key.strip(), key.strip()),
                          value.strip())
    except (OSError, subprocess.CalledProcessError):
      pass
  mhz = float(fields["cpu MHz"]) if "cpu MHz" in fields else None
  return fields.get("model name", platform.processor()), mhz, set(fields.get("flags", "").split())


def theoretical_peak() -> dict:
  """cores × clock × float32 lanes × 2 (FMA) × FMA units per core, with the arithmetic."""
  model, mhz, flags = _cpu_info()
  cores = os.cpu_count() or 1
  if "avx512f" in flags:
    isa, lanes = "AVX-512", 16
  elif "avx2" in flags:
    isa, lanes = "AVX2", 8
  else:
    isa, lanes = "SSE", 4
  fma = 2 if "fma" in flags or "avx512f" in flags else 1
  fma_units = 2                         # assumption: 2 vector FMA pipes per server core
  if mhz is None:
    return {"cpu": model, "gflops": None, "arithmetic": "clock unknown: no theoretical peak"}
  gflops = cores * (mhz / 1000) * lanes * fma * fma_units
  arithmetic = (f"{cores} cores (os.cpu_count()) × {mhz / 1000:.3f} GHz (cpu MHz) × {lanes} "
                f"float32 lanes ({isa}) × {fma} (FMA = multiply + add) × {fma_units} FMA "
                f"units/core (assumed: 2 for AVX-512/AVX2 server cores) = {gflops:.1f} GFLOP/s")
  return {"cpu": model, "cores": cores, "ghz": mhz / 1000, "isa": isa, "lanes": lanes,
          "flops_per_fma": fma, "fma_units_assumed": fma_units, "gflops": gflops,
          "arithmetic": arithmetic}


def jax_matmul(n: int = MATMUL_SIZE) -> Callable[[], object]:
  a, b = jax.random.normal(jax.random.PRNGKey(0), (2, n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  return lambda: dot(a, b).block_until_ready()


# --- one recurrent layer

def xferlab_layer(cell: str, batch: int, time_steps: int, hidden: int, unroll: int,
                  implementation: str = "auto") -> Callable[[], object]:
  """One jitted ``value_and_grad`` of ``sum(RecurrentLayer(x))`` w.r.t. parameters and inputs."""
  layer = RecurrentLayer(make_cell(cell, INPUT_SIZE, hidden, rngs=nnx.Rngs(0)), unroll=unroll,
                         implementation=implementation)
  graphdef, params, rest = nnx.split(layer, nnx.Param, ...)

  def loss(params, x, lengths):
    outputs, _ = nnx.merge(graphdef, params, rest)(x, lengths)
    return jnp.sum(outputs)

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  x = jax.random.normal(jax.random.PRNGKey(1), (batch, time_steps, INPUT_SIZE), jnp.float32)
  lengths = jnp.full((batch,), time_steps, jnp.int32)
  return lambda: jax.block_until_ready(grad(params, x, lengths))


def matmul_ceiling(cell: str, batch: int, time_steps: int, hidden: int) -> Callable[[], object]:
  """The layer's matmuls alone, in the same order and shapes, with no gate arithmetic.

  Forward: the input projection ``[T·B, I] x [I, G·H]``, then ``T`` dependent
  steps ``[B, H] x [H, G·H]``; backward: ``T`` dependent steps
  ``[B, G·H] x [G·H, H]``, then ``dW_h``, ``dW_x`` and ``dx`` over all ``T·B``
  rows. The same FLOPs as ``layer_flops``: how fast *any* XLA implementation of
  the layer could be on this machine (the elementwise work costs extra).
  """
  width = GATES[cell] * hidden
  key = jax.random.split(jax.random.PRNGKey(2), 3)
  w_x = jax.random.normal(key[0], (INPUT_SIZE, width), jnp.float32) * 0.01
  w_h = jax.random.normal(key[1], (hidden, width), jnp.float32) * 0.01
  x = jax.random.normal(key[2], (time_steps * batch, INPUT_SIZE), jnp.float32)

  @jax.jit
  def program(w_x, w_h, x):
    projected = (x @ w_x).reshape(time_steps, batch, width)

    def forward(h, p_t):
      h = (h @ w_h + p_t)[:, :hidden]
      return h, h

    _, hs = jax.lax.scan(forward, jnp.zeros((batch, hidden)), projected)
    w_h_t = w_h.T

    def backward(d, h_t):
      d_gates = jnp.tile(d + h_t, (1, GATES[cell]))
      return d_gates @ w_h_t, d_gates

    _, d_gates = jax.lax.scan(backward, jnp.zeros((batch, hidden)), hs, reverse=True)
    rows = d_gates.reshape(time_steps * batch, width)
    return (hs.reshape(-1, hidden).T @ rows, x.T @ rows, rows @ w_x.T)

  return lambda: jax.block_until_ready(program(w_x, w_h, x))


# --- the classifier train step

def classifier_config(hidden: int, unroll: int, implementation: str = "auto"):
  config = base_config()
  config.model.scan_implementation = implementation
  config.model.cell = "lstm"
  config.model.embed_dim = INPUT_SIZE
  config.model.hidden_size = hidden
  config.model.num_layers = 2
  config.classification.pooling = ("mean", "max")
  config.model.unroll = unroll
  config.transfer.method = "dann"
  config.data.vocab_size = VOCAB_SIZE
  return config


def random_batch(batch: int, time_steps: int, seed: int = 0) -> dict:
  """A full-length training batch in ``xferlab.data.batching``'s format (source + target)."""
  rng = np.random.default_rng(seed)

  def half(labels: bool):
    rows = {"tokens": rng.integers(1, VOCAB_SIZE, (batch, time_steps), dtype=np.int32),
            "lengths": np.full((batch,), time_steps, np.int32),
            "weights": np.ones((batch,), np.float32)}
    if labels:
      rows["labels"] = rng.integers(0, 2, (batch,), dtype=np.int32)
    return rows

  return {"source": half(True), "target": half(False)}


def xferlab_classifier(batch: int, time_steps: int, hidden: int, unroll: int,
                       implementation: str = "auto") -> Callable[[], object]:
  """The project's own jitted DANN train step (``train.compiled_steps``)."""
  return xferlab_classifier_step(batch, time_steps, hidden, unroll, implementation)[0]


def xferlab_classifier_step(batch: int, time_steps: int, hidden: int, unroll: int,
                            implementation: str = "auto"):
  """``(step, lower)``: one call of ``step()`` runs the jitted DANN train step on a fixed
  full-length batch (the state carried and donated); ``lower()`` lowers that same step for the
  current state (``benchmarks.profile_step`` reads its compiled HLO)."""
  config = classifier_config(hidden, unroll, implementation)
  task = ClassificationTask()
  model = task.build_model(config, VOCAB_SIZE)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  total_steps = 1000
  tx = train.make_optimizer(config.optimizer, total_steps)
  train_step, _ = train.compiled_steps(task, config, graphdef, tx, total_steps)
  box = {"state": train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                                   rng=jax.random.PRNGKey(0))}
  hparams = train.lambda_hparams(config)
  data = jax.device_put(random_batch(batch, time_steps))

  def step():
    box["state"], out = train_step(box["state"], rest, data, hparams)   # state is donated
    jax.block_until_ready(out["loss"])

  return step, lambda: train_step.lower(box["state"], rest, data, hparams)


def torch_classifier(batch: int, time_steps: int, hidden: int) -> Callable[[], object]:
  """The same network and step in PyTorch (``torch_reference.classifier``), on the same batch."""
  return torch_reference.classifier(classifier_config(hidden, 1), random_batch(batch, time_steps),
                                    VOCAB_SIZE)


# --- sections

def summarize(timings: dict[str, dict], tokens: int, flops: int, peaks: dict) -> dict:
  """Adds tokens/s, GFLOP/s and the fraction of the matmul peak to each framework's timing."""
  row = {"tokens_per_iteration": tokens, "flops_per_iteration": flops}
  for name, t in timings.items():
    gflops = flops / t["seconds"] / 1e9
    row[name] = dict(t, tokens_per_s=tokens / t["seconds"], gflops=gflops,
                     fraction_of_matmul_peak=gflops / peaks["matmul"][PEAK_OF[name]])
  row["ratio"] = (row["xferlab"]["tokens_per_s"] / row["torch"]["tokens_per_s"]
                  if "torch" in row else None)
  return row


TABLE_HEADER = "\n".join(rep.header([
    "cell", "B", "T", "H", "xferlab tok/s", "torch tok/s", "ratio", "xferlab GFLOP/s",
    "torch GFLOP/s", "xferlab % of matmul peak", "matmul-only ceiling tok/s", "ceiling / torch"]))


def table_row(row: dict) -> str:
  x, t, c = row["xferlab"], row.get("torch"), row.get("ceiling")
  fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
  ceiling = fmt(c and c["tokens_per_s"], ",.0f")
  ceiling_ratio = fmt(c and t and c["tokens_per_s"] / t["tokens_per_s"], ".2f")
  return rep.row([str(row[k]) for k in ("cell", "batch", "length", "hidden")] + [
      f"{x['tokens_per_s']:,.0f}", fmt(t and t["tokens_per_s"], ",.0f"), fmt(row["ratio"], ".2f"),
      f"{x['gflops']:.1f}", fmt(t and t["gflops"], ".1f"),
      f"{100 * x['fraction_of_matmul_peak']:.1f}%", ceiling, ceiling_ratio])


def native_in_use(cell: str) -> bool:
  """Whether xferlab's default (``auto``) runs ``cell`` with the native loops here; the
  sections then also time the pure-JAX fused scan (``xferlab_fused``) beside it."""
  from xferlab.models.rnn import native_applies
  return native_applies(make_cell(cell, 2, 2, rngs=nnx.Rngs(0)), jnp.float32)


def measure_point(args, peaks: dict, labels: dict, candidates: dict, tokens: int,
                  flops: int) -> dict:
  """Times the candidates at one grid point, prints and returns its table row (and, where
  the native loops ran, their speed-up over the fused scan)."""
  row = dict(labels, **summarize(compare(candidates, args.repeats), tokens, flops, peaks))
  print(table_row(row), flush=True)
  if "xferlab_fused" in row:
    row["native_over_fused"] = (row["xferlab"]["tokens_per_s"]
                                / row["xferlab_fused"]["tokens_per_s"])
    print(f"  native loops {row['xferlab']['tokens_per_s']:,.0f} tok/s against the fused "
          f"scan's {row['xferlab_fused']['tokens_per_s']:,.0f}: "
          f"{row['native_over_fused']:.2f}x", flush=True)
  return row


def grid_points(quick: bool, quick_point: dict) -> list[dict]:
  if quick:
    return [dict(quick_point)]
  return [{"batch": b, "hidden": h, "length": t}
          for b, h, t in itertools.product(GRID["batch"], GRID["hidden"], GRID["length"])]


def run_peaks(args) -> dict:
  """The practical peak (a large matmul, both frameworks) and the theoretical one."""
  candidates = {"jax": jax_matmul()}
  if torch_reference.available():
    candidates["torch"] = torch_reference.matmul(MATMUL_SIZE)
  timings = compare(candidates, args.repeats)
  flops = 2 * MATMUL_SIZE ** 3
  matmul = {"size": MATMUL_SIZE, "timings": timings}
  for name, t in timings.items():
    matmul[f"{name}_gflops"] = flops / t["seconds"] / 1e9
  peak = {"matmul": matmul, "theoretical": theoretical_peak()}
  print(f"Theoretical peak: {peak['theoretical']['arithmetic']}")
  torch_text = (f", PyTorch torch.mm {matmul['torch_gflops']:.1f} GFLOP/s"
                if "torch_gflops" in matmul else "")
  print(f"Practical peak ({MATMUL_SIZE}x{MATMUL_SIZE} float32 matmul, median): "
        f"JAX jnp.dot {matmul['jax_gflops']:.1f} GFLOP/s{torch_text}\n", flush=True)
  return peak


def run_layers(args, peaks: dict) -> list[dict]:
  """One LSTM / GRU layer, forward + backward, over the grid."""
  print(f"## One recurrent layer, input {INPUT_SIZE}, forward + backward (unroll {args.unroll})")
  print(TABLE_HEADER, flush=True)
  rows = []
  for cell in args.cells:
    for p in grid_points(args.quick, ACCEPTANCE):
      b, t, h = p["batch"], p["length"], p["hidden"]
      candidates = {"xferlab": xferlab_layer(cell, b, t, h, args.unroll),
                    "ceiling": matmul_ceiling(cell, b, t, h)}
      if native_in_use(cell):
        candidates["xferlab_fused"] = xferlab_layer(cell, b, t, h, args.unroll, "fused")
      if torch_reference.available():
        candidates["torch"] = torch_reference.layer(cell, b, t, INPUT_SIZE, h)
      rows.append(measure_point(args, peaks, dict(cell=cell, input=INPUT_SIZE, **p), candidates,
                                b * t, layer_flops(cell, b, t, INPUT_SIZE, h)))
  print()
  return rows


def run_classifier(args, peaks: dict) -> list[dict]:
  """The DANN classifier train step (B source + B target rows), over the grid."""
  print(f"## Classifier train step: embedding {INPUT_SIZE}, 2-layer LSTM, mean+max pooling, "
        f"head, DANN discriminator, Adam; B source + B target rows, 2·B·T tokens")
  print(TABLE_HEADER, flush=True)
  rows = []
  for p in grid_points(args.quick, QUICK_CLASSIFIER):
    b, t, h = p["batch"], p["length"], p["hidden"]
    candidates = {"xferlab": xferlab_classifier(b, t, h, args.unroll)}
    if native_in_use("lstm"):
      candidates["xferlab_fused"] = xferlab_classifier(b, t, h, args.unroll, "fused")
    if torch_reference.available():
      candidates["torch"] = torch_classifier(b, t, h)
    rows.append(measure_point(args, peaks, dict(cell="lstm x2 + dann", input=INPUT_SIZE, **p),
                              candidates, 2 * b * t, classifier_flops(b, t, h)))
  print()
  return rows


SWEEP_LAMBDAS = (0.0, 0.03, 0.1, 0.3)


# launch.sweep's vectorize. "auto" measures its choice (a decisions file of its own, empty);
# "auto_remembered" runs next with the same file, so it reuses that choice (xferlab.decisions).
SWEEP_MODES = {"sequential": False, "vectorized": True, "auto": "auto", "auto_remembered": "auto"}


def run_sweep(args, peaks: dict) -> dict:
  """The quick start's λ sweep, K = 4: four sequential runs, one vmapped program, and
  ``vectorize="auto"`` twice: first on this machine (a few steps timed both ways, then the
  faster; its decision recorded and remembered), then again with the decision remembered.

  Each measurement is a complete ``launch.sweep`` in a fresh directory (data,
  compilation, training, evaluation, checkpoints), with the jit cache cleared
  first; the modes are alternated ``--sweep-rounds`` times and the medians compared.
  """
  import shutil
  import tempfile
  from xferlab import launch
  experiment = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "experiments", "quickstart.py") + ":dann"
  grid = {"transfer.lam": list(SWEEP_LAMBDAS)}
  print(f"## Vectorized λ sweep: quick start, λ in {SWEEP_LAMBDAS}, one seed; "
        "whole sweeps, alternated", flush=True)
  times = {mode: [] for mode in SWEEP_MODES}
  accuracies, decisions = {}, []
  saved_env = os.environ.get(xdecisions.ENV)
  for _ in range(args.sweep_rounds):
    decisions_dir = tempfile.mkdtemp(prefix="sweep-decisions-")   # nothing remembered yet
    os.environ[xdecisions.ENV] = os.path.join(decisions_dir, "decisions.json")
    for mode, vectorize in SWEEP_MODES.items():
      train.STEP_CACHE.clear()
      workdir = tempfile.mkdtemp(prefix=f"sweep-{mode}-")
      start = time.perf_counter()
      rows = launch.sweep(experiment, grid, workdir, overrides={"train.progress_bar": False},
                          vectorize=vectorize)
      times[mode].append(time.perf_counter() - start)
      accuracies[mode] = [r["results"]["target_accuracy"] for r in rows]
      if mode.startswith("auto"):
        with open(os.path.join(workdir, "vectorize.json")) as f:
          populations = json.load(f)["populations"]
        for population in populations:   # the temporary workdir is deleted: its points only
          population["workdirs"] = [os.path.relpath(w, workdir) for w in population["workdirs"]]
        decisions.append(dict(mode=mode, populations=populations))
      shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(decisions_dir, ignore_errors=True)
  if saved_env is None:
    os.environ.pop(xdecisions.ENV, None)
  else:
    os.environ[xdecisions.ENV] = saved_env
  medians = {mode: statistics.median(t) for mode, t in times.items()}
  print("\n".join(rep.header(["mode", f"seconds (median of {args.sweep_rounds})",
                               "target accuracy per λ"])))
  for mode, seconds in medians.items():
    print(rep.row([mode, f"{seconds:.1f}", ", ".join(f"{100 * a:.1f}" for a in accuracies[mode])]))
  seq = medians["sequential"]
  picked = sorted({"vmapped" if p["vectorize"] else "sequential"
                   for d in decisions for p in d["populations"]})
  print(f"Vmapped sweep against sequential: {seq / medians['vectorized']:.2f}x; "
        f"vectorize='auto' against sequential: {seq / medians['auto']:.2f}x the first time on "
        f"this machine (it measures), {seq / medians['auto_remembered']:.2f}x with its "
        f"decision remembered (it picked {', '.join(picked)})\n", flush=True)
  return {"lambdas": list(SWEEP_LAMBDAS), "seconds": times, "median_sequential_s": seq,
          "median_vectorized_s": medians["vectorized"], "median_auto_s": medians["auto"],
          "median_auto_remembered_s": medians["auto_remembered"],
          "speedup": seq / medians["vectorized"], "auto_speedup": seq / medians["auto"],
          "auto_remembered_speedup": seq / medians["auto_remembered"],
          "auto_decisions": decisions, "target_accuracy": accuracies}


# --- where the time goes inside the loop

LOOP_POINTS = ({"cell": "lstm", "batch": 64, "hidden": 512},   # the acceptance point
               {"cell": "gru", "batch": 128, "hidden": 64})    # the quick start's step
LOOP_STEPS = 128


def gate_math(cell: str, batch: int, hidden: int) -> dict[str, Callable[[], object]]:
  """The cell's elementwise step (``xferlab.models.cells``) over ``LOOP_STEPS`` steps, twice:
  inside ``lax.scan`` (each step reads the previous carry, as in the layer) and as one
  ``vmap`` over the steps (the same arithmetic on the same arrays, no loop)."""
  gates = {"lstm": cells.lstm_gates, "gru": cells.gru_gates}[cell]
  width = GATES[cell] * hidden
  key1, key2 = jax.random.split(jax.random.PRNGKey(0))
  projected = jax.random.normal(key1, (LOOP_STEPS, batch, width), jnp.float32)
  hidden_pre = jax.random.normal(key2, (LOOP_STEPS, batch, width), jnp.float32)
  h = jnp.zeros((batch, hidden), jnp.float32)
  carry = (h, h) if cell == "lstm" else h
  in_scan = jax.jit(lambda carry, p, q: jax.lax.scan(
      lambda c, xs: gates(c, *xs), carry, (p, q))[1])
  no_loop = jax.jit(jax.vmap(lambda p, q: gates(carry, p, q)[1]))
  return {"gates_in_scan": lambda: jax.block_until_ready(in_scan(carry, projected, hidden_pre)),
          "gates_without_loop": lambda: jax.block_until_ready(no_loop(projected, hidden_pre))}


def quickstart_steps(population: int) -> dict[str, Callable[[], object]]:
  """The quick start's train step (``compiled_steps``) for one run and for a vmapped
  population of ``population`` runs, on the same batch."""
  import tempfile
  from xferlab import config as config_lib
  from xferlab.transfer import model_based as finetune
  from xferlab.tasks import get_task
  experiment = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "experiments", "quickstart.py")
  config, _ = config_lib.load_experiment(experiment + ":dann")
  task = get_task(config.task)
  workdir = tempfile.mkdtemp(prefix="loop-")
  data = task.prepare(config, workdir)
  graphdef, params, rest = train.init_params(task, config, data.tokenizer.vocab_size,
                                              data.tokenizer, workdir)
  params = jax.tree.map(np.asarray, params)      # host copies: every state below owns its buffers
  tx = finetune.build_optimizer(config, params, 1000)
  batch = next(data.train)
  stack = lambda tree: jax.tree.map(lambda x: jnp.stack([x] * population), tree)
  out = {}
  for name, k in (("one_run", 0), (f"vmapped_{population}_runs", population)):
    step, _ = train.compiled_steps(task, config, graphdef, tx, 1000, k)
    state = train.TrainState(step=jnp.int32(0), params=jax.tree.map(jnp.asarray, params),
                             opt_state=tx.init(params), rng=jax.random.PRNGKey(0), task_state=None)
    hparams = train.lambda_hparams(config)
    box = {"state": stack(state) if k else state}
    hparams = stack(hparams) if k else hparams

    def run(step=step, box=box, hparams=hparams):
      box["state"], metrics = step(box["state"], rest, batch, hparams)
      return jax.block_until_ready(metrics)
    out[name] = run
  return out


def run_loop(args, peaks: dict) -> dict:
  """Where a step's time goes on this CPU: a cell's elementwise gate math inside the time loop
  against the same arithmetic without a loop, and the quick start's train step for one run
  against a vmapped population of 4."""
  print(f"## Gate arithmetic inside lax.scan against the same arithmetic without a loop "
        f"({LOOP_STEPS} steps)")
  print("\n".join(rep.header(["cell", "batch", "hidden", "µs/step in scan",
                               "µs/step without loop", "ratio"])))
  rows = []
  for p in LOOP_POINTS:
    timings = compare(gate_math(p["cell"], p["batch"], p["hidden"]), args.repeats)
    per_step = {k: 1e6 * t["seconds"] / LOOP_STEPS for k, t in timings.items()}
    ratio = per_step["gates_in_scan"] / per_step["gates_without_loop"]
    print(rep.row([p["cell"], str(p["batch"]), str(p["hidden"]),
                   f"{per_step['gates_in_scan']:.0f}", f"{per_step['gates_without_loop']:.0f}",
                   f"{ratio:.1f}x"]), flush=True)
    rows.append(dict(p, us_per_step=per_step, ratio=ratio, timings=timings))
  k = len(SWEEP_LAMBDAS)
  timings = compare(quickstart_steps(k), args.repeats)
  one, population = (timings[n]["seconds"] for n in ("one_run", f"vmapped_{k}_runs"))
  print(f"\nQuick-start train step: one run {1e3 * one:.1f} ms, {k} runs vmapped "
        f"{1e3 * population:.1f} ms: {k * one / population:.2f}x the speed of {k} sequential "
        "steps\n", flush=True)
  return {"gates": rows, "quickstart_step": {"timings": timings, "one_run_s": one,
                                             "vmapped_s": population, "population": k,
                                             "speedup": k * one / population}}


LM_POINT = {"batch": 64, "length": 70, "hidden": 400, "embed": 400, "layers": 2, "vocab": 32000,
            "cutoffs": (2000, 10000), "div": 4.0}   # experiments/lm/wiki.py's shapes


def zipf_stream(vocab: int, length: int, seed: int = 0, exponent: float = 1.1) -> np.ndarray:
  """``int32[length]`` word ids drawn from a Zipf law over ids 4.. (frequency order, as the
  word tokenizer assigns them): the tail clusters get a realistic share of the targets."""
  ranks = np.arange(1, vocab - 3, dtype=np.float64)
  p = ranks ** -exponent
  rng = np.random.default_rng(seed)
  return (4 + rng.choice(len(ranks), size=length, p=p / p.sum())).astype(np.int32)


def xferlab_lm(point: dict, cutoffs: tuple[int, ...]) -> Callable[[], object]:
  """The project's own LM train step (``train.compiled_steps``, truncated BPTT, the hidden
  state carried) with an adaptive (``cutoffs``) or a full (``()``) softmax."""
  from xferlab.tasks import get_task
  from xferlab.tasks.language_model import StreamBatches
  config = base_config("language_model")
  config.data.batch_size, config.language_model.bptt = point["batch"], point["length"]
  config.model.embed_dim, config.model.hidden_size = point["embed"], point["hidden"]
  config.model.num_layers, config.language_model.adaptive_softmax_cutoffs = point["layers"], cutoffs
  config.language_model.adaptive_softmax_div, config.optimizer.grad_clip = point["div"], 0.25
  task = get_task("language_model")
  graphdef, params, rest = nnx.split(task.build_model(config, point["vocab"]), nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  tx = train.make_optimizer(config.optimizer, 1000)
  train_step, _ = train.compiled_steps(task, config, graphdef, tx, 1000)
  stream = zipf_stream(point["vocab"], point["batch"] * (point["length"] * 20 + 1))
  batches = StreamBatches(stream, point["batch"], point["length"], cutoffs)
  box = {"state": train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                                   rng=jax.random.PRNGKey(0),
                                   task_state=task.initial_task_state(config))}
  hparams = train.lambda_hparams(config)

  def step():
    box["state"], out = train_step(box["state"], rest, next(batches), hparams)
    jax.block_until_ready(out["loss"])

  return step


def run_lm(args, peaks: dict) -> list[dict]:
  """The LM train step at the wiki LM's shapes: xferlab adaptive, xferlab full softmax and
  PyTorch's ``nn.LSTM`` + ``AdaptiveLogSoftmaxWithLoss``, timed in alternation."""
  p = LM_POINT
  print(f"## LM train step: {p['layers']}-layer LSTM {p['hidden']}, vocabulary {p['vocab']:,},"
        f" adaptive cutoffs {p['cutoffs']}, B {p['batch']} x T {p['length']}")
  candidates = {"xferlab": xferlab_lm(p, p["cutoffs"]), "xferlab_full": xferlab_lm(p, ())}
  if torch_reference.available():
    tokens = zipf_stream(p["vocab"], p["batch"] * (p["length"] + 1)).reshape(p["batch"], -1)
    candidates["torch"] = torch_reference.language_model(
        tokens, p["vocab"], p["embed"], p["hidden"], p["layers"], p["cutoffs"], p["div"])
  timings = compare(candidates, args.repeats)
  tokens = p["batch"] * p["length"]
  row = dict(p, cutoffs=list(p["cutoffs"]), tokens_per_iteration=tokens)
  for name, t in timings.items():
    row[name] = dict(t, tokens_per_s=tokens / t["seconds"])
  row["adaptive_over_full"] = row["xferlab"]["tokens_per_s"] / row["xferlab_full"]["tokens_per_s"]
  row["ratio"] = (row["xferlab"]["tokens_per_s"] / row["torch"]["tokens_per_s"]
                  if "torch" in row else None)
  print("\n".join(rep.header(["step", "tokens/s"])))
  for name in candidates:
    print(rep.row([name, f"{row[name]['tokens_per_s']:,.0f}"]))
  print(f"adaptive / full softmax: {row['adaptive_over_full']:.2f}x; adaptive / PyTorch "
        f"adaptive: {'n/a' if row['ratio'] is None else format(row['ratio'], '.2f')}\n",
        flush=True)
  return [row]


# Sections run in this order; each is ``run(args, peaks) -> JSON-able results``.
SECTIONS: dict[str, Callable] = {
    "layers": run_layers,
    "classifier": run_classifier,
    "sweep": run_sweep,
    "loop": run_loop,
    "lm": run_lm,
}


# --- report

PARITY = 1.0            # issue 32: PyTorch's level on the CPU (the earlier 1.3x bar is withdrawn)
PEAK_SHARE = 0.75       # of the matmul rate measured in the same run


def acceptance(results: dict) -> dict | None:
  """Issue 32's bars, from whichever sections ran: the LSTM layer at the acceptance point
  (≥ PyTorch, ≥ 75 % of the matmul peak), the classifier step (≥ PyTorch), the λ sweep
  (``vectorize="auto"`` and the plain vmapped program against sequential) and the LM step
  with the adaptive softmax (≥ PyTorch's adaptive step). ``None`` when none of them ran."""
  check = {}
  for row in results.get("layers", []):
    if row["cell"] == "lstm" and all(row[k] == v for k, v in ACCEPTANCE.items()):
      fraction = row["xferlab"]["fraction_of_matmul_peak"]
      check.update(ratio=row["ratio"], fraction_of_matmul_peak=fraction,
                   ratio_ok=None if row["ratio"] is None else row["ratio"] >= PARITY,
                   peak_ok=fraction >= PEAK_SHARE)
  if results.get("classifier"):
    ratio = results["classifier"][0]["ratio"]
    check.update(classifier_ratio=ratio,
                 classifier_ok=None if ratio is None else ratio >= PARITY)
  if results.get("sweep"):
    sweep = results["sweep"]
    # The bar reads the sweep as a researcher repeats it: auto with its decision remembered.
    # The first sweep of a program on a machine also pays the measurement, reported beside it.
    remembered = sweep.get("auto_remembered_speedup")
    check.update(sweep_vmapped_speedup=sweep["speedup"], sweep_auto_speedup=sweep["auto_speedup"],
                 sweep_auto_remembered_speedup=remembered,
                 sweep_ok=(remembered if remembered is not None else sweep["auto_speedup"])
                 >= PARITY)
  if results.get("lm"):
    ratio = results["lm"][0]["ratio"]
    check.update(lm_ratio=ratio, lm_ok=None if ratio is None else ratio >= PARITY)
  return check or None


def acceptance_lines(check: dict) -> list[str]:
  """One printed line per bar that was measured."""
  x = lambda v: "n/a" if v is None else f"{v:.2f}x"
  lines = []
  if "ratio" in check:
    lines.append(f"LSTM layer B={ACCEPTANCE['batch']} T={ACCEPTANCE['length']} "
                 f"H={ACCEPTANCE['hidden']}: {x(check['ratio'])} PyTorch (need {PARITY:.1f}x), "
                 f"{100 * check['fraction_of_matmul_peak']:.1f}% of the matmul peak "
                 f"(need {100 * PEAK_SHARE:.0f}%)")
  if "classifier_ratio" in check:
    lines.append(f"classifier step: {x(check['classifier_ratio'])} PyTorch (need {PARITY:.1f}x)")
  if check.get("sweep_auto_remembered_speedup") is not None:
    lines.append(f"λ sweep: vectorize='auto' {x(check['sweep_auto_remembered_speedup'])} "
                 f"sequential with its decision remembered (need {PARITY:.1f}x); "
                 f"{x(check['sweep_auto_speedup'])} the first time on this machine, which "
                 f"measures; always vmapped {x(check['sweep_vmapped_speedup'])}")
  elif "sweep_auto_speedup" in check:
    lines.append(f"λ sweep: vectorize='auto' {x(check['sweep_auto_speedup'])} sequential "
                 f"(need {PARITY:.1f}x); always vmapped {x(check['sweep_vmapped_speedup'])}")
  if "lm_ratio" in check:
    lines.append(f"LM step, adaptive softmax: {x(check['lm_ratio'])} PyTorch's "
                 f"(need {PARITY:.1f}x)")
  return ["Acceptance (issue 32):", *(f"  {line}" for line in lines)]


def estimate_full_grid_seconds(results: dict, args) -> float:
  """Rough wall time of the full grid, from the GFLOP/s and compile times measured here.

  Each point costs its compile plus (3 warm-up + repeats × k) iterations per
  framework; throughput is assumed constant across the grid (small shapes run
  slower, large ones faster).
  """
  def point_seconds(row: dict, flops: int) -> float:
    total = 0.0
    for name in ("xferlab", "torch"):
      if name not in row:
        continue
      seconds = flops / (row[name]["gflops"] * 1e9)
      rounds = args.repeats * max(seconds, MIN_ROUND_SECONDS)
      total += row[name]["first_call_s"] + (1 + WARMUP_CALLS) * seconds + rounds
    return total

  points = grid_points(False, {})
  total = 0.0
  for row in results.get("layers", []):
    total += sum(point_seconds(row, layer_flops(row["cell"], p["batch"], p["length"], INPUT_SIZE,
                                                p["hidden"])) for p in points)
  for row in results.get("classifier", []):
    total += sum(point_seconds(row, classifier_flops(p["batch"], p["length"], p["hidden"]))
                 for p in points)
  return total


def busy_cores(seconds: float = 1.0) -> float | None:
  """How many cores other processes keep busy (from /proc/stat, while this one sleeps)."""
  def sample():
    with open("/proc/stat") as f:
      values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values)           # idle + iowait, total
  try:
    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
  except (OSError, ValueError, IndexError):
    return None
  return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def versions() -> dict:
  import flax
  torch_versions = torch_reference.versions()
  return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
          "torch": torch_versions["torch"], "jax_devices": [str(d) for d in jax.devices()],
          "torch_threads": torch_versions["torch_threads"]}


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="only the acceptance point per cell and one reduced classifier point")
  parser.add_argument("--out", default="rnn_throughput.json", help="JSON results file")
  parser.add_argument("--cells", default="lstm,gru", help="comma-separated cells for 'layers'")
  parser.add_argument("--repeats", type=int, default=5, help="alternating timing rounds")
  parser.add_argument("--unroll", type=int, default=1, help="lax.scan unroll factor")
  parser.add_argument("--sweep-rounds", type=int, default=2,
                      help="alternations of the sequential and the vectorized λ sweep")
  parser.add_argument("--sections", default=",".join(SECTIONS),
                      help=f"comma-separated, of {', '.join(SECTIONS)}")
  args = parser.parse_args()
  args.cells = [c for c in args.cells.split(",") if c]
  args.sections = [s for s in args.sections.split(",") if s]
  unknown = ([c for c in args.cells if c not in GATES]
             + [s for s in args.sections if s not in SECTIONS])
  if unknown:
    parser.error(f"unknown cell or section: {', '.join(unknown)}")
  return args


def warn_if_busy(load: float | None, at_start: bool) -> None:
  """Says so when other processes keep more than 0.3 cores busy (``busy_cores``)."""
  if load is None or load <= 0.3:
    return
  if at_start:
    print(f"{load:.1f} cores busy at start: other processes compete for the cores; figures "
          "from this run are unreliable (PyTorch's OpenMP threads suffer most).\n")
  else:
    print(f"{load:.1f} cores busy at the end: other processes competed for the cores; "
          "figures from this run are unreliable.")


def start(args) -> dict:
  """Says whether PyTorch runs, sets its threads, checks the load; the results' ``meta``."""
  if not torch_reference.available():
    print("PyTorch is not installed: measuring the xferlab side only. "
          "Install it with: pip install -e \".[bench]\"\n")
  else:
    torch_reference.use_all_cores()
  load = busy_cores()
  warn_if_busy(load, at_start=True)
  return {"quick": args.quick, "repeats": args.repeats, "unroll": args.unroll,
          "cells": args.cells, "sections": args.sections, "busy_cores_start": load,
          "started": time.strftime("%Y-%m-%dT%H:%M:%S"), **versions()}


def finish(args, results: dict, started: float) -> None:
  """Adds the acceptance check, the wall time, the end load and (``--quick``) the full grid's
  estimated time to ``results``, printing each."""
  results["acceptance"] = check = acceptance(results)
  if check is not None:
    print("\n".join(acceptance_lines(check)))
  results["meta"]["wall_s"] = time.perf_counter() - started
  results["meta"]["busy_cores_end"] = load = busy_cores()
  warn_if_busy(load, at_start=False)
  if args.quick:
    results["estimated_full_grid_s"] = estimate = estimate_full_grid_seconds(results, args)
    print(f"Estimated full grid ({', '.join(args.sections)}): about {estimate / 60:.0f} min")


def main():
  args = parse_args()
  started = time.perf_counter()
  results = {"meta": start(args)}
  results["peaks"] = peaks = run_peaks(args)
  for name in args.sections:
    results[name] = SECTIONS[name](args, peaks)
  finish(args, results, started)
  rep.write_json(args.out, results)
  print(f"Wall time {results['meta']['wall_s']:.0f} s; results in {os.path.abspath(args.out)}")


if __name__ == "__main__":
  main()

"""The public API: run an experiment, sweep it, restore a trained model.

>>> from xferlab import launch
>>> results = launch.run("experiments/quickstart.py:dann", {"transfer.lam": 0.3}, "runs/qs")
>>> table = launch.sweep("experiments/quickstart.py:dann", {"transfer.lam": [0.0, 0.1, 1.0]}, "runs/sw")
>>> launch.restore(table[1]["workdir"]).predict(["a sturdy pan , really great"])

Every run writes ``config.json`` (resolved), ``metrics.jsonl``, ``results.json``
and its checkpoints into its workdir; running again in the same workdir resumes
(and a finished run just returns its results). A configuration with ``arms``
or several ``seeds`` runs each arm and seed in ``workdir/<arm>/seed_<s>`` and
reports ``{arm: {metric: {"mean", "std", "values"}}}``. A sweep writes one
sub-directory per point plus ``sweep.json``, ``sweep.md`` and ``sweep.png``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import sys
from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np

from xferlab.config import (ConfigError, apply_overrides, flatten, from_json, load_experiment,
                            parse_value, to_json)
from xferlab.metrics import mean_std


def _default_workdir(config) -> str:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return os.path.join("runs", f"{config.name}-{stamp}")


def _arms(config) -> dict[str, dict[str, Any]]:
  return {name: flatten(overrides) for name, overrides in config.arms.items()}


def _single_runs(config, workdir: str) -> list[tuple[str, int, Any, str]]:
  """``(arm, seed, config, workdir)`` for every arm and seed of ``config``."""
  arms = _arms(config) or {"": {}}
  seeds = tuple(config.seeds) or (config.seed,)
  runs = []
  for arm, overrides in arms.items():
    for seed in seeds:
      sub = apply_overrides(config, overrides)
      sub.seed, sub.seeds, sub.arms = seed, (), ml_collections.ConfigDict()
      sub_dir = workdir if (not config.arms and len(seeds) == 1) else os.path.join(
          workdir, arm or ".", f"seed_{seed}")
      runs.append((arm, seed, sub, os.path.normpath(sub_dir)))
  return runs


def _format(stat: Any) -> str:
  if isinstance(stat, Mapping) and stat.get("std") is None:
    return f"{100 * stat['mean']:.1f}"                     # a single run
  if isinstance(stat, Mapping):
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
  return f"{100 * stat:.1f}" if isinstance(stat, float) else str(stat)


def results_table(results: Mapping[str, Any], metrics: Sequence[str]) -> str:
  """A markdown table: one row per arm, ``mean ± std`` (in %) for each metric."""
  lines = ["| arm | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
  for arm, stats in results.items():
    lines.append(f"| {arm} | " + " | ".join(_format(stats.get(m, "-")) for m in metrics) + " |")
  return "\n".join(lines)


def run_config(config: ml_collections.ConfigDict, workdir: str, verbose: bool = True) -> dict:
  """Runs a resolved configuration (every arm and seed) in ``workdir``; returns its results."""
  from xferlab.train import finished_results, train_and_evaluate   # keeps the import light
  os.makedirs(workdir, exist_ok=True)
  runs = _single_runs(config, workdir)
  if len(runs) == 1 and not config.arms:
    return finished_results(runs[0][2], runs[0][3]) or train_and_evaluate(runs[0][2], runs[0][3])
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(to_json(config))
  per_arm: dict[str, list[dict]] = {}
  for arm, seed, sub, sub_dir in runs:
    if verbose:
      print(f"[xferlab] {config.name}: arm={arm or '-'} seed={seed} -> {sub_dir}", flush=True)
    results = finished_results(sub, sub_dir) or train_and_evaluate(sub, sub_dir)
    per_arm.setdefault(arm or "default", []).append(results)
  results = {}
  for arm, seed_results in per_arm.items():
    numeric = [k for k, v in seed_results[0].items() if isinstance(v, (int, float))]
    results[arm] = {k: mean_std([r[k] for r in seed_results]) for k in numeric}
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  shown = [m for m in (config.report_metric, "target_macro_f1", "source_val_accuracy")
           if m in next(iter(results.values()))]
  table = results_table(results, shown)
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(f"# {config.name}\n\nmean ± std over seeds {tuple(config.seeds) or (config.seed,)}, "
            f"in %\n\n{table}\n")
  if verbose:
    print(table, flush=True)
  return results


def run(experiment: str, overrides: Mapping[str, Any] | Sequence[str] | None = None,
        workdir: str | None = None) -> dict:
  """Runs ``experiment`` (``path.py[:arg]``) with overrides; returns the final results."""
  config, _ = load_experiment(experiment)
  config = apply_overrides(config, overrides)
  workdir = workdir or _default_workdir(config)
  return run_config(config, workdir)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
  """The Cartesian product of a grid ``{"transfer.lam": [0, 0.1]}`` as override dicts."""
  keys = list(grid)
  return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _point_name(point: Mapping[str, Any]) -> str:
  return ",".join(f"{k}={v}" for k, v in point.items()).replace(os.sep, "_")


def train_vectorized(configs_and_workdirs: Sequence[tuple[Any, str]], verbose: bool = True) -> None:
  """Trains every unfinished single run, vmapping those that can share one program.

  Runs (arms × seeds of each configuration) whose configurations differ only in
  ``xferlab.train.vectorizable_keys`` train together as one population; the
  others train alone. Each run ends with the workdir and results a sequential
  run would have.
  """
  from xferlab.train import (finished_results, population_key, train_and_evaluate,
                             train_population)
  groups: dict[str, list[tuple[Any, str]]] = {}
  for config, workdir in configs_and_workdirs:
    for _, _, sub, sub_dir in _single_runs(config, workdir):
      if finished_results(sub, sub_dir) is None:
        groups.setdefault(population_key(sub), []).append((sub, sub_dir))
  for group in groups.values():
    if verbose:
      print(f"[xferlab] training {len(group)} run(s) as one vmapped program: "
            + ", ".join(os.path.relpath(d) for _, d in group), flush=True)
    if len(group) == 1:
      train_and_evaluate(*group[0])
    else:
      train_population([c for c, _ in group], [d for _, d in group])


def sweep(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None,
          workdir: str | None = None,
          overrides: Mapping[str, Any] | Sequence[str] | None = None,
          vectorize: bool = False) -> list[dict]:
  """Runs every point of ``grid`` (or the experiment's own ``sweep(add)``).

  Returns one ``{"point", "workdir", "results"}`` per point, and writes
  ``sweep.json``, ``sweep.md`` and a plot of ``config.report_metric`` against
  the first swept key (``sweep.png``) into ``workdir``.

  ``vectorize=True`` trains the points (and seeds, when ``data.shuffle_seed``
  is fixed) that differ only in λ-schedule values as one ``jax.vmap``-ed
  program over the same batches (``train_vectorized``); results equal
  sequential runs up to float rounding.
  """
  config, module = load_experiment(experiment)
  config = apply_overrides(config, overrides)
  if grid is not None:
    points = grid_points(grid)
  elif hasattr(module, "sweep"):
    points = []
    module.sweep(lambda **point: points.append(dict(point)))
  else:
    raise ConfigError(f"{experiment} has no sweep(add); pass a grid such as "
                      "{'transfer.lam': [0.0, 0.1, 1.0]}")
  workdir = workdir or _default_workdir(config)
  point_dirs = [os.path.join(workdir, _point_name(point)) for point in points]
  if vectorize:
    train_vectorized([(apply_overrides(config, p), d) for p, d in zip(points, point_dirs)])
  rows = []
  for point in points:
    point_dir = os.path.join(workdir, _point_name(point))
    print(f"[xferlab] sweep point {_point_name(point)} -> {point_dir}", flush=True)
    results = run_config(apply_overrides(config, point), point_dir)
    rows.append({"point": point, "workdir": os.path.abspath(point_dir), "results": results})
  write_sweep_report(rows, config.report_metric, workdir)
  return rows


def _metric_stat(results: Mapping[str, Any], metric: str) -> dict[str, dict[str, float]]:
  """``{series: {"mean", "std"}}`` for single-run and multi-arm results alike."""
  if metric in results:
    v = results[metric]
    return {"": v if isinstance(v, Mapping) else {"mean": v, "std": None}}
  return {arm: stats[metric] for arm, stats in results.items()
          if isinstance(stats, Mapping) and metric in stats}


def write_sweep_report(rows: list[dict], metric: str, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "sweep.json"), "w") as f:
    json.dump(rows, f, indent=2, default=str)
  keys = list(rows[0]["point"]) if rows else []
  series = sorted({s for r in rows for s in _metric_stat(r["results"], metric)})
  header = keys + [f"{metric} {s}".strip() for s in series]
  lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
  for r in rows:
    stats = _metric_stat(r["results"], metric)
    cells = [str(r["point"][k]) for k in keys] + [_format(stats[s]) if s in stats else "-"
                                                  for s in series]
    lines.append("| " + " | ".join(cells) + " |")
  with open(os.path.join(workdir, "sweep.md"), "w") as f:
    f.write(f"# Sweep of {', '.join(keys)}\n\n{metric} in %\n\n" + "\n".join(lines) + "\n")
  print("\n".join(lines), flush=True)
  if not keys:
    return
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  x_key = keys[0]
  others = keys[1:]
  fig, ax = plt.subplots(figsize=(6, 4))
  groups: dict[tuple, list[dict]] = {}
  for r in rows:
    groups.setdefault(tuple(r["point"][k] for k in others), []).append(r)
  numeric_x = all(isinstance(r["point"][x_key], (int, float)) for r in rows)
  for group, members in groups.items():
    for s in series:
      pts = [(r["point"][x_key], _metric_stat(r["results"], metric).get(s)) for r in members]
      pts = [(x, st) for x, st in pts if st is not None]
      xs = [x if numeric_x else str(x) for x, _ in pts]
      label = ", ".join([s] + [f"{k}={v}" for k, v in zip(others, group)]).strip(", ") or metric
      ax.errorbar(xs, [st["mean"] for _, st in pts], yerr=[st["std"] or 0.0 for _, st in pts],
                  marker="o", capsize=3, label=label)
  if numeric_x and all(r["point"][x_key] > 0 for r in rows) and len(rows) > 2:
    ax.set_xscale("log")
  elif numeric_x and any(r["point"][x_key] > 0 for r in rows):
    positive = sorted(r["point"][x_key] for r in rows if r["point"][x_key] > 0)
    if len(positive) > 1 and positive[-1] / positive[0] >= 100:
      ax.set_xscale("symlog", linthresh=positive[0])
  ax.set_xlabel(x_key)
  ax.set_ylabel(metric)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "sweep.png"), dpi=120)
  plt.close(fig)


class Restored:
  """A trained model restored from a run's workdir, ready to use.

  Attributes:
    config: the run's resolved configuration.
    model: the NNX model with the selected (best) parameters.
    tokenizer: the run's tokenizer.
    results: the run's ``results.json``.
  """

  def __init__(self, workdir: str, config, model, tokenizer, results: dict):
    from xferlab.tasks import get_task
    self.workdir, self.config, self.model, self.tokenizer = workdir, config, model, tokenizer
    self.results = results
    self._task = get_task(config.task)

  def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
    """``float[len(texts), classes]`` class probabilities (classifiers)."""
    if not hasattr(self._task, "predict"):
      raise TypeError(f"Task {self.config.task!r} does not predict classes")
    return self._task.predict(self.model, self.tokenizer, self.config, list(texts))

  def predict(self, texts: Sequence[str]) -> np.ndarray:
    """``int[len(texts)]`` predicted classes (1 = positive for sentiment)."""
    return np.argmax(self.predict_proba(texts), axis=-1)

  def translate(self, texts: Sequence[str]) -> list[str]:
    """Beam-search translations (``config.decode``) of ``texts``, in order (translation runs)."""
    if not hasattr(self._task, "translate"):
      raise TypeError(f"Task {self.config.task!r} does not translate")
    return self._task.translate(self.model, self.tokenizer, self.config, list(texts))

  def summarize(self, texts: Sequence[str]) -> list[str]:
    """Beam-search summaries (``config.decode``) of ``texts``, in order (summarization runs)."""
    if not hasattr(self._task, "summarize"):
      raise TypeError(f"Task {self.config.task!r} does not summarize")
    return self._task.summarize(self.model, self.tokenizer, self.config, list(texts))


def _run_dirs(workdir: str) -> list[str]:
  found = []
  for root, dirs, _ in os.walk(workdir):
    if "best" in dirs and os.path.exists(os.path.join(root, "config.json")):
      found.append(root)
      dirs[:] = []
  return sorted(found)


def restore(workdir: str) -> Restored:
  """Restores the selected model of a finished (or interrupted) run."""
  from flax import nnx

  from xferlab import checkpoint
  from xferlab.data.tokenizer import load_tokenizer
  from xferlab.tasks import get_task
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(os.path.join(workdir, "best")):
    runs = _run_dirs(workdir)
    if not runs:
      raise FileNotFoundError(f"No trained run in {workdir}: expected best/ and config.json")
    raise ValueError(f"{workdir} holds several runs; restore one of them:\n  "
                     + "\n  ".join(runs))
  with open(os.path.join(workdir, "config.json")) as f:
    config = from_json(f.read())
  tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
  model = get_task(config.task).build_model(config, tokenizer.vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "best"), None)
  try:
    state, _ = ckpt.restore({"params": nnx.to_pure_dict(params)})
  finally:
    ckpt.close()
  model = nnx.merge(graphdef, state["params"], rest)
  results_path = os.path.join(workdir, "results.json")
  results = json.load(open(results_path)) if os.path.exists(results_path) else {}
  return Restored(workdir, config, model, tokenizer, results)


def build(config, workdir: str | None = None) -> Restored:
  """The model ``config`` describes as a run would start it, before any training step.

  The tokenizer is prepared (written into ``workdir``, a new temporary folder by
  default), then the run's pretrained word vectors and ``init_from`` subtrees are
  applied. Probes and studies read features of such a model through the same
  object ``restore`` returns for a trained one.
  """
  import tempfile

  from flax import nnx

  from xferlab import train
  from xferlab.tasks import get_task
  from xferlab.transfer import model_based
  model_based.check_prerequisites(config)
  workdir = workdir or tempfile.mkdtemp(prefix="xferlab-build-")
  task = get_task(config.task)
  tokenizer = task.prepare(config, workdir).tokenizer
  graphdef, params, rest = train.init_params(task, config, tokenizer.vocab_size, tokenizer,
                                             workdir)
  return Restored(workdir, config, nnx.merge(graphdef, params, rest), tokenizer, {})


def _split_values(text: str) -> list[str]:
  """``"0,0.1,(1,2)"`` -> ``["0", "0.1", "(1,2)"]`` (commas inside brackets kept)."""
  parts, depth, current = [], 0, ""
  for ch in text:
    depth += ch in "([{"
    depth -= ch in ")]}"
    if ch == "," and depth == 0:
      parts.append(current)
      current = ""
    else:
      current += ch
  return parts + [current]


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="launch.py", description="Run, or sweep, an xferlab experiment.")
  parser.add_argument("experiment", help="path/to/experiment.py[:arg]")
  parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value (a Python literal; repeatable)")
  parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                      help="sweep a key over values (repeat for a grid)")
  parser.add_argument("--use-experiment-sweep", action="store_true",
                      help="run the experiment file's own sweep(add)")
  parser.add_argument("--vectorize", action="store_true",
                      help="train sweep points that differ only in λ values as one vmapped program")
  parser.add_argument("--workdir", default=None, help="output directory (resumes if it exists)")
  args = parser.parse_args(argv)
  try:
    if args.sweep or args.use_experiment_sweep:
      grid = None
      if args.sweep:
        grid = {}
        for item in args.sweep:
          key, sep, values = item.partition("=")
          if not sep:
            raise ConfigError(f"--sweep {item!r} is not of the form KEY=V1,V2,...")
          grid[key.strip()] = [parse_value(v.strip()) for v in _split_values(values)]
      sweep(args.experiment, grid, args.workdir, args.overrides, vectorize=args.vectorize)
    else:
      config, _ = load_experiment(args.experiment)
      config = apply_overrides(config, args.overrides)
      workdir = args.workdir or _default_workdir(config)
      results = run_config(config, workdir)
      if not config.arms and not len(config.seeds) > 1:
        print(json.dumps(results, indent=2))
      print(f"[xferlab] results in {os.path.join(workdir, 'results.json')}")
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0

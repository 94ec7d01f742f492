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
import signal
import sys
import threading
from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np

from xferlab.config import (ConfigError, apply_overrides, flatten, from_json, load_experiment,
                            parse_value)
from xferlab.metrics import mean_std
from xferlab.workdir import SWEEP_FILE, check_config, claim, refuse_mixing


def _default_workdir(config) -> str:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return os.path.join("runs", f"{config.name}-{stamp}")


def _arms(config) -> dict[str, dict[str, Any]]:
  return {name: flatten(overrides) for name, overrides in config.arms.items()}


def _single_runs(config, workdir: str) -> list[tuple[str, int, Any, str]]:
  """``(arm, seed, config, workdir)`` for every arm and seed of ``config``."""
  arms = _arms(config) or {"": {}}
  seeds = tuple(config.seeds) or (config.seed,)
  if len(set(seeds)) < len(seeds):   # one run per seed: a repeat would count twice
    raise ConfigError(f"seeds = {seeds} names a seed twice; each seed runs once "
                      f"(seeds={tuple(dict.fromkeys(seeds))})")
  runs = []
  for arm, overrides in arms.items():
    for seed in seeds:
      sub = apply_overrides(config, overrides)
      sub.seed, sub.seeds, sub.arms = seed, (), ml_collections.ConfigDict()
      sub_dir = workdir if (not config.arms and len(seeds) == 1) else os.path.join(
          workdir, arm or ".", f"seed_{seed}")
      runs.append((arm, seed, sub, os.path.normpath(sub_dir)))
  return runs


def _check_unfinished(runs: Sequence[tuple[str, int, Any, str]]) -> None:
  """``train.check_runs`` on the runs (``_single_runs``) that have not finished; a finished
  run is only read back, so what training needs (its corpus, its ``init_from``) may be gone."""
  from xferlab.train import check_runs   # keeps the import light
  check_runs([sub for _, _, sub, sub_dir in runs
              if not os.path.exists(os.path.join(sub_dir, "results.json"))])


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


def _primary() -> bool:
  """Whether this process writes summaries (process 0 of a ``jax.distributed`` run)."""
  from xferlab.train import is_primary   # keeps the import light
  return is_primary()


def run_config(config: ml_collections.ConfigDict, workdir: str, verbose: bool = True) -> dict:
  """Runs a resolved configuration (every arm and seed) in ``workdir``; returns its results."""
  from xferlab.train import finished_results, train_and_evaluate   # keeps the import light
  refuse_mixing(workdir, "run")
  runs = _single_runs(config, workdir)
  _check_unfinished(runs)   # a bad arm or seed fails before anything is written
  os.makedirs(workdir, exist_ok=True)
  if len(runs) == 1 and not config.arms:
    return finished_results(runs[0][2], runs[0][3]) or train_and_evaluate(runs[0][2], runs[0][3])
  if _primary():   # refused where another configuration trained, as a single run is
    claim(config, workdir)
  else:
    check_config(config, workdir)
  per_arm: dict[str, list[dict]] = {}
  for arm, seed, sub, sub_dir in runs:
    if verbose:
      print(f"[xferlab] {config.name}: arm={arm or '-'} seed={seed} -> {sub_dir}", flush=True)
    results = finished_results(sub, sub_dir) or train_and_evaluate(sub, sub_dir)
    per_arm.setdefault(arm or config.name, []).append(results)   # seeds alone: the run's name
  results = {}
  for arm, seed_results in per_arm.items():
    numeric = [k for k, v in seed_results[0].items() if isinstance(v, (int, float))]
    results[arm] = {k: mean_std([r[k] for r in seed_results]) for k in numeric}
  _write_summary(config, workdir, results, verbose)
  return results


def _write_summary(config, workdir: str, results: dict, verbose: bool) -> None:
  """``results.json`` and ``results.md`` (mean ± std per arm) of a multi-run configuration."""
  shown = [m for m in (config.report_metric, "target_macro_f1", "source_val_accuracy")
           if m in next(iter(results.values()))]
  table = results_table(results, shown)
  if _primary():
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(results, f, indent=2)
    with open(os.path.join(workdir, "results.md"), "w") as f:
      f.write(f"# {config.name}\n\nmean ± std over seeds "
              f"{tuple(config.seeds) or (config.seed,)}, in %\n\n{table}\n")
  if verbose:
    print(table, flush=True)


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


def train_vectorized(configs_and_workdirs: Sequence[tuple[Any, str]], verbose: bool = True,
                     auto: bool = False) -> list[dict]:
  """Trains every unfinished single run, vmapping those that can share one program.

  Runs (arms × seeds of each configuration) whose configurations differ only in
  ``xferlab.train.vectorizable_keys`` train together as one population; the
  others train alone. Each run ends with the workdir and results a sequential
  run would have. With ``auto``, each population is first timed both ways for a
  few steps (``train.vectorization_choice``) and trains vmapped only where that
  is faster; the answer is remembered for that program on this machine
  (``xferlab.decisions``), so the next such population does not measure again.
  Returns one decision per population of two or more runs.
  """
  from xferlab.train import (finished_results, population_key, train_and_evaluate,
                             train_population, vectorization_choice)
  groups: dict[str, list[tuple[Any, str]]] = {}
  for config, workdir in configs_and_workdirs:
    for _, _, sub, sub_dir in _single_runs(config, workdir):
      if finished_results(sub, sub_dir) is None:
        groups.setdefault(population_key(sub), []).append((sub, sub_dir))
  decisions = []
  for group in groups.values():
    runs = ", ".join(os.path.relpath(d) for _, d in group)
    if len(group) == 1:
      train_and_evaluate(*group[0])
      continue
    choice = vectorization_choice([c for c, _ in group]) if auto else {"vectorize": True}
    decisions.append(dict(choice, workdirs=[d for _, d in group]))
    if verbose:
      how = "one vmapped program" if choice["vectorize"] else "runs one after the other"
      how_known = (f"remembered from {choice.get('measured_at', '?')}" if choice.get("remembered")
                   else "measured")
      timed = (f" ({how_known}: vmapped {choice['vmapped_s']:.2f} s, sequential "
               f"{choice['sequential_s']:.2f} s for {choice['steps']} steps)" if auto else "")
      print(f"[xferlab] training {len(group)} runs as {how}{timed}: {runs}", flush=True)
    if choice["vectorize"]:
      train_population([c for c, _ in group], [d for _, d in group])
    else:
      for config, workdir in group:
        train_and_evaluate(config, workdir)
  return decisions


def _train_vectorized_recorded(configs_and_workdirs: Sequence[tuple[Any, str]], workdir: str,
                               vectorize: bool | str) -> None:
  """``train_vectorized``, its decisions written to ``workdir/vectorize.json``."""
  decisions = train_vectorized(configs_and_workdirs, auto=vectorize == "auto")
  if _primary() and decisions:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "vectorize.json"), "w") as f:
      json.dump({"mode": str(vectorize), "populations": decisions}, f, indent=2)


def sweep(experiment: str, grid: Mapping[str, Sequence[Any]] | None = None,
          workdir: str | None = None,
          overrides: Mapping[str, Any] | Sequence[str] | None = None,
          vectorize: bool | str = False) -> list[dict]:
  """Runs every point of ``grid`` (or the experiment's own ``sweep(add)``).

  Returns one ``{"point", "workdir", "results"}`` per point, and writes
  ``sweep.json``, ``sweep.md`` and a plot of ``config.report_metric`` against
  the first swept key (``sweep.png``) into ``workdir``.

  ``vectorize=True`` trains the points (and seeds, when ``data.shuffle_seed``
  is fixed) that differ only in λ-schedule values as one ``jax.vmap``-ed
  program over the same batches (``train_vectorized``); results equal
  sequential runs up to float rounding. ``vectorize="auto"`` times a few steps
  of each population both ways first and vmaps only where that is faster; the
  decisions and their timings go to ``workdir/vectorize.json``. A decision is
  measured once per program and machine and then remembered
  (``xferlab.decisions``; ``XFERLAB_DECISIONS=0`` measures every time).
  """
  config, module = load_experiment(experiment)
  config = apply_overrides(config, overrides)
  if grid is not None:
    points = grid_points(grid)
  elif hasattr(module, "sweep"):
    points = []
    module.sweep(lambda **point: points.append(dict(point)))
  else:
    raise ConfigError(f"{experiment} has no sweep(add); pass a grid (launch.sweep(experiment, "
                      "{'transfer.lam': [0.0, 0.1, 1.0]}), or --sweep transfer.lam=0,0.1,1 "
                      "on the command line)")
  workdir = workdir or _default_workdir(config)
  refuse_mixing(workdir, "sweep")
  # Every point's configuration is made and checked before any point trains.
  point_configs = [apply_overrides(config, point) for point in points]
  point_dirs = [os.path.join(workdir, _point_name(point)) for point in points]
  for point_config, point_dir in zip(point_configs, point_dirs):
    _check_unfinished(_single_runs(point_config, point_dir))
  if vectorize:
    _train_vectorized_recorded(list(zip(point_configs, point_dirs)), workdir, vectorize)
  rows = []
  for point, point_config, point_dir in zip(points, point_configs, point_dirs):
    print(f"[xferlab] sweep point {_point_name(point)} -> {point_dir}", flush=True)
    results = run_config(point_config, point_dir)
    rows.append({"point": point, "workdir": os.path.abspath(point_dir), "results": results})
  if _primary():
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
  with open(os.path.join(workdir, SWEEP_FILE), "w") as f:
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

  Every text method takes one text (a ``str``) or a sequence of texts and follows
  ``xferlab.text_inputs``: a bare ``str`` gives one result (not one per character), a
  non-string element raises ``TypeError`` naming its index, ``[]`` gives an empty result,
  control characters and lone surrogates are cleaned, and texts longer than the model's
  maximum length (the largest of ``data.buckets``) are cut with an ``InputTruncatedWarning``.

  Compiled functions are kept on the object: the first call compiles once per padded shape
  (a power-of-two number of rows, a bucketed length); later calls of those shapes reuse it.

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
    self._cache: dict = {}   # jitted functions, reused across calls

  def _texts(self, texts) -> tuple[list[str], bool]:
    from xferlab.text_inputs import as_texts, max_chars_for
    return as_texts(texts, max_chars=max_chars_for(self.config))

  def _needs(self, method: str, verb: str) -> None:
    if not hasattr(self._task, method):
      raise TypeError(f"Task {self.config.task!r} does not {verb}")

  def compilations(self) -> int:
    """How many shapes the cached jitted functions have compiled so far."""
    return sum(f.jitted._cache_size() for f in self._cache.values() if hasattr(f, "jitted"))

  def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
    """Class probabilities (classifiers): ``float32[classes]`` for one ``str``,
    ``float32[len(texts), classes]`` for a sequence (``[0, classes]`` for ``[]``)."""
    self._needs("predict", "predict classes")
    items, single = self._texts(texts)
    probs = self._task.predict(self.model, self.tokenizer, self.config, items, cache=self._cache)
    return probs[0] if single else probs

  def predict(self, texts: str | Sequence[str]) -> np.ndarray | int:
    """Predicted classes (1 = positive for sentiment): an ``int`` for one ``str``,
    ``int64[len(texts)]`` for a sequence (``[0]``-shaped for ``[]``)."""
    probs = self.predict_proba(texts)
    classes = np.argmax(probs, axis=-1)
    return int(classes) if np.ndim(classes) == 0 else classes

  def translate(self, texts: str | Sequence[str]) -> str | list[str]:
    """Beam-search translations (``config.decode``) (translation runs): a ``str`` for one
    ``str``, else a list in the order of ``texts``; an empty text translates to ``""``."""
    self._needs("translate", "translate")
    items, single = self._texts(texts)
    out = self._task.translate(self.model, self.tokenizer, self.config, items, cache=self._cache)
    return out[0] if single else out

  def summarize(self, texts: str | Sequence[str]) -> str | list[str]:
    """Beam-search summaries (``config.decode``) (summarization runs): a ``str`` for one
    ``str``, else a list in the order of ``texts``; an empty text summarizes to ``""``."""
    self._needs("summarize", "summarize")
    items, single = self._texts(texts)
    out = self._task.summarize(self.model, self.tokenizer, self.config, items, cache=self._cache)
    return out[0] if single else out


def _run_dirs(workdir: str) -> list[str]:
  found = []
  for root, dirs, _ in os.walk(workdir):
    if "best" in dirs and os.path.exists(os.path.join(root, "config.json")):
      found.append(root)
      dirs[:] = []
  return sorted(found)


def _read_json_file(path: str, what: str, parse=json.loads):
  """A run's JSON file, or an error naming the file and what it is for."""
  try:
    with open(path) as f:
      return parse(f.read())
  except FileNotFoundError:
    raise FileNotFoundError(f"{path} is missing: the run's {what}") from None
  except ValueError as error:
    raise ValueError(f"{path} is not valid JSON ({error}): the run's {what}; restore it from "
                     "a copy of the run, or rerun its command in a new workdir") from None


def restore(workdir: str) -> Restored:
  """Restores the selected model of a finished (or interrupted) run."""
  from flax import nnx

  from xferlab import checkpoint
  from xferlab.data.tokenizer import load_tokenizer
  from xferlab.tasks import get_task
  if not str(workdir).strip():
    raise ValueError("restore() needs a run's workdir; got an empty path")
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if not os.path.isdir(os.path.join(workdir, "best")):
    runs = _run_dirs(workdir)
    if not runs:
      raise FileNotFoundError(f"No trained run in {workdir}: expected best/ and config.json")
    if len(runs) == 1:
      raise ValueError(f"{workdir} is not a run; the run inside it is {runs[0]}")
    raise ValueError(f"{workdir} holds several runs; restore one of them:\n  "
                     + "\n  ".join(runs))
  config = _read_json_file(os.path.join(workdir, "config.json"), "configuration", from_json)
  tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
  model = get_task(config.task).build_model(config, tokenizer.vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  # best/'s newest readable step; an unreadable one falls back (with a warning) to the previous
  # readable checkpoint, in best/ or checkpoints/.
  import jax
  results_path = os.path.join(workdir, "results.json")
  results = (_read_json_file(results_path, "results") if os.path.exists(results_path) else {})
  selected = checkpoint.restore_selected(workdir, nnx.to_pure_dict(params),
                                         results.get("best_step"))
  model = nnx.merge(graphdef, jax.tree.map(jax.numpy.asarray, selected), rest)
  if not results:   # an interrupted run: its best model so far, said once
    print(f"[xferlab] {workdir} has not finished (no results.json): restoring the best model "
          "it selected so far; rerun its command to finish it", file=sys.stderr, flush=True)
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


class _Parser(argparse.ArgumentParser):
  """An argument parser whose errors are one line (and exit status 2)."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def experiment_files(root: str | None = None) -> list[tuple[str, str]]:
  """``(path, first docstring line)`` of every experiment file under ``experiments/`` (of the
  current directory, else of the checkout this package lies in)."""
  import ast
  import glob
  here = os.path.join(os.getcwd(), "experiments")
  checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments")
  root = root or (here if os.path.isdir(here) else checkout)
  found = []
  for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
    if os.path.basename(path).startswith("_"):
      continue
    try:
      with open(path) as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    except (OSError, SyntaxError, ValueError):
      doc = ""
    shown = os.path.relpath(path)
    found.append((shown if not shown.startswith("..") else path, doc.strip().split("\n")[0]))
  return found


def _epilog() -> str:
  files = experiment_files()
  if not files:
    return "No experiments/ folder found here."
  width = max(len(p) for p, _ in files)
  return "experiments:\n" + "\n".join(f"  {p:<{width}}  {d}" for p, d in files)


def _experiment_help(argv: Sequence[str]) -> str | None:
  """``launch.py path/to/experiment.py[:ARG] --help``: the experiment file's docstring (its
  commands, arms and ``ARG`` options), read without running it; None for any other command."""
  import ast
  if not {"-h", "--help"} & set(argv):
    return None
  paths = [a.split(":")[0] for a in argv
           if not a.startswith("-") and a.split(":")[0].endswith(".py")]
  if not paths or not os.path.isfile(paths[0]):
    return None
  with open(paths[0]) as f:
    doc = ast.get_docstring(ast.parse(f.read())) or f"{paths[0]} has no docstring."
  return f"{doc}\n\n(launch.py's own options: python launch.py --help)"


def _check_workdir(path: str) -> None:
  """Fails in one line when ``path`` cannot be a workdir: a file, inside a file, read-only."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f"--workdir {path} is a file, not a directory; name a directory")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ConfigError(f"--workdir {path} lies inside {existing}, which is a file")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ConfigError(f"--workdir {path}: {existing} is not writable")


def _one_line(error: BaseException) -> str:
  """An exception as one line; a missing corpus with what to do about it."""
  try:
    from xferlab.data.corpora.files import ManualDataError
  except Exception:  # pylint: disable=broad-except
    ManualDataError = ()
  text = str(error)
  if ManualDataError and isinstance(error, ManualDataError) and "\nMissing:" in text:
    import re
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    missing = next((line[len("Missing:"):].strip().split(", ") for line in lines
                    if line.startswith("Missing:")), [])
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    corpus = re.match(r"Corpus '([^']+)'", text)
    name = corpus.group(1).split("/")[0] if corpus else "NAME"
    fetch = (f"; or fetch them: python -m xferlab.data prepare {name} --download"
             if "--download" in text else "")
    return (f"{lines[0]} Missing: {shown}. Pass --manual-dir DIR (the folder with one "
            f"sub-folder per corpus, like ../shared/data) or set XFERLAB_DATA, then rerun; to "
            f"prepare it alone: python -m xferlab.data prepare {name} --manual-dir DIR{fetch}.")
  if isinstance(error, KeyError) and error.args:
    text = str(error.args[0])
  return " ".join(text.split()) or type(error).__name__


USER_ERRORS = (ConfigError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, ValueError, KeyError, TypeError, OSError)


def _parser() -> argparse.ArgumentParser:
  parser = _Parser(
      prog="launch.py", description="Run, or sweep, an xferlab experiment.", epilog=_epilog(),
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("experiment", help="path/to/experiment.py[:arg]")
  parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value (a Python literal; repeatable)")
  parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                      help="sweep a key over values (repeat for a grid)")
  parser.add_argument("--use-experiment-sweep", action="store_true",
                      help="run the experiment file's own sweep(add)")
  parser.add_argument("--vectorize", nargs="?", const=True, default=False, type=_vectorize_mode,
                      metavar="{on,auto,off}",
                      help="train the runs that differ only in λ values (sweep points, and an "
                      "experiment's arms and seeds) as one vmapped program; '--vectorize auto' "
                      "times a few steps both ways and vmaps only where that is faster "
                      "(measured once per program and machine, then remembered: "
                      "XFERLAB_DECISIONS=0 measures every time)")
  parser.add_argument("--workdir", default=None, help="output directory (resumes if it exists)")
  parser.add_argument("--manual-dir", default=None, metavar="DIR",
                      help="the corpora folder, one sub-folder per corpus (sets data.manual_dir; "
                      "default: $XFERLAB_DATA, else ../shared/data)")
  parser.add_argument("--debug", action="store_true",
                      help="show the full traceback of an error")
  return parser


def _vectorize_mode(text: str) -> bool | str:
  """``--vectorize``'s value: ``"auto"``, or on / off (``true`` / ``false``, ``1`` / ``0``)."""
  word = text.strip().lower()
  if word == "auto":
    return "auto"
  if word in ("on", "true", "yes", "1"):
    return True
  if word in ("off", "false", "no", "0"):
    return False
  raise argparse.ArgumentTypeError(f"{text!r}: use on, auto or off")


def _sweep_grid(items: Sequence[str]) -> dict[str, list] | None:
  """``["a.b=1,2", ...]`` -> ``{"a.b": [1, 2], ...}``; None without items."""
  if not items:
    return None
  grid = {}
  for item in items:
    key, sep, values = item.partition("=")
    if not sep:
      raise ConfigError(f"--sweep {item!r} is not of the form KEY=V1,V2,...")
    grid[key.strip()] = [parse_value(v.strip()) for v in _split_values(values)]
  return grid


def _launch(args, overrides: list[str]) -> None:
  """Runs what the parsed command line asks for."""
  if args.workdir:
    _check_workdir(args.workdir)
  if args.sweep and args.use_experiment_sweep:
    raise ConfigError("--sweep and --use-experiment-sweep name two grids; use one")
  if args.sweep or args.use_experiment_sweep:
    sweep(args.experiment, _sweep_grid(args.sweep), args.workdir, overrides,
          vectorize=args.vectorize)
    return
  config, _ = load_experiment(args.experiment)
  config = apply_overrides(config, overrides)
  workdir = args.workdir or _default_workdir(config)
  if args.vectorize:   # the arms × seeds that may share a program train first, then are read
    _train_vectorized_recorded([(config, workdir)], workdir, args.vectorize)
  results = run_config(config, workdir)
  if not config.arms and not len(config.seeds) > 1:
    print(json.dumps(results, indent=2))
  print(f"[xferlab] results in {os.path.join(workdir, 'results.json')}")


def _join_writer_threads(timeout_s: float = 120.0) -> None:
  """Waits for the threads still writing (orbax's checkpoint writers) after an interrupt: one
  left running into interpreter shutdown failed there with a traceback on stderr."""
  for thread in threading.enumerate():
    if thread is not threading.current_thread() and not thread.daemon:
      thread.join(timeout_s)


def main(argv: Sequence[str] | None = None) -> int:
  """The command line; returns the exit status. Every error is one line on stderr (status 2 for
  a wrong invocation or configuration, 1 for a failure while running; ``--debug`` re-raises
  with the traceback)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  experiment_help = _experiment_help(argv)
  if experiment_help is not None:
    print(experiment_help)
    return 0
  try:
    args = _parser().parse_args(argv)
  except SystemExit as e:   # --help, or a usage error already printed in one line
    return int(e.code or 0)
  overrides = list(args.overrides)
  if args.manual_dir is not None:
    overrides.append(f"data.manual_dir={args.manual_dir}")
  stopped = {"by": signal.SIGINT}

  def on_sigterm(signum, _frame):   # a scheduler's or `kill`'s stop: as Ctrl-C, said once
    stopped["by"] = signum
    raise KeyboardInterrupt

  main_thread = threading.current_thread() is threading.main_thread()   # signals' only home
  previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
  try:
    from xferlab.launch_local import initialize_from_env   # multi-host: join jax.distributed
    initialize_from_env()
    _launch(args, overrides)
  except KeyboardInterrupt:
    if args.debug:
      raise
    _join_writer_threads()
    print("error: interrupted; rerun the same command to resume", file=sys.stderr)
    return 128 + stopped["by"]   # 130 for SIGINT, 143 for SIGTERM
  except Exception as e:  # pylint: disable=broad-except
    if args.debug:
      raise
    if isinstance(e, ConfigError):
      print(f"error: {_one_line(e)}", file=sys.stderr)
      return 2
    if isinstance(e, USER_ERRORS):
      print(f"error: {_one_line(e)}", file=sys.stderr)
      return 1
    print(f"error: {type(e).__name__}: {_one_line(e)} (an internal error: rerun with --debug "
          "for the traceback)", file=sys.stderr)
    return 1
  finally:
    if main_thread:
      signal.signal(signal.SIGTERM, previous)
  return 0

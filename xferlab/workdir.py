"""A run's workdir contract: which configuration it holds, whether it trained, what it found.

A workdir holds one run: ``config.json`` (the resolved configuration),
``checkpoints/`` and ``best/`` once training has saved anything, and
``results.json`` once it finished. The rules, for every entry point:

* a workdir whose ``config.json`` differs from the requested configuration is
  refused once it holds training (a checkpoint): resuming it would mix two
  runs. Before that -- a run that failed while preparing its data, say -- the
  corrected configuration replaces the old one, and what changed is printed;
* a run and a sweep never share a workdir (``refuse_mixing``), and an experiment's arms and
  seeds (one folder each) are refused where another configuration trained, as a run is;
* a run is *finished* when ``results.json`` exists and its configuration
  matches; its results are then returned without training;
* keys added to xferlab after a run was written do not count as differences
  as long as the new configuration holds their default, and neither does
  ``train.progress_bar``; keys renamed since (``xferlab.config.OLD_KEYS``) are
  read under their new names (``config.migrate``).
"""

from __future__ import annotations

import json
import os

from xferlab.config import flatten, from_json, migrate, to_json
from xferlab.defaults import TASK_SECTIONS, base_config

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
SWEEP_FILE = "sweep.json"
# Keys that never change what a run trains or what its results say: a run written with another
# value is the same run. ``train.final_eval_sets`` moves a set's scoring from every evaluation
# to one on the selected model (the same numbers in results.json; fewer rows in metrics.jsonl),
# and never holds the selection's set (config.validate).
IGNORED_KEYS = ("train.progress_bar", "train.final_eval_sets")


def same_corpus_file(old, new, data_root: str) -> bool:
  """Whether ``old`` and ``new`` are absolute paths of one file of the corpus folder: ``new``
  below this machine's ``data_root``, ``old`` ending in the same path below another root
  (a run written on a machine whose corpora lie elsewhere, or its record unpacked here)."""
  if not (isinstance(old, str) and isinstance(new, str) and os.path.isabs(old)
          and os.path.isabs(new)):
    return False
  relative = os.path.relpath(new, data_root)
  return not relative.startswith("..") and old.endswith(os.sep + relative)


def config_differences(old, new) -> list[str]:
  """The flattened keys (sorted) where configuration ``new`` differs from ``old``, a run's
  written one: ``IGNORED_KEYS`` aside, keys added to xferlab after ``old`` was written as
  long as ``new`` holds their default, and corpus files (GloVe's vectors) named by their
  absolute path on another machine (``same_corpus_file``). ``old`` is read in today's keys
  first (``config.migrate``: renamed keys mapped), so a run written before a rename still
  matches."""
  from xferlab.data.catalog import data_root
  a, b = flatten(migrate(old)), flatten(from_json(to_json(new)))
  task = b.get("task") if b.get("task") in TASK_SECTIONS else "classification"
  defaults = flatten(from_json(to_json(base_config(task))))
  added = {k for k in set(b) - set(a) if k in defaults and b[k] == defaults[k]}
  ignore = set(IGNORED_KEYS) | added
  root = str(data_root(b.get("data.manual_dir") or None))
  return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k)
                and not same_corpus_file(a.get(k), b.get(k), root))


def written_config(workdir: str):
  """The configuration ``workdir`` holds, or None."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return from_json(f.read())


def refuse_mixing(workdir: str, kind: str) -> None:
  """Refuses to put a run (``kind="run"``) where a sweep is, or a sweep (``"sweep"``) where a
  run is: a sweep writes its points' folders and ``sweep.json`` beside a run's own files,
  and a run's ``config.json`` would describe none of the sweep's points."""
  if kind == "sweep" and os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    raise ValueError(f"{workdir} holds a run ({CONFIG_FILE}); give the sweep a workdir of "
                     "its own")
  if kind == "run" and os.path.exists(os.path.join(workdir, SWEEP_FILE)):
    raise ValueError(f"{workdir} holds a sweep ({SWEEP_FILE}); give the run a workdir of "
                     "its own")


def has_training(workdir: str) -> bool:
  """Whether ``workdir`` holds anything training saved (a checkpoint or a selected model)."""
  for sub in ("checkpoints", "best"):
    folder = os.path.join(workdir, sub)
    if os.path.isdir(folder) and any(d.isdigit() for d in os.listdir(folder)):
      return True
  return os.path.exists(os.path.join(workdir, RESULTS_FILE))


def check_config(config, workdir: str) -> list[str]:
  """The keys where ``config`` differs from the one ``workdir`` holds ([] when none is
  written). Raises ``ValueError`` when they differ and the workdir holds training."""
  old = written_config(workdir)
  if old is None:
    return []
  diff = config_differences(old, config)
  if diff and has_training(workdir):
    raise ValueError(f"{workdir} holds a run with a different configuration "
                     f"(differs in: {', '.join(diff)}); use another workdir to start a new run.")
  return diff


def claim(config, workdir: str) -> None:
  """Makes ``workdir`` hold ``config``: checks it (``check_config``), then writes
  ``config.json``. A replaced configuration of a run that never trained is reported."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"The workdir {workdir} is a file; name a folder")
  diff = check_config(config, workdir)
  if diff:
    print(f"[xferlab] {workdir} held no training yet; its configuration is replaced "
          f"(changed: {', '.join(diff)})", flush=True)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
    f.write(to_json(config))


def finished_results(config, workdir: str) -> dict | None:
  """The results of a finished run of ``config`` in ``workdir``, else None."""
  path = os.path.join(workdir, RESULTS_FILE)
  if not os.path.exists(path):
    return None
  check_config(config, workdir)
  with open(path) as f:
    return json.load(f)


def write_results(workdir: str, results: dict) -> None:
  with open(os.path.join(workdir, RESULTS_FILE), "w") as f:
    json.dump(results, f, indent=2)

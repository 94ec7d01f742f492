"""Running a benchmark's arms: each arm is an experiment argument, perhaps with a parent run.

A table maps ``arm -> (experiment argument, parent arm or None)``. ``train``
runs ``OUT/<arm>/seed_<s>`` through ``xferlab.launch.run_config``, training the
parent first (seed 0, ``OUT/<parent>/seed_0``) and pointing ``init_from.path``
at it. A run whose ``results.json`` exists is read, not trained again, so a
benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, Sequence

from xferlab import launch
from xferlab.config import ConfigError, apply_overrides, load_experiment


def run_dir(out: str, arm: str, seed: int) -> str:
  return os.path.join(out, arm, f"seed_{seed}")


def arm_config(experiment: str, table: Mapping, arm: str, seed: int, out: str,
               overrides: Sequence[str]):
  argument, parent = table[arm]
  config, _ = load_experiment(f"{experiment}:{argument}")
  config = apply_overrides(config, list(overrides))
  config.seed = seed
  if parent:
    config.init_from.path = os.path.abspath(run_dir(out, parent, 0))
  return config


def train(experiment: str, table: Mapping, arm: str, seed: int, out: str,
          overrides: Sequence[str], parent_overrides: Sequence[str] | None = None) -> dict:
  """Trains (or reads) one arm and seed, its parent first; returns its results.

  The parent gets ``parent_overrides`` (default: the arm's ``overrides``).
  """
  parent = table[arm][1]
  if parent:
    train(experiment, table, parent, 0, out,
          overrides if parent_overrides is None else parent_overrides)
  print(f"[benchmark] {arm} seed {seed} -> {run_dir(out, arm, seed)}", flush=True)
  config = arm_config(experiment, table, arm, seed, out, overrides)
  return launch.run_config(config, run_dir(out, arm, seed))


def argument_parser(prog: str, description: str, table: Mapping, default_arms: Sequence[str],
                    default_out: str, seeds_help: str = "seeds per arm") -> argparse.ArgumentParser:
  """``--arms``, ``--seeds``, ``--out`` and ``--set``, shared by the arm benchmarks."""
  parser = argparse.ArgumentParser(prog=prog, description=description)
  parser.add_argument("--arms", default=",".join(default_arms),
                      help=f"comma-separated, from {sorted(table)}")
  parser.add_argument("--seeds", type=int, default=2, help=seeds_help)
  parser.add_argument("--out", default=default_out)
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override every run's config")
  return parser


def selected_arms(text: str, table: Mapping) -> list[str]:
  """The arms of ``--arms``; an unknown one raises ``ConfigError`` naming the valid ones."""
  arms = [a.strip() for a in text.split(",") if a.strip()]
  unknown = [a for a in arms if a not in table]
  if unknown:
    raise ConfigError(f"unknown arms {unknown}; choose from {sorted(table)}")
  return arms


def run_reporting_errors(body) -> int:
  """Runs ``body()``; a ``ConfigError`` is printed as ``error: ...`` and gives exit status 2."""
  try:
    body()
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0

"""Measured choices remembered per machine, so that a choice is measured once, not every time.

``vectorize="auto"`` (``xferlab.launch.train_vectorized``) times a population of runs both
ways, vmapped and one after the other, before it trains. That probe costs a data
preparation, a compilation of the vmapped program and a few steps each way: seconds, which
weigh in a sweep of short runs. Its answer depends only on the program and the machine, so
it is kept here and reused by the next sweep of the same program on the same machine,
like an autotuning cache.

The key is everything that changes the step's cost: the population's configuration
without the keys its members may differ in (``xferlab.train.population_key``), the number
of runs, the JAX version, the backend and its devices, the CPU model and instruction set,
the cores this process may use and whether the native loops run. Anything else (another
machine, an upgraded JAX, a changed batch size) measures again.

The file is ``~/.cache/xferlab/decisions.json``; ``XFERLAB_DECISIONS=PATH`` moves it, and
``XFERLAB_DECISIONS=0`` turns remembering off (every ``auto`` measures). Deleting the file
forgets every decision.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

ENV = "XFERLAB_DECISIONS"
DEFAULT_PATH = "~/.cache/xferlab/decisions.json"


def path() -> Path | None:
  """The decisions file, or None when remembering is off (``XFERLAB_DECISIONS=0``)."""
  chosen = os.environ.get(ENV, DEFAULT_PATH)
  if chosen.strip().lower() in ("0", "off", "false", ""):
    return None
  return Path(chosen).expanduser()


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
  """What about this process and machine changes a step's cost (part of every key)."""
  import jax   # pylint: disable=import-outside-toplevel
  from xferlab import native   # pylint: disable=import-outside-toplevel
  devices = jax.devices()
  cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
           else os.cpu_count())
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [d.device_kind for d in devices], "cpu": _cpu_model(),
          "machine": platform.machine(), "cores": cores,
          "native": native.instruction_set() if native.available() else None,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def key(kind: str, program: str, **details: Any) -> str:
  """The key of one choice: ``kind`` (e.g. ``"vectorize"``), the program it is about (a
  string such as ``population_key``), other details, and ``machine()``."""
  text = json.dumps({"kind": kind, "program": program, "details": details,
                     "machine": machine()}, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def _read(file: Path) -> dict:
  try:
    with open(file) as f:
      table = json.load(f)
    return table if isinstance(table, dict) else {}
  except (OSError, ValueError):   # absent, or unreadable: nothing remembered
    return {}


def recall(choice_key: str) -> dict | None:
  """The remembered choice of ``choice_key`` (with ``"measured_at"``), or None."""
  file = path()
  if file is None:
    return None
  found = _read(file).get(choice_key)
  return dict(found) if isinstance(found, dict) else None


def remember(choice_key: str, choice: dict) -> dict:
  """Keeps ``choice`` (a JSON-serializable dict) under ``choice_key``, stamped with the time,
  and returns it stamped; a file that cannot be written is skipped (the next call measures
  again)."""
  stamped = dict(choice, measured_at=datetime.datetime.now(
      datetime.timezone.utc).isoformat(timespec="seconds"))
  file = path()
  if file is None:
    return stamped
  with contextlib.suppress(OSError):
    file.parent.mkdir(parents=True, exist_ok=True)
    table = _read(file)
    table[choice_key] = stamped
    tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
      json.dump(table, f, indent=1)
    os.replace(tmp, file)   # atomic: a concurrent reader sees the old or the new table
  return stamped

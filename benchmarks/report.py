"""Report formatting shared by the benchmarks: statistics over seeds, mean ± std cells,
markdown table lines, and the ``results.json`` / ``results.md`` files.

A statistic is ``xferlab.metrics.mean_std``'s dict, ``{"mean", "std", "values"}``.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

from xferlab.metrics import mean_std


def stats(runs: Sequence[Mapping], keys: Iterable[str]) -> dict:
  """``{key: mean_std of runs[i][key]}`` for each key (every run must have it)."""
  return {k: mean_std([r[k] for r in runs]) for k in keys}


def cell(stat: Mapping | None, digits: int = 1, scale: float = 1.0) -> str:
  """``mean ± std`` of a statistic times ``scale``; the mean alone for fewer than two values
  (or no std); ``-`` for none."""
  if not stat:
    return "-"
  if stat.get("std") is None or len(stat.get("values", ())) < 2:
    return f"{scale * stat['mean']:.{digits}f}"
  return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"


def row(cells: Iterable[str]) -> str:
  """One markdown table row: ``| a | b |``."""
  return "| " + " | ".join(cells) + " |"


def header(columns: Sequence[str]) -> list[str]:
  """A markdown table's header row and its rule."""
  return [row(columns), "|---" * len(columns) + "|"]


def write_json(path: str, results) -> None:
  """``results`` as indented JSON at ``path``, through a temporary file: a reader never sees
  half a file."""
  with open(path + ".tmp", "w") as f:
    json.dump(results, f, indent=2, default=str)
  os.replace(path + ".tmp", path)


def write_markdown(out: str, markdown: str) -> None:
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(markdown)


def write_results(out: str, markdown: str, results) -> None:
  """``OUT/results.json`` (every number) and ``OUT/results.md`` (the report)."""
  write_json(os.path.join(out, "results.json"), results)
  write_markdown(out, markdown)

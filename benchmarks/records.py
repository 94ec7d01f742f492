r"""A benchmark's record: the small files of its finished runs, without their weights.

  python -m benchmarks.records OUT RECORD      # copy OUT's record into RECORD
  cp -r RECORD OUT                              # later: resume from the record

A benchmark's ``--out`` holds, per run, its checkpoints (tens of MB) beside a
few small files: the resolved config, the results, the metrics log, the domain
distance. Those small files are all the benchmark reads back from a finished
run (``xferlab.train.finished_results`` counts a run with ``results.json`` and
the same config as finished; the domain distance and the discriminator's
accuracy come from ``domain_distance.json`` and ``metrics.jsonl``), so a
record copied back into an ``--out`` lets the benchmark go on where it
stopped, on another machine, without retraining, and keeps every number its
tables are made of. A run whose weights are needed again (to predict, or for
a new picture) must be retrained.

The records of the benchmarks this project reports live under
``benchmarks/results/`` (committed; no corpus text, no weights).
"""

import argparse
import fnmatch
import os
import shutil
import sys
from typing import Sequence

KEPT_FILES = ("config.json", "results.json", "results.md", "metrics.jsonl", "domain_distance.json",
              "word_vectors.json", "tfidf_peer.json", "sweep.json", "sweep.md", "*.png")
SKIPPED_DIRS = ("checkpoints", "best", "tensorboard", "tokenizer")


def save(out: str, record: str) -> list[str]:
  """Copies the kept files of ``out``'s finished runs into ``record`` (same layout); returns
  their paths, relative to ``record``. Files already in ``record`` are overwritten, others
  kept."""
  if not os.path.isdir(out):
    raise FileNotFoundError(f"No benchmark output at {out!r}")
  copied = []
  for root, dirs, files in os.walk(out):
    dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
    if "config.json" in files and "results.json" not in files:
      continue                                   # a run cut short: it trains again on resume
    for name in sorted(files):
      if any(fnmatch.fnmatch(name, pattern) for pattern in KEPT_FILES):
        relative = os.path.relpath(os.path.join(root, name), out)
        os.makedirs(os.path.dirname(os.path.join(record, relative)), exist_ok=True)
        shutil.copy2(os.path.join(root, name), os.path.join(record, relative))
        copied.append(relative)
  return copied


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.records",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("out", help="a benchmark's --out directory")
  parser.add_argument("record", help="where its record goes (e.g. benchmarks/results/sentiment)")
  args = parser.parse_args(argv)
  try:
    copied = save(args.out, args.record)
  except FileNotFoundError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"[records] {len(copied)} files from {args.out} -> {args.record}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

r"""A benchmark's record: the small files of its finished runs, without their weights, in one file.

  python -m benchmarks.records OUT RECORD            # pack OUT's finished runs into RECORD
  python -m benchmarks.records --unpack RECORD OUT   # later, elsewhere: the runs back into OUT
  python -m benchmarks.records --list RECORD         # the files a record holds

A benchmark's ``--out`` holds, per run, its checkpoints (tens of MB) beside a
few small files: the resolved config, the results, the metrics log, the domain
distance, the word-vector coverage. Those small files are all the benchmark
reads back from a finished run (``xferlab.train.finished_results`` counts a run
with ``results.json`` and the same config as finished; the domain distance and
the discriminator's accuracy -- the mean ``domain_accuracy`` of the last
quarter of the ``split: train`` rows -- come from ``domain_distance.json`` and
``metrics.jsonl``), so a record unpacked into an ``--out`` lets the benchmark
go on where it stopped, on another machine, without retraining, and keeps
every number its tables are made of. A run whose weights are needed again (to
predict, or for a new picture) must be retrained.

A record is a directory (``RECORD``) holding

* ``records.jsonl.gz``: one JSON line per directory below ``OUT`` that holds
  kept files (each finished run, and a pair's own files such as
  ``tfidf_peer.json`` and ``features.png``), sorted by path::

    {"path": "A/books_dvd/dann/seed_0",
     "files": {"config.json": "<text>", "metrics.jsonl": "<text>", ...},
     "base64": {"features.png": "<base64>"}}     # only files that are not UTF-8 text

  Every file's bytes are kept exactly (the text decoded from UTF-8, anything
  else in base64), the whole metrics log included; the gzip stream carries no
  name and no time, so packing the same runs again gives the same bytes;
* ``OUT``'s own top-level files, as plain files beside it (``results.json``,
  ``results.md``, a sweep's ``sweep.json`` / ``sweep.md`` / ``sweep.png``, the translation
  benchmark's ``back_translation.json``), so
  that the reports can be read where they are committed;
* anything else put there by hand (a pilot's ``README.md``): never written
  or unpacked by this module.

Kept: ``KEPT_FILES``, outside the folders of weights and tokenizers
(``SKIPPED_DIRS``); a run cut short (``config.json`` without ``results.json``)
is left out and trains again on resume. Packing into an existing record adds
to it: its other runs stay, files of the same path are replaced by ``OUT``'s.
Unpacking never replaces a file of ``OUT`` that differs from the record's
(it names them; ``--force`` does), so it can fill an ``--out`` in use.

The records of the benchmarks this project reports live under
``benchmarks/results/<name>/`` (committed; no corpus text, no weights):
``sentiment_A``, ``sentiment_B``, ``sentiment_movie`` (``python -m
benchmarks.sentiment``), ``sentiment_A_lambda_sweep`` (``launch.py --sweep``)
and the pilots ``sentiment_A_*_pilot``, ``_im_beta1``, ``_vectors_6epochs``.
To resume one: unpack it into a fresh ``--out`` and run the same benchmark
command with that ``--out``.
"""

import argparse
import base64
import fnmatch
import gzip
import io
import json
import os
import sys
from typing import Mapping, Sequence

KEPT_FILES = ("config.json", "results.json", "results.md", "metrics.jsonl", "domain_distance.json",
              "word_vectors.json", "tfidf_peer.json", "sweep.json", "sweep.md", "*.png",
              # the studies' reports (xferlab.studies.explain / robustness / privacy)
              "explain.json", "explain.md", "robustness.json", "robustness.md",
              "membership_inference.json",
              # a self-trained student's labels for target rows (indices, no text)
              "pseudo_labels.npz", "pseudo_labels.json",
              # the IMDb benchmark's peers (benchmarks.imdb: <budget>/peers/<peer>_seed_<s>.json)
              "tfidf_logreg_seed_*.json", "nbsvm_seed_*.json",
              # what a _probe arm's head was fitted with (its weights are not kept)
              "probe_head.json",
              # a run's class probabilities on its evaluation sets, and an ensemble of runs
              # (xferlab.studies.ensemble: what an ensemble is computed from without weights)
              "predictions.npz", "ensemble.json",
              # benchmarks.translation's summary of its back-translations (sizes, timings,
              # decoding settings; no text)
              "back_translation.json")
SKIPPED_DIRS = ("checkpoints", "best", "tensorboard", "tokenizer")
# What a run is given before it trains, kept even from a run cut short: a self-trained
# student's labels come from its teacher's weights, which no record keeps, so a student cut
# short resumes elsewhere from these and retrains (its outputs are dropped as usual).
RUN_INPUTS = ("pseudo_labels.npz", "pseudo_labels.json")
RECORD_FILE = "records.jsonl.gz"


def _kept(name: str) -> bool:
  return any(fnmatch.fnmatch(name, pattern) for pattern in KEPT_FILES)


def _read(path: str) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def collect(out: str) -> dict[str, bytes]:
  """The kept files of ``out``'s finished runs, ``{path relative to out ('/'-separated): bytes}``."""
  if not os.path.isdir(out):
    raise FileNotFoundError(f"No benchmark output at {out!r}")
  found = {}
  for root, dirs, files in os.walk(out):
    dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
    if "config.json" in files and "results.json" not in files:
      files = [n for n in files if n in RUN_INPUTS]   # cut short: it trains again on resume
    for name in sorted(files):
      path = os.path.join(root, name)
      if _kept(name) and os.path.isfile(path):
        found[os.path.relpath(path, out).replace(os.sep, "/")] = _read(path)
  return found


def _lines(files: Mapping[str, bytes]) -> bytes:
  """``records.jsonl.gz``'s uncompressed text for the files below the top level."""
  folders: dict[str, dict[str, bytes]] = {}
  for relative, content in files.items():
    folder, name = relative.rsplit("/", 1)
    folders.setdefault(folder, {})[name] = content
  lines = []
  for folder in sorted(folders):
    line: dict = {"path": folder, "files": {}}
    for name in sorted(folders[folder]):
      content = folders[folder][name]
      try:
        line["files"][name] = content.decode("utf-8")
      except UnicodeDecodeError:
        line.setdefault("base64", {})[name] = base64.b64encode(content).decode("ascii")
    lines.append(json.dumps(line, ensure_ascii=False) + "\n")
  return "".join(lines).encode("utf-8")


def read_record(record: str) -> dict[str, bytes]:
  """Every file a record holds, ``{path relative to the benchmark's --out: bytes}``: the runs'
  files from ``records.jsonl.gz`` and the top-level ones beside it."""
  if not os.path.isdir(record):
    raise FileNotFoundError(f"No benchmark record at {record!r}")
  files = {}
  for name in sorted(os.listdir(record)):
    if _kept(name) and os.path.isfile(os.path.join(record, name)):
      files[name] = _read(os.path.join(record, name))
  path = os.path.join(record, RECORD_FILE)
  if os.path.exists(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
      for line in f:
        entry = json.loads(line)
        for name, text in entry.get("files", {}).items():
          files[f"{entry['path']}/{name}"] = text.encode("utf-8")
        for name, data in entry.get("base64", {}).items():
          files[f"{entry['path']}/{name}"] = base64.b64decode(data)
  return files


def write_record(files: Mapping[str, bytes], record: str) -> None:
  """Writes ``files`` (``read_record``'s form) as the record ``record``: the top-level ones as
  plain files, the rest into ``records.jsonl.gz`` (replaced)."""
  os.makedirs(record, exist_ok=True)
  for relative, content in files.items():
    if "/" not in relative:
      with open(os.path.join(record, relative), "wb") as f:
        f.write(content)
  buffer = io.BytesIO()
  with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
    f.write(_lines({k: v for k, v in files.items() if "/" in k}))
  path = os.path.join(record, RECORD_FILE)
  with open(path + ".tmp", "wb") as f:
    f.write(buffer.getvalue())
  os.replace(path + ".tmp", path)


def save(out: str, record: str) -> list[str]:
  """Packs the kept files of ``out``'s finished runs into the record ``record``, adding to what
  it holds (files of the same path are replaced); returns the packed paths, relative to
  ``out``."""
  found = collect(out)
  files = read_record(record) if os.path.isdir(record) else {}
  files.update(found)
  write_record(files, record)
  return sorted(found)


def unpack(record: str, out: str, force: bool = False) -> tuple[list[str], list[str]]:
  """Writes every file of the record ``record`` into ``out`` (its layout: a benchmark's --out).

  Returns ``(written, kept)``: the paths written (or already identical), and those of ``out``
  left as they were because they differ from the record's (replaced with ``force``)."""
  written, kept = [], []
  for relative, content in sorted(read_record(record).items()):
    path = os.path.join(out, *relative.split("/"))
    if os.path.exists(path) and _read(path) != content and not force:
      kept.append(relative)
      continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(content)
    written.append(relative)
  return written, kept


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.records", description=__doc__.split("\n")[0],
      usage="%(prog)s OUT RECORD | --unpack RECORD OUT [--force] | --list RECORD")
  parser.add_argument("paths", nargs="+", metavar="PATH",
                      help="OUT RECORD: pack a benchmark's --out into a record (e.g. "
                      "benchmarks/results/sentiment_A); with --unpack: RECORD OUT; with --list: "
                      "RECORD")
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--unpack", action="store_true",
                    help="write a record's files back into a --out, to resume there")
  mode.add_argument("--list", action="store_true", help="print the files a record holds")
  parser.add_argument("--force", action="store_true",
                      help="with --unpack: replace files of OUT that differ from the record's")
  args = parser.parse_args(argv)
  if len(args.paths) != (1 if args.list else 2):
    parser.error("expected " + ("RECORD" if args.list else
                                "RECORD OUT" if args.unpack else "OUT RECORD"))
  try:
    if args.list:
      for relative, content in sorted(read_record(args.paths[0]).items()):
        print(f"{len(content):>10}  {relative}")
    elif args.unpack:
      record, out = args.paths
      written, kept = unpack(record, out, force=args.force)
      print(f"[records] {len(written)} files from {record} -> {out}")
      if kept:
        print(f"[records] kept {len(kept)} files of {out} that differ from the record's "
              f"(--force replaces them): {', '.join(kept)}")
    else:
      out, record = args.paths
      packed = save(out, record)
      print(f"[records] {len(packed)} files from {out} -> {record}")
  except FileNotFoundError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

"""Command line for the corpora: ``python -m xferlab.data prepare [NAME ...] [--all]``.

Prepares the named corpora (``corpus`` for all its configs, or
``corpus/config``) into the data dir and prints a JSON object of example
counts ``{corpus: {config: {split: n}}}`` on stdout ("default" is the config
key of corpora without configs). Progress and TFDS messages go to stderr.

  python -m xferlab.data prepare --all --manual-dir ../shared/data
  python -m xferlab.data prepare multi30k/en-fr ptb --data-dir DATA_DIR
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys

from xferlab.data import catalog


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m xferlab.data",
                                   description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True)
  prepare = commands.add_parser("prepare", help="prepare corpora and print their example counts")
  prepare.add_argument("names", nargs="*", metavar="NAME",
                       help="corpus or corpus/config; corpora: "
                       + ", ".join(catalog.corpus_names()))
  prepare.add_argument("--all", action="store_true", help="prepare every corpus")
  prepare.add_argument("--manual-dir", help="data root with one sub-folder per corpus "
                       f"(default: ${catalog.DATA_ENV}, else the checkout's ../shared/data)")
  prepare.add_argument("--data-dir", help="where prepared datasets are cached "
                       f"(default: ${catalog.DATA_DIR_ENV}, else {catalog.DEFAULT_DATA_DIR})")
  prepare.add_argument("--download", action="store_true",
                       help="fetch files missing from the manual folder from their "
                       "original address")
  prepare.add_argument("--quiet", action="store_true", help="no progress bars or INFO logs")
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if not args.names and not args.all:
    print("Name corpora to prepare, or pass --all.", file=sys.stderr)
    return 2
  # Our own INFO lines (dropped duplicates, re-spaced summaries...) but not TFDS's.
  logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                      format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger("xferlab").setLevel(logging.WARNING if args.quiet else logging.INFO)
  if args.quiet:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    tfds.disable_progress_bar()
  names = catalog.corpus_names() if args.all else args.names
  unknown = [n for n in names if n.split("/")[0] not in catalog.corpus_names()]   # corpus/config
  if unknown:   # a wrong invocation: status 2, with the nearest name
    close = difflib.get_close_matches(unknown[0].split("/")[0], catalog.corpus_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    print(f"error: unknown corpus {unknown[0]!r}{hint}; known: "
          f"{', '.join(catalog.corpus_names())}", file=sys.stderr)
    return 2
  try:
    counts = catalog.prepare(names, manual_dir=args.manual_dir, data_dir=args.data_dir,
                             download=args.download)
  except (OSError, ValueError, KeyError) as e:  # ManualDataError and CorruptFileError are OSErrors
    print(f"error: {e}", file=sys.stderr)
    return 1
  json.dump(counts, sys.stdout, indent=2)
  print()
  return 0


if __name__ == "__main__":
  sys.exit(main())

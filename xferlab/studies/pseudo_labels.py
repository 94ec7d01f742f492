r"""A teacher's pseudo-labels for a target domain's unlabeled text, from finished runs.

  python -m xferlab.studies.pseudo_labels RUN [RUN ...] --out PSEUDO.npz [--fraction 0.5]

The runs (one, or several averaged as an ensemble) label the ``target_unlabeled`` texts of
their own data configuration with their selected weights (``best/``), through the
probabilities kept in each run's ``predictions.npz`` (so also when read back from a
record, without weights); the most confident
share of each predicted class is written for a student's ``data.pseudo_labels``
(``xferlab.transfer.self_training`` says what is kept and how a student reads it).
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from xferlab.transfer.self_training import DEFAULT_FRACTION, write_pseudo_labels


def unlabeled_probabilities(workdirs: Sequence[str]) -> tuple[np.ndarray, list[str]]:
  """The mean class probabilities of the runs ``workdirs`` on their ``target_unlabeled``
  texts, and those texts. The runs must share that split. Each run's probabilities are the
  ones kept in its ``predictions.npz`` (``xferlab.studies.ensemble.unlabeled_predictions``:
  computed once from its selected weights), so a teacher read back from a record labels
  exactly as it did where it trained."""
  from xferlab.studies.ensemble import unlabeled_predictions
  probabilities, texts = [], None
  for workdir in workdirs:
    own_probabilities, own = unlabeled_predictions(workdir)
    if texts is not None and own != texts:
      raise ValueError(f"{workdir} reads other target_unlabeled texts than {workdirs[0]}")
    texts = own
    probabilities.append(own_probabilities)
  return np.mean(probabilities, axis=0), texts


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.pseudo_labels",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", help="the teacher: finished classification runs")
  parser.add_argument("--out", required=True, help="the pseudo-label file to write (.npz)")
  parser.add_argument("--fraction", type=float, default=DEFAULT_FRACTION,
                      help="the share of each predicted class kept (default %(default)s)")
  args = parser.parse_args(argv)
  probabilities, texts = unlabeled_probabilities(args.runs)
  summary = write_pseudo_labels(args.out, probabilities, texts, args.fraction)
  print(f"{args.out}: {summary['kept']} of {summary['of']} target texts, per class "
        f"{summary['per_class']}, mean confidence {summary['mean_confidence']:.3f}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

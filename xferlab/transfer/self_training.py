r"""Self-training: a teacher's confident predictions on unlabeled target text become labels.

  python -m xferlab.studies.pseudo_labels RUN [RUN ...] --out runs/pseudo_b_d.npz  # the teacher
  python launch.py experiments/sentiment/amazon.py:source=books,target=dvd,arms=vectors_ema \
      --set data.pseudo_labels=runs/pseudo_b_d.npz --workdir runs/student       # the student

The teacher is one finished classification run or several (their mean class probabilities, as
``xferlab.studies.ensemble`` averages them; ``xferlab.studies.pseudo_labels`` reads them from
the runs' weights and writes the file). It labels the target domain's unlabeled text
(``target_unlabeled`` of the runs' own data configuration); the most confident ``fraction``
of each predicted class is kept: class-balanced selection (Zou et al. 2018's CBST), so the
kept labels keep the teacher's class proportions instead of filling up with the class it
is surest of. A student (any classification configuration with ``data.pseudo_labels``)
then trains on the labeled source rows plus these (``with_pseudo_labels``; a bare file
name is the file in the run's own workdir, ``pseudo_labels_file``): the target
domain's own text, labeled by a model that never saw a target label. Model choice stays
on source validation.

``pseudo_labels.npz`` holds no text, only rows of ``target_unlabeled``:

  ``indices``      ``int32[k]``    the rows kept, ascending
  ``labels``       ``int32[k]``    the teacher's class for each
  ``confidences``  ``float32[k]`` its probability of that class
  ``fingerprint``  ``str``         sha256 of all the unlabeled texts, in order
  ``fraction``     ``float``       the share of each predicted class kept

so a student whose ``target_unlabeled`` is not the texts the teacher labeled (another
corpus, target, or version of the data) fails naming the difference.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from xferlab.text_inputs import texts_digest

DEFAULT_FRACTION = 0.5


def select_confident(probabilities: np.ndarray, fraction: float = DEFAULT_FRACTION
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The most confident ``fraction`` of each predicted class of ``float[n, classes]``.

  Returns ``(indices int32[k], labels int32[k], confidences float32[k])``, indices ascending;
  a class predicted ``m`` times keeps ``ceil(fraction · m)`` rows (ties broken by row order).
  """
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"fraction = {fraction}: the share of each class kept is in (0, 1]")
  probabilities = np.asarray(probabilities, np.float32)
  predicted = probabilities.argmax(-1)
  confidence = probabilities.max(-1)
  kept = []
  for label in np.unique(predicted):
    rows = np.flatnonzero(predicted == label)
    order = np.argsort(-confidence[rows], kind="stable")
    kept.append(rows[order[:int(np.ceil(fraction * len(rows)))]])
  indices = np.sort(np.concatenate(kept)).astype(np.int32) if kept else np.zeros(0, np.int32)
  return indices, predicted[indices].astype(np.int32), confidence[indices]


def kept_accuracy(probabilities: np.ndarray, labels: np.ndarray,
                  fraction: float = DEFAULT_FRACTION) -> float:
  """The accuracy of the rows ``select_confident`` keeps of a labeled set: how clean the
  teacher's pseudo-labels are, measured where labels exist (a diagnostic: the unlabeled
  text itself has none, and nothing is chosen with it)."""
  indices, predicted, _ = select_confident(probabilities, fraction)
  return float(np.mean(predicted == np.asarray(labels)[indices]))


def write_pseudo_labels(path: str, probabilities: np.ndarray, texts: Sequence[str],
                        fraction: float = DEFAULT_FRACTION) -> dict:
  """Selects (``select_confident``) and writes ``path``; returns a summary: the rows kept, of
  how many, per class, and their mean confidence."""
  if len(probabilities) != len(texts):
    raise ValueError(f"{len(probabilities)} teacher predictions for {len(texts)} texts")
  indices, labels, confidences = select_confident(probabilities, fraction)
  np.savez_compressed(path, indices=indices, labels=labels, confidences=confidences,
                      fingerprint=np.array(texts_digest(texts)), fraction=np.array(fraction))
  return {"kept": int(len(indices)), "of": len(texts), "fraction": fraction,
          "per_class": {int(c): int((labels == c).sum()) for c in np.unique(labels)},
          "mean_confidence": float(confidences.mean()) if len(indices) else 0.0}


RUN_OWN_FILE = "pseudo_labels.npz"   # data.pseudo_labels naming the file in the run's workdir


def pseudo_labels_file(value: str, workdir: str) -> str:
  """The file ``data.pseudo_labels = value`` names for a run in ``workdir``: a bare file name
  (no folder, as the benchmark's ``pseudo_labels.npz``) is the run's own, in its workdir, so
  the configuration stays the same wherever the run or its record lies; any other path is
  read as given."""
  return os.path.join(workdir, value) if not os.path.dirname(value) else value


def read_pseudo_labels(path: str, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
  """The pseudo-labeled texts of ``path`` and their labels, ``(texts, int32[k])``.

  ``texts`` is the run's ``target_unlabeled``; it must be the list the teacher labeled."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"data.pseudo_labels: {path} does not exist; make it with "
                            "python -m xferlab.studies.pseudo_labels RUN --out FILE")
  with np.load(path) as f:
    indices, labels, fingerprint = f["indices"], f["labels"], str(f["fingerprint"])
  if fingerprint != texts_digest(texts):
    raise ValueError(
        f"data.pseudo_labels = {path!r} labels other texts than this run's target_unlabeled "
        f"({len(texts)} texts): make it again from a teacher trained on the same source and "
        "target (python -m xferlab.transfer.self_training)")
  return [texts[i] for i in indices], labels


def with_pseudo_labels(texts: Sequence[str], labels: np.ndarray, pseudo_texts: Sequence[str],
                       pseudo_labels: np.ndarray) -> tuple[list[str], np.ndarray]:
  """The source rows, then the pseudo-labeled rows repeated ``max(1, round(n_source /
  n_pseudo))`` times, so that the target's rows weigh at least about as much as the source's
  (IMDb's 22k reviews would otherwise drown a product domain's few thousand)."""
  if not len(pseudo_texts):
    return list(texts), np.asarray(labels)
  repeats = max(1, round(len(texts) / len(pseudo_texts)))
  return (list(texts) + list(pseudo_texts) * repeats,
          np.concatenate([np.asarray(labels), np.tile(np.asarray(pseudo_labels), repeats)]))

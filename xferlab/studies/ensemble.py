r"""Ensembles of trained classifiers: the mean of their class probabilities, example by example.

  python -m xferlab.studies.ensemble RUN [RUN ...]      # each run's metrics and the ensemble's

Each member is a finished classification run (a workdir). Its class probabilities on the
run's own evaluation sets (``source_val`` and ``target``, the splits the run was evaluated
on, ``xferlab.tasks.classification.EVAL_SPLITS``) are computed once from its selected
weights (``best/``) and kept in ``predictions.npz`` beside its ``results.json``:

  ``<set>_probabilities``  ``float16[examples, classes]``
  ``<set>_labels``         ``int32[examples]``

and, where the run's data has a target domain's unlabeled text (``target_unlabeled``), the
probabilities a self-trained student's teacher labels it with:

  ``target_unlabeled_probabilities``  ``float16[texts, classes]``
  ``target_unlabeled_fingerprint``    ``str``: ``texts_fingerprint`` of those texts, in order

so that a teacher read back from a record, without weights, still labels for its student
(``unlabeled_predictions``); the texts themselves are never stored.

float16 keeps a benchmark record small (9.6 kB a binary run); the ensemble is always
computed from these stored values, so a record read back elsewhere, without weights, gives
the same numbers as the run that wrote it. An ensemble's members must have been evaluated
on the same examples in the same order (the same seed's splits): their labels are compared.

The ensemble has no weights and selects nothing: its metrics are those of
``argmax_c mean_m p_m(c | x)`` over the members ``m``, with the names a run's
``results.json`` uses (``source_val_accuracy``, ``target_macro_f1``, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Sequence

import numpy as np

from xferlab.metrics import classification_metrics, confusion_matrix

PREDICTIONS = "predictions.npz"
ENSEMBLE = "ensemble.json"
UNLABELED = "target_unlabeled"


class NoPredictions(FileNotFoundError):
  """A run with neither ``predictions.npz`` nor weights (as one read back from a record)."""


def texts_fingerprint(texts: Sequence[str]) -> str:
  """The SHA-256 of ``texts`` in order: which texts stored probabilities belong to."""
  digest = hashlib.sha256()
  for text in texts:
    digest.update(text.encode("utf-8"))
    digest.update(b"\0")
  return digest.hexdigest()


def compute_predictions(workdir: str) -> dict[str, np.ndarray]:
  """The probabilities and labels of a run's evaluation sets, and its probabilities on the
  target's unlabeled text where its data has some, from its selected weights."""
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.launch import restore
  from xferlab.tasks.classification import EVAL_SPLITS
  restored = restore(workdir)
  corpus = load_domain_adaptation(restored.config.data, restored.config.seed)
  out = {}
  for name, part in EVAL_SPLITS:
    texts, labels = corpus[part]
    out[f"{name}_probabilities"] = restored.predict_proba(list(texts)).astype(np.float16)
    out[f"{name}_labels"] = np.asarray(labels, np.int32)
  unlabeled = list(corpus.get(UNLABELED) or ())
  if unlabeled:
    out[f"{UNLABELED}_probabilities"] = restored.predict_proba(unlabeled).astype(np.float16)
    out[f"{UNLABELED}_fingerprint"] = np.array(texts_fingerprint(unlabeled))
  return out


def run_predictions(workdir: str) -> dict[str, np.ndarray]:
  """A finished run's ``predictions.npz`` (computed from ``best/`` and written when missing).

  Raises ``NoPredictions`` naming what to do when the run has neither (a run unpacked from a
  record keeps no weights: remove it and train it again)."""
  path = os.path.join(workdir, PREDICTIONS)
  if not os.path.exists(path):
    if not os.path.isdir(os.path.join(workdir, "best")):
      raise NoPredictions(
          f"{workdir} has neither {PREDICTIONS} nor its weights (best/): a run read back "
          "from a record keeps none. Remove it and run the benchmark again to retrain it.")
    np.savez_compressed(path, **compute_predictions(workdir))
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def _run_unlabeled_texts(workdir: str) -> list[str]:
  """The ``target_unlabeled`` texts of a finished run's own data configuration (maybe none)."""
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.workdir import written_config
  config = written_config(workdir)
  if config is None:
    raise FileNotFoundError(f"{workdir} holds no config.json: not a finished run")
  return list(load_domain_adaptation(config.data, config.seed).get(UNLABELED) or ())


def keep_predictions(workdir: str) -> None:
  """Writes a run's ``predictions.npz`` from its selected weights, unless it already holds
  every set ``compute_predictions`` gives (a file written before the unlabeled text's
  probabilities were kept is written again)."""
  path = os.path.join(workdir, PREDICTIONS)
  if os.path.exists(path):
    with np.load(path) as f:
      if f"{UNLABELED}_fingerprint" in f.files:
        return
    if not _run_unlabeled_texts(workdir):
      return
  np.savez_compressed(path, **compute_predictions(workdir))


def unlabeled_predictions(workdir: str) -> tuple[np.ndarray, list[str]]:
  """``(float32[texts, classes], texts)``: a finished run's probabilities on the
  ``target_unlabeled`` texts of its own data configuration, and those texts.

  Read from its ``predictions.npz`` when that holds them for these texts (a run read back
  from a record), else computed from its weights and added there. Raises ``NoPredictions``
  when the run has neither, ValueError when its data has no unlabeled target text."""
  texts = _run_unlabeled_texts(workdir)
  if not texts:
    raise ValueError(f"{workdir}'s data has no {UNLABELED} text to label")
  fingerprint = f"{UNLABELED}_fingerprint"
  if os.path.isdir(os.path.join(workdir, "best")):
    keep_predictions(workdir)   # writes or completes the file from the weights, once
  stored = run_predictions(workdir)
  if fingerprint not in stored:
    raise NoPredictions(
        f"{workdir} has neither its probabilities on the target's unlabeled text (in "
        f"{PREDICTIONS}) nor its weights (best/): a run read back from a record made before "
        "they were kept has none. Remove it and run the benchmark again to retrain it.")
  if str(stored[fingerprint]) != texts_fingerprint(texts):
    raise ValueError(f"{workdir}'s {PREDICTIONS} labels other {UNLABELED} texts than its "
                     "configuration reads now")
  return stored[f"{UNLABELED}_probabilities"].astype(np.float32), texts


def mean_probabilities(members: Sequence[dict[str, np.ndarray]], name: str) -> np.ndarray:
  """``float32[examples, classes]``: the members' mean class probabilities on the set
  ``name`` (``run_predictions`` dicts), the ensemble's prediction."""
  return np.mean([m[f"{name}_probabilities"].astype(np.float32) for m in members], axis=0)


def ensemble_metrics(members: Sequence[dict[str, np.ndarray]]) -> dict[str, float]:
  """Metrics of the mean of the members' probabilities (``run_predictions`` dicts), per set.

  Raises ValueError when the members disagree on a set's labels (not the same examples)."""
  out = {}
  sets = [k[:-len("_labels")] for k in members[0] if k.endswith("_labels")]
  for name in sets:
    labels = members[0][f"{name}_labels"]
    if any(not np.array_equal(m[f"{name}_labels"], labels) for m in members[1:]):
      raise ValueError(f"the members were not evaluated on the same {name} examples")
    probs = mean_probabilities(members, name)
    # argmax over probabilities = argmax over logits: the project's one confusion matrix
    confusion = confusion_matrix(probs, labels, np.ones(len(labels), np.float32),
                                 probs.shape[-1])
    out.update({f"{name}_{k}": v for k, v in classification_metrics(confusion).items()})
  return out


def write_ensemble(member_workdirs: Sequence[str], workdir: str,
                   names: Sequence[str] | None = None) -> dict[str, float]:
  """Computes the ensemble of ``member_workdirs`` into ``workdir`` and returns its results.

  Writes ``workdir/ensemble.json`` (the members, as paths relative to ``workdir``, and their
  ``names``) and ``workdir/results.json`` (``ensemble_metrics``, ``train_seconds`` 0: it
  trains nothing, so a report's sum over runs counts each member once; and
  ``member_train_seconds``, the members' sum). When a member's predictions are not available (``NoPredictions``) but
  ``workdir`` already holds the results of these same members, those are returned."""
  os.makedirs(workdir, exist_ok=True)
  members = [os.path.relpath(m, workdir) for m in member_workdirs]
  spec = {"members": members, "names": list(names or members)}
  results_path = os.path.join(workdir, "results.json")
  try:
    predictions = [run_predictions(m) for m in member_workdirs]
  except NoPredictions:
    if _same_members(workdir, spec) and os.path.exists(results_path):
      with open(results_path) as f:
        return json.load(f)
    raise
  results = ensemble_metrics(predictions)
  seconds = []
  for member in member_workdirs:
    with open(os.path.join(member, "results.json")) as f:
      seconds.append(json.load(f).get("train_seconds", 0.0))
  results.update(train_seconds=0.0, member_train_seconds=float(sum(seconds)))
  with open(os.path.join(workdir, ENSEMBLE), "w") as f:
    json.dump(spec, f, indent=2)
  with open(results_path, "w") as f:
    json.dump(results, f, indent=2)
  return results


def _same_members(workdir: str, spec: dict) -> bool:
  path = os.path.join(workdir, ENSEMBLE)
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return json.load(f) == spec


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.ensemble",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", help="finished classification runs (workdirs)")
  args = parser.parse_args(argv)
  predictions = [run_predictions(r) for r in args.runs]
  rows = [(r, ensemble_metrics([p])) for r, p in zip(args.runs, predictions)]
  rows.append(("ensemble", ensemble_metrics(predictions)))
  for name, metrics in rows:
    print(f"{name}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in metrics.items()
                                  if k.endswith("_accuracy")))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

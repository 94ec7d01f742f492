"""Metrics and where they are written.

* classification metrics from a confusion matrix (accumulated on device, one
  small array per evaluation set);
* ``MetricWriter``: every record goes to ``workdir/metrics.jsonl`` and to
  TensorBoard-readable event files in ``workdir/tensorboard`` (``NullWriter``: nowhere);
* degenerate results (``degenerate_classification``, ``degenerate_scores``,
  ``empty_outputs``), which ``xferlab.callbacks.DegenerateCheck`` warns about.
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np


def confusion_matrix(logits, labels, weights, num_classes: int):
  """``int[classes, classes]``, rows = true class, columns = predicted; weight-0 rows ignored."""
  predictions = jnp.argmax(logits, axis=-1)
  index = labels * num_classes + predictions
  counts = jnp.zeros(num_classes * num_classes, jnp.float32).at[index].add(weights)
  return counts.reshape(num_classes, num_classes)


def classification_metrics(confusion: np.ndarray) -> dict[str, float]:
  """Accuracy, and precision / recall / F1 for the positive class (binary) plus macro F1."""
  confusion = np.asarray(confusion, np.float64)
  total = confusion.sum()
  tp = np.diag(confusion)
  predicted = confusion.sum(axis=0)
  actual = confusion.sum(axis=1)
  precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
  recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
  f1 = np.divide(2 * precision * recall, precision + recall,
                 out=np.zeros_like(tp), where=(precision + recall) > 0)
  positive = 1 if len(tp) == 2 else slice(None)
  return {
      "accuracy": float(tp.sum() / max(total, 1.0)),
      "precision": float(np.mean(precision[positive])),
      "recall": float(np.mean(recall[positive])),
      "f1": float(np.mean(f1[positive])),
      "macro_f1": float(np.mean(f1)),
      "count": float(total),
  }


def perplexity_metrics(sums: Mapping[str, float]) -> dict[str, float]:
  """``{"nll", "count"}`` sums -> ``{"loss": nats per token, "perplexity"}``."""
  loss = float(sums["nll"]) / max(float(sums["count"]), 1.0)
  return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def translation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
  """Corpus scores of detokenized text with sacreBLEU's defaults (13a tokenization):

  ``bleu`` (cased), ``bleu_lc`` (lowercased) and ``chrf`` (chrF2), on 0-100.
  """
  import sacrebleu   # the metrics library; imported here so other tasks do not need it
  refs = [list(references)]
  return {"bleu": sacrebleu.corpus_bleu(hypotheses, refs).score,
          "bleu_lc": sacrebleu.corpus_bleu(hypotheses, refs, lowercase=True).score,
          "chrf": sacrebleu.corpus_chrf(hypotheses, refs).score}


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
  """ROUGE-1/2/L F1 (``rouge-score``, Porter stemming) on 0-100, averaged over examples.

  Each prediction is scored against every one of its references; ``<type>_max``
  takes the best reference, ``<type>_mean`` their mean (SciTLDR's two protocols).
  """
  from rouge_score import rouge_scorer   # the metrics library, imported where it is needed
  scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
  sums = {f"{kind}_{how}": 0.0 for kind in ROUGE_TYPES for how in ("max", "mean")}
  for prediction, refs in zip(predictions, references, strict=True):
    scores = [scorer.score(ref, prediction) for ref in refs]
    for kind in ROUGE_TYPES:
      f = [s[kind].fmeasure for s in scores]
      sums[f"{kind}_max"] += max(f)
      sums[f"{kind}_mean"] += sum(f) / len(f)
  return {k: 100.0 * v / max(len(predictions), 1) for k, v in sums.items()}


def mean_std(values) -> dict[str, float]:
  """``{"mean", "std", "values"}`` over seeds (population std; 0 for one value)."""
  values = [float(v) for v in values]
  return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def first_non_finite(records: list[tuple[int, Mapping[str, float]]]) -> tuple[int, str, float] | None:
  """The first ``(step, metric, value)`` whose value is NaN or infinite, else None."""
  for step, metrics in records:
    for name in sorted(metrics, key=lambda n: (n != "loss", n)):   # the total loss first
      value = metrics[name]
      if not math.isfinite(float(value)):
        return step, name, float(value)
  return None


class MetricWriter:
  """Appends ``{"step", "split", **metrics}`` lines to metrics.jsonl and TensorBoard scalars."""

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = open(self.path, "a")
    from tensorboardX import SummaryWriter   # imported lazily: it pulls in protobuf
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    record = {"step": int(step), "split": split, **{k: float(v) for k, v in metrics.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    for name, value in metrics.items():
      self._tb.add_scalar(f"{split}/{name}", float(value), int(step))

  def keep_until(self, step: int | None) -> None:
    """Drops the rows logged after ``step`` (all of them for None): a run resumed from its
    checkpoint at ``step`` logs the later steps again, and a killed run may have logged
    some past its last checkpoint, or half a row. TensorBoard's event files keep both
    copies."""
    def logged_by(line: str) -> bool:
      try:
        return step is not None and int(json.loads(line)["step"]) <= step
      except (ValueError, KeyError, TypeError):   # a row cut short by the kill
        return False

    self._file.close()
    with open(self.path) as f:
      rows = f.readlines()
    kept = [line for line in rows if logged_by(line)]
    if len(kept) < len(rows):
      with open(self.path, "w") as f:
        f.writelines(kept)
    self._file = open(self.path, "a")

  def close(self) -> None:
    self._file.close()
    self._tb.close()


class NullWriter:
  """A ``MetricWriter`` that writes nothing: the processes of a multi-host run other than
  process 0 (which writes the run's ``metrics.jsonl``)."""

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    pass

  def keep_until(self, step: int | None) -> None:
    pass

  def close(self) -> None:
    pass


class DegenerateResultWarning(UserWarning):
  """A trained model whose results are degenerate: a constant prediction, accuracy at chance,
  empty outputs or a score of 0."""


CHANCE_MARGIN = 0.01   # accuracy within 1 point of the majority-class rate is at chance


def degenerate_classification(confusion) -> str | None:
  """What is degenerate about a classifier's ``[true, predicted]`` confusion matrix: one class
  predicted for every example, or accuracy within ``CHANCE_MARGIN`` of the majority-class
  rate; None when neither (or when ``confusion`` is not a square matrix of counts)."""
  confusion = np.asarray(confusion, np.float64) if not isinstance(confusion, Mapping) else None
  if confusion is None or confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
    return None
  total = confusion.sum()
  if total <= 0:
    return None
  predicted = confusion.sum(axis=0)
  if np.count_nonzero(predicted) == 1 and confusion.shape[0] > 1:
    return f"predicts class {int(np.argmax(predicted))} for all {int(total)} examples"
  accuracy, majority = np.trace(confusion) / total, confusion.sum(axis=1).max() / total
  if abs(accuracy - majority) <= CHANCE_MARGIN:
    return (f"accuracy {100 * accuracy:.1f}% is at chance (the majority class is "
            f"{100 * majority:.1f}% of the {int(total)} examples)")
  return None


def degenerate_scores(results: Mapping[str, float]) -> list[str]:
  """The generation scores of ``results`` that are 0: ``<set>_bleu`` (all-empty or unrelated
  translations) and ``<set>_rouge*`` all 0 for a set (empty summaries)."""
  found = [f"{k[:-len('_bleu')]}: BLEU is 0 (are the outputs empty?)" for k, v in results.items()
           if k.endswith("_bleu") and isinstance(v, (int, float)) and v == 0]
  rouge: dict[str, list[float]] = {}
  for k, v in results.items():
    head, sep, tail = k.partition("_rouge")
    if sep and isinstance(v, (int, float)):
      rouge.setdefault(head, []).append(float(v))
  found += [f"{name}: every ROUGE score is 0 (are the summaries empty?)"
            for name, values in rouge.items() if values and not any(values)]
  return found


def empty_outputs(path: str) -> str | None:
  """``"all N outputs in PATH are empty"`` when a task's output file (translations: one per
  line; summaries: JSON lines with a ``prediction``) holds only empty outputs, else None."""
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    lines = f.read().splitlines()
  if path.endswith(".jsonl"):
    lines = [json.loads(line).get("prediction", "") for line in lines if line.strip()]
  if lines and not any(line.strip() for line in lines):
    return f"all {len(lines)} outputs in {path} are empty"
  return None


def read_metrics(workdir: str, split: str = "eval") -> list[dict]:
  """The ``split`` records of ``workdir/metrics.jsonl`` in order."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r.get("split") == split]


def plot_curves(workdir: str, names: list[str], out: str | None = None, split: str = "eval") -> str:
  """A PNG of metrics against the step (``workdir/curves.png`` by default); returns its path."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  records = read_metrics(workdir, split)
  fig, ax = plt.subplots(figsize=(6, 4))
  for name in names:
    points = [(r["step"], r[name]) for r in records if name in r]
    if not points:
      raise ValueError(f"No {split} metric {name!r} in {workdir}; have "
                       f"{sorted(set().union(*records)) if records else []}")
    ax.plot(*zip(*points), marker="o", label=name)
  ax.set_xlabel("step")
  ax.legend()
  ax.grid(alpha=0.3)
  out = out or os.path.join(workdir, "curves.png")
  fig.tight_layout()
  fig.savefig(out, dpi=120)
  plt.close(fig)
  return out


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m xferlab.metrics WORKDIR METRIC [METRIC ...]``: plots a run's curves. A wrong
  invocation exits 2, a missing log or metric 1, each in one line."""
  import argparse
  import sys
  parser = argparse.ArgumentParser(prog="python -m xferlab.metrics",
                                   description="Plot a run's metrics against the step.")
  parser.add_argument("workdir", help="the run's workdir (its metrics.jsonl)")
  parser.add_argument("metrics", nargs="+", help="metric names, e.g. source_val_accuracy")
  parser.add_argument("--split", default="eval", help="rows of this split (eval or train)")
  parser.add_argument("--out", help="the PNG to write (default WORKDIR/curves.png)")
  args = parser.parse_args(argv)
  try:
    print(plot_curves(args.workdir, args.metrics, args.out, args.split))
  except (OSError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

r"""Membership inference: does a trained classifier give away which reviews it trained on?

  python -m xferlab.studies.privacy RUN_DIR [--nonmembers source_val|target] \
      [--max-examples 2000] [--out mia.json]

The loss-threshold attack of Yeom et al. (2018, "Privacy Risk in Machine Learning: Analyzing
the Connection to Overfitting"): a review is called a training member when the model's
cross-entropy on it (with its true label) is below a threshold. Its ROC AUC over all
thresholds (``loss_threshold_auc``) is 0.5 when members and non-members look alike and 1.0
when every member has a lower loss than every non-member. Also reported: the membership
advantage (TPR − FPR) at Yeom's threshold, the members' mean loss, and the best advantage over
all thresholds, beside the bound that (ε, δ)-DP puts on any attack's advantage,
``(e^ε − 1 + 2δ) / (e^ε + 1)`` (from TPR ≤ e^ε·FPR + δ and its mirror), for private runs.

Members are the run's labeled training reviews (``source_train``: with ``data.in_domain``
the target domain's labeled reviews); non-members are reviews it never trained on:
``source_val`` (default; the same distribution, so the AUC measures memorization, not a
domain shift) or ``target`` (the target test reviews). At most ``--max-examples`` of each,
drawn with a fixed seed. ``RUN_DIR`` is one run's workdir, or a folder of runs (an
experiment's arms and seeds): each is scored, ``membership_inference.json`` is written into
it, and one table line is printed per run with its ε (``results.json``) and target accuracy.
Only public entry points are used: ``xferlab.launch.restore`` and the corpus loader.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from typing import Sequence

import numpy as np

RESULT_FILE = "membership_inference.json"


def loss_threshold_auc(member_losses, nonmember_losses) -> float:
  """ROC AUC of the attack "member iff loss < threshold": the probability that a random
  member's loss is below a random non-member's, ties counting one half (Mann-Whitney U)."""
  members = np.asarray(member_losses, np.float64).ravel()
  others = np.asarray(nonmember_losses, np.float64).ravel()
  if not len(members) or not len(others):
    raise ValueError("the attack needs at least one member and one non-member loss")
  from scipy.stats import rankdata   # pylint: disable=import-outside-toplevel
  ranks = rankdata(np.concatenate([-members, -others]))   # high rank = low loss
  u = ranks[:len(members)].sum() - len(members) * (len(members) + 1) / 2
  return float(u / (len(members) * len(others)))


def advantage_at(member_losses, nonmember_losses, threshold: float) -> float:
  """TPR − FPR of "member iff loss < threshold"."""
  return float(np.mean(np.asarray(member_losses) < threshold)
               - np.mean(np.asarray(nonmember_losses) < threshold))


def dp_advantage_bound(epsilon: float, delta: float) -> float:
  """The largest TPR − FPR any membership test can reach against an (ε, δ)-DP mechanism."""
  if not math.isfinite(epsilon):
    return 1.0
  return min(1.0, (math.expm1(epsilon) + 2 * delta) / (math.exp(epsilon) + 1))


def attack_report(member_losses, nonmember_losses) -> dict[str, float]:
  """The loss-threshold attack's AUC and advantages, and the two sets' mean losses."""
  members, others = np.asarray(member_losses), np.asarray(nonmember_losses)
  thresholds = np.unique(np.concatenate([members, others, [np.inf]]))
  best = max(advantage_at(members, others, t) for t in thresholds)
  return {"auc": loss_threshold_auc(members, others),
          "advantage_yeom": advantage_at(members, others, float(np.mean(members))),
          "advantage_best": float(best),
          "member_loss": float(np.mean(members)), "nonmember_loss": float(np.mean(others)),
          "members": int(len(members)), "nonmembers": int(len(others))}


def example_losses(restored, texts: Sequence[str], labels) -> np.ndarray:
  """The restored classifier's cross-entropy on each text with its label (``float64[n]``)."""
  from xferlab.text_inputs import InputTruncatedWarning
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", InputTruncatedWarning)   # training cut them the same way
    probs = np.asarray(restored.predict_proba(list(texts)), np.float64)
  picked = probs[np.arange(len(probs)), np.asarray(labels, np.int64)]
  return -np.log(np.maximum(picked, 1e-30))


def _sample(texts, labels, limit: int, seed: int):
  idx = np.arange(len(texts))
  if limit and len(idx) > limit:
    idx = np.sort(np.random.default_rng(seed).permutation(len(idx))[:limit])
  return [texts[i] for i in idx], np.asarray(labels)[idx]


def membership_inference(run_dir: str, nonmembers: str = "source_val",
                         max_examples: int = 2000, seed: int = 0) -> dict:
  """The loss-threshold attack on one run: its training reviews against ``nonmembers``
  (``source_val`` or ``target``), with the run's ε and accuracy from ``results.json``."""
  from xferlab import launch
  from xferlab.data.domains import load_domain_adaptation
  parts = {"source_val": "source_val", "target": "target_test"}
  if nonmembers not in parts:
    raise ValueError(f"nonmembers must be one of {sorted(parts)}, got {nonmembers!r}")
  restored = launch.restore(run_dir)
  if restored.config.task != "classification":
    raise ValueError(f"{run_dir} is a {restored.config.task} run; the attack reads classifiers")
  corpus = load_domain_adaptation(restored.config.data, restored.config.seed)
  members = _sample(*corpus["source_train"], max_examples, seed)
  others = _sample(*corpus[parts[nonmembers]], max_examples, seed + 1)
  report = attack_report(example_losses(restored, *members), example_losses(restored, *others))
  results = restored.results
  eps = results.get("privacy_epsilon")
  report.update(run=os.path.abspath(run_dir), nonmember_set=nonmembers,
                privacy_epsilon=math.inf if eps is None else float(eps),
                target_accuracy=results.get("target_accuracy"))
  if eps is not None:
    report["dp_advantage_bound"] = dp_advantage_bound(float(eps), results["privacy_delta"])
  return report


def run_dirs(path: str) -> list[str]:
  """``path`` if it is a run (``best/`` and ``config.json``), else every run below it."""
  found = []
  for root, dirs, files in os.walk(path):
    if "best" in dirs and "config.json" in files:
      found.append(root)
      dirs[:] = []
  return sorted(found)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.privacy",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("run_dir", help="a run's workdir, or a folder of runs")
  parser.add_argument("--nonmembers", default="source_val", choices=("source_val", "target"))
  parser.add_argument("--max-examples", type=int, default=2000,
                      help="at most this many members and non-members (0 = all)")
  parser.add_argument("--seed", type=int, default=0, help="which examples are drawn")
  parser.add_argument("--out", default="", help="also write every run's report here (JSON)")
  args = parser.parse_args(argv)
  runs = run_dirs(args.run_dir)
  if not runs:
    parser.error(f"no trained run in {args.run_dir} (expected best/ and config.json)")
  reports = []
  print("| run | ε | target accuracy | MIA AUC | advantage (Yeom) | best advantage |")
  print("|---|---|---|---|---|---|")
  for run in runs:
    report = membership_inference(run, args.nonmembers, args.max_examples, args.seed)
    with open(os.path.join(run, RESULT_FILE), "w") as f:
      json.dump(report, f, indent=2)
    reports.append(report)
    accuracy = report["target_accuracy"]
    print(f"| {os.path.relpath(run, args.run_dir)} | {report['privacy_epsilon']:.3g} | "
          f"{'-' if accuracy is None else f'{100 * accuracy:.1f}'} | {report['auc']:.3f} | "
          f"{report['advantage_yeom']:.3f} | {report['advantage_best']:.3f} |", flush=True)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(reports, f, indent=2)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

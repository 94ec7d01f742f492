r"""One table of a transfer pair's trustworthiness: accuracy, explanations' faithfulness,
robustness under attack, with and without adversarial training, and membership inference.

  python -m benchmarks.trust --plain runs/trust_bk --adversarial runs/trust_bk_adv \
      --explain runs/explain_bk/explain.json \
      --robustness runs/rob_bk/robustness.json,runs/rob_adv_dann/robustness.json,... \
      --private runs/private_kitchen_source,runs/private_kitchen_scratch --out runs/trust_record

Reads what the project's own commands wrote -- each run's ``results.json`` (an experiment's
``arm/seed_s`` workdirs), ``xferlab.studies.explain``'s ``explain.json``,
``xferlab.studies.robustness``' ``robustness.json`` files and ``xferlab.studies.privacy``'s
``membership_inference.json`` in each run -- and writes ``OUT/results.json`` and
``OUT/results.md``: per arm (``source_only``, ``dann``; ``+adv`` for the adversarially trained
twin), mean ± std over seeds; with ``--private``, the runs of
``experiments/sentiment/private_transfer.py`` (arms ``<start>_eps<ε>`` and
``<start>_nonprivate``) as a table of target accuracy against ε, with and without the public
pretraining. Nothing is trained or scored here.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from typing import Iterable

from benchmarks import report as rep
from xferlab.metrics import mean_std

ADV_SUFFIX = "+adv"


def _arm_and_variant(run: str, roots: dict[str, str]) -> str | None:
  """``"dann"`` / ``"dann+adv"`` for ``.../dann/seed_s`` below one of ``roots``."""
  run = os.path.abspath(run)
  for suffix, root in roots.items():
    root = os.path.abspath(root)
    if root and run.startswith(root + os.sep):
      parts = [p for p in os.path.relpath(run, root).split(os.sep) if not p.startswith("seed_")]
      return "/".join(parts) + suffix
  return None


def _runs(root: str) -> list[str]:
  return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "results.json"),
                                                      recursive=True)
                if os.path.basename(os.path.dirname(p)).startswith("seed_"))


def collect(plain: str, adversarial: str, explain: str, robustness: Iterable[str]) -> dict:
  """``{arm: {metric: {mean, std, values}}}`` from the runs and the studies' files."""
  roots = {"": plain, ADV_SUFFIX: adversarial}
  values: dict[str, dict[str, list[float]]] = {}

  def add(arm, metric, value):
    if arm is not None and value is not None:
      values.setdefault(arm, {}).setdefault(metric, []).append(float(value))

  for suffix, root in roots.items():
    for run in _runs(root) if root else ():
      arm = _arm_and_variant(run, roots)
      for metric, value in _run_metrics(run).items():
        add(arm, metric, value)
  for path in robustness:
    with open(path) as f:
      report = json.load(f)
    for run, result in report["runs"].items():
      arm = _arm_and_variant(run, roots)
      for attack in ("word", "typo"):
        if attack in result:
          summary = result[attack]["summary"]
          add(arm, "attack_clean_accuracy", summary["clean_accuracy"])
          add(arm, f"{attack}_attacked_accuracy", summary["attacked_accuracy"])
          add(arm, f"{attack}_success_rate", summary["success_rate"])
  if explain:
    with open(explain) as f:
      report = json.load(f)
    for run, result in report["runs"].items():
      arm = _arm_and_variant(result.get("run", run), roots)
      error = result.get("completeness_error") or {}
      add(arm, "ig_completeness_error_max", error.get("max"))
      for faith in result.get("faithfulness", []):
        for part in ("top_k", "random"):
          add(arm, f"deletion_k{faith['k']}_{part}_probability_drop",
              faith[part]["mean_probability_drop"])
          add(arm, f"deletion_k{faith['k']}_{part}_flip_rate", faith[part]["flip_rate"])
      for group, g in result.get("word_groups", {}).items():
        add(arm, f"attribution_share_{group}", g["share"])
  return _summarize(values)


def _run_metrics(run: str) -> dict:
  """One run's own numbers: from ``results.json`` and, where the study ran, from
  ``membership_inference.json`` (values may be None)."""
  with open(os.path.join(run, "results.json")) as f:
    results = json.load(f)
  found = {"target_accuracy": results.get("target_accuracy"),
           "privacy_epsilon": results.get("privacy_epsilon")}
  mia = os.path.join(run, "membership_inference.json")
  if os.path.exists(mia):
    with open(mia) as f:
      report = json.load(f)
    found.update(membership_auc=report.get("auc"),
                 membership_advantage_yeom=report.get("advantage_yeom"))
  return found


def _summarize(values: dict[str, dict[str, list[float]]]) -> dict:
  return {arm: {m: mean_std(v) for m, v in sorted(metrics.items())}
          for arm, metrics in sorted(values.items())}


def collect_private(roots: Iterable[str]) -> dict:
  """``{arm: {metric: {mean, std, values}}}`` of private-transfer runs (``ROOT/arm/seed_s``):
  target accuracy, the ε they spent and, where measured, membership inference."""
  values: dict[str, dict[str, list[float]]] = {}
  for root in roots:
    for run in _runs(root):
      arm = os.path.relpath(run, root).split(os.sep)[0]
      for metric, value in _run_metrics(run).items():
        if value is not None:
          values.setdefault(arm, {}).setdefault(metric, []).append(float(value))
  return _summarize(values)


def private_report(private: dict) -> list[str]:
  """Markdown lines: target accuracy (and membership AUC) per start x ε (``∞`` = non-private)."""
  starts = sorted({arm.rsplit("_", 1)[0] for arm in private})
  budgets = sorted({arm.rsplit("_", 1)[1] for arm in private},
                   key=lambda b: float(b[3:]) if b.startswith("eps") else float("inf"))
  label = lambda b: "ε = " + (b[3:] if b.startswith("eps") else "∞ (non-private)")
  lines = ["", "## Differential privacy: target accuracy (%) against ε", "",
           *rep.header(["start", *[label(b) for b in budgets]])]
  for start in starts:
    lines.append(rep.row([start, *[_cell(private.get(f"{start}_{b}", {}).get("target_accuracy"))
                                   for b in budgets]]))
  lines += ["", "ε spent (δ in the runs' results.json) and membership inference AUC:", "",
            *rep.header(["arm", "ε spent", "target accuracy", "membership AUC"])]
  for arm, r in private.items():
    lines.append(rep.row([arm, _cell(r.get("privacy_epsilon"), 1.0, 2),
                          _cell(r.get("target_accuracy")),
                          _cell(r.get("membership_auc"), 1.0, 3)]))
  return lines


def _cell(stat: dict | None, scale: float = 100.0, digits: int = 1) -> str:
  if not stat:
    return "-"
  return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"


def write_report(results: dict, note: str, private: dict | None = None) -> str:
  arms = list(results)
  lines = ["# Trustworthy transfer: one pair", "", note]
  if arms:
    lines += ["", "## Accuracy and robustness (%)", "",
              *rep.header(["arm", "target accuracy (all test)", "attacked sample: clean",
                           "word substitution", "typos", "word success rate",
                           "membership AUC"])]
  for arm in arms:
    r = results[arm]
    lines.append(rep.row([arm, _cell(r.get("target_accuracy")),
                          _cell(r.get("attack_clean_accuracy")),
                          _cell(r.get("word_attacked_accuracy")),
                          _cell(r.get("typo_attacked_accuracy")),
                          _cell(r.get("word_success_rate")),
                          _cell(r.get("membership_auc"), 1.0, 3)]))
  ks = sorted({int(m.split("_")[1][1:]) for r in results.values() for m in r
               if m.startswith("deletion_k")})
  if ks:
    lines += ["", "## Faithfulness: deleting the k most attributed tokens against k random ones",
              "", *rep.header(["arm", "k", "top-k: probability drop", "random: drop",
                               "top-k: flips %", "random: flips %"])]
    for arm in arms:
      r = results[arm]
      for k in ks:
        if f"deletion_k{k}_top_k_probability_drop" not in r:
          continue
        lines.append(rep.row([arm, str(k),
                              _cell(r[f"deletion_k{k}_top_k_probability_drop"], 1.0, 3),
                              _cell(r[f"deletion_k{k}_random_probability_drop"], 1.0, 3),
                              _cell(r[f"deletion_k{k}_top_k_flip_rate"]),
                              _cell(r[f"deletion_k{k}_random_flip_rate"])]))
    lines += ["", "## Where the positive attribution falls (share, %)", "",
              *rep.header(["arm", "target-specific words", "source-specific words",
                           "shared words", "IG completeness error, max (%)"])]
    for arm in arms:
      r = results[arm]
      if "attribution_share_shared" in r:
        lines.append(rep.row([arm, _cell(r.get("attribution_share_target_specific")),
                              _cell(r.get("attribution_share_source_specific")),
                              _cell(r.get("attribution_share_shared")),
                              _cell(r.get("ig_completeness_error_max"), 100.0, 2)]))
  if private:
    lines += private_report(private)
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--plain", default="",
                      help="the experiment's workdir (arms x seeds); none for a record of "
                      "--private runs alone")
  parser.add_argument("--adversarial", default="", help="the same with adversarial training")
  parser.add_argument("--explain", default="", help="explain.json of the plain runs")
  parser.add_argument("--robustness", default="", help="robustness.json files, comma-separated")
  parser.add_argument("--private", default="",
                      help="private_transfer.py workdirs (arm/seed_s), comma-separated")
  parser.add_argument("--note", default="", help="a line under the title (pair, settings)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  results = collect(args.plain, args.adversarial, args.explain,
                    [p for p in args.robustness.split(",") if p])
  private = collect_private([p for p in args.private.split(",") if p])
  os.makedirs(args.out, exist_ok=True)
  inputs = {k: v for k, v in vars(args).items() if k != "out"}
  for key in ("plain", "adversarial", "explain", "robustness", "private"):   # relative: a record travels
    inputs[key] = ",".join(os.path.relpath(p, args.out) for p in inputs[key].split(",") if p)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"inputs": inputs, "arms": results, "private": private}, f, indent=1)
  text = write_report(results, args.note, private)
  with open(os.path.join(args.out, "results.md"), "w") as f:
    f.write(text)
  print(text)
  return results


if __name__ == "__main__":
  main()

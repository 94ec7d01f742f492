r"""News => science summarization benchmark on SciTLDR, with Lead-1 and the oracle beside.

  python -m benchmarks.summarization [--arms scratch,news,news_title,news_adversarial]
      [--seeds 2] [--fractions 0.25,0.5 [--curve-seeds 1]] [--out runs/bench_summarization] [--set KEY=VALUE ...]

Arms (``experiments/summarization/news_to_science.py`` runs them; its docstring has the model):
  scratch            SciTLDR from scratch;
  news               pretrained on BBC article -> summary (``bbc``, trained first), fine-tuned;
  news_title         pretrained on BBC article -> title (``bbc_title``);
  news_adversarial   pretrained on BBC with a news-vs-science domain discriminator behind
                     gradient reversal on the encoder states (``bbc_adversarial``).
Runs live in ``OUT/<arm>/seed_<s>`` (parents in ``OUT/<parent>/seed_0``); finished runs are
read, not trained again, so running it again with the same ``--out`` resumes.

Writes ``OUT/results.md``: SciTLDR test ROUGE-1/2/L F1 (``rouge-score``, stemming) against
the best reference (max) and the mean over references, mean ± std over seeds, with Lead-1
and the extractive oracle sentence beside; a gallery of five test abstracts (reference,
Lead-1 and every arm's summary); ``OUT/curves.png`` (validation perplexity of every arm's
first seed against the step) and ``OUT/results.json``.

``--fractions`` adds a learning curve: every SciTLDR arm again on that share of the training
abstracts (``data.subset_size``; the same abstracts for every arm and seed) with its number of
epochs scaled up so that it may take as many steps as on all of them (early stopping on
validation perplexity still ends it at its optimum), in ``OUT/<arm>_frac<f>``
(parents are shared). ``OUT/learning_curve.md`` and ``.png`` give test ROUGE-1 (max)
against the number of training abstracts, Lead-1 beside.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from benchmarks import report as rep
from benchmarks.arms import argument_parser, run_reporting_errors, run_dir, selected_arms, train
from xferlab.config import ConfigError, load_experiment
from xferlab.metrics import mean_std, read_metrics
from xferlab.tasks import summarization

EXPERIMENT = "experiments/summarization/news_to_science.py"
ARMS = {
    "bbc": ("bbc", None), "bbc_title": ("bbc_title", None),
    "bbc_adversarial": ("bbc_adversarial", None),
    "scratch": ("scratch", None), "news": ("news", "bbc"), "news_title": ("news_title", "bbc_title"),
    "news_adversarial": ("news_adversarial", "bbc_adversarial"),
}
SCITLDR_ARMS = ("scratch", "news", "news_title", "news_adversarial")
DEFAULT_ARMS = SCITLDR_ARMS
ROUGE = ("rouge1_max", "rouge2_max", "rougeL_max", "rouge1_mean", "rouge2_mean", "rougeL_mean")
GALLERY = 5


def rouge_table(results: dict, baselines: dict) -> list[str]:
  """Lead-1 and the oracle, then one row per arm: ROUGE mean ± std over seeds."""
  lines = rep.header(["arm", "n", *ROUGE])
  for name, stats in baselines.items():
    lines.append(rep.row([name, "-", *(f"{stats[k]:.1f}" for k in ROUGE)]))
  for arm, stats in results.items():
    n = len(stats["test_rouge1_max"]["values"])
    lines.append(rep.row([arm, str(n), *(rep.cell(stats.get(f"test_{k}")) for k in ROUGE)]))
  r1 = {arm: s["test_rouge1_max"]["mean"] for arm, s in results.items()}
  if r1:
    best = max(r1, key=r1.get)
    lines += ["", f"- best arm {best}: ROUGE-1 (max) {r1[best]:.1f} against Lead-1 "
              f"{baselines['lead1']['rouge1_max']:.1f} (acceptance: above Lead-1)"]
  for arm in ("news", "news_title", "news_adversarial"):
    if arm in r1 and "scratch" in r1:
      lines.append(f"- {arm} − scratch: {r1[arm] - r1['scratch']:+.1f} ROUGE-1 (acceptance: ≥ +2 "
                   "for news ⇒ science)")
  return lines


def gallery(rows: list[dict], out: str, arms: Sequence[str]) -> list[str]:
  """The first test abstracts: reference, Lead-1 and each arm's first seed's summary."""
  lines = ["", "## Gallery (first five test abstracts)", ""]
  outputs = {}
  for arm in arms:
    path = os.path.join(run_dir(out, arm, 0), "summaries", "test.jsonl")
    if os.path.exists(path):
      outputs[arm] = [json.loads(line)["prediction"] for line in open(path)]
  for i, row in enumerate(rows[:GALLERY]):
    lines += [f"### {i + 1}. {row['title']}", "", f"**Abstract.** {row['document'][:600]}"
              + ("…" if len(row["document"]) > 600 else ""), "",
              f"- **reference:** {row['references'][0]}",
              f"- **Lead-1:** {summarization.first_sentence(row['document'])}"]
    lines += [f"- **{arm}:** {predictions[i]}" for arm, predictions in outputs.items()]
    lines.append("")
  return lines


def report(results: dict, baselines: dict, rows: list[dict], out: str, arms: Sequence[str]) -> str:
  """Writes ``OUT/results.md`` and ``OUT/results.json``; returns the markdown."""
  lines = ["# SciTLDR test (news => science)", "",
           "ROUGE F1 ×100, `rouge-score` with stemming; max = best of the references, mean = "
           "mean over them; mean ± std over seeds.", "",
           *rouge_table(results, baselines), *gallery(rows, out, arms)]
  text = "\n".join(lines)
  rep.write_results(out, text, {"arms": results, "baselines": baselines})
  return text


def save_plot(fig, ax, xlabel: str, ylabel: str, path: str) -> None:
  """Labels, grid and legend on ``ax``; writes ``fig`` to ``path`` and closes it."""
  import matplotlib.pyplot as plt
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def fraction_arm(arm: str, fraction: float) -> str:
  """The run name of ``arm`` trained on ``fraction`` of the training abstracts."""
  return arm if fraction == 1.0 else f"{arm}_frac{fraction:g}"


def fraction_overrides(arm: str, fraction: float) -> list[str]:
  """``data.subset_size`` (a share), with the full-data run's step grid: as many steps at most, and an
  evaluation (early stopping's patience counts them) every full-data epoch's worth of steps."""
  config, _ = load_experiment(f"{EXPERIMENT}:{ARMS[arm][0]}")
  return [f"data.subset_size={fraction}",
          f"train.num_epochs={max(1, round(config.train.num_epochs / fraction))}",
          f"train.eval_every_epochs={1 / fraction:g}"]


def learning_curve(curve: dict, sizes: dict, lead1: float, out: str) -> str:
  """``curve[arm][fraction]``: ``mean_std`` of test ROUGE-1 (max); writes the table and PNG."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fractions = sorted({f for points in curve.values() for f in points})
  lines = ["# SciTLDR learning curve: test ROUGE-1 (max over references)", "",
           "Each fraction may train for as many steps as the full-data run (more epochs); "
           "every run stops at its validation optimum.", "",
           *rep.header(["training abstracts", *curve, "Lead-1"])]
  for f in fractions:
    lines.append(rep.row([f"{sizes[f]} ({f:g})", *(rep.cell(curve[arm].get(f)) for arm in curve),
                          f"{lead1:.1f}"]))
  if "scratch" in curve:
    lines += ["", "Transfer gain (mean ROUGE-1 of the arm − mean of scratch, same abstracts):", ""]
    for f in fractions:
      gains = [f"{arm} {curve[arm][f]['mean'] - curve['scratch'][f]['mean']:+.1f}"
               for arm in curve if arm != "scratch" and f in curve[arm] and f in curve["scratch"]]
      if gains:
        lines.append(f"- {sizes[f]} abstracts: " + ", ".join(gains))
  fig, ax = plt.subplots(figsize=(6, 4))
  for arm, points in curve.items():
    fs = sorted(points)
    ax.errorbar([sizes[f] for f in fs], [points[f]["mean"] for f in fs],
                yerr=[points[f]["std"] for f in fs], marker="o", capsize=3, label=arm)
  ax.axhline(lead1, color="gray", linestyle="--", label="Lead-1")
  ax.set_xscale("log")
  save_plot(fig, ax, "SciTLDR training abstracts", "test ROUGE-1 (max over references)",
            os.path.join(out, "learning_curve.png"))
  text = "\n".join(lines) + "\n"
  with open(os.path.join(out, "learning_curve.md"), "w") as f:
    f.write(text)
  return text


def plot_curves(out: str, arms: Sequence[str]) -> None:
  """Validation perplexity against the step for every arm's first seed (``OUT/curves.png``)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for arm in arms:
    workdir = run_dir(out, arm, 0)
    if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
      points = [(r["step"], r["valid_perplexity"]) for r in read_metrics(workdir)
                if "valid_perplexity" in r]
      if points:
        ax.plot(*zip(*points), marker="o", label=arm)
  ax.set_yscale("log")
  save_plot(fig, ax, "step", "SciTLDR validation perplexity", os.path.join(out, "curves.png"))


def run_arms(args, arms: Sequence[str], config) -> tuple[dict, dict]:
  """Every arm and seed on all of SciTLDR, the report rewritten after each arm.

  Returns ``(results, baselines)``: ``results[arm]`` the ROUGE statistics over seeds,
  ``baselines`` Lead-1's and the oracle's ROUGE on the test set.
  """
  rows = summarization.load_rows(config.data, "scitldr", "test")
  baselines = summarization.baselines(rows)
  results = {}
  for arm in arms:
    runs = [train(EXPERIMENT, ARMS, arm, seed, args.out, args.overrides)
            for seed in range(args.seeds)]
    results[arm] = rep.stats(runs, [f"test_{k}" for k in ROUGE])
    plot_curves(args.out, arms)
    print(report(results, baselines, rows, args.out, arms), flush=True)
  return results, baselines


def parse_fractions(text: str) -> list[float]:
  """``--fractions``: the shares below 1 (1 is the full-data run), sorted."""
  fractions = sorted({float(f) for f in text.split(",") if f.strip()} - {1.0})
  if any(not 0.0 < f < 1.0 for f in fractions):
    raise ConfigError(f"--fractions must lie in (0, 1), got {text!r}")
  return fractions


def run_learning_curve(args, fractions: Sequence[float], config, results: dict,
                       lead1: float) -> None:
  """The SciTLDR arms again on each fraction of the training abstracts; the learning curve
  (``learning_curve``) rewritten after each arm and fraction."""
  train_size = len(summarization.SummarizationTask().load_pairs(config, "train")[0])
  sizes = {f: max(1, round(train_size * f)) for f in (*fractions, 1.0)}
  curve = {arm: {1.0: results[arm]["test_rouge1_max"]} for arm in results
           if arm in SCITLDR_ARMS}
  table = dict(ARMS, **{fraction_arm(a, f): ARMS[a] for a in curve for f in fractions})
  for f in fractions:
    for arm in curve:   # the parents are the full-data arms' (no fraction override)
      runs = [train(EXPERIMENT, table, fraction_arm(arm, f), seed, args.out,
                    args.overrides + fraction_overrides(arm, f), args.overrides)
              for seed in range(args.curve_seeds or args.seeds)]
      curve[arm][f] = mean_std([r["test_rouge1_max"] for r in runs])
      print(learning_curve(curve, sizes, lead1, args.out), flush=True)


def parse_args(argv: Sequence[str] | None):
  parser = argument_parser("python -m benchmarks.summarization", __doc__.split("\n\n")[0],
                           ARMS, DEFAULT_ARMS, "runs/bench_summarization")
  parser.add_argument("--fractions", default="",
                      help="comma-separated shares of the SciTLDR training abstracts for a "
                           "learning curve, e.g. 0.25,0.5 (the full data is always run)")
  parser.add_argument("--curve-seeds", type=int, default=None,
                      help="seeds per arm on the learning curve's fractions (default: --seeds)")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  os.makedirs(args.out, exist_ok=True)

  def run():
    arms = selected_arms(args.arms, ARMS)
    config, _ = load_experiment(f"{EXPERIMENT}:scratch")
    results, baselines = run_arms(args, arms, config)
    fractions = parse_fractions(args.fractions)
    if fractions:
      run_learning_curve(args, fractions, config, results, baselines["lead1"]["rouge1_max"])

  return run_reporting_errors(run)


if __name__ == "__main__":
  sys.exit(main())

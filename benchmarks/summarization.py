r"""News => science summarization benchmark on SciTLDR, with Lead-1 and the oracle beside.

  python -m benchmarks.summarization [--arms scratch,news,news_title,news_adversarial]
      [--seeds 2] [--out runs/bench_summarization] [--set KEY=VALUE ...]

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
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from benchmarks.arms import argument_parser, run_reporting_errors, cell, run_dir, selected_arms, train
from xferlab.config import load_experiment
from xferlab.metrics import mean_std, read_metrics
from xferlab.tasks import summarization

EXPERIMENT = "experiments/summarization/news_to_science.py"
ARMS = {
    "bbc": ("bbc", None), "bbc_title": ("bbc_title", None),
    "bbc_adversarial": ("bbc_adversarial", None),
    "scratch": ("scratch", None), "news": ("news", "bbc"), "news_title": ("news_title", "bbc_title"),
    "news_adversarial": ("news_adversarial", "bbc_adversarial"),
}
DEFAULT_ARMS = ("scratch", "news", "news_title", "news_adversarial")
ROUGE = ("rouge1_max", "rouge2_max", "rougeL_max", "rouge1_mean", "rouge2_mean", "rougeL_mean")
GALLERY = 5


def report(results: dict, baselines: dict, rows: list[dict], out: str, arms: Sequence[str]) -> str:
  lines = ["# SciTLDR test (news => science)", "",
           "ROUGE F1 ×100, `rouge-score` with stemming; max = best of the references, mean = "
           "mean over them; mean ± std over seeds.", "",
           "| arm | n | " + " | ".join(ROUGE) + " |", "|---" * (len(ROUGE) + 2) + "|"]
  for name, stats in baselines.items():
    lines.append(f"| {name} | - | " + " | ".join(f"{stats[k]:.1f}" for k in ROUGE) + " |")
  for arm, stats in results.items():
    n = len(stats["test_rouge1_max"]["values"])
    lines.append(f"| {arm} | {n} | " + " | ".join(cell(stats.get(f"test_{k}")) for k in ROUGE)
                 + " |")
  r1 = {arm: s["test_rouge1_max"]["mean"] for arm, s in results.items()}
  if r1:
    best = max(r1, key=r1.get)
    lines += ["", f"- best arm {best}: ROUGE-1 (max) {r1[best]:.1f} against Lead-1 "
              f"{baselines['lead1']['rouge1_max']:.1f} (acceptance: above Lead-1)"]
  for arm in ("news", "news_title", "news_adversarial"):
    if arm in r1 and "scratch" in r1:
      lines.append(f"- {arm} − scratch: {r1[arm] - r1['scratch']:+.1f} ROUGE-1 (acceptance: ≥ +2 "
                   "for news ⇒ science)")
  lines += ["", "## Gallery (first five test abstracts)", ""]
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
  text = "\n".join(lines)
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text)
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"arms": results, "baselines": baselines}, f, indent=2)
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
  ax.set_xlabel("step")
  ax.set_ylabel("SciTLDR validation perplexity")
  ax.set_yscale("log")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, "curves.png"), dpi=120)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argument_parser("python -m benchmarks.summarization", __doc__.split("\n\n")[0],
                           ARMS, DEFAULT_ARMS, "runs/bench_summarization")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)

  def run():
    arms = selected_arms(args.arms, ARMS)
    config, _ = load_experiment(f"{EXPERIMENT}:scratch")
    rows = summarization.load_rows(config.data, "scitldr", "test")
    baselines = summarization.baselines(rows)
    results = {}
    for arm in arms:
      runs = [train(EXPERIMENT, ARMS, arm, seed, args.out, args.overrides)
              for seed in range(args.seeds)]
      results[arm] = {f"test_{k}": mean_std([r[f"test_{k}"] for r in runs]) for k in ROUGE}
      plot_curves(args.out, arms)
      print(report(results, baselines, rows, args.out, arms), flush=True)

  return run_reporting_errors(run)


if __name__ == "__main__":
  sys.exit(main())

r"""Translation transfer benchmark on Multi30k: full data, 10% from scratch, 10% from a parent.

  python -m benchmarks.translation [--arms de_full,de_10_scratch,de_10_transfer] [--seeds 2]
      [--out runs/bench_translation] [--set KEY=VALUE ...]

Arms (``experiments/translation/multi30k.py`` runs them; its docstring has the model):
  de_full          en→de, all 29,000 pairs, from scratch (one seed unless --full-seeds);
  de_10_scratch    en→de, 10% of the pairs (the same 2,900 for every seed), from scratch;
  de_10_transfer   en→de, the same 10%, initialized with the whole en→fr model
                   (``fr_full``, trained first, seed 0; the joint vocabulary makes every
                   parameter transferable);
  de_10_mixed      en→de, the same 10%, from ``fr_full`` with mixed fine-tuning: the 10%
                   (repeated 10 times) beside the parent's 29,000 en→fr pairs, sources
                   tagged with the target language;
  de_10_adversarial  de→en 10% from the fr→en parent plus a language discriminator
                   (German vs French sources) behind gradient reversal on the encoder
                   states (``fren_full`` is trained first). Not in the default set;
                   its twins without the discriminator, for the comparison:
  deen_10_transfer   de→en, the same 10%, from the fr→en parent, λ = 0 (no discriminator);
  deen_10_scratch    de→en, the same 10%, from scratch.
Runs live in ``OUT/<arm>/seed_<s>`` (parents in ``OUT/fr_full`` / ``OUT/fren_full``); a run
with a ``results.json`` is not trained again, so running the benchmark again with the
same ``--out`` resumes it.

Writes ``OUT/results.md`` (test_2016_flickr sacreBLEU -- detokenized, cased, 13a --
mean ± std over seeds, lowercased BLEU, chrF, validation BLEU and perplexity, training
tokens per second, the published anchor of docs/references.md) and ``OUT/results.json``.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from benchmarks import report as rep
from benchmarks.arms import argument_parser, run_reporting_errors, selected_arms, train

EXPERIMENT = "experiments/translation/multi30k.py"
# arm -> (the experiment's argument PAIR,FRACTION,ARM, parent arm or None)
ARMS = {
    "fr_full": ("en-fr,1,scratch", None),
    "fren_full": ("fr-en,1,scratch", None),
    "de_full": ("en-de,1,scratch", None),
    "de_10_scratch": ("en-de,0.1,scratch", None),
    "de_10_transfer": ("en-de,0.1,transfer", "fr_full"),
    "de_10_mixed": ("en-de,0.1,mixed", "fr_full"),
    "deen_10_scratch": ("de-en,0.1,scratch", None),
    "deen_10_transfer": ("de-en,0.1,transfer", "fren_full"),
    "de_10_adversarial": ("de-en,0.1,adversarial", "fren_full"),
}
DEFAULT_ARMS = ("de_10_transfer", "de_10_scratch", "de_full")
METRICS = ("test_bleu", "test_bleu_lc", "test_chrf", "valid_bleu", "valid_perplexity",
           "tokens_per_second", "train_seconds", "best_step")
ANCHOR = ("docs/references.md: attentive GRU (nmtpy) en→de 37.3 BLEU on lowercased, tokenized BPE "
          "text; not directly comparable to detokenized cased sacreBLEU")


def full_data(arm: str) -> bool:
  return ",1," in ARMS[arm][0]


def table(results: dict) -> list[str]:
  """One row per arm: test BLEU (cased, lowercased), chrF, validation, speed, minutes."""
  lines = rep.header(["arm", "n", "BLEU", "BLEU lc", "chrF", "val BLEU", "val ppl",
                      "train tok/s", "train min"])
  for arm, stats in results.items():
    n = len(stats["test_bleu"]["values"]) if "test_bleu" in stats else 0
    minutes = stats.get("train_seconds")
    minutes = None if minutes is None else {k: (v / 60 if isinstance(v, float) else v)
                                             for k, v in minutes.items() if k != "values"}
    lines.append(rep.row([arm, str(n), *(rep.cell(stats.get(k)) for k in (
        "test_bleu", "test_bleu_lc", "test_chrf", "valid_bleu")),
        rep.cell(stats.get("valid_perplexity"), 2), rep.cell(stats.get("tokens_per_second"), 0),
        rep.cell(minutes)]))
  return lines


def acceptance_lines(results: dict) -> list[str]:
  """The transfer arms' BLEU against scratch and full data, beside the acceptance bars."""
  bleu = {arm: s["test_bleu"]["mean"] for arm, s in results.items() if "test_bleu" in s}
  lines = []
  for arm in ("de_10_transfer", "de_10_mixed"):
    if {arm, "de_10_scratch"} <= set(bleu):
      lines.append(f"- {arm} − de_10_scratch: {bleu[arm] - bleu['de_10_scratch']:+.1f} BLEU "
                   "(acceptance: ≥ +5)")
    if {arm, "de_full"} <= set(bleu):
      lines.append(f"- {arm} / de_full: {bleu[arm] / bleu['de_full']:.0%} (acceptance: ≥ 85%)")
  if {"de_10_adversarial", "deen_10_transfer"} <= set(bleu):
    lines.append(f"- de→en at 10%, adversarial − plain transfer: "
                 f"{bleu['de_10_adversarial'] - bleu['deen_10_transfer']:+.1f} BLEU")
  if "de_full" in bleu:
    lines.append(f"- en→de full from scratch: {bleu['de_full']:.1f} (acceptance: ≥ 35)")
  return lines


def report(results: dict, out: str) -> str:
  """Writes ``OUT/results.md`` and ``OUT/results.json``; returns the markdown."""
  lines = ["# Multi30k translation transfer (test_2016_flickr)", "",
           "sacreBLEU on detokenized, cased text (13a); `BLEU lc` lowercased; mean ± std over "
           "seeds (n = runs).", "", *table(results),
           "", "tokens per second count source and target tokens of the training batches "
           "(padding excluded), evaluation excluded.", "", *acceptance_lines(results),
           "", f"Anchor: {ANCHOR}.", ""]
  text = "\n".join(lines)
  rep.write_results(out, text, results)
  return text


def run_arms(args, results: dict) -> None:
  """Every selected arm and seed (a parent first, seed 0), the report rewritten after each arm."""
  for arm in selected_arms(args.arms, ARMS):
    seeds = range(args.full_seeds if full_data(arm) else args.seeds)
    parent = ARMS[arm][1]
    if parent and parent not in results:
      parent_run = train(EXPERIMENT, ARMS, parent, 0, args.out, args.overrides)
      results[parent] = rep.stats([parent_run], [k for k in METRICS if k in parent_run])
    runs = [train(EXPERIMENT, ARMS, arm, seed, args.out, args.overrides) for seed in seeds]
    results[arm] = rep.stats(runs, [k for k in METRICS if k in runs[0]])
    print(report(results, args.out), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argument_parser("python -m benchmarks.translation", __doc__.split("\n\n")[0], ARMS,
                           DEFAULT_ARMS, "runs/bench_translation", "seeds of the 10%% arms")
  parser.add_argument("--full-seeds", type=int, default=1, help="seeds of the full-data arms")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  return run_reporting_errors(lambda: run_arms(args, {}))


if __name__ == "__main__":
  sys.exit(main())

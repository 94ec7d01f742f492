r"""Translation transfer benchmark on Multi30k: full data, 10% from scratch, 10% from a parent.

  python -m benchmarks.translation [--arms de_full,de_10_scratch,de_10_transfer] [--seeds 2] [--arm-seeds ARM=N]
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
Monolingual German (Multi30k Task 2's 145,000 training captions; never its validation /
test captions, which describe Task 1's validation / test images):
  de_10_bt         en→de, the same 10% (repeated 10 times) plus the captions with synthetic
                   English sources tagged <bt> (back-translation, Sennrich et al. 2016), from
                   scratch. The synthetic English: ``deen_10_transfer`` (seed 0) translates
                   the captions (``xferlab.studies.back_translate``, beam 5) into
                   ``OUT/bt_deen_10_transfer``;
  de_10_bt_transfer  de_10_bt initialized with the whole en→fr model (``fr_full``);
  de_10_declm      en→de, the same 10%, with the decoder side (embedding = tied output layer,
                   decoder LSTM, attentional layer, output bias) of ``de_lm``, a German
                   language model trained on the captions (empty source → caption);
  de_10_declm_transfer  the decoder side of ``de_lm_transfer`` (that language model started
                   from ``fr_full``) and the encoder side of ``fr_full`` (two ``init_from``
                   sources);
  de_full_bt       en→de, all 29,000 pairs (repeated twice) plus the captions back-translated
                   by ``deen_full`` (de→en on all pairs) into ``OUT/bt_deen_full``.
  de_10_bt_all_transfer  de_10_bt_transfer on every one of the 145,000 captions, whatever
                   ``--bt-limit`` (``OUT/bt_all_deen_10_transfer``; its first chunks are
                   those of ``OUT/bt_deen_10_transfer``: copy its ``manifest.json`` and
                   ``chunks/`` there first and they are checked and reused);
  de_10_bt_transfer_untagged, de_10_bt_transfer_unrepeated  de_10_bt_transfer without the
                   ``<bt>`` tag on synthetic sources, or with the real pairs once instead of
                   10 times: tagging and up-sampling, each chosen by comparing
                   validation scores.
Prerequisites (``PREREQUISITES``, seed 0) are made first and resume like the arms; the
experiment's ``init_from.made_by`` names the same commands for runs outside the benchmark.
Runs live in ``OUT/<arm>/seed_<s>`` (parents in ``OUT/fr_full`` / ``OUT/fren_full``); a run
with a ``results.json`` is not trained again, so running the benchmark again with the
same ``--out`` resumes it.

Writes ``OUT/results.md`` (test_2016_flickr sacreBLEU -- detokenized, cased, 13a --
mean ± std over seeds, lowercased BLEU, chrF, validation BLEU, chrF and perplexity, training
tokens per second, the published anchor of docs/references.md, the back-translations' size
and time), ``OUT/results.json`` (arm → metric → ``{mean, std, values}``) and
``OUT/back_translation.json`` (each synthetic corpus's ``back_translate.json``).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from benchmarks import report as rep
from benchmarks.arms import (argument_parser, run_dir, run_reporting_errors, selected_arms,
                             train)
from xferlab.config import load_experiment
from xferlab.tasks.translation import SYNTHETIC_FILE

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
    "deen_full": ("de-en,1,scratch", None),
    "de_lm": ("en-de,1,lm", None),
    "de_lm_transfer": ("en-de,1,lm_transfer", "fr_full"),
    "de_10_bt": ("en-de,0.1,bt", None),
    "de_10_bt_transfer": ("en-de,0.1,bt_transfer", "fr_full"),
    "de_10_declm": ("en-de,0.1,declm", "de_lm"),
    "de_10_declm_transfer": ("en-de,0.1,declm_transfer", None),
    "de_full_bt": ("en-de,1,bt", None),
    "de_10_bt_transfer_untagged": ("en-de,0.1,bt_transfer", "fr_full"),
    "de_10_bt_transfer_unrepeated": ("en-de,0.1,bt_transfer", "fr_full"),
    "de_10_bt_all_transfer": ("en-de,0.1,bt_transfer", "fr_full"),
}
# arm -> the settings by which it differs from its experiment argument's arm.
ARM_SETTINGS = {"de_10_bt_transfer_untagged": ["translation.synthetic_tag=False"],
                "de_10_bt_transfer_unrepeated": ["translation.real_repeat=1"]}
# arm -> {config key: what it points at}, made first (seed 0): "ARM" is that arm's run,
# "bt:ARM" the Task 2 training captions back-translated by that arm's run (OUT/bt_ARM; the
# first --bt-limit of them), "bt_all:ARM" all of them (OUT/bt_all_ARM).
PREREQUISITES = {
    "de_10_bt": {"translation.synthetic_pairs": "bt:deen_10_transfer"},
    "de_10_bt_transfer": {"translation.synthetic_pairs": "bt:deen_10_transfer"},
    "de_10_bt_transfer_untagged": {"translation.synthetic_pairs": "bt:deen_10_transfer"},
    "de_10_bt_transfer_unrepeated": {"translation.synthetic_pairs": "bt:deen_10_transfer"},
    "de_10_bt_all_transfer": {"translation.synthetic_pairs": "bt_all:deen_10_transfer"},
    "de_full_bt": {"translation.synthetic_pairs": "bt:deen_full"},
    "de_10_declm_transfer": {"init_from.path": "de_lm_transfer", "init_from.extra": "fr_full"},
}
BT_SOURCE = "multi30k_task2/de"   # the monolingual German that is back-translated
DEFAULT_ARMS = ("de_10_transfer", "de_10_scratch", "de_full")
METRICS = ("test_bleu", "test_bleu_lc", "test_chrf", "valid_bleu", "valid_chrf",
           "valid_perplexity", "tokens_per_second", "train_seconds", "best_step")
ANCHOR = ("docs/references.md: attentive GRU (nmtpy) en→de 37.3 BLEU on lowercased, tokenized BPE "
          "text; not directly comparable to detokenized cased sacreBLEU")
FULL_DATA_BLEU = 36.9   # de_full's recorded test BLEU: the bar when this OUT lacks de_full
MONOLINGUAL_ARMS = ("de_10_bt", "de_10_bt_transfer", "de_10_bt_all_transfer", "de_10_declm",
                    "de_10_declm_transfer", *ARM_SETTINGS)
BT_KINDS = ("bt:", "bt_all:")   # prerequisite prefixes naming a back-translation


def full_data(arm: str) -> bool:
  return ",1," in ARMS[arm][0]


def table(results: dict) -> list[str]:
  """One row per arm: test BLEU (cased, lowercased), chrF, validation, speed, minutes."""
  lines = rep.header(["arm", "n", "BLEU", "BLEU lc", "chrF", "val BLEU", "val chrF",
                      "val ppl", "train tok/s", "train min"])
  for arm, stats in results.items():
    n = len(stats["test_bleu"]["values"]) if "test_bleu" in stats else 0
    minutes = stats.get("train_seconds")
    minutes = None if minutes is None else {k: (v / 60 if isinstance(v, float) else v)
                                             for k, v in minutes.items() if k != "values"}
    lines.append(rep.row([arm, str(n), *(rep.cell(stats.get(k)) for k in (
        "test_bleu", "test_bleu_lc", "test_chrf", "valid_bleu", "valid_chrf")),
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
  return lines + monolingual_lines(results)


def best_by_validation(results: dict) -> str | None:
  """The en→de 10 % arm with the highest validation BLEU (model choice on validation only)."""
  scored = {arm: s["valid_bleu"]["mean"] for arm, s in results.items()
            if arm.startswith("de_10_") and ARMS.get(arm, ("",))[0].startswith("en-de,")
            and "valid_bleu" in s and "test_bleu" in s}
  return max(scored, key=scored.get) if scored else None


def monolingual_lines(results: dict) -> list[str]:
  """The monolingual-German arms against full data (85 % of it is the bar), the best 10 % arm
  chosen on validation, and full data with back-translation against full data alone."""
  bleu = {arm: s["test_bleu"]["mean"] for arm, s in results.items() if "test_bleu" in s}
  full, which = (bleu["de_full"], "de_full") if "de_full" in bleu else (
      FULL_DATA_BLEU, "the recorded de_full")
  lines = [f"- {arm} / {which}: {bleu[arm] / full:.0%}" for arm in MONOLINGUAL_ARMS
           if arm in bleu]
  best = best_by_validation(results)
  if best and lines:
    lines.append(f"- best 10% arm by validation BLEU: {best}, test {bleu[best]:.1f} = "
                 f"{bleu[best] / full:.0%} of {which} {full:.1f} (acceptance: ≥ 85%, "
                 f"{0.85 * full:.1f})")
  lines += mix_choice_lines(results)
  if "de_full_bt" in bleu:
    lines.append(f"- de_full_bt: {bleu['de_full_bt']:.1f} against {which} {full:.1f} "
                 f"({bleu['de_full_bt'] - full:+.1f}), both detokenized cased sacreBLEU; the "
                 "published 37.3 is lowercased, tokenized BLEU (`BLEU lc` is the nearer column)")
  return lines


MIX_VARIANTS = {"de_10_bt_transfer_untagged": "the <bt> tag on synthetic sources",
                "de_10_bt_transfer_unrepeated": "the real pairs repeated 10 times"}


def mix_choice_lines(results: dict) -> list[str]:
  """Keep or drop each of the back-translation mix's choices (tag, up-sampling) by validation
  BLEU: ``de_10_bt_transfer`` (with it) against the variant without it. A difference of the
  means within two standard errors (pooled seed std) is called none; so is one with a single
  seed on each side, which has no spread to judge by."""
  lines = []
  for variant, choice in MIX_VARIANTS.items():
    if not all("valid_bleu" in results.get(arm, {}) for arm in (variant, "de_10_bt_transfer")):
      continue
    with_it, without = (np.array(results[arm]["valid_bleu"]["values"])
                        for arm in ("de_10_bt_transfer", variant))
    difference = with_it.mean() - without.mean()
    dof = len(with_it) + len(without) - 2
    if dof:
      pooled = np.sqrt((((with_it - with_it.mean()) ** 2).sum()
                        + ((without - without.mean()) ** 2).sum()) / dof)
      margin = 2 * pooled * np.sqrt(1 / len(with_it) + 1 / len(without))
    verdict = ("no spread to judge by (one seed each)" if not dof
               else "keep it" if difference > margin else "drop it" if -difference > margin
               else f"no difference beyond two standard errors (± {margin:.1f}); keep the default")
    lines.append(f"- {choice}: val BLEU {with_it.mean():.1f} with ({len(with_it)} seeds), "
                 f"{without.mean():.1f} without ({variant}, {len(without)}): {verdict}")
  return lines


def model_name(path: str) -> str:
  """``ARM/seed_S`` of a back-translating run's folder (absolute, or already relative)."""
  return os.path.relpath(path, os.path.dirname(os.path.dirname(path))) if os.path.isabs(
      path) else path


def portable(summaries: dict, out: str) -> dict:
  """The back-translation summaries with each model folder relative to ``out``: a record
  names no folder of the machine it ran on."""
  return {name: dict(s, settings=dict(s["settings"], model=os.path.relpath(
      s["settings"]["model"], os.path.abspath(out)))) for name, s in summaries.items()}


def back_translation_lines(summaries: dict) -> list[str]:
  """One row per synthetic corpus: the model, its validation BLEU, decoding, size, time."""
  if not summaries:
    return []
  lines = ["Back-translations of the Task 2 training captions:", "",
           *rep.header(["corpus", "model", "its val BLEU", "decoding", "pairs", "minutes",
                        "tok/s", "empty outputs"])]
  for name, s in summaries.items():
    settings = s["settings"]
    decoding = (f"sampling, T = {settings['temperature']}" if settings["mode"] == "sample"
                else f"beam {settings['beam_size']}")
    valid = s["model_results"].get("valid_bleu")
    lines.append(rep.row([
        name, model_name(settings["model"]), "-" if valid is None else f"{valid:.1f}", decoding,
        f"{s['size']:,}", f"{s['seconds'] / 60:.1f}", f"{s['tokens_per_second']:,.0f}",
        str(s["empty_outputs"])]))
  return lines + [""]


def report(results: dict, out: str, back_translations: dict | None = None) -> str:
  """Writes ``OUT/results.md``, ``OUT/results.json`` and, given back-translation summaries,
  ``OUT/back_translation.json``; returns the markdown."""
  lines = ["# Multi30k translation transfer (test_2016_flickr)", "",
           "sacreBLEU on detokenized, cased text (13a); `BLEU lc` lowercased; mean ± std over "
           "seeds (n = runs). Checkpoints and the best arm are chosen on validation only; a "
           "language-model arm's `val ppl` is that of the German validation targets.", "",
           *table(results),
           "", "tokens per second count source and target tokens of the training batches "
           "(padding excluded), evaluation excluded.", "",
           *back_translation_lines(back_translations or {}), *acceptance_lines(results),
           "", f"Anchor: {ANCHOR}.", ""]
  text = "\n".join(lines)
  rep.write_results(out, text, results)
  if back_translations:
    rep.write_json(os.path.join(out, "back_translation.json"), portable(back_translations, out))
  return text


def split_prerequisite(name: str) -> tuple[str, str]:
  """``(kind, arm)`` of a prerequisite: ``("bt:", ARM)``, ``("bt_all:", ARM)`` or ``("", ARM)``."""
  kind = next((k for k in BT_KINDS if name.startswith(k)), "")
  return kind, name[len(kind):]


def prerequisite_dir(out: str, name: str) -> str:
  """Where prerequisite ``name`` lives: ``OUT/<arm>/seed_0``, ``OUT/bt_<arm>`` or
  ``OUT/bt_all_<arm>``."""
  kind, arm = split_prerequisite(name)
  return os.path.join(out, kind[:-1] + "_" + arm) if kind else run_dir(out, arm, 0)


def prerequisite_overrides(arm: str, out: str) -> list[str]:
  """``KEY=VALUE`` overrides pointing ``arm``'s keys at its prerequisites under ``out`` (an
  ``init_from.extra`` entry keeps its subtrees and takes the prerequisite's path)."""
  config, _ = load_experiment(f"{EXPERIMENT}:{ARMS[arm][0]}")
  items = []
  for key, name in PREREQUISITES.get(arm, {}).items():
    path = os.path.abspath(prerequisite_dir(out, name))
    if key == "init_from.extra":
      value = tuple((path,) + tuple(entry[1:]) for entry in config.init_from.extra)
      items.append(f"{key}={value!r}")
    elif key == "translation.synthetic_pairs":
      items.append(f"{key}={os.path.join(path, SYNTHETIC_FILE)}")
    else:
      items.append(f"{key}={path}")
  return items


def captions_to_translate(texts: list[str], kind: str, limit: int) -> list[str]:
  """The captions a ``kind`` back-translation covers: the first ``limit`` for ``bt:`` (all
  when 0), every one for ``bt_all:``."""
  return texts[:limit] if limit and kind == "bt:" else texts


def make_prerequisite(name: str, args, results: dict, back_translations: dict) -> None:
  """Trains arm ``name`` (seed 0, its parent first) or, for ``bt:ARM`` / ``bt_all:ARM``,
  back-translates the first ``--bt-limit`` / all Task 2 training captions with that run;
  both resume, and both are recorded."""
  kind, arm = split_prerequisite(name)
  run = train(EXPERIMENT, ARMS, arm, 0, args.out, args.overrides)
  if arm not in results:
    results[arm] = rep.stats([run], [k for k in METRICS if k in run])
  if kind and name not in back_translations:
    from xferlab import launch
    from xferlab.studies import back_translate as bt
    texts = captions_to_translate(bt.source_texts(BT_SOURCE, "train"), kind, args.bt_limit)
    restored = launch.restore(run_dir(args.out, arm, 0))
    bt.check_direction(restored, BT_SOURCE)
    back_translations[name] = bt.back_translate(
        restored, texts, prerequisite_dir(args.out, name),
        source=BT_SOURCE, split="train", chunk=args.bt_chunk, beam=args.bt_beam,
        sample=args.bt_sample, log=lambda line: print(line, flush=True))


def seed_count(arm: str, args) -> int:
  """How many seeds ``arm`` runs: ``--arm-seeds ARM=N`` where given, else ``--full-seeds`` for
  the full-data arms and ``--seeds`` for the others."""
  malformed = [item for item in args.arm_seeds
               if "=" not in item or not item.split("=", 1)[1].isdigit()]
  if malformed:
    raise ValueError(f"--arm-seeds expects ARM=N, got {malformed}")
  counts = dict(item.split("=", 1) for item in args.arm_seeds)
  unknown = sorted(set(counts) - set(ARMS))
  if unknown:
    raise ValueError(f"--arm-seeds names unknown arms {unknown}; valid arms: {sorted(ARMS)}")
  if arm in counts:
    return int(counts[arm])
  return args.full_seeds if full_data(arm) else args.seeds


def run_arms(args, results: dict) -> None:
  """Every selected arm and seed (its prerequisites and parent first, seed 0), the report
  rewritten after each arm."""
  back_translations: dict = {}
  for arm in selected_arms(args.arms, ARMS):
    seeds = range(args.first_seed, seed_count(arm, args))
    for name in PREREQUISITES.get(arm, {}).values():
      make_prerequisite(name, args, results, back_translations)
    parent = ARMS[arm][1]
    if parent and parent not in results:
      parent_run = train(EXPERIMENT, ARMS, parent, 0, args.out, args.overrides)
      results[parent] = rep.stats([parent_run], [k for k in METRICS if k in parent_run])
    overrides = args.overrides + prerequisite_overrides(arm, args.out) + ARM_SETTINGS.get(arm, [])
    runs = [train(EXPERIMENT, ARMS, arm, seed, args.out, overrides,
                  parent_overrides=args.overrides) for seed in seeds]
    if not runs:   # --first-seed past this arm's seeds
      continue
    results[arm] = rep.stats(runs, [k for k in METRICS if k in runs[0]])
    print(report(results, args.out, back_translations), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argument_parser("python -m benchmarks.translation", __doc__.split("\n\n")[0], ARMS,
                           DEFAULT_ARMS, "runs/bench_translation", "seeds of the 10%% arms")
  parser.add_argument("--full-seeds", type=int, default=1, help="seeds of the full-data arms")
  parser.add_argument("--first-seed", type=int, default=0,
                      help="start at this seed (to split the seeds between invocations, one per "
                      "core; an invocation from seed 0 then reads and reports them all)")
  parser.add_argument("--arm-seeds", action="append", default=[], metavar="ARM=N",
                      help="seeds of one arm, instead of --seeds / --full-seeds (repeatable; "
                      "e.g. one seed for a variant)")
  parser.add_argument("--bt-beam", type=int, default=5, help="back-translation beam size")
  parser.add_argument("--bt-sample", action="store_true", help="sample back-translations")
  parser.add_argument("--bt-chunk", type=int, default=2000, help="captions per resumable chunk")
  parser.add_argument("--bt-limit", type=int, default=0,
                      help="back-translate only the first N captions (0 = all 145,000) for the "
                      "bt: prerequisites (not for bt_all:)")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  return run_reporting_errors(lambda: run_arms(args, {}))


if __name__ == "__main__":
  sys.exit(main())

r"""Which vocabulary size gives the Wikipedia LM the best validation perplexity per unit of compute?

  python -m benchmarks.lm_vocab --out runs/lm_vocab [--vocabs 16000,32000,64000] [--minutes 15]

For each size, ``experiments/lm/wiki.py`` with ``data.vocab_size`` set (and the
adaptive softmax cutoffs of ``CUTOFFS``) trains for the same wall-clock budget
(``train.max_train_minutes``; same schedule, batch and model otherwise) and is
scored once on the whole ``wiki_en`` validation split. A finished size is read,
not trained again.

Perplexities of word-level LMs with different vocabularies are not comparable
as they stand: the smaller the vocabulary, the more words collapse into one
easy ``<unk>``. So each is also reported **OOV-adjusted** (Ueberla 1994): every
``<unk>`` target additionally pays ``-log p(w | OOV)`` for the word ``w`` it
stands for, under an add-one unigram over the out-of-vocabulary words of the
training split. That is a perplexity of one and the same word sequence for every
vocabulary, and the column to choose on.

Writes ``OUT/results.json`` (size -> metrics) and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys
from typing import Iterable, Sequence

import numpy as np

from benchmarks import report

EXPERIMENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments", "lm", "wiki.py")
CUTOFFS = {16000: (2000, 8000), 32000: (2000, 10000), 64000: (2000, 10000, 30000)}


def oov_log_probs(tokenizer, train_texts: Iterable[str], other_texts: Iterable[str] = ()
                  ) -> dict[str, float]:
  """``{word: log p(word | OOV)}``: an add-one unigram over the words ``tokenizer`` maps to
  ``<unk>``, counted on ``train_texts``; its support is every such word of ``train_texts`` and
  ``other_texts`` (the evaluated text), so every evaluated ``<unk>`` has a probability."""
  from xferlab.data.tokenizer import UNK_ID
  counts: collections.Counter = collections.Counter()
  for text in train_texts:
    words = tokenizer.tokens(text)
    counts.update(w for w, i in zip(words, tokenizer.encode(text)) if i == UNK_ID)
  for text in other_texts:
    words = tokenizer.tokens(text)
    for w, i in zip(words, tokenizer.encode(text)):
      if i == UNK_ID and w not in counts:
        counts[w] = 0
  total = sum(counts.values()) + len(counts)
  return {w: math.log((c + 1) / total) for w, c in counts.items()}


def oov_penalty(tokenizer, texts: Sequence[str], log_probs: dict[str, float],
                rows: int) -> tuple[float, int, int]:
  """``(nats, unk targets, targets)`` over the targets that the LM task's evaluation scores
  for ``texts`` (the stream of every text's ids and ``EOS``, cut into ``rows`` rows, each row's
  first token never a target): the nats are ``-sum log p(w | OOV)`` over its ``<unk>`` targets."""
  from xferlab.data.tokenizer import UNK_ID
  from xferlab.tasks.language_model import batchify
  nats, ids = [], []
  for text in texts:
    encoded = tokenizer.encode(text)
    words = tokenizer.tokens(text)
    nats += [-log_probs[w] if i == UNK_ID else 0.0 for w, i in zip(words, encoded)] + [0.0]
    ids += list(encoded) + [-1]
  targets_nats = batchify(np.asarray(nats, np.float64), rows)[:, 1:]
  targets_ids = batchify(np.asarray(ids, np.int64), rows)[:, 1:]
  return float(targets_nats.sum()), int((targets_ids == UNK_ID).sum()), int(targets_ids.size)


def run_size(vocab: int, args) -> dict:
  """One vocabulary size trained for ``args.minutes`` and scored (read when finished)."""
  from xferlab import launch
  from xferlab.config import apply_overrides, load_experiment
  from xferlab.data.tokenizer import load_tokenizer
  from xferlab.tasks.language_model import split_texts
  config, _ = load_experiment(EXPERIMENT)
  config = apply_overrides(config, {
      "data.vocab_size": vocab, "language_model.adaptive_softmax_cutoffs": CUTOFFS[vocab],
      "train.max_train_minutes": args.minutes, "train.checkpoint_every": 0,
      "train.eval_every_epochs": 1.0, "seed": 0})
  workdir = os.path.join(args.out, str(vocab))
  print(f"[lm_vocab] {vocab:,} words -> {workdir}", flush=True)
  results = launch.run_config(config, workdir, verbose=False)
  tokenizer = load_tokenizer(os.path.join(workdir, "tokenizer"))
  valid = split_texts(config.data, "validation")
  log_probs = oov_log_probs(tokenizer, split_texts(config.data, "train"), valid)
  nats, unks, targets = oov_penalty(tokenizer, valid, log_probs, config.data.eval_batch_size)
  adjusted = results["valid_loss"] + nats / targets
  return {"vocab_size": vocab, "steps": results["steps"],
          "train_seconds": results["train_seconds"],
          "tokens_per_second": results["tokens_per_second"],
          "valid_perplexity": results["valid_perplexity"], "valid_unk_rate": unks / targets,
          "valid_oov_adjusted_perplexity": math.exp(adjusted),
          "oov_types": len(log_probs)}


def markdown(rows: list[dict], minutes: float) -> str:
  lines = [f"# Vocabulary size of the Wikipedia LM at {minutes:g} minutes of training\n",
           "Each size trained for the same wall time on the same machine, scored on the whole "
           "`wiki_en` validation split. Choose on the OOV-adjusted perplexity (every `<unk>` "
           "also pays for the word it hides; see `benchmarks/lm_vocab.py`).\n"]
  lines += report.header(["vocab", "steps", "tokens/s", "valid ppl", "valid <unk>",
                          "OOV-adjusted ppl"])
  for r in rows:
    lines.append(report.row([f"{r['vocab_size']:,}", str(r["steps"]),
                             f"{r['tokens_per_second']:,.0f}", f"{r['valid_perplexity']:.1f}",
                             f"{100 * r['valid_unk_rate']:.2f} %",
                             f"{r['valid_oov_adjusted_perplexity']:.1f}"]))
  best = min(rows, key=lambda r: r["valid_oov_adjusted_perplexity"])
  lines.append(f"\nLowest OOV-adjusted perplexity: {best['vocab_size']:,} words.")
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.lm_vocab",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="where the runs and the report go")
  parser.add_argument("--vocabs", default="16000,32000,64000",
                      help=f"vocabulary sizes, each one of {sorted(CUTOFFS)}")
  parser.add_argument("--minutes", type=float, default=15.0, help="training wall time per size")
  args = parser.parse_args(argv)
  sizes = [int(v) for v in args.vocabs.split(",")]
  unknown = [v for v in sizes if v not in CUTOFFS]
  if unknown:
    parser.error(f"--vocabs {unknown}: no cutoffs known; choose among {sorted(CUTOFFS)}")
  os.makedirs(args.out, exist_ok=True)
  rows = [run_size(v, args) for v in sizes]
  text = markdown(rows, args.minutes)
  report.write_results(args.out, text, {"minutes": args.minutes, "sizes": rows})
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())

r"""Review word vectors for the sentiment benchmarks (``feature_based.train_word2vec``).

  python -m xferlab.studies.word2vec --out runs/vectors_reviews        # amazon_unlabeled, 4 domains
  python -m xferlab.studies.word2vec --domains imdb --out runs/vectors_imdb   # IMDb unsup

Skip-gram with negative sampling (Mikolov et al. 2013) over the unlabeled
review text of the ``amazon_unlabeled`` domains (22,426 reviews, 3.5 M words
for all four; none of them is a labeled benchmark review), split into words
exactly as the classifier's word tokenizer splits them (``split_words``:
lowercased, punctuation apart), so every vector lands on a vocabulary entry.
One worker thread: with a fixed ``seed`` the vectors are the same on every
run.

Writes ``OUT/vectors.txt`` (word2vec text format, read by
``xferlab.transfer.feature_based``: ``model.pretrained_vectors = OUT/vectors.txt``) and
``OUT/word2vec.json`` (the settings, the corpus size, the time taken).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Sequence

from xferlab.data.domains import AMAZON_DOMAINS as DOMAINS
from xferlab.transfer.feature_based import VECTORS_FILE, train_word2vec


def review_texts(domains: Sequence[str] = DOMAINS, manual_dir: str | None = None) -> list[str]:
  """The ``amazon_unlabeled`` reviews of ``domains`` in order; ``("imdb",)``: the 50,000
  unlabeled ``imdb_full`` reviews (never its test reviews)."""
  from xferlab.data import load
  if tuple(domains) == ("imdb",):
    return [row["text"] for row in load("imdb_full", "unsup", manual_dir=manual_dir)]
  return [row["text"] for domain in domains
          for row in load(f"amazon_unlabeled/{domain}", "train", manual_dir=manual_dir)]


def ensure_vectors(out: str, domains: Sequence[str] = DOMAINS, dim: int = 128) -> str:
  """``out/vectors.txt``, trained on the ``domains``' unlabeled reviews first if missing."""
  path = os.path.join(out, VECTORS_FILE)
  if not os.path.exists(path):
    print(f"[word2vec] training {dim}-d vectors on amazon_unlabeled {','.join(domains)} "
          f"-> {path}", flush=True)
    train_word2vec(review_texts(domains), out, dim=dim)
  return path


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.word2vec",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="directory for vectors.txt")
  parser.add_argument("--domains", default=",".join(DOMAINS),
                      help="amazon_unlabeled domains, comma-separated; 'imdb' = imdb_full unsup")
  parser.add_argument("--dim", type=int, default=128, help="the classifier's model.embed_dim")
  parser.add_argument("--epochs", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  domains = [d.strip() for d in args.domains.split(",") if d.strip()]
  info = train_word2vec(review_texts(domains), args.out, dim=args.dim, epochs=args.epochs,
                        seed=args.seed)
  print(json.dumps(info, indent=2))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

"""Feature-based transfer: pretrained word vectors into the embedding, out of it, and trained.

Two text formats, optionally gzipped (recognised by content, not by name):

* GloVe: one ``word v1 v2 ... vd`` line per word;
* word2vec text: a ``count dim`` header line, then the same lines.

Values are separated by single spaces; a word may itself hold spaces (as a
few GloVe entries do): the last ``d`` fields of a line are the vector.

``load_word_vectors`` builds the ``float32[vocab_size, dim]`` matrix of a
tokenizer's vocabulary. A token takes the vector of its exact string if the
file has one, else of the best near match: the token lowercased (``Apple`` ->
``apple``), then a file word that lowercases to it (``london`` <- ``London``);
a sentencepiece piece that starts a word (``▁the``) is also looked up without
its ``▁``. Among equally good matches the first in the file wins (word2vec
files list frequent words first). Special tokens (PAD,
UNK, BOS, EOS: ids 0..3) take a vector only from an exact match (a file
exported from one of our models has them) and are zero rows otherwise; they
do not count in coverage. Other rows without a vector keep a caller-supplied
init, or are drawn from a normal distribution with the standard deviation of
the loaded vectors.

``apply_pretrained_vectors(params, config, tokenizer)`` writes the vectors of
``config.model.pretrained_vectors`` into every encoder embedding of a pure
parameter dict; ``finetune.frozen = ("embedding",)`` then freezes them
(``xferlab.transfer.model_based.frozen_prefixes``).

``train_word2vec(texts, out)`` trains skip-gram vectors on unlabeled text with
gensim's word2vec, split into words exactly as the word tokenizer splits them
(``split_words``), so every vector lands on a vocabulary entry; one worker
thread, so a fixed seed gives the same vectors on every run. It writes
``out/vectors.txt`` (word2vec text format) and ``out/word2vec.json``.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import time
from typing import Any, Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from xferlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, split_words, vocabulary
from xferlab.param_paths import Path, embedding_paths, get_leaf, leaf_paths, set_leaf

VECTORS_FILE = "vectors.txt"   # what train_word2vec writes into its folder
# GloVe 6B 50-d (Pennington et al. 2014; the 100k most frequent words), below the data root
GLOVE_6B_50D = "glove_6b_50d/glove.6B.50d.top100k.txt.gz"
GLOVE_6B_50D_DIM = 50
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
FORMATS = ("glove", "word2vec")
_SP_WORD_START = "\u2581"   # sentencepiece's word-start mark "▁"


def glove_6b_50d_path(manual_dir: str | None = None) -> str:
  """Where the GloVe 6B 50-d vectors are (``xferlab.data.catalog.data_root``); the path is
  returned whether or not the file exists, so a missing file's error can name it."""
  from xferlab.data.catalog import data_root
  return str(data_root(manual_dir) / GLOVE_6B_50D)


def _open_text(path: str, mode: str = "r"):
  """A text file, gzipped or not (read: sniffed from the magic bytes; write: by a .gz name)."""
  if mode == "r":
    with open(path, "rb") as f:
      gz = f.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="\n")
  if path.endswith(".gz"):
    return gzip.open(path, "wt", encoding="utf-8", newline="\n")
  return open(path, "w", encoding="utf-8", newline="\n")


def token_strings(tokenizer) -> list[str]:
  """The vocabulary of a tokenizer (or a list of tokens itself), in id order."""
  return list(tokenizer) if isinstance(tokenizer, (list, tuple)) else vocabulary(tokenizer)


def _lookup_tables(tokens: Sequence[str]) -> tuple[dict, dict]:
  """``exact[form] -> [(id, rank)]`` and ``folded[form.lower()] -> [(id, rank)]``.

  Ranks order the matches of a token (lower is better): the token itself 0,
  a sentencepiece piece without its ``▁`` 1; case-folded forms one more.
  """
  exact, folded = {}, {}
  for i, token in enumerate(tokens):
    if i in SPECIAL_IDS:
      exact.setdefault(token, []).append((i, 0))
      continue
    forms = [token]
    if token.startswith(_SP_WORD_START) and len(token) > 1:
      forms.append(token[1:])
    for rank, form in enumerate(forms):
      exact.setdefault(form, []).append((i, rank))
      folded.setdefault(form.lower(), []).append((i, rank + 1))
  return exact, folded


def read_word_vectors(path: str, tokenizer, dim: int | None = None
                      ) -> tuple[dict[int, np.ndarray], dict[int, int], int]:
  """The vectors of a file for a vocabulary, streaming the file once.

  Args:
    path: a GloVe or word2vec text file, optionally gzipped.
    tokenizer: a tokenizer (``xferlab.data.tokenizer.vocabulary``) or a list of
      token strings, id order.
    dim: the expected vector size; ``None`` takes the file's.

  Returns:
    ``(vectors, inexact, dim)``: ``vectors[id] = float32[dim]`` for each token
    with a vector; ``inexact[id]`` is 1 where the match was not the exact token
    string (case-folded, or a piece without its ``▁``), else 0.
  """
  tokens = token_strings(tokenizer)
  exact, folded = _lookup_tables(tokens)
  best: dict[int, tuple[int, int, str]] = {}   # id -> (priority, line number, line)
  with _open_text(path) as f:
    first = f.readline()
    fields = first.rstrip().split(" ")
    if len(fields) == 2 and all(x.isdigit() for x in fields):      # word2vec header
      file_dim, lines, start = int(fields[1]), f, 2
    else:
      file_dim, lines, start = len(fields) - 1, itertools.chain([first], f), 1
    if file_dim < 1:
      raise ValueError(f"{path}: neither a vector nor a word2vec header on line 1: "
                       f"{first[:80]!r}")
    if dim is not None and file_dim != dim:
      raise ValueError(f"{path} holds {file_dim}-dimensional vectors; expected {dim}")
    dim = file_dim
    for n, line in enumerate(lines, start=start):
      line = line.rstrip()
      if not line:
        continue
      parts = line.rsplit(" ", dim)
      if len(parts) != dim + 1 or not parts[0]:
        raise ValueError(f"{path}, line {n}: expected a word and {dim} values, got "
                         f"{line[:80]!r}")
      word = parts[0]
      low = word.lower()
      candidates = exact.get(word, []) + [(i, r + (word != low)) for i, r in folded.get(low, ())]
      for i, priority in candidates:
        if i not in best or priority < best[i][0]:
          best[i] = (priority, n, line)
  vectors, inexact = {}, {}
  for i, (priority, n, line) in best.items():
    try:
      vectors[i] = np.array(line.rsplit(" ", dim)[1:], dtype=np.float32)
    except ValueError:
      raise ValueError(f"{path}, line {n}: not a vector of numbers: {line[:80]!r}") from None
    inexact[i] = int(priority > 0)
  return vectors, inexact, dim


def _fill(init: np.ndarray, vectors: dict[int, np.ndarray]) -> np.ndarray:
  """``init`` (copied) with the rows of ``vectors``; special tokens without a vector are zero."""
  matrix = np.array(init, dtype=np.float32, copy=True)
  for i in SPECIAL_IDS:
    if i < len(matrix) and i not in vectors:
      matrix[i] = 0.0
  for i, v in vectors.items():
    matrix[i] = v
  return matrix


def coverage_of(vectors: dict[int, np.ndarray], inexact: dict[int, int], vocab_size: int,
                counts: Sequence[int] | None = None) -> dict[str, float]:
  """Coverage of the non-special vocabulary (and of token occurrences, given ``counts``).

  Returns ``{"vocab": fraction of non-special ids with a vector, "found": their
  number, "total": non-special ids, "inexact": ids found only case-folded or
  without a sentencepiece ``▁``}``
  plus ``"tokens"``: the fraction of occurrences, with ``counts int[vocab_size]``.
  """
  ordinary = [i for i in range(vocab_size) if i not in SPECIAL_IDS]
  found = [i for i in ordinary if i in vectors]
  out = {"vocab": len(found) / max(len(ordinary), 1), "found": len(found),
         "total": len(ordinary), "inexact": sum(inexact[i] for i in found)}
  if counts is not None:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (vocab_size,):
      raise ValueError(f"counts must have shape ({vocab_size},), got {counts.shape}")
    total = counts[ordinary].sum()
    out["tokens"] = float(counts[found].sum() / total) if total else 0.0
  return out


def load_word_vectors(path: str, tokenizer, dim: int | None = None, *,
                      init: np.ndarray | None = None, counts: Sequence[int] | None = None,
                      seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
  """The embedding matrix of a vocabulary from a vectors file, and its coverage.

  Args:
    path: a GloVe or word2vec text file, optionally gzipped.
    tokenizer: a tokenizer, or a list of token strings in id order.
    dim: the expected vector size (``None``: the file's).
    init: ``float[vocab_size, dim]``, the rows kept for tokens without a
      vector; ``None``: normal with the standard deviation of the loaded vectors.
    counts: ``int[vocab_size]`` occurrences per id, for token coverage.
    seed: the seed of the random rows.

  Returns:
    ``(matrix float32[vocab_size, dim], coverage)``; see ``coverage_of``.
  """
  tokens = token_strings(tokenizer)
  vectors, inexact, dim = read_word_vectors(path, tokens, dim)
  if init is None:
    std = float(np.std(np.stack(list(vectors.values())))) if vectors else 1.0
    init = np.random.default_rng(seed).normal(0.0, std, (len(tokens), dim))
  elif np.shape(init) != (len(tokens), dim):
    raise ValueError(f"init has shape {np.shape(init)}; expected {(len(tokens), dim)}")
  return _fill(init, vectors), coverage_of(vectors, inexact, len(tokens), counts)


def export_word_vectors(path: str, tokenizer, matrix, fmt: str = "glove") -> None:
  """Writes ``matrix float[vocab_size, dim]`` as one line per token (a ``.gz`` name gzips).

  ``fmt="glove"``: ``token v1 ... vd`` lines; ``"word2vec"``: the same after a
  ``vocab_size dim`` header. Values are written in the shortest form that reads
  back as the same float32, so export -> load is exact.
  """
  if fmt not in FORMATS:
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
  tokens = token_strings(tokenizer)
  matrix = np.asarray(matrix, dtype=np.float32)
  if matrix.ndim != 2 or len(matrix) != len(tokens):
    raise ValueError(f"matrix has shape {matrix.shape}; expected ({len(tokens)}, dim)")
  bad = [t for t in tokens if not t or any(c.isspace() for c in t)]
  if bad:
    raise ValueError(f"Tokens {bad[:5]} are empty or hold whitespace; they cannot be written")
  with _open_text(path, "w") as f:
    if fmt == "word2vec":
      f.write(f"{matrix.shape[0]} {matrix.shape[1]}\n")
    for token, row in zip(tokens, matrix):
      f.write(token + " " + " ".join(map(str, row)) + "\n")


def apply_pretrained_vectors(params: Any, config, tokenizer, counts: Sequence[int] | None = None
                             ) -> tuple[Any, dict[str, float]]:
  """Writes the vectors of ``config.model.pretrained_vectors`` into every encoder embedding.

  ``params`` is a pure parameter dict; the result is a copy in which each
  ``.../encoder/embed/embedding`` (``float[vocab_size, embed_dim]``) has the
  file's vector in every row it covers; the other rows keep their initial
  values, special tokens without a vector become zero. Returns
  ``(params, coverage)``, the coverage as in ``coverage_of``; with no vectors
  configured, ``(params, {})``.
  """
  path = config.model.pretrained_vectors
  if not path:
    return params, {}
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"model.pretrained_vectors: no file at {path} (relative to {os.getcwd()}). Word "
        "vectors of the unlabeled review text are made by: python -m xferlab.studies.word2vec --out "
        f"{os.path.dirname(path) or '.'}")
  targets = embedding_paths(params)
  if not targets:
    raise ValueError("model.pretrained_vectors is set but the model has no "
                     ".../encoder/embed/embedding parameter")
  tokens = token_strings(tokenizer)
  shapes = {tuple(np.shape(get_leaf(params, p))) for p in targets}
  if len(shapes) != 1 or next(iter(shapes))[0] != len(tokens):
    raise ValueError(f"Embeddings of shapes {sorted(shapes)} do not fit the tokenizer's "
                     f"vocabulary of {len(tokens)}")
  dim = next(iter(shapes))[1]
  vectors, inexact, _ = read_word_vectors(path, tokens, dim)
  for p in targets:
    leaf = get_leaf(params, p)
    params = set_leaf(params, p, jnp.asarray(_fill(np.asarray(leaf), vectors), leaf.dtype))
  return params, coverage_of(vectors, inexact, len(tokens), counts)


def train_word2vec(texts: Iterable[str], out: str, dim: int = 128, window: int = 5,
                   min_count: int = 3, epochs: int = 5, seed: int = 0) -> dict:
  """Trains skip-gram vectors ``float[words, dim]`` on ``texts``; writes ``out/vectors.txt``
  and ``out/word2vec.json``; returns the latter's contents."""
  from gensim.models import Word2Vec
  start = time.time()
  sentences = [split_words(text) for text in texts]
  model = Word2Vec(sentences, vector_size=dim, window=window, min_count=min_count, sg=1,
                   negative=5, epochs=epochs, seed=seed, workers=1)
  os.makedirs(out, exist_ok=True)
  model.wv.save_word2vec_format(os.path.join(out, VECTORS_FILE))
  info = {"dim": dim, "window": window, "min_count": min_count, "epochs": epochs, "seed": seed,
          "algorithm": "skip-gram, negative sampling 5", "texts": len(sentences),
          "words_in_corpus": sum(map(len, sentences)), "vocabulary": len(model.wv),
          "seconds": round(time.time() - start, 1)}
  with open(os.path.join(out, "word2vec.json"), "w") as f:
    json.dump(info, f, indent=2)
  return info

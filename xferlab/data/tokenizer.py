"""Tokenizers: text <-> integer ids, with the same four special ids everywhere.

Every tokenizer in xferlab reserves ``PAD_ID = 0`` (padding, masked out by the
RNN core), ``UNK_ID = 1``, ``BOS_ID = 2`` and ``EOS_ID = 3``, so that models,
batching and checkpoints never need to know which tokenizer produced the ids.

A tokenizer is saved into (and loaded from) a directory, so that a trained
run's workdir carries what ``xferlab.launch.restore`` needs to read new text.
"""

from __future__ import annotations

import collections
import json
import os
import re
from typing import Iterable, Protocol, Sequence

from xferlab.special_ids import (BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID,  # noqa: F401
                                 SPECIAL_TOKENS, UNK, UNK_ID)

_WORD_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Tokenizer(Protocol):
  """What models and batching need from a tokenizer."""

  @property
  def vocab_size(self) -> int: ...

  def encode(self, text: str) -> list[int]: ...

  def decode(self, ids: Sequence[int]) -> str: ...

  def save(self, directory: str) -> None: ...


def split_words(text: str, lowercase: bool = True) -> list[str]:
  """Splits text into word and punctuation tokens (``"Don't!" -> don ' t !``)."""
  if lowercase:
    text = text.lower()
  return _WORD_RE.findall(text)


class WordTokenizer:
  """A word-level vocabulary: the most frequent words of some training text.

  Words outside the vocabulary map to ``UNK_ID``. ``split="whitespace"`` keeps
  pre-tokenized corpora (such as PTB) exactly as they are; ``split="words"``
  separates punctuation and lowercases.
  """

  kind = "word"

  def __init__(self, words: Sequence[str], split: str = "words"):
    if split not in ("words", "whitespace"):
      raise ValueError(f"split must be 'words' or 'whitespace', got {split!r}")
    self.split = split
    self.itos = list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS]
    self.stoi = {w: i for i, w in enumerate(self.itos)}

  @classmethod
  def train(cls, texts: Iterable[str], max_size: int | None = None,
            min_count: int = 1, split: str = "words") -> "WordTokenizer":
    """Builds the vocabulary from ``texts``, most frequent first (ties: alphabetical)."""
    tok = cls([], split=split)
    counts = collections.Counter()
    for text in texts:
      counts.update(tok.tokens(text))
    ranked = sorted((w for w, c in counts.items() if c >= min_count),
                    key=lambda w: (-counts[w], w))
    if max_size is not None:
      ranked = ranked[: max(0, max_size - len(SPECIAL_TOKENS))]
    return cls(ranked, split=split)

  @property
  def vocab_size(self) -> int:
    return len(self.itos)

  def tokens(self, text: str) -> list[str]:
    return text.split() if self.split == "whitespace" else split_words(text)

  def encode(self, text: str) -> list[int]:
    return [self.stoi.get(w, UNK_ID) for w in self.tokens(text)]

  def decode(self, ids: Sequence[int], unknowns: Sequence[str] | None = None) -> str:
    """The words of ``ids`` (PAD/BOS/EOS dropped) joined by spaces.

    ``UNK`` is rendered as ``<unk>``, unless ``unknowns`` is given (``unknown_spans`` of the
    source): then the k-th ``UNK`` becomes the k-th unknown source word (a copy), and ``UNK``s
    beyond them are dropped -- an output never shows ``<unk>``.
    """
    words, k = [], 0
    for i in ids:
      i = int(i)
      if i in (PAD_ID, BOS_ID, EOS_ID):
        continue
      if i == UNK_ID and unknowns is not None:
        if k < len(unknowns):
          words.append(unknowns[k])
        k += 1
        continue
      words.append(self.itos[i])
    return " ".join(words)

  def unknown_spans(self, text: str) -> list[str]:
    """The words of ``text`` outside the vocabulary (each occurrence, in order)."""
    return [w for w in self.tokens(text) if w not in self.stoi]

  def save(self, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "tokenizer.json"), "w") as f:
      json.dump({"kind": self.kind, "split": self.split, "itos": self.itos}, f)

  @classmethod
  def from_dict(cls, d: dict, directory: str) -> "WordTokenizer":
    del directory  # everything is in the JSON file
    return cls(d["itos"][len(SPECIAL_TOKENS):], split=d["split"])


def unknown_spans(tokenizer: Tokenizer, text: str) -> list[str]:
  """The spans of ``text`` that ``tokenizer`` encodes as ``UNK`` (in order); ``[]`` for a
  tokenizer that cannot tell."""
  return tokenizer.unknown_spans(text) if hasattr(tokenizer, "unknown_spans") else []


def decode_without_unknowns(tokenizer: Tokenizer, ids: Sequence[int],
                            unknowns: Sequence[str] = ()) -> str:
  """``tokenizer.decode(ids)`` with every ``UNK`` replaced by the next of ``unknowns`` (copied
  source spans) or dropped: never ``<unk>`` or `` ⁇ ``."""
  try:
    return tokenizer.decode(ids, unknowns=list(unknowns))
  except TypeError:   # a tokenizer without the keyword: drop UNK ids
    return tokenizer.decode([i for i in ids if int(i) != UNK_ID])


def unknown_rate(sequences: Iterable[Sequence[int]], vocab_size: int | None = None) -> float:
  """The share of ids that are ``UNK`` (or, with ``vocab_size``, outside the vocabulary: the
  extended ids of copyable words) over all ids of ``sequences``; 0.0 when there are none."""
  total = unknown = 0
  for seq in sequences:
    total += len(seq)
    unknown += sum(1 for i in seq if i == UNK_ID or (vocab_size is not None and i >= vocab_size))
  return unknown / total if total else 0.0


def vocabulary(tokenizer: Tokenizer) -> list[str]:
  """The token string of every id, ``[vocab_size]``: words, or sentencepiece pieces (``▁the``)."""
  if not hasattr(tokenizer, "itos"):
    raise TypeError(f"{type(tokenizer).__name__} does not list its vocabulary (no itos)")
  return list(tokenizer.itos)


_KINDS = {"word": WordTokenizer}


def register_tokenizer(kind: str, cls) -> None:
  """Makes ``load_tokenizer`` know a tokenizer class saved with ``kind``.

  The class writes ``{"kind": kind, ...}`` to ``directory/tokenizer.json`` in
  ``save`` and rebuilds itself in ``from_dict(d, directory)``.
  """
  _KINDS[kind] = cls


def load_tokenizer(directory: str) -> Tokenizer:
  """Loads a tokenizer that ``save(directory)`` wrote."""
  path = os.path.join(directory, "tokenizer.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"No tokenizer at {path}: expected a file written by Tokenizer.save().")
  with open(path) as f:
    d = json.load(f)
  if d["kind"] not in _KINDS:
    raise ValueError(f"Unknown tokenizer kind {d['kind']!r} in {path}; known: {sorted(_KINDS)}")
  return _KINDS[d["kind"]].from_dict(d, directory)

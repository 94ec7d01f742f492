"""What a task hands the shared trainer."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator


@dataclasses.dataclass
class TaskData:
  """Everything the trainer reads.

  Attributes:
    tokenizer: the tokenizer (already saved into the workdir).
    train: an endless batch iterator with ``state()``, ``restore(state)`` and
      ``batches_per_epoch``.
    eval_sets: name -> list of batches; metric names are ``f"{name}_{metric}"``.
    tokens_per_batch: counts the real tokens of a training batch (throughput).
  """
  tokenizer: Any
  train: Iterator
  eval_sets: dict[str, list]
  tokens_per_batch: Any


def train_tokenizer(data_config, texts, **subword_options):
  """The tokenizer ``data.tokenizer`` names, trained on ``texts``: ``word`` (``data.word_split``,
  ``data.vocab_size`` most frequent; 0 = all), ``sentencepiece`` (unigram) or ``bpe``
  (cached by ``xferlab.data.sentencepiece_tokenizer``; ``subword_options`` go to its trainer,
  e.g. ``user_defined_symbols``)."""
  d = data_config
  if d.tokenizer == "word":
    from xferlab.data.tokenizer import WordTokenizer
    return WordTokenizer.train(texts, max_size=d.vocab_size or None, split=d.word_split)
  from xferlab.data.sentencepiece_tokenizer import train_tokenizer as train_subwords
  model_type = {"sentencepiece": "unigram"}.get(d.tokenizer, d.tokenizer)
  return train_subwords(texts, model_type=model_type, vocab_size=d.vocab_size, **subword_options)

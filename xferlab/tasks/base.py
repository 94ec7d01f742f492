"""The task protocol: what a task gives the shared trainer.

A task says what is learned -- data, model, loss, evaluation -- and nothing
about how training runs (``xferlab.train``). Every task subclasses ``Task``;
the trainer calls only the methods below, and with one signature each.
"""

from __future__ import annotations

import abc
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
    unknown_rates: split -> share of its tokens that are ``UNK`` (``check_unknown_rates``);
      the trainer writes them to ``results.json`` as ``unk_rate_<split>``.
  """
  tokenizer: Any
  train: Iterator
  eval_sets: dict[str, list]
  tokens_per_batch: Any
  unknown_rates: dict[str, float] = dataclasses.field(default_factory=dict)


class Task(abc.ABC):
  """One learning problem. ``name`` is the value of ``config.task`` that selects it."""

  name: str

  @abc.abstractmethod
  def prepare(self, config, workdir: str) -> TaskData:
    """The tokenizer (saved into ``workdir``), the training stream and the evaluation sets."""

  @abc.abstractmethod
  def build_model(self, config, vocab_size: int):
    """A new ``nnx.Module`` with the parameters of ``config.seed``."""

  @abc.abstractmethod
  def loss(self, model, batch, lam, rngs, task_state):
    """``(scalar loss, (metrics dict of scalars, new task_state))`` of one training batch.

    Traced inside ``jit``. ``lam`` is the transfer weight λ of this step (a
    traced scalar), ``rngs`` the dropout ``nnx.Rngs`` (None: deterministic).
    ``task_state`` is what ``initial_task_state`` started and the previous
    step returned (a language model's hidden state); stateless tasks return
    it unchanged.
    """

  @abc.abstractmethod
  def eval_sums(self, model, batch) -> dict:
    """Traced: additive sums over one evaluation batch, which ``eval_metrics`` turns into floats."""

  @abc.abstractmethod
  def eval_metrics(self, sums) -> dict[str, float]:
    """Metrics of one evaluation set from its summed ``eval_sums``."""

  def corpora(self, config) -> tuple[str, ...]:
    """The catalog corpora (``"name"`` or ``"name/config"``) a run of ``config`` reads, so that
    the trainer can list every missing one before it writes anything; none by default."""
    del config
    return ()

  def initial_task_state(self, config) -> Any:
    """The ``task_state`` of step 0 (None: the task carries nothing between steps)."""
    return None

  def final_metrics(self, model, tokenizer, config, workdir: str) -> dict[str, float]:
    """Metrics of the selected model computed once after training (BLEU of decoded
    translations), merged into ``results.json``; none by default."""
    return {}


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


UNKNOWN_RATE_WARNING = 0.005   # warn when more than 0.5% of a split's tokens are unknown


class UnknownTokenWarning(UserWarning):
  """Many tokens of a split are outside the vocabulary (``UNK``)."""


def check_unknown_rates(rates: dict[str, float]) -> dict[str, float]:
  """Warns about every split whose unknown-token rate (``{"source_train": 0.001, ...}``) is
  above ``UNKNOWN_RATE_WARNING``; returns the rates, for ``TaskData.unknown_rates``."""
  import warnings
  high = {k: v for k, v in rates.items() if v > UNKNOWN_RATE_WARNING}
  if high:
    warnings.warn("unknown-token rate above 0.5%: " + ", ".join(
        f"{k} {100 * v:.2f}%" for k, v in high.items()) + "; the vocabulary does not cover "
        "this text (train the tokenizer on it, raise data.vocab_size, or use byte_fallback)",
        UnknownTokenWarning, stacklevel=2)
  return {k: float(v) for k, v in rates.items()}

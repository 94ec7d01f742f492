"""Word- or subword-level language modelling with truncated BPTT over a continuous stream.

The training text is one token stream (every sentence or document followed by
``EOS``), cut into ``data.batch_size`` parallel rows; batch ``i`` holds steps
``[i * bptt, (i + 1) * bptt)`` of every row, so the hidden state at the end of
a batch is the right initial state for the next one. The trainer carries it
across steps (``TrainState.task_state``; gradients stop at batch borders).

Batches: ``{"inputs": int[batch, bptt], "targets": int[batch, bptt]}``.
Evaluation reads each split as one stream too: ``data.eval_batch_size`` rows,
scanned ``EVAL_CHUNK`` steps at a time with the state carried through, in a
single jitted call. Metrics: ``loss`` (mean NLL in nats per token) and ``perplexity``.

``data.name``: ``ptb`` (Penn Treebank, Mikolov's preprocessing), ``reviews``
(``amazon_unlabeled`` reviews of ``data.source``: no review of the labeled
Blitzer benchmark is among them; ``all`` = the four domains; 2.5% of each
domain are validation, 2.5% test) or ``synthetic`` (the quick-start corpus,
for tests).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from xferlab import metrics
from xferlab.data.tokenizer import EOS_ID
from xferlab.models.classifier import encoder_from_config
from xferlab.models.language_model import LanguageModel
from xferlab.tasks.base import Task, TaskData, train_tokenizer

REVIEW_DOMAINS = ("books", "dvd", "electronics", "kitchen")


def _split_texts(data_config, split: str) -> list[str]:
  """The texts of one split (``train`` | ``validation`` | ``test``) of ``data.name``."""
  name = data_config.name
  if name == "ptb":
    from xferlab.data import load
    return [row["text"] for row in load("ptb", split, manual_dir=data_config.manual_dir or None)]
  if name == "reviews":
    return _review_texts(data_config, split)
  if name == "synthetic":
    from xferlab.data.domains import load_domain_adaptation
    corpus = load_domain_adaptation(data_config)
    return {"train": corpus["target_unlabeled"] + corpus["source_train"][0],
            "validation": corpus["source_val"][0], "test": corpus["target_test"][0]}[split]
  raise ValueError(f"Unknown language-model data.name {name!r}; choose ptb, reviews or synthetic")


def _review_texts(data_config, split: str) -> list[str]:
  """Unlabeled reviews of each domain: 95% train, then 2.5% validation and 2.5% test."""
  from xferlab.data import load
  domains = REVIEW_DOMAINS if data_config.source in ("", "all") else (data_config.source,)
  texts = []
  for domain in domains:
    rows = [r["text"] for r in load(f"amazon_unlabeled/{domain}", "train",
                                    manual_dir=data_config.manual_dir or None)]
    a, b = int(len(rows) * 0.95), int(len(rows) * 0.975)
    texts += {"train": rows[:a], "validation": rows[a:b], "test": rows[b:]}[split]
  return texts


def token_stream(tokenizer, texts) -> np.ndarray:
  """``int32[n]``: every text's ids followed by ``EOS``."""
  ids = []
  for text in texts:
    ids.extend(tokenizer.encode(text))
    ids.append(EOS_ID)
  return np.asarray(ids, np.int32)


def batchify(stream: np.ndarray, rows: int) -> np.ndarray:
  """``int32[rows, len(stream) // rows]``: the stream cut into ``rows`` contiguous rows."""
  n = len(stream) // rows
  if n < 2:
    raise ValueError(f"A stream of {len(stream)} tokens is too short for {rows} rows")
  return stream[:rows * n].reshape(rows, n)


class StreamBatches:
  """Endless ``[rows, bptt]`` windows over a batchified stream, in order; resumable."""

  def __init__(self, stream: np.ndarray, rows: int, bptt: int):
    self.data = batchify(stream, rows)
    self.bptt = bptt
    self.batches_per_epoch = (self.data.shape[1] - 1) // bptt
    if self.batches_per_epoch < 1:
      raise ValueError(f"Rows of {self.data.shape[1]} tokens are shorter than bptt = {bptt}")
    self.position = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    start = (self.position % self.batches_per_epoch) * self.bptt
    self.position += 1
    window = self.data[:, start:start + self.bptt + 1]
    return {"inputs": window[:, :-1], "targets": window[:, 1:]}

  def state(self) -> dict:
    return {"position": self.position}

  def restore(self, state: dict) -> None:
    self.position = int(state["position"])


# Evaluation scans a split in chunks of this many steps. The state is carried
# from chunk to chunk, so the result does not depend on the chunk length.
EVAL_CHUNK = 64


def eval_stream_batch(stream: np.ndarray, rows: int) -> dict[str, np.ndarray]:
  """The whole split as one batch ``[rows, k * EVAL_CHUNK]`` (``weights`` 0 on padding)."""
  data = batchify(stream, rows)
  inputs, targets = data[:, :-1], data[:, 1:]
  steps = inputs.shape[1]
  padded = math.ceil(steps / EVAL_CHUNK) * EVAL_CHUNK
  pad = ((0, 0), (0, padded - steps))
  weights = np.pad(np.ones_like(inputs, np.float32), pad)
  return {"inputs": np.pad(inputs, pad), "targets": np.pad(targets, pad), "weights": weights}


def zero_carry(model_config, batch_size: int):
  """Per-layer zero state of the stacked RNN (LSTM: ``(c, h)``)."""
  zeros = lambda: jnp.zeros((batch_size, model_config.hidden_size), jnp.float32)
  one = (lambda: (zeros(), zeros())) if model_config.cell == "lstm" else zeros
  return [one() for _ in range(model_config.num_layers)]


class LanguageModelTask(Task):
  name = "language_model"

  def prepare(self, config, workdir: str) -> TaskData:
    train_texts = _split_texts(config.data, "train")
    tokenizer = train_tokenizer(config.data, train_texts)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    d = config.data
    train = StreamBatches(token_stream(tokenizer, train_texts), d.batch_size, d.bptt)
    eval_sets = {name: [eval_stream_batch(token_stream(tokenizer, _split_texts(d, split)),
                                          d.eval_batch_size)]
                 for name, split in (("valid", "validation"), ("test", "test"))}
    return TaskData(tokenizer=tokenizer, train=train, eval_sets=eval_sets,
                    tokens_per_batch=lambda b: int(b["inputs"].size))

  def build_model(self, config, vocab_size: int) -> LanguageModel:
    rngs = nnx.Rngs(params=config.seed)
    encoder = encoder_from_config(config.model, vocab_size, rngs)
    return LanguageModel(encoder, tie_embeddings=config.model.tie_embeddings,
                         output_dropout=config.model.output_dropout, rngs=rngs)

  def initial_task_state(self, config):
    return zero_carry(config.model, config.data.batch_size)

  def loss(self, model: LanguageModel, batch, lam, rngs, carry):
    """``(mean NLL, (metrics, final carry))``; ``lam`` is unused (no transfer term)."""
    logits, carry = model(batch["inputs"], carry, rngs=rngs)
    nll = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), batch["targets"]).mean()
    return nll, ({"perplexity": jnp.exp(nll)}, carry)

  def eval_sums(self, model: LanguageModel, batch):
    """``{"nll", "count"}`` summed over the whole stream, state carried through it."""
    rows, length = batch["inputs"].shape
    chunk = lambda x: jnp.swapaxes(x.reshape(rows, length // EVAL_CHUNK, EVAL_CHUNK), 0, 1)

    def body(carry, xs):
      inputs, targets, weights = xs
      logits, carry = model(inputs, carry)
      nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
      return carry, ((nll * weights).sum(), weights.sum())

    carry = jax.tree.map(jnp.zeros_like, model.initial_carry(rows))
    _, (nll, count) = jax.lax.scan(body, carry, (chunk(batch["inputs"]), chunk(batch["targets"]),
                                                 chunk(batch["weights"])))
    return {"nll": nll.sum(), "count": count.sum()}

  def eval_metrics(self, sums) -> dict[str, float]:
    return metrics.perplexity_metrics(sums)

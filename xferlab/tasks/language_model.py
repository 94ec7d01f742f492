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
domain are validation, 2.5% test), ``wiki`` (``wiki_en``: 22 M words of
Wikipedia, split by article; each paragraph is one text), ``imdb``
(``imdb_full`` train + unsup reviews; 1% of them are validation and 1% test,
chosen by a hash of the text, so duplicates stay together; the labeled IMDb
test reviews, and the train / unsup copies of them, are never read) or ``synthetic`` (the quick-start corpus, for tests).

Scale. Token streams are int32 numpy arrays built text by text (never a Python
list of every id). A split of at least ``CACHE_MIN_CHARS`` characters is cached
as ``.npy`` under ``<data dir>/token_streams/`` (next to ``tokenizers/``), keyed
by a hash of its texts and of the tokenizer, so a second run or a resume does not
tokenize again; the word tokenizer of such a corpus is cached too (the
``xferlab.data.sentencepiece_tokenizer`` cache). ``data.tokenizer_path`` uses a
saved tokenizer instead of training one.

With ``language_model.adaptive_softmax_cutoffs`` the training batches also carry
``tail_positions`` (per tail cluster, the flat positions of its targets, padded
to a capacity fixed from the whole epoch), so the train step gathers exactly
those positions and compiles once (``xferlab.models.adaptive_softmax``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from xferlab import metrics
from xferlab.data.domains import corpora as domain_corpora
from xferlab.data.tokenizer import EOS_ID, load_tokenizer
from xferlab.models import adaptive_softmax
from xferlab.models.classifier import encoder_from_config
from xferlab.models.language_model import LanguageModel
from xferlab.tasks.base import Task, TaskData, train_tokenizer
from xferlab.text_inputs import texts_digest

log = logging.getLogger(__name__)

REVIEW_DOMAINS = ("books", "dvd", "electronics", "kitchen")
IMDB_HELD_OUT = 0.01   # imdb: share of train + unsup reviews held out for validation (and test)
CACHE_MIN_CHARS = 10_000_000   # splits this large have their token streams (and word tokenizer) cached
_STREAM_CACHE_FORMAT = 1


def split_texts(data_config, split: str) -> list[str]:
  """The texts of one split (``train`` | ``validation`` | ``test``) of ``data.name``."""
  name = data_config.name
  if name == "ptb":
    from xferlab.data import load
    return [row["text"] for row in load("ptb", split, manual_dir=data_config.manual_dir or None)]
  if name == "reviews":
    return _review_texts(data_config, split)
  if name == "wiki":
    return _wiki_texts(data_config, split)
  if name == "imdb":
    return _imdb_texts(data_config, split)
  if name == "synthetic":
    from xferlab.data.domains import load_domain_adaptation
    corpus = load_domain_adaptation(data_config)
    return {"train": corpus["target_unlabeled"] + corpus["source_train"][0],
            "validation": corpus["source_val"][0], "test": corpus["target_test"][0]}[split]
  raise ValueError(f"Unknown language-model data.name {name!r}; choose ptb, reviews, wiki, imdb or synthetic")


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


def _wiki_texts(data_config, split: str) -> list[str]:
  """The paragraphs of ``wiki_en``'s articles (each one text, so each ends in ``EOS``)."""
  from xferlab.data import load
  rows = load("wiki_en", split, manual_dir=data_config.manual_dir or None)
  return [p for row in rows for p in row["text"].split("\n") if p.strip()]


def imdb_split_of(text: str) -> str:
  """``train`` | ``validation`` | ``test`` for an IMDb train or unsup review, by a hash of its text."""
  bucket = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "little") % 10_000
  held = round(IMDB_HELD_OUT * 10_000)
  return "validation" if bucket < held else "test" if bucket < 2 * held else "train"


def _imdb_texts(data_config, split: str) -> list[str]:
  """``imdb_full`` train + unsup reviews of one split of ours: never its labeled test split, nor
  the train / unsup rows that repeat a test review (``in_test``)."""
  from xferlab.data import load
  texts = []
  for corpus_split in ("train", "unsup"):
    rows = load("imdb_full", corpus_split, manual_dir=data_config.manual_dir or None)
    texts += [r["text"] for r in rows
              if not r.get("in_test", False) and imdb_split_of(r["text"]) == split]
  return texts


def token_stream(tokenizer, texts) -> np.ndarray:
  """``int32[n]``: every text's ids followed by ``EOS``, encoded text by text into arrays."""
  chunks, buffer = [], []
  for text in texts:
    buffer.extend(tokenizer.encode(text))
    buffer.append(EOS_ID)
    if len(buffer) >= 1 << 20:
      chunks.append(np.asarray(buffer, np.int32))
      buffer = []
  chunks.append(np.asarray(buffer, np.int32))
  return np.concatenate(chunks)


def tokenizer_fingerprint(tokenizer) -> str:
  """A hash of everything that decides a tokenizer's ids."""
  proto = getattr(tokenizer, "model_proto", None)
  data = proto if proto is not None else json.dumps(
      [getattr(tokenizer, "kind", type(tokenizer).__name__), getattr(tokenizer, "split", None),
       list(tokenizer.itos)]).encode()
  return hashlib.sha256(data).hexdigest()


def stream_cache_dir() -> str:
  """``<data dir>/token_streams``, next to the tokenizer cache."""
  from xferlab.data import catalog
  return os.fspath(catalog.data_dir_for() / "token_streams")


def cached_token_stream(tokenizer, texts, cache_dir: str | None = None) -> np.ndarray:
  """``token_stream(tokenizer, texts)``, cached as ``.npy`` when the texts are large
  (``CACHE_MIN_CHARS``): the key hashes the texts and the tokenizer."""
  if sum(len(t) for t in texts) < CACHE_MIN_CHARS:
    return token_stream(tokenizer, texts)
  cache_dir = cache_dir or stream_cache_dir()
  key = hashlib.sha256(f"{_STREAM_CACHE_FORMAT} {tokenizer_fingerprint(tokenizer)} "
                       f"{texts_digest(texts)}".encode()).hexdigest()[:24]
  path = os.path.join(cache_dir, f"{key}.npy")
  if os.path.exists(path):
    log.info("Using the cached token stream %s", path)
    return np.load(path)
  stream = token_stream(tokenizer, texts)
  os.makedirs(cache_dir, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".npy", dir=cache_dir)
  try:
    with os.fdopen(fd, "wb") as f:
      np.save(f, stream)
    os.replace(tmp, path)             # atomic: never a half-written cache entry
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  log.info("Tokenized %d tokens, cached in %s", len(stream), path)
  return stream


def lm_tokenizer(data_config, train_texts):
  """``data.tokenizer_path`` if set, else one trained on ``train_texts`` (a large corpus's
  word tokenizer through the cache of ``xferlab.data.sentencepiece_tokenizer``)."""
  d = data_config
  if d.tokenizer_path:
    return load_tokenizer(d.tokenizer_path)
  if d.tokenizer == "word" and sum(len(t) for t in train_texts) >= CACHE_MIN_CHARS:
    from xferlab.data.sentencepiece_tokenizer import train_tokenizer as cached_train
    return cached_train(train_texts, model_type="word", vocab_size=d.vocab_size or None,
                        split=d.word_split)
  return train_tokenizer(d, train_texts)


def batchify(stream: np.ndarray, rows: int) -> np.ndarray:
  """``int32[rows, len(stream) // rows]``: the stream cut into ``rows`` contiguous rows."""
  n = len(stream) // rows
  if n < 2:
    raise ValueError(f"A stream of {len(stream)} tokens is too short for {rows} rows")
  return stream[:rows * n].reshape(rows, n)


class StreamBatches:
  """Endless ``[rows, bptt]`` windows over a batchified stream, in order; resumable."""

  def __init__(self, stream: np.ndarray, rows: int, bptt: int, cutoffs=(), reset_every: int = 0):
    """``cutoffs``: an adaptive softmax's; batches then carry ``tail_positions``, padded to
    the largest count of any batch of the epoch (so every batch has the same shapes).

    ``reset_every`` > 0: batches also carry ``reset`` (float32 ``[rows]``, 1 where the row's
    carried state is to be zeroed before this window): row ``r`` of batch ``i`` is reset when
    ``(i + r) % reset_every == 0``, so the resets are staggered over the rows and follow the
    batch position (a resumed run resets where the uninterrupted one would)."""
    self.data = batchify(stream, rows)
    self.bptt = bptt
    self.batches_per_epoch = (self.data.shape[1] - 1) // bptt
    if self.batches_per_epoch < 1:
      raise ValueError(f"Rows of {self.data.shape[1]} tokens are shorter than bptt = {bptt}")
    self.position = 0
    self.cutoffs = tuple(cutoffs)
    self.reset_every = int(reset_every)
    self.capacities = self._tail_capacities() if self.cutoffs else ()

  def _tail_capacities(self) -> tuple[int, ...]:
    """Per tail cluster, the most targets that fall in it in any one batch (rounded up to 8)."""
    n, bptt = self.batches_per_epoch, self.bptt
    targets = self.data[:, 1:n * bptt + 1].reshape(len(self.data), n, bptt)
    bounds = (*self.cutoffs, np.iinfo(np.int32).max)
    return tuple(adaptive_softmax.round_capacity(
        ((targets >= lo) & (targets < hi)).sum(axis=(0, 2)).max())
        for lo, hi in zip(bounds[:-1], bounds[1:]))

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    index = self.position
    start = (index % self.batches_per_epoch) * self.bptt
    self.position += 1
    window = self.data[:, start:start + self.bptt + 1]
    batch = {"inputs": window[:, :-1], "targets": window[:, 1:]}
    if self.reset_every:
      rows = np.arange(len(self.data))
      batch["reset"] = ((index + rows) % self.reset_every == 0).astype(np.float32)
    if self.cutoffs:
      batch["tail_positions"] = adaptive_softmax.tail_positions(batch["targets"], self.cutoffs,
                                                                self.capacities)
    return batch

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

  def corpora(self, config) -> tuple[str, ...]:
    d = config.data
    if d.name == "reviews":
      return tuple(f"amazon_unlabeled/{domain}" for domain in
                   (REVIEW_DOMAINS if d.source in ("", "all") else (d.source,)))
    if d.name == "synthetic":
      return tuple(domain_corpora(d))
    return {"ptb": ("ptb",), "wiki": ("wiki_en",), "imdb": ("imdb_full",)}.get(d.name, ())

  def prepare(self, config, workdir: str) -> TaskData:
    train_texts = split_texts(config.data, "train")
    tokenizer = lm_tokenizer(config.data, train_texts)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    d = config.data
    lm = config.language_model
    cutoffs = adaptive_softmax.check_cutoffs(lm.adaptive_softmax_cutoffs,
                                             tokenizer.vocab_size)
    train = StreamBatches(cached_token_stream(tokenizer, train_texts), d.batch_size, lm.bptt,
                          cutoffs, reset_every=lm.state_reset_every)
    del train_texts
    eval_sets = {name: [eval_stream_batch(cached_token_stream(tokenizer, split_texts(d, split)),
                                          d.eval_batch_size)]
                 for name, split in (("valid", "validation"), ("test", "test"))}
    return TaskData(tokenizer=tokenizer, train=train, eval_sets=eval_sets,
                    tokens_per_batch=lambda b: int(b["inputs"].size))

  def build_model(self, config, vocab_size: int) -> LanguageModel:
    rngs = nnx.Rngs(params=config.seed)
    encoder = encoder_from_config(config.model, vocab_size, rngs)
    return LanguageModel(encoder, tie_embeddings=config.model.tie_embeddings,
                         output_dropout=config.model.output_dropout,
                         adaptive_cutoffs=tuple(config.language_model.adaptive_softmax_cutoffs),
                         adaptive_div=config.language_model.adaptive_softmax_div, rngs=rngs)

  def initial_task_state(self, config):
    return zero_carry(config.model, config.data.batch_size)

  def loss(self, model: LanguageModel, batch, lam, rngs, carry):
    """``(mean NLL, (metrics, final carry))``; ``lam`` is unused (no transfer term).
    A batch's ``reset`` (``[batch]``, 1 = start the row from zeros) is applied to ``carry``
    first."""
    if "reset" in batch:
      keep = 1.0 - batch["reset"][:, None]
      carry = jax.tree.map(lambda state: state * keep, carry)
    if model.adaptive is not None:
      features, carry = model.features(batch["inputs"], carry, rngs=rngs)
      nll = model.nll(features, batch["targets"], batch.get("tail_positions")).mean()
      return nll, ({"perplexity": jnp.exp(nll)}, carry)
    logits, carry = model(batch["inputs"], carry, rngs=rngs)
    nll = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), batch["targets"]).mean()
    return nll, ({"perplexity": jnp.exp(nll)}, carry)

  def eval_sums(self, model: LanguageModel, batch):
    """``{"nll", "count"}`` summed over the whole stream, state carried through it."""
    return jax.tree.map(jnp.sum, self.row_sums(model, batch))

  def row_sums(self, model: LanguageModel, batch):
    """``{"nll", "count"}`` per row (``float32[rows]`` each) of an evaluation batch
    (``inputs`` / ``targets`` / ``weights``: ``[rows, k * EVAL_CHUNK]``), each row read
    from the zero state with the state carried along it, ``EVAL_CHUNK`` steps at a time."""
    rows, length = batch["inputs"].shape
    chunk = lambda x: jnp.swapaxes(x.reshape(rows, length // EVAL_CHUNK, EVAL_CHUNK), 0, 1)

    def body(carry, xs):
      inputs, targets, weights = xs
      if model.adaptive is not None:    # every tail computed densely: no backward pass here
        features, carry = model.features(inputs, carry)
        nll = model.nll(features, targets)
      else:
        logits, carry = model(inputs, carry)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
      return carry, ((nll * weights).sum(axis=1), weights.sum(axis=1))

    carry = jax.tree.map(jnp.zeros_like, model.initial_carry(rows))
    _, (nll, count) = jax.lax.scan(body, carry, (chunk(batch["inputs"]), chunk(batch["targets"]),
                                                 chunk(batch["weights"])))
    return {"nll": nll.sum(axis=0), "count": count.sum(axis=0)}

  def eval_metrics(self, sums) -> dict[str, float]:
    return metrics.perplexity_metrics(sums)

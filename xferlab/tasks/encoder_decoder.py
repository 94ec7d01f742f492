"""Encoder-decoder tasks (translation, summarization): the shared data flow, loss and decoding.

A subclass says where pairs come from and how they are scored:

* ``train_tokenizer(config)``, ``load_pairs(config, split) -> (sources, targets)``;
* ``encode_pairs(tokenizer, sources, targets, config) -> (source ids, target ids)`` (default:
  ``tokenizer.encode``; summarization adds extended ids for copyable words);
* ``adversarial_sources(config)`` -- the other domain's source texts, when
  ``transfer.method != "none"``;
* ``final_metrics(model, tokenizer, config, workdir)`` -- scores of decoded outputs.

Batches: ``{"tokens", "lengths", "target_in", "target_out", "target_lengths",
"weights"}`` (``xferlab.data.batching``); with a transfer term
``{"source": that, "target": {"tokens", "lengths", "weights"}}``, where the
target half holds source texts of the other domain, and

``L = CE(targets) [+ w_cov · coverage loss] + λ · L_transfer(mean encoder states of both halves)``.

Evaluation during training is teacher-forced: ``{valid,test}_perplexity``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xferlab import decode, losses, metrics
from xferlab.data import batching
from xferlab.data.domains import subset_count, subset_seed
from xferlab.data.tokenizer import UNK_ID, unknown_rate
from xferlab.models.classifier import encoder_from_config
from xferlab.models.rnn import length_mask
from xferlab.models.seq2seq import Seq2Seq
from xferlab.tasks.base import Task, TaskData, check_unknown_rates
from xferlab.text_inputs import batch_rows, time_buckets
from xferlab.transfer.relation_based import make_transfer_loss

EVAL_SETS = {"valid": "validation", "test": "test"}   # metric prefix -> split


def training_subset(config, sources: list, targets: list) -> tuple[list, list]:
  """The ``data.subset_size`` of the training pairs that a low-resource arm keeps, in order.

  Chosen by ``data.subset_seed`` (-1: the run's ``seed``); the translation and summarization
  experiments fix it to 0, so that every seed and every arm sees the same pairs.
  ``subset_size = 0`` keeps all of them.
  """
  d = config.data
  if not d.subset_size:
    return sources, targets
  keep = subset_count(d.subset_size, len(sources))
  index = np.sort(np.random.default_rng(subset_seed(d, config.seed)).permutation(
      len(sources))[:keep])
  return [sources[i] for i in index], [targets[i] for i in index]


class EncoderDecoderModel(nnx.Module):
  """A ``Seq2Seq`` plus the ``L_transfer`` module on its encoder states (None without
  transfer); ``label_smoothing`` and ``coverage_loss_weight`` shape the training loss."""

  def __init__(self, seq2seq: Seq2Seq, transfer, label_smoothing: float = 0.0,
               coverage_loss_weight: float = 0.0):
    self.seq2seq = seq2seq
    self.transfer = transfer
    self.label_smoothing = label_smoothing
    self.coverage_loss_weight = coverage_loss_weight


def mean_states(memory: jax.Array, lengths: jax.Array) -> jax.Array:
  """``float[N, S, D] -> float[N, D]``: the mean encoder state over valid steps."""
  mask = length_mask(lengths, memory.shape[1])[..., None]
  return jnp.where(mask, memory, 0.0).sum(1) / jnp.maximum(lengths, 1)[:, None].astype(memory.dtype)


def smoothed_cross_entropy(log_probs: jax.Array, targets: jax.Array, smoothing: float):
  """``(smoothed loss, nll)``, both ``float[N, T]``, from ``log_probs float[N, T, V]``; the
  smoothed target puts ``smoothing`` uniformly over the vocabulary (Szegedy et al. 2016).
  Target ids outside ``V`` (copyable words, for a model without copy) count as ``UNK``."""
  targets = jnp.where(targets >= log_probs.shape[-1], UNK_ID, targets)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  return (1.0 - smoothing) * nll - smoothing * log_probs.mean(-1), nll


class EncoderDecoderTask(Task):
  """The shared part of encoder-decoder tasks; subclasses provide the data and the scores."""

  name = "encoder_decoder"
  eval_sets = EVAL_SETS   # metric prefix -> split; perplexity during training, final scores after

  def train_tokenizer(self, config):
    raise NotImplementedError

  def load_pairs(self, config, split: str) -> tuple[list[str], list]:
    raise NotImplementedError

  def adversarial_sources(self, config) -> list[str]:
    raise NotImplementedError(f"{self.name} has no adversarial data")

  def encode_pairs(self, tokenizer, sources, targets, config):
    return [tokenizer.encode(t) for t in sources], [tokenizer.encode(t) for t in targets]

  def prepare(self, config, workdir: str) -> TaskData:
    d = config.data
    if config.transfer.target_entropy:
      raise ValueError("transfer.target_entropy is for classification (it needs class "
                       "predictions on target text); set it to 0 for " + self.name)
    tokenizer = self.train_tokenizer(config)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    buckets = tuple(d.buckets)
    sources, targets = self.encode_pairs(tokenizer, *self.load_pairs(config, "train"), config)
    vocab = tokenizer.vocab_size
    rates = {"train_source": unknown_rate(sources, vocab),
             "train_target": unknown_rate(targets, vocab)}
    seed = batching.shuffle_seed(config)
    target_buckets = tuple(config.seq2seq.target_buckets)
    train = batching.BatchStream(sources, None, d.batch_size, buckets, seed=seed, targets=targets,
                                 target_buckets=target_buckets)
    tokens = lambda b: int(b["lengths"].sum() + b["target_lengths"].sum())
    if config.transfer.method != "none":
      other = [tokenizer.encode(t) for t in self.adversarial_sources(config)]
      train = batching.PairedStream(
          train, batching.BatchStream(other, None, d.batch_size, buckets, seed=seed + 1))
      tokens = lambda b: int(b["source"]["lengths"].sum() + b["source"]["target_lengths"].sum())
    eval_sets = {}
    for name, split in self.eval_sets.items():
      src, tgt = self.load_pairs(config, split)
      src, tgt = self.encode_pairs(tokenizer, src, [self.reference(t) for t in tgt], config)
      rates.update({f"{name}_source": unknown_rate(src, vocab),
                    f"{name}_target": unknown_rate(tgt, vocab)})
      eval_sets[name] = batching.eval_batches(src, d.eval_batch_size, buckets, targets=tgt,
                                              target_buckets=target_buckets)
    return TaskData(tokenizer=tokenizer, train=train, eval_sets=eval_sets, tokens_per_batch=tokens,
                    unknown_rates=check_unknown_rates(rates))

  @staticmethod
  def reference(target):
    """The text to train or score perplexity against (the first of several references)."""
    return target if isinstance(target, str) else target[0]

  def build_model(self, config, vocab_size: int) -> EncoderDecoderModel:
    m, s = config.model, config.seq2seq
    rngs = nnx.Rngs(params=config.seed)
    encoder = encoder_from_config(m, vocab_size, rngs)
    seq2seq = Seq2Seq(encoder, cell=m.cell, decoder_hidden=s.decoder_hidden,
                      attention=s.attention, input_feeding=s.input_feeding,
                      share_embeddings=s.share_embeddings, tie_embeddings=m.tie_embeddings,
                      dropout=m.output_dropout, copy=s.copy, coverage=s.coverage,
                      unroll=m.unroll, implementation=m.scan_implementation, rngs=rngs)
    transfer = make_transfer_loss(config.transfer, encoder.output_size, rngs=rngs)
    return EncoderDecoderModel(seq2seq, transfer, s.label_smoothing,
                               s.coverage_loss_weight if s.coverage else 0.0)

  def loss(self, model: EncoderDecoderModel, batch, lam, rngs, task_state=None):
    """``(CE_smoothed [+ w_cov · coverage] + λ·L_transfer, (metrics, task_state))`` for one
    training batch."""
    pairs = batch["source"] if "source" in batch else batch
    seq2seq = model.seq2seq
    encoded = seq2seq.encode(pairs["tokens"], pairs["lengths"], rngs=rngs)
    decoded = seq2seq.decode(encoded, pairs["target_in"], pairs["target_lengths"], rngs=rngs)
    log_probs = seq2seq.output_log_probs(decoded, decoded["inputs"], encoded, rngs=rngs)
    smoothed, nll = smoothed_cross_entropy(log_probs, pairs["target_out"], model.label_smoothing)
    mask = length_mask(pairs["target_lengths"], log_probs.shape[1]).astype(jnp.float32)
    count = jnp.maximum(mask.sum(), 1.0)
    mean = lambda x: (x * mask).sum() / count
    loss = mean(smoothed)
    out = {"nll": mean(nll)}
    out["perplexity"] = jnp.exp(out["nll"])
    if model.coverage_loss_weight:
      out["coverage_loss"] = mean(decoded["coverage_loss"].astype(jnp.float32))
      loss = loss + model.coverage_loss_weight * out["coverage_loss"]
    if model.transfer is None:
      return loss, (out, task_state)
    other = batch["target"]
    other_memory, _ = seq2seq.encoder(seq2seq.in_vocab(other["tokens"]), other["lengths"],
                                      rngs=rngs)
    transfer_loss, transfer_metrics = model.transfer(
        mean_states(encoded["memory"], pairs["lengths"]),
        mean_states(other_memory, other["lengths"]), pairs["weights"], other["weights"], rngs=rngs)
    out.update(transfer_metrics, transfer_loss=transfer_loss)
    return losses.compose(loss, transfer_loss, lam), (out, task_state)

  def eval_sums(self, model: EncoderDecoderModel, batch):
    """Teacher-forced ``{"nll", "count"}`` summed over target tokens."""
    log_probs, _ = model.seq2seq(batch["tokens"], batch["lengths"], batch["target_in"],
                                 batch["target_lengths"])
    _, nll = smoothed_cross_entropy(log_probs, batch["target_out"], 0.0)
    mask = length_mask(batch["target_lengths"], log_probs.shape[1]).astype(jnp.float32)
    return {"nll": (nll * mask).sum(), "count": mask.sum()}

  def eval_metrics(self, sums) -> dict[str, float]:
    return metrics.perplexity_metrics(sums)


def generate(seq2seq, sequences: list[list[int]], config, cache: dict | None = None,
             buckets: tuple[int, ...] | None = None) -> list[list[int]]:
  """Decodes every source (length-sorted batches) with ``decode.beam_size`` (1 = greedy),
  ``decode.alpha`` and ``decode.max_length``; the output ids (``EOS`` and padding cut) in
  input order.

  Batches have a power-of-two number of rows (at most ``data.eval_batch_size``) and one of the
  padded lengths ``buckets`` (default ``data.buckets``; ``translate`` / ``summarize`` pass the
  finer ``text_inputs.time_buckets``), so the jitted decoder -- kept in ``cache`` across calls
  -- compiles once per such shape. Sources longer than the largest bucket are cut to it.
  """
  dc = config.decode
  if not sequences:
    return []
  cache = {} if cache is None else cache
  lengths = np.array([len(s) for s in sequences])
  order = np.argsort(lengths, kind="stable")
  out: list[list[int]] = [[] for _ in sequences]
  bs = batch_rows(len(sequences), config.data.eval_batch_size)
  buckets = tuple(buckets or config.data.buckets)
  key = ("decoder", dc.beam_size, dc.max_length, dc.alpha)
  if key not in cache:
    cache[key] = _jitted_decoder(seq2seq, dc.beam_size, dc.max_length, dc.alpha)
  run = cache[key]
  for start in range(0, len(sequences), bs):
    idx = order[start:start + bs]
    time = batching.bucket_length(int(lengths[idx].max()), buckets)
    batch = batching.make_batch(sequences, idx, bs, time)
    tokens = np.asarray(run(batch["tokens"], batch["lengths"]))
    for row, ids in zip(idx, decode.strip(tokens[:len(idx)])):
      out[row] = ids
  return out


def _jitted_decoder(seq2seq, beam_size: int, max_length: int, alpha: float):
  graphdef, state = nnx.split(seq2seq)

  @jax.jit
  def run(state, tokens, lengths):
    model = nnx.merge(graphdef, state)
    if beam_size == 1:
      return decode.greedy(model, tokens, lengths, max_length)
    return decode.beam_search(model, tokens, lengths, max_length, beam_size, alpha)

  call = lambda tokens, lengths: run(state, tokens, lengths)
  call.jitted = run   # ``call.jitted._cache_size()``: the number of compiled shapes
  return call


def attention_maps(seq2seq, sources: list[list[int]], outputs: list[list[int]], config,
                   cache: dict | None = None) -> list[dict[str, np.ndarray]]:
  """What the decoder attended to while it produced ``outputs`` (ids without ``EOS``, as
  ``generate`` returns them) from ``sources`` (ids; cut to the largest of ``data.buckets``).

  One dict per example: ``"weights" float32[len(output) + 1, len(source)]`` (row ``t``: the
  attention while emitting output ``t``; the last row emits ``EOS``; rows sum to 1) and, for a
  pointer-generator, ``"p_copy" float32[len(output) + 1]`` (``Seq2Seq.attention_maps``).
  Teacher-forced on the outputs, which reproduces the decoding's own attention. The jitted
  function is kept in ``cache``.
  """
  cache = {} if cache is None else cache
  if "attention_maps" not in cache:
    cache["attention_maps"] = _jitted_attention_maps(seq2seq)
  run = cache["attention_maps"]
  buckets = time_buckets(tuple(config.data.buckets))
  sources = [list(s[:max(buckets)]) or [UNK_ID] for s in sources]
  target_buckets = time_buckets((max([len(o) + 1 for o in outputs] + [2]),))
  lengths = np.array([len(s) for s in sources])
  order = np.argsort(lengths, kind="stable")
  bs = batch_rows(len(sources), config.data.eval_batch_size)
  out: list[dict[str, np.ndarray]] = [{} for _ in sources]
  for start in range(0, len(sources), bs):
    idx = order[start:start + bs]
    time = batching.bucket_length(int(lengths[idx].max()), buckets)
    batch = batching.make_batch(sources, idx, bs, time, targets=outputs,
                                target_buckets=target_buckets)
    maps = jax.device_get(run(batch["tokens"], batch["lengths"], batch["target_in"],
                              batch["target_lengths"]))
    for row, i in enumerate(idx):
      steps, width = int(batch["target_lengths"][row]), int(batch["lengths"][row])
      out[i] = {"weights": np.asarray(maps["weights"][row, :steps, :width], np.float32)}
      if "p_copy" in maps:
        out[i]["p_copy"] = np.asarray(maps["p_copy"][row, :steps], np.float32)
  return out


def _jitted_attention_maps(seq2seq):
  graphdef, state = nnx.split(seq2seq)

  @jax.jit
  def run(state, tokens, lengths, target_in, target_lengths):
    return nnx.merge(graphdef, state).attention_maps(tokens, lengths, target_in, target_lengths)

  return lambda *arrays: run(state, *arrays)

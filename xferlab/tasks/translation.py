"""Translation: an attentional encoder-decoder trained with teacher forcing, scored with sacreBLEU.

Data (``data.name``):

* ``multi30k``: Multi30k captions; ``data.pair`` is ``en-de``, ``en-fr``,
  ``en-cs`` or any of them reversed (``de-en``, ...). ``data.fraction`` keeps
  that share of the 29,000 training pairs (the same subset for every seed and
  arm: ``data.subset_seed``). Validation is ``val`` (1,014), test
  ``test_2016_flickr`` (1,000).
* ``copy``: a synthetic corpus whose target is its source (tests, quick start).

Vocabulary: one sentencepiece model trained on the training text of every
language in ``data.vocab_languages`` (default English, French and German, all
29,000 captions of each). Because parent (en→fr) and child (en→de) then share
ids, the whole network -- embeddings and output layer included -- can move
from one pair to the other. Only monolingual text reaches the tokenizer; the
low-resource arms still train on ``data.fraction`` of the *pairs*.

Batches: ``{"tokens", "lengths", "target_in", "target_out", "target_lengths",
"weights"}`` (``xferlab.data.batching``); with a transfer term
(``transfer.method != "none"``) ``{"source": that, "target": {"tokens",
"lengths", "weights"}}``, where the target half holds source-side sentences of
another corpus (``data.adversarial_pair``'s sources), and

``L = CE_smoothed(translation) + λ · L_transfer(mean encoder states of both halves)``.

Evaluation during training is teacher-forced (``valid_perplexity``, the
selection metric); after training the selected model translates the
validation and test sets with beam search (``decode.*``) and
``results.json`` gets ``{valid,test}_{bleu,bleu_lc,chrf}`` (sacreBLEU on
detokenized, cased text; ``bleu_lc`` lowercased). The translations are
written to ``workdir/translations/``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xferlab import decode, losses, metrics
from xferlab.data import batching
from xferlab.data.tokenizer import load_tokenizer
from xferlab.models.classifier import encoder_from_config
from xferlab.models.rnn import length_mask
from xferlab.models.seq2seq import Seq2Seq
from xferlab.tasks.base import TaskData
from xferlab.transfer import make_transfer_loss
from xferlab.transfer.adversarial import weighted_mean

MULTI30K_LANGUAGES = ("de", "fr", "cs")
EVAL_SPLITS = {"valid": "validation", "test": "test_2016_flickr"}


def parse_pair(pair: str) -> tuple[str, str]:
  """``"en-de" -> ("en", "de")``; one side must be English (Multi30k is English-centred)."""
  src, _, tgt = pair.partition("-")
  if "en" not in (src, tgt) or {src, tgt} - {"en"} - set(MULTI30K_LANGUAGES) or src == tgt:
    raise ValueError(f"Unknown Multi30k pair {pair!r}; use en-X or X-en with X in "
                     f"{MULTI30K_LANGUAGES}")
  return src, tgt


def multi30k_side(language: str, split: str, manual_dir: str = "") -> list[str]:
  """Every caption of ``split`` in ``language`` (line-aligned across languages)."""
  from xferlab.data import load
  other = "de" if language == "en" else language
  rows = load(f"multi30k/en-{other}", split, manual_dir=manual_dir or None)
  key = "source" if language == "en" else "target"
  return [row[key] for row in rows]


def copy_corpus(split: str, size: int = 2000, vocab: int = 20, seed: int = 0) -> list[str]:
  """Synthetic sentences of 3-9 words ``w0 … w{vocab-1}``; a split is a fixed seed offset."""
  offset = {"train": 0, "validation": 1, "test_2016_flickr": 2}[split]
  rng = np.random.default_rng([seed, offset])
  n = size if split == "train" else size // 10
  return [" ".join(f"w{i}" for i in rng.integers(0, vocab, rng.integers(3, 10)))
          for _ in range(n)]


def load_pairs(data_config, split: str) -> tuple[list[str], list[str]]:
  """``(sources, targets)`` of ``split``; the training split keeps ``data.fraction`` of the pairs."""
  d = data_config
  if d.name == "copy":
    sources = copy_corpus(split)
    targets = list(sources)
  elif d.name == "multi30k":
    src, tgt = parse_pair(d.pair)
    sources, targets = (multi30k_side(lang, split, d.manual_dir) for lang in (src, tgt))
  else:
    raise ValueError(f"Unknown translation data.name {d.name!r}; choose multi30k or copy")
  if split == "train" and d.fraction < 1.0:
    if not 0.0 < d.fraction <= 1.0:
      raise ValueError(f"data.fraction must be in (0, 1], got {d.fraction}")
    keep = max(1, round(len(sources) * d.fraction))
    index = np.sort(np.random.default_rng(d.subset_seed).permutation(len(sources))[:keep])
    sources, targets = [sources[i] for i in index], [targets[i] for i in index]
  return sources, targets


def tokenizer_texts(data_config) -> list[str]:
  """The monolingual training text the joint vocabulary is trained on."""
  d = data_config
  if d.name == "copy":
    return copy_corpus("train")
  return [text for lang in d.vocab_languages for text in multi30k_side(lang, "train", d.manual_dir)]


def train_tokenizer(config):
  d = config.data
  if d.tokenizer_path:
    return load_tokenizer(d.tokenizer_path)
  texts = tokenizer_texts(d)
  if d.tokenizer == "word":
    from xferlab.data.tokenizer import WordTokenizer
    return WordTokenizer.train(texts, max_size=d.vocab_size or None, split=d.word_split)
  from xferlab.data.sentencepiece_tokenizer import train_tokenizer as train_sp
  model_type = {"sentencepiece": "unigram"}.get(d.tokenizer, d.tokenizer)
  return train_sp(texts, model_type=model_type, vocab_size=d.vocab_size)


class EncoderDecoderModel(nnx.Module):
  """A ``Seq2Seq`` plus the ``L_transfer`` module on its encoder states (None without
  transfer); ``label_smoothing`` is the training loss's (``model.label_smoothing``)."""

  def __init__(self, seq2seq: Seq2Seq, transfer, label_smoothing: float = 0.0):
    self.seq2seq = seq2seq
    self.transfer = transfer
    self.label_smoothing = label_smoothing


def mean_states(memory: jax.Array, lengths: jax.Array) -> jax.Array:
  """``float[N, S, D] -> float[N, D]``: the mean encoder state over valid steps."""
  mask = length_mask(lengths, memory.shape[1])[..., None]
  return jnp.where(mask, memory, 0.0).sum(1) / jnp.maximum(lengths, 1)[:, None].astype(memory.dtype)


def smoothed_cross_entropy(logits: jax.Array, targets: jax.Array, smoothing: float):
  """``(smoothed loss, nll)``, both ``float[N, T]``; the smoothed target puts
  ``smoothing`` uniformly over the vocabulary (Szegedy et al. 2016)."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
  return (1.0 - smoothing) * nll - smoothing * log_p.mean(-1), nll


class TranslationTask:
  name = "translation"

  def prepare(self, config, workdir: str) -> TaskData:
    d = config.data
    tokenizer = train_tokenizer(config)
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    encode = lambda texts: [tokenizer.encode(t) for t in texts]
    buckets = tuple(d.buckets)
    sources, targets = load_pairs(d, "train")
    seed = batching.shuffle_seed(config)
    train = batching.BatchStream(encode(sources), None, d.batch_size, buckets, seed=seed,
                                 targets=encode(targets))
    tokens = lambda b: int(b["lengths"].sum() + b["target_lengths"].sum())
    if config.transfer.method != "none":
      other = batching.BatchStream(encode(self.adversarial_sources(config)), None, d.batch_size,
                                   buckets, seed=seed + 1)
      train = batching.PairedStream(train, other)
      tokens = lambda b: int(b["source"]["lengths"].sum() + b["source"]["target_lengths"].sum())
    eval_sets = {}
    for name, split in EVAL_SPLITS.items():
      src, tgt = load_pairs(d, split)
      eval_sets[name] = batching.eval_batches(encode(src), d.eval_batch_size, buckets,
                                              targets=encode(tgt))
    return TaskData(tokenizer=tokenizer, train=train, eval_sets=eval_sets, tokens_per_batch=tokens)

  @staticmethod
  def adversarial_sources(config) -> list[str]:
    """Source-side training sentences of ``data.adversarial_pair`` (the other domain)."""
    d = config.data
    if not d.adversarial_pair:
      raise ValueError("transfer.method needs data.adversarial_pair: the pair whose source "
                       "sentences are the other domain (e.g. 'fr-en' for a de-en child)")
    return load_pairs(_with_pair(d), "train")[0]

  def build_model(self, config, vocab_size: int) -> EncoderDecoderModel:
    m = config.model
    rngs = nnx.Rngs(params=config.seed)
    encoder = encoder_from_config(m, vocab_size, rngs)
    seq2seq = Seq2Seq(encoder, cell=m.cell, decoder_hidden=m.decoder_hidden,
                      attention=m.attention, input_feeding=m.input_feeding,
                      share_embeddings=m.share_embeddings, tie_embeddings=m.tie_embeddings,
                      dropout=m.output_dropout, unroll=m.unroll,
                      implementation=m.scan_implementation, rngs=rngs)
    transfer = make_transfer_loss(config.transfer, encoder.output_size, rngs=rngs)
    return EncoderDecoderModel(seq2seq, transfer, m.label_smoothing)

  def loss(self, model: EncoderDecoderModel, batch, lam, rngs):
    """``(CE_smoothed + λ·L_transfer, metrics)`` for one training batch."""
    pairs = batch["source"] if "source" in batch else batch
    seq2seq = model.seq2seq
    encoded = seq2seq.encode(pairs["tokens"], pairs["lengths"], rngs=rngs)
    attentional, _, _ = seq2seq.decode(encoded, pairs["target_in"], pairs["target_lengths"],
                                       rngs=rngs)
    logits = seq2seq.output_logits(attentional, rngs=rngs)
    smoothed, nll = smoothed_cross_entropy(logits, pairs["target_out"], model.label_smoothing)
    mask = length_mask(pairs["target_lengths"], logits.shape[1]).astype(jnp.float32)
    count = jnp.maximum(mask.sum(), 1.0)
    loss = (smoothed * mask).sum() / count
    out = {"nll": (nll * mask).sum() / count}
    out["perplexity"] = jnp.exp(out["nll"])
    if model.transfer is None:
      return loss, out
    other = batch["target"]
    other_memory, _ = seq2seq.encoder(other["tokens"], other["lengths"], rngs=rngs)
    transfer_loss, transfer_metrics = model.transfer(
        mean_states(encoded["memory"], pairs["lengths"]),
        mean_states(other_memory, other["lengths"]), pairs["weights"], other["weights"], rngs=rngs)
    out.update(transfer_metrics, transfer_loss=transfer_loss)
    return losses.compose(loss, transfer_loss, lam), out

  def eval_sums(self, model: EncoderDecoderModel, batch):
    """Teacher-forced ``{"nll", "count"}`` summed over target tokens."""
    logits, _ = model.seq2seq(batch["tokens"], batch["lengths"], batch["target_in"],
                              batch["target_lengths"])
    _, nll = smoothed_cross_entropy(logits, batch["target_out"], 0.0)
    mask = length_mask(batch["target_lengths"], logits.shape[1]).astype(jnp.float32)
    return {"nll": (nll * mask).sum(), "count": mask.sum()}

  def eval_metrics(self, sums) -> dict[str, float]:
    return metrics.perplexity_metrics(sums)

  def translate(self, model: EncoderDecoderModel, tokenizer, config, texts) -> list[str]:
    """Beam-search translations of ``texts`` (``decode.beam_size``, ``decode.alpha``,
    ``decode.max_length``), in order."""
    sequences = [tokenizer.encode(t) or [0] for t in texts]
    return [tokenizer.decode(ids) for ids in generate(model.seq2seq, sequences, config)]

  def final_metrics(self, model: EncoderDecoderModel, tokenizer, config, workdir: str):
    """BLEU / chrF of the selected model's beam-search translations of each evaluation split."""
    results = {}
    os.makedirs(os.path.join(workdir, "translations"), exist_ok=True)
    for name, split in EVAL_SPLITS.items():
      sources, references = load_pairs(config.data, split)
      hypotheses = self.translate(model, tokenizer, config, sources)
      with open(os.path.join(workdir, "translations", f"{split}.txt"), "w") as f:
        f.write("\n".join(hypotheses) + "\n")
      for metric, value in metrics.translation_scores(hypotheses, references).items():
        results[f"{name}_{metric}"] = value
    return results


def _with_pair(data_config):
  """``data_config`` with ``pair = adversarial_pair`` and every training pair kept."""
  d = data_config.copy_and_resolve_references()
  d.pair, d.fraction = d.adversarial_pair, 1.0
  return d


def generate(seq2seq, sequences: list[list[int]], config) -> list[list[int]]:
  """Decodes every source (length-sorted batches, jitted once per bucket); ids in input order."""
  dc = config.decode
  lengths = np.array([len(s) for s in sequences])
  order = np.argsort(lengths, kind="stable")
  out: list[list[int]] = [[] for _ in sequences]
  bs, buckets = config.data.eval_batch_size, tuple(config.data.buckets)
  run = _jitted_decoder(seq2seq, dc.beam_size, dc.max_length, dc.alpha)
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

  return lambda tokens, lengths: run(state, tokens, lengths)

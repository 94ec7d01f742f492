"""Sequence classification with optional domain adaptation (sentiment transfer).

Training batches pair labeled source rows with unlabeled target rows:
``{"source": {tokens, lengths, weights, labels}, "target": {tokens, lengths, weights}}``.
Both halves go through the encoder in one call (concatenated on the batch
axis); the classifier reads the source half, the transfer loss both halves:

``L = CE(source) + λ · L_transfer(features_source, features_target) + β · L_im(target)``,

``L_im`` the information maximization of the classifier's target predictions
(``xferlab.transfer.relation_based``, β = ``transfer.target_entropy``, 0 = off).

Adversarial training on the embeddings (Miyato et al. 2017,
``classification.adversarial_epsilon`` = ε > 0) adds ``CE(source with embeddings e + r_adv)`` to ``CE(source)``, with
``r_adv = ε σ g / ‖g‖₂``: ``g`` the gradient of the source cross-entropy with respect to each
review's embedded sequence (no dropout, treated as a constant), ``‖g‖₂`` over the review's
whole sequence, and ``σ`` the standard deviation of the embedding matrix's entries, so ε is in
the units of Miyato et al.'s normalized embeddings (σ = 1 there) without changing the model's
forward pass. It composes with the rest: ``L = CE + CE_adv + λ·L_transfer + β·L_im``; ε = 0
(the default) computes exactly the loss without it.

Self-training (``data.pseudo_labels``, ``xferlab.transfer.self_training``) adds a teacher's
labels for some of the target's unlabeled texts to the labeled source rows; the loss is
unchanged, those rows count as source rows.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from xferlab import losses, metrics
from xferlab.data import batching
from xferlab.data.domains import corpora as domain_corpora, load_domain_adaptation
from xferlab.data import load_tokenizer
from xferlab.models.classifier import SequenceClassifier, TextEncoder, encoder_from_config
from xferlab.data.tokenizer import UNK_ID, unknown_rate
from xferlab.tasks.base import Task, TaskData, check_unknown_rates, train_tokenizer
from xferlab.text_inputs import batch_rows, time_buckets, truncate_ids
from xferlab.transfer.relation_based import (information_maximization, make_transfer_loss,
                                              weighted_mean)
from xferlab.transfer.self_training import (pseudo_labels_file, read_pseudo_labels,
                                            with_pseudo_labels)


class ClassificationModel(nnx.Module):
  """A ``SequenceClassifier``, the ``L_transfer`` module (None without transfer) and β, the
  weight of the target information-maximization term (0: none)."""

  def __init__(self, classifier: SequenceClassifier, transfer, target_entropy: float = 0.0,
               adversarial_epsilon: float = 0.0):
    self.classifier = classifier
    self.transfer = transfer
    self.target_entropy = float(target_entropy)
    self.adversarial_epsilon = float(adversarial_epsilon)   # ε of adversarial training; 0: off

  @property
  def encoder(self) -> TextEncoder:
    return self.classifier.encoder


# (evaluation set, the ``xferlab.data.domains`` split it reads): the ``source_val_*`` and
# ``target_*`` metrics of a run's results.
EVAL_SPLITS = (("source_val", "source_val"), ("target", "target_test"))


def uses_target_batches(config) -> bool:
  """Whether training reads unlabeled target batches: for ``L_transfer`` or for ``L_im``."""
  return config.transfer.method != "none" or config.transfer.target_entropy > 0


class ClassificationTask(Task):
  name = "classification"

  def corpora(self, config) -> tuple[str, ...]:
    return tuple(domain_corpora(config.data))

  def prepare(self, config, workdir: str) -> TaskData:
    corpus = load_domain_adaptation(config.data, config.seed)
    src_texts, src_labels = corpus["source_train"]
    target_texts = corpus["target_unlabeled"]
    if config.data.tokenizer_path:       # e.g. the pretrained language model's own
      tokenizer = load_tokenizer(config.data.tokenizer_path)
    else:
      tokenizer = train_tokenizer(config.data, list(src_texts) + list(target_texts))
    tokenizer.save(os.path.join(workdir, "tokenizer"))
    if config.data.pseudo_labels:     # self-training: after the vocabulary, which saw the texts
      pseudo = pseudo_labels_file(config.data.pseudo_labels, workdir)
      src_texts, src_labels = with_pseudo_labels(src_texts, src_labels,
                                                 *read_pseudo_labels(pseudo, target_texts))
    encode = lambda texts: [tokenizer.encode(t) for t in texts]
    buckets, bs = tuple(config.data.buckets), config.data.batch_size
    seed = batching.shuffle_seed(config)
    source = batching.BatchStream(encode(src_texts), src_labels, bs, buckets, seed=seed)
    if not uses_target_batches(config):
      train = source
      tokens = lambda b: int(b["lengths"].sum())
    else:
      target = batching.BatchStream(encode(target_texts), None, bs, buckets, seed=seed + 1)
      train = batching.PairedStream(source, target)
      tokens = lambda b: int(b["source"]["lengths"].sum() + b["target"]["lengths"].sum())
    eval_sets = {}
    rates = {"source_train": unknown_rate(source.sequences)}
    if uses_target_batches(config):
      rates["target_unlabeled"] = unknown_rate(target.sequences)
    for name, part in EVAL_SPLITS:
      texts, labels = corpus[part]
      encoded = encode(texts)
      rates[name] = unknown_rate(encoded)
      eval_sets[name] = batching.eval_batches(encoded, config.data.eval_batch_size,
                                              buckets, labels)
    return TaskData(tokenizer=tokenizer, train=train, eval_sets=eval_sets, tokens_per_batch=tokens,
                    unknown_rates=check_unknown_rates(rates))

  def build_model(self, config, vocab_size: int) -> ClassificationModel:
    m = config.model
    rngs = nnx.Rngs(params=config.seed)
    encoder = encoder_from_config(m, vocab_size, rngs)
    h = config.classification
    classifier = SequenceClassifier(encoder, h.num_classes, pooling=h.pooling,
                                    head_hidden=tuple(h.head_hidden), dropout=m.dropout, rngs=rngs)
    transfer = make_transfer_loss(config.transfer, classifier.feature_size, rngs=rngs)
    return ClassificationModel(classifier, transfer, config.transfer.target_entropy,
                               h.get("adversarial_epsilon", 0.0))

  def loss(self, model: ClassificationModel, batch, lam, rngs, task_state=None):
    """``(L_source + λ·L_transfer + β·L_im, (metrics, task_state))`` for one training batch."""
    if "target" not in batch:
      logits, _ = model.classifier(batch["tokens"], batch["lengths"], rngs=rngs)
      loss, out = self._source_loss(logits, batch)
      return add_adversarial_loss(model, batch, loss, out, rngs), (out, task_state)
    source, target = batch["source"], batch["target"]
    n = source["tokens"].shape[0]
    tokens = jnp.concatenate([source["tokens"], target["tokens"]], axis=0)
    lengths = jnp.concatenate([source["lengths"], target["lengths"]], axis=0)
    features = model.classifier.features(tokens, lengths, rngs=rngs)
    logits = model.classifier.head(features[:n], rngs=rngs)
    loss, out = self._source_loss(logits, source)
    loss = add_adversarial_loss(model, source, loss, out, rngs)
    if model.transfer is not None:
      transfer_loss, transfer_metrics = model.transfer(
          features[:n], features[n:], source["weights"], target["weights"], rngs=rngs)
      out.update(transfer_metrics, transfer_loss=transfer_loss)
      loss = losses.compose(loss, transfer_loss, lam)
    if model.target_entropy:
      target_logits = model.classifier.head(features[n:], rngs=rngs)
      im_loss, im_metrics = information_maximization(target_logits, target["weights"])
      out.update(im_metrics, im_loss=im_loss)
      loss = loss + model.target_entropy * im_loss
    return loss, (out, task_state)

  @staticmethod
  def _source_loss(logits, source):
    """``(loss, metrics)`` of the labeled source rows."""
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, source["labels"])
    correct = (jnp.argmax(logits, -1) == source["labels"]).astype(jnp.float32)
    loss = weighted_mean(xent, source["weights"])
    return loss, {"source_loss": loss, "source_accuracy": weighted_mean(correct, source["weights"])}

  def eval_sums(self, model: ClassificationModel, batch):
    logits, _ = model.classifier(batch["tokens"], batch["lengths"])
    return metrics.confusion_matrix(logits, batch["labels"], batch["weights"],
                                    logits.shape[-1])

  def eval_metrics(self, sums) -> dict[str, float]:
    return metrics.classification_metrics(sums)

  def predict(self, model: ClassificationModel, tokenizer, config, texts: list[str],
              cache: dict | None = None):
    """Class probabilities ``float[len(texts), classes]`` in the order of ``texts``.

    ``texts`` is a list of clean strings (``xferlab.text_inputs.as_texts``); an empty text
    reads as one unknown token; texts longer than the largest bucket are cut there (one
    ``InputTruncatedWarning``). Batches are padded to a power-of-two number of rows and a
    bucketed length (``text_inputs.batch_rows`` / ``time_buckets``), and the jitted forward
    pass is kept in ``cache`` (``Restored`` passes its own): repeated calls do not recompile.
    """
    cache = {} if cache is None else cache
    buckets = time_buckets(tuple(config.data.buckets))
    sequences = truncate_ids([tokenizer.encode(t) or [UNK_ID] for t in texts], max(buckets))
    probs = np.zeros((len(texts), config.classification.num_classes), np.float32)
    if not sequences:
      return probs
    lengths = np.array([len(s) for s in sequences])
    order = np.argsort(lengths, kind="stable")
    bs = batch_rows(len(texts), config.data.eval_batch_size)
    if "probabilities" not in cache:
      cache["probabilities"] = _jitted_probabilities(model)
    forward = cache["probabilities"]
    for start in range(0, len(texts), bs):
      idx = order[start:start + bs]
      time = batching.bucket_length(int(lengths[idx].max()), buckets)
      batch = batching.make_batch(sequences, idx, bs, time)
      probs[idx] = np.asarray(forward(batch["tokens"], batch["lengths"]))[:len(idx)]
    return probs


def adversarial_embedding_noise(classifier: SequenceClassifier, rows, epsilon: float):
  """Miyato et al. (2017)'s ``r_adv = ε σ g / ‖g‖₂``, ``float32[batch, time, embed_dim]``.

  ``g`` is the gradient of the summed cross-entropy of ``rows`` (``tokens``, ``lengths``,
  ``labels``, ``weights``) with respect to the embeddings, computed without dropout and
  with the parameters held constant; ``‖g‖₂`` is taken over each row's whole sequence (a row
  without gradient, such as padding, gets no noise); ``σ`` is the standard deviation of the
  embedding matrix. The result is a constant for the outer gradient.
  """
  graphdef, state = nnx.split(classifier)
  state = jax.lax.stop_gradient(state)
  embedding = classifier.encoder.embed.embedding[...]

  def summed_loss(noise):
    logits, _ = nnx.merge(graphdef, state)(rows["tokens"], rows["lengths"], embed_noise=noise)
    xent = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32),
                                                           rows["labels"])
    return (xent * rows["weights"]).sum()

  zeros = jnp.zeros(rows["tokens"].shape + embedding.shape[-1:], jnp.float32)
  g = jax.grad(summed_loss)(zeros)
  norm = jnp.sqrt(jnp.sum(jnp.square(g), axis=(1, 2), keepdims=True))
  sigma = jnp.std(jax.lax.stop_gradient(embedding).astype(jnp.float32))
  return jax.lax.stop_gradient(epsilon * sigma * g / jnp.maximum(norm, 1e-12))


def add_adversarial_loss(model: ClassificationModel, rows, loss, out: dict, rngs):
  """``loss + CE(rows with embeddings + r_adv)`` (metric ``adversarial_loss`` into ``out``)
  when ``model.adversarial_epsilon > 0``; else ``loss`` itself, untouched."""
  if not model.adversarial_epsilon:
    return loss
  noise = adversarial_embedding_noise(model.classifier, rows, model.adversarial_epsilon)
  logits, _ = model.classifier(rows["tokens"], rows["lengths"], rngs=rngs, embed_noise=noise)
  xent = optax.softmax_cross_entropy_with_integer_labels(logits, rows["labels"])
  out["adversarial_loss"] = weighted_mean(xent, rows["weights"])
  return loss + out["adversarial_loss"]


def _jitted_probabilities(model: ClassificationModel):
  graphdef, state = nnx.split(model.classifier)

  @jax.jit
  def forward(state, tokens, lengths):
    logits, _ = nnx.merge(graphdef, state)(tokens, lengths)
    return jax.nn.softmax(logits, axis=-1)

  call = lambda tokens, lengths: forward(state, tokens, lengths)
  call.jitted = forward   # ``call.jitted._cache_size()``: the number of compiled shapes
  return call

"""Recurrent language model: the shared ``TextEncoder`` plus a (tied) softmax layer.

``tokens int[batch, time] -> logits float[batch, time, vocab]``. With
``tie_embeddings`` the softmax weights are the input embedding (Press & Wolf
2017; Inan et al. 2017); when the last layer is wider than the embedding, a
linear projection ``hidden -> embed_dim`` comes first. The ``encoder`` subtree
has the classifier's structure, so ``init_from.subtrees = ("encoder",)`` (the
classifier's ``classifier.encoder``) carries a pretrained LM into a classifier.

With ``adaptive_cutoffs`` (word ids in frequency order) the output layer is an
adaptive softmax (``xferlab.models.adaptive_softmax``; its shortlist tied to the
first embedding rows when ``tie_embeddings``) instead of the full softmax:
``__call__`` then returns log-probabilities (their softmax is themselves), and
training reads ``features`` + ``nll``, which never form ``[batch, time, vocab]``.
Without cutoffs nothing changes (no ``adaptive`` parameters at all).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from xferlab.models.adaptive_softmax import AdaptiveSoftmax
from xferlab.models.classifier import TextEncoder


class LanguageModel(nnx.Module):

  def __init__(self, encoder: TextEncoder, *, tie_embeddings: bool = True,
               output_dropout: float = 0.0, adaptive_cutoffs=(), adaptive_div: float = 4.0,
               rngs: nnx.Rngs):
    if encoder.bidirectional:
      raise ValueError("A language model reads left to right: set model.bidirectional = False")
    self.encoder = encoder
    vocab_size, embed_dim = encoder.embed.embedding.shape
    self.tie_embeddings = tie_embeddings
    self.output_dropout = nnx.Dropout(output_dropout,
                                      broadcast_dims=encoder.embed_dropout.broadcast_dims)
    width = embed_dim if tie_embeddings else encoder.output_size
    self.projection = (nnx.Linear(encoder.output_size, embed_dim, rngs=rngs)
                       if tie_embeddings and encoder.output_size != embed_dim else None)
    if adaptive_cutoffs:
      self.softmax_bias = self.softmax_kernel = None
      self.adaptive = AdaptiveSoftmax(width, vocab_size, adaptive_cutoffs, div_value=adaptive_div,
                                      tied=tie_embeddings, rngs=rngs)
      return
    self.adaptive = None
    self.softmax_bias = nnx.Param(jnp.zeros((vocab_size,)))
    self.softmax_kernel = (None if tie_embeddings else
                           nnx.Param(nnx.initializers.lecun_normal()(rngs.params(),
                                                                     (width, vocab_size))))

  def features(self, tokens: jax.Array, carry=None, *, rngs: nnx.Rngs | None = None):
    """``(float[batch, time, width], carries)``: what the output layer reads."""
    lengths = jnp.full(tokens.shape[:1], tokens.shape[1], jnp.int32)
    outputs, carry = self.encoder(tokens, lengths, rngs=rngs, initial_carry=carry)
    outputs = self.output_dropout(outputs, deterministic=rngs is None, rngs=rngs)
    if self.projection is not None:
      outputs = self.projection(outputs)
    return outputs, carry

  def nll(self, features: jax.Array, targets: jax.Array, positions=None) -> jax.Array:
    """``float32[batch, time]``: ``-log p(targets)`` from ``features`` (either output layer).

    ``positions``: the adaptive softmax's per-cluster target positions
    (``adaptive_softmax.tail_positions``); None computes every tail densely.
    """
    if self.adaptive is None:
      logits = self._logits(features)
      return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    embedding = self.encoder.embed.embedding[...] if self.adaptive.tied else None
    nll = self.adaptive.nll(features.reshape(-1, features.shape[-1]), targets.reshape(-1),
                            embedding, positions)
    return nll.reshape(targets.shape)

  def _logits(self, outputs):
    if self.tie_embeddings:
      logits = self.encoder.embed.attend(outputs)
    else:
      logits = outputs @ self.softmax_kernel[...]
    return logits + self.softmax_bias[...]

  def __call__(self, tokens: jax.Array, carry=None, *, rngs: nnx.Rngs | None = None):
    """``(logits float[batch, time, vocab], per-layer final carries)`` (adaptive softmax:
    log-probabilities).

    ``carry`` is the previous segment's final state (truncated BPTT over a
    continuous stream); None starts from zeros.
    """
    outputs, carry = self.features(tokens, carry, rngs=rngs)
    if self.adaptive is not None:
      embedding = self.encoder.embed.embedding[...] if self.adaptive.tied else None
      logp = self.adaptive.log_prob(outputs.reshape(-1, outputs.shape[-1]), embedding)
      return logp.reshape(*outputs.shape[:-1], -1), carry
    return self._logits(outputs), carry

  def initial_carry(self, batch_size: int):
    """Zero state for every layer (the structure ``__call__`` returns)."""
    return [layer.cell.initial_carry(batch_size) for layer in self.encoder.rnn.layers]

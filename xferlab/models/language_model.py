"""Recurrent language model: the shared ``TextEncoder`` plus a (tied) softmax layer.

``tokens int[batch, time] -> logits float[batch, time, vocab]``. With
``tie_embeddings`` the softmax weights are the input embedding (Press & Wolf
2017; Inan et al. 2017); when the last layer is wider than the embedding, a
linear projection ``hidden -> embed_dim`` comes first. The ``encoder`` subtree
has the classifier's structure, so ``init_from.subtrees = ("encoder",)`` (the
classifier's ``classifier.encoder``) carries a pretrained LM into a classifier.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from xferlab.models.classifier import TextEncoder


class LanguageModel(nnx.Module):

  def __init__(self, encoder: TextEncoder, *, tie_embeddings: bool = True,
               output_dropout: float = 0.0, rngs: nnx.Rngs):
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
    self.softmax_bias = nnx.Param(jnp.zeros((vocab_size,)))
    self.softmax_kernel = (None if tie_embeddings else
                           nnx.Param(nnx.initializers.lecun_normal()(rngs.params(),
                                                                     (width, vocab_size))))

  def __call__(self, tokens: jax.Array, carry=None, *, rngs: nnx.Rngs | None = None):
    """``(logits float[batch, time, vocab], per-layer final carries)``.

    ``carry`` is the previous segment's final state (truncated BPTT over a
    continuous stream); None starts from zeros.
    """
    lengths = jnp.full(tokens.shape[:1], tokens.shape[1], jnp.int32)
    outputs, carry = self.encoder(tokens, lengths, rngs=rngs, initial_carry=carry)
    outputs = self.output_dropout(outputs, deterministic=rngs is None, rngs=rngs)
    if self.projection is not None:
      outputs = self.projection(outputs)
    if self.tie_embeddings:
      logits = self.encoder.embed.attend(outputs)
    else:
      logits = outputs @ self.softmax_kernel[...]
    return logits + self.softmax_bias[...], carry

  def initial_carry(self, batch_size: int):
    """Zero state for every layer (the structure ``__call__`` returns)."""
    return [layer.cell.initial_carry(batch_size) for layer in self.encoder.rnn.layers]

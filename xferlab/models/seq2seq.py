"""Attentional encoder-decoder on the shared RNN core (translation, summarization).

The encoder is the same ``TextEncoder`` the classifier and the language model
use (``encoder`` subtree), usually bidirectional. The decoder is one recurrent
cell of the same family (``decoder`` subtree, a ``RecurrentLayer``) with
attention over the encoder's outputs, in Luong et al. (2015)'s arrangement:

  ``h_t = cell(h_{t-1}, [E y_{t-1}; h̃_{t-1}])``      (input feeding: the last attentional state)
  ``c_t = Σ_s α_ts m_s``, ``α_t = softmax(score(h_t, m))``
  ``h̃_t = tanh(W_c [c_t; h_t])``,  ``p(y_t) = softmax(W_o h̃_t + b)``

``score`` is multiplicative (Luong "general") or additive (Bahdanau)
(``xferlab.models.attention``). Without input feeding the decoder RNN does not
depend on attention, so it runs as one fused scan over all target steps and
attention is computed for every step at once -- much faster on a CPU.
The decoder starts from ``tanh(W_b · mean(m))`` (the "bridge").

With a joint vocabulary the decoder reads the encoder's embedding
(``share_embeddings``) and ``tie_embeddings`` makes it the output layer too
(``h̃`` then has the embedding's width), so every parameter is shared between
language pairs of that vocabulary and a whole model can seed another pair.

Shapes: ``source: int[N, S]``, ``source_lengths: int[N]``,
``target_in: int[N, T]`` (``BOS y_1 … y_{n-1}``), ``target_lengths: int[N]``;
``logits: float[N, T, vocab]``, attention ``weights: float[N, T, S]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from xferlab.models.attention import Attention
from xferlab.models.cells import make_cell
from xferlab.models.classifier import TextEncoder
from xferlab.models.rnn import RecurrentLayer, length_mask


class Seq2Seq(nnx.Module):
  """Encoder-decoder with attention.

  Args:
    encoder: the shared text encoder (``memory`` width ``D = encoder.output_size``).
    cell: the decoder cell, ``rnn | lstm | gru``.
    decoder_hidden: ``H``, the decoder's width (0 = ``D``).
    attention: ``"luong"`` (multiplicative) or ``"bahdanau"`` (additive) scores.
    input_feeding: feed ``h̃_{t-1}`` into the next step (Luong et al. 2015).
    share_embeddings: the decoder reads the encoder's embedding (joint vocabulary).
    tie_embeddings: the output layer is the target embedding (``h̃`` of width ``embed_dim``).
    dropout: on ``h̃`` before the output layer.
    unroll, implementation: of the decoder's scan (``RecurrentLayer``).
  """

  def __init__(self, encoder: TextEncoder, *, cell: str = "lstm", decoder_hidden: int = 0,
               attention: str = "luong", input_feeding: bool = True,
               share_embeddings: bool = True, tie_embeddings: bool = True, dropout: float = 0.0,
               unroll: int = 1, implementation: str = "auto", rngs: nnx.Rngs):
    self.encoder = encoder
    vocab_size, embed_dim = encoder.embed.embedding.shape
    memory_size = encoder.output_size
    hidden = decoder_hidden or memory_size
    self.attentional_size = embed_dim if tie_embeddings else hidden
    self.embed = None if share_embeddings else nnx.Embed(
        vocab_size, embed_dim, rngs=rngs, embedding_init=nnx.initializers.normal(stddev=0.1))
    self.input_feeding = input_feeding
    self.bridge = nnx.Linear(memory_size, hidden, rngs=rngs)
    cell_inputs = embed_dim + (self.attentional_size if input_feeding else 0)
    self.decoder = RecurrentLayer(make_cell(cell, cell_inputs, hidden, rngs=rngs), unroll=unroll,
                                  implementation=implementation)
    self.attention = Attention(hidden, memory_size, kind=attention, rngs=rngs)
    self.combine = nnx.Linear(memory_size + hidden, self.attentional_size, use_bias=False,
                              rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.tie_embeddings = tie_embeddings
    self.softmax_kernel = None if tie_embeddings else nnx.Param(
        nnx.initializers.lecun_normal()(rngs.params(), (hidden, vocab_size)))
    self.softmax_bias = nnx.Param(jnp.zeros((vocab_size,)))

  @property
  def target_embed(self) -> nnx.Embed:
    return self.encoder.embed if self.embed is None else self.embed

  def encode(self, source: jax.Array, source_lengths: jax.Array, *,
             rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    """``{"memory" float[N,S,D], "keys" float[N,S,K], "mask" bool[N,S]}``."""
    memory, _ = self.encoder(source, source_lengths, rngs=rngs)
    return {"memory": memory, "keys": self.attention.precompute(memory),
            "mask": length_mask(source_lengths, source.shape[1])}

  def initial_state(self, encoded: dict[str, jax.Array]) -> dict:
    """The decoder's state before the first target step: ``{"carry", "feed" float[N, A]}``."""
    memory, mask = encoded["memory"], encoded["mask"]
    count = jnp.maximum(mask.sum(1, keepdims=True), 1).astype(memory.dtype)
    start = jnp.tanh(self.bridge(jnp.where(mask[..., None], memory, 0.0).sum(1) / count))
    carry = jax.tree.map(lambda _: start, self.decoder.cell.initial_carry(memory.shape[0]))
    feed = jnp.zeros((memory.shape[0], self.attentional_size), memory.dtype)
    return {"carry": carry, "feed": feed}

  def attend(self, hidden: jax.Array, encoded: dict[str, jax.Array]):
    """``hidden float[N, T, H] -> (h̃ float[N, T, A], weights float[N, T, S], context float[N, T, D])``."""
    context, weights = self.attention(hidden, encoded["keys"], encoded["memory"], encoded["mask"])
    attentional = jnp.tanh(self.combine(jnp.concatenate([context, hidden], axis=-1)))
    return attentional, weights, context

  def output_logits(self, attentional: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    """``h̃ float[..., A] -> logits float[..., vocab]``."""
    x = self.dropout(attentional, deterministic=rngs is None, rngs=rngs)
    logits = self.target_embed.attend(x) if self.tie_embeddings else x @ self.softmax_kernel[...]
    return logits + self.softmax_bias[...]

  def decode(self, encoded: dict[str, jax.Array], target_in: jax.Array,
             target_lengths: jax.Array, *, rngs: nnx.Rngs | None = None):
    """Teacher-forced decoding: ``(h̃ [N,T,A], weights [N,T,S], context [N,T,D])``."""
    state = self.initial_state(encoded)
    x = self.target_embed(target_in)
    x = self.encoder.embed_dropout(x, deterministic=rngs is None, rngs=rngs)
    if not self.input_feeding:
      hidden, _ = self.decoder(x, target_lengths, state["carry"], rngs=rngs)
      return self.attend(hidden, encoded)
    # Input feeding: the embedding part of the input projection runs once for all
    # steps; inside the loop only h̃_{t-1} is projected.
    cell = self.decoder.cell
    width = x.shape[-1]
    kernel, bias = cell.input_proj.kernel[...], cell.input_proj.bias[...]
    projected = jnp.swapaxes(x @ kernel[:width] + bias, 0, 1)               # [T, N, G*H]
    valid = jnp.swapaxes(length_mask(target_lengths, target_in.shape[1]), 0, 1)

    def body(carry_and_feed, xs):
      carry, feed = carry_and_feed
      projected_t, valid_t = xs
      new_carry, hidden = cell.step(carry, projected_t + feed @ kernel[width:])
      attentional, weights, context = self.attend(hidden[:, None], encoded)
      keep = lambda new, old: jnp.where(valid_t[:, None], new, old)
      new_feed = keep(attentional[:, 0], feed)
      return (jax.tree.map(keep, new_carry, carry), new_feed), (
          new_feed, weights[:, 0], context[:, 0])

    _, outs = jax.lax.scan(body, (state["carry"], state["feed"]), (projected, valid),
                           unroll=self.decoder.unroll)
    return tuple(jnp.swapaxes(o, 0, 1) for o in outs)

  def decode_step(self, encoded: dict[str, jax.Array], state: dict, tokens: jax.Array):
    """One decoding step (no dropout): ``tokens int[N]`` (the previous outputs) ->
    ``(logits float[N, vocab], new state, weights float[N, S])``."""
    x = self.target_embed(tokens)
    if self.input_feeding:
      x = jnp.concatenate([x, state["feed"]], axis=-1)
    cell = self.decoder.cell
    carry, hidden = cell.step(state["carry"], cell.project_inputs(x))
    attentional, weights, _ = self.attend(hidden[:, None], encoded)
    return (self.output_logits(attentional[:, 0]), {"carry": carry, "feed": attentional[:, 0]},
            weights[:, 0])

  def __call__(self, source: jax.Array, source_lengths: jax.Array, target_in: jax.Array,
               target_lengths: jax.Array, *, rngs: nnx.Rngs | None = None):
    """Teacher forcing: ``(logits float[N, T, vocab], weights float[N, T, S])``."""
    encoded = self.encode(source, source_lengths, rngs=rngs)
    attentional, weights, _ = self.decode(encoded, target_in, target_lengths, rngs=rngs)
    return self.output_logits(attentional, rngs=rngs), weights

"""Attentional encoder-decoder on the shared RNN core (translation, summarization).

The encoder is the same ``TextEncoder`` the classifier and the language model
use (``encoder`` subtree), usually bidirectional. The decoder is one recurrent
cell of the same family (``decoder`` subtree, a ``RecurrentLayer``) with
attention over the encoder's outputs, in Luong et al. (2015)'s arrangement:

  ``h_t = cell(h_{t-1}, [E y_{t-1}; h̃_{t-1}])``      (input feeding: the last attentional state)
  ``c_t = Σ_s α_ts m_s``, ``α_t = softmax(score(h_t, m))``
  ``h̃_t = tanh(W_c [c_t; h_t])``,  ``p_vocab(y_t) = softmax(W_o h̃_t + b)``

``score`` is multiplicative (Luong "general") or additive (Bahdanau)
(``xferlab.models.attention``). Without input feeding and coverage the decoder
RNN does not depend on attention, so it runs as one fused scan over all target
steps and attention is computed for every step at once -- much faster on a
CPU. The decoder starts from ``tanh(W_b · mean(m))`` (the "bridge").

Pointer-generator (See et al. 2017), each part switchable:

* ``copy``: ``p(y) = p_gen · p_vocab(y) + (1 - p_gen) · Σ_{s: x_s = y} α_ts`` with
  ``p_gen = σ(w · [c_t; h_t; E y_{t-1}] + b)``, over an *extended vocabulary*:
  ids ``vocab + k`` name the ``k``-th out-of-vocabulary word of an example's
  source (``xferlab.tasks.summarization`` builds them), so such words can be
  copied. Extended ids in inputs read as ``UNK``. Output size ``vocab + S``.
* ``coverage``: the attention score also reads ``cov_t = Σ_{t'<t} α_t'``, and
  ``coverage_loss_t = Σ_s min(α_ts, cov_ts)`` is returned for the loss.

With a joint vocabulary the decoder reads the encoder's embedding
(``share_embeddings``) and ``tie_embeddings`` makes it the output layer too
(``h̃`` then has the embedding's width), so every parameter is shared between
language pairs of that vocabulary and a whole model can seed another pair.

Shapes: ``source: int[N, S]``, ``source_lengths: int[N]``,
``target_in: int[N, T]`` (``BOS y_1 … y_{n-1}``), ``target_lengths: int[N]``;
``log_probs: float[N, T, V]`` (``V = vocab``, or ``vocab + S`` with copy),
attention ``weights: float[N, T, S]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from xferlab.special_ids import UNK_ID
from xferlab.models.attention import Attention
from xferlab.models.cells import make_cell
from xferlab.models.classifier import TextEncoder
from xferlab.models.rnn import RecurrentLayer, length_mask


def coverage_loss(weights: jax.Array, coverage: jax.Array) -> jax.Array:
  """``Σ_s min(α_ts, cov_ts)``: ``float[N, S], float[N, S] -> float[N]`` (See et al. 2017, eq. 12);
  zero when a step attends only where no earlier step did."""
  return jnp.minimum(weights, coverage).sum(-1)


class Seq2Seq(nnx.Module):
  """Encoder-decoder with attention (and optionally copy and coverage).

  Args:
    encoder: the shared text encoder (``memory`` width ``D = encoder.output_size``).
    cell: the decoder cell, ``rnn | lstm | gru``.
    decoder_hidden: ``H``, the decoder's width (0 = ``D``).
    attention: ``"luong"`` (multiplicative) or ``"bahdanau"`` (additive) scores.
    input_feeding: feed ``h̃_{t-1}`` into the next step (Luong et al. 2015).
    share_embeddings: the decoder reads the encoder's embedding (joint vocabulary).
    tie_embeddings: the output layer is the target embedding (``h̃`` of width ``embed_dim``).
    dropout: on ``h̃`` before the output layer.
    copy: the pointer-generator's copy distribution over the extended vocabulary.
    coverage: the coverage vector in the attention score, and the coverage loss.
    unroll, implementation: of the decoder's scan (``RecurrentLayer``).
  """

  def __init__(self, encoder: TextEncoder, *, cell: str = "lstm", decoder_hidden: int = 0,
               attention: str = "luong", input_feeding: bool = True,
               share_embeddings: bool = True, tie_embeddings: bool = True, dropout: float = 0.0,
               copy: bool = False, coverage: bool = False, unroll: int = 1,
               implementation: str = "auto", rngs: nnx.Rngs):
    self.encoder = encoder
    vocab_size, embed_dim = encoder.embed.embedding.shape
    self.vocab_size = vocab_size
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
    self.attention = Attention(hidden, memory_size, kind=attention, coverage=coverage, rngs=rngs)
    self.combine = nnx.Linear(memory_size + hidden, self.attentional_size, use_bias=False,
                              rngs=rngs)
    self.dropout = nnx.Dropout(dropout)
    self.tie_embeddings = tie_embeddings
    self.softmax_kernel = None if tie_embeddings else nnx.Param(
        nnx.initializers.lecun_normal()(rngs.params(), (hidden, vocab_size)))
    self.softmax_bias = nnx.Param(jnp.zeros((vocab_size,)))
    self.copy_gate = nnx.Linear(memory_size + hidden + embed_dim, 1, rngs=rngs) if copy else None
    self.coverage = coverage

  @property
  def target_embed(self) -> nnx.Embed:
    return self.encoder.embed if self.embed is None else self.embed

  def in_vocab(self, ids: jax.Array) -> jax.Array:
    """Extended ids (copyable source words, ``>= vocab``) read as ``UNK``."""
    return jnp.where(ids >= self.vocab_size, UNK_ID, ids)

  def embed_targets(self, ids: jax.Array) -> jax.Array:
    return self.target_embed(self.in_vocab(ids))

  def encode(self, source: jax.Array, source_lengths: jax.Array, *,
             rngs: nnx.Rngs | None = None) -> dict[str, jax.Array]:
    """``{"memory" float[N,S,D], "keys" float[N,S,K], "mask" bool[N,S], "source" int[N,S]}``
    (``source`` keeps its extended ids, which the copy distribution scatters onto)."""
    memory, _ = self.encoder(self.in_vocab(source), source_lengths, rngs=rngs)
    return {"memory": memory, "keys": self.attention.precompute(memory),
            "mask": length_mask(source_lengths, source.shape[1]), "source": source}

  def initial_state(self, encoded: dict[str, jax.Array]) -> dict:
    """The decoder's state before the first target step:
    ``{"carry", "feed" float[N, A], "coverage" float[N, S] (with coverage)}``."""
    memory, mask = encoded["memory"], encoded["mask"]
    count = jnp.maximum(mask.sum(1, keepdims=True), 1).astype(memory.dtype)
    start = jnp.tanh(self.bridge(jnp.where(mask[..., None], memory, 0.0).sum(1) / count))
    carry = jax.tree.map(lambda _: start, self.decoder.cell.initial_carry(memory.shape[0]))
    state = {"carry": carry,
             "feed": jnp.zeros((memory.shape[0], self.attentional_size), memory.dtype)}
    if self.coverage:
      state["coverage"] = jnp.zeros(mask.shape, memory.dtype)
    return state

  def attend(self, hidden: jax.Array, encoded: dict[str, jax.Array], coverage=None):
    """``hidden float[N, T, H] -> (h̃ [N, T, A], weights [N, T, S], context [N, T, D])``."""
    context, weights = self.attention(hidden, encoded["keys"], encoded["memory"], encoded["mask"],
                                      coverage)
    attentional = jnp.tanh(self.combine(jnp.concatenate([context, hidden], axis=-1)))
    return attentional, weights, context

  def output_logits(self, attentional: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    """``h̃ float[..., A] -> logits float[..., vocab]``."""
    x = self.dropout(attentional, deterministic=rngs is None, rngs=rngs)
    logits = self.target_embed.attend(x) if self.tie_embeddings else x @ self.softmax_kernel[...]
    return logits + self.softmax_bias[...]

  def output_log_probs(self, decoded: dict, inputs: jax.Array, encoded: dict, *,
                       rngs: nnx.Rngs | None = None) -> jax.Array:
    """``log p(y_t)``: ``float[N, T, vocab]``, or ``[N, T, vocab + S]`` with copy.

    ``decoded`` is ``decode``'s dict, ``inputs`` the embedded decoder inputs ``[N, T, E]``.
    """
    logits = self.output_logits(decoded["attentional"], rngs=rngs).astype(jnp.float32)
    if self.copy_gate is None:
      return jax.nn.log_softmax(logits, axis=-1)
    p_gen = self.generation_probability(decoded, inputs)                          # [N, T, 1]
    source = encoded["source"]
    extended = self.vocab_size + source.shape[1]
    vocab_p = jnp.pad(jax.nn.softmax(logits, axis=-1) * p_gen,
                      ((0, 0), (0, 0), (0, extended - self.vocab_size)))
    copy_w = decoded["weights"].astype(jnp.float32) * (1.0 - p_gen)             # [N, T, S]
    scatter = lambda p, w, ids: p.at[:, ids].add(w)
    return jnp.log(jax.vmap(scatter)(vocab_p, copy_w, source) + 1e-12)

  def generation_probability(self, decoded: dict, inputs: jax.Array) -> jax.Array:
    """The pointer-generator's ``p_gen float32[N, T, 1]`` (``1 - p_gen`` goes to copying);
    needs ``copy``. ``decoded`` is ``decode``'s dict, ``inputs`` the embedded decoder inputs."""
    if self.copy_gate is None:
      raise ValueError("generation_probability needs a model with copy=True")
    features = jnp.concatenate([decoded["context"], decoded["hidden"], inputs], axis=-1)
    return jax.nn.sigmoid(self.copy_gate(features).astype(jnp.float32))

  def attention_maps(self, source: jax.Array, source_lengths: jax.Array, target_in: jax.Array,
                     target_lengths: jax.Array) -> dict[str, jax.Array]:
    """What the decoder reads, teacher-forced without dropout (for explanations).

    Returns ``{"weights" float[N, T, S]}``: row ``t`` is the attention while predicting
    output ``t`` from ``target_in[:, :t + 1]`` (each valid row sums to 1 over the valid
    source steps; padded source steps get 0); with copy also ``"p_copy" float32[N, T]``,
    ``1 - p_gen``, the share of output ``t``'s probability that the copy distribution gives.
    For a decoded output ``y``, ``target_in = BOS y`` gives the maps of its decoding.
    """
    encoded = self.encode(source, source_lengths)
    decoded = self.decode(encoded, target_in, target_lengths)
    out = {"weights": decoded["weights"]}
    if self.copy_gate is not None:
      out["p_copy"] = 1.0 - self.generation_probability(decoded, decoded["inputs"])[..., 0]
    return out

  def decode(self, encoded: dict[str, jax.Array], target_in: jax.Array,
             target_lengths: jax.Array, *, rngs: nnx.Rngs | None = None) -> dict:
    """Teacher-forced decoding.

    Returns ``{"attentional" [N,T,A], "weights" [N,T,S], "context" [N,T,D],
    "hidden" [N,T,H], "inputs" [N,T,E] (embedded, after dropout),
    "coverage_loss" [N,T]}`` (``coverage_loss`` zero without coverage).
    """
    state = self.initial_state(encoded)
    x = self.embed_targets(target_in)
    x = self.encoder.embed_dropout(x, deterministic=rngs is None, rngs=rngs)
    if not (self.input_feeding or self.coverage):
      hidden, _ = self.decoder(x, target_lengths, state["carry"], rngs=rngs)
      attentional, weights, context = self.attend(hidden, encoded)
      return {"attentional": attentional, "weights": weights, "context": context,
              "hidden": hidden, "inputs": x, "coverage_loss": jnp.zeros(target_in.shape, x.dtype)}
    # Step by step: the embedding part of the input projection runs once for all
    # steps; inside the loop only h̃_{t-1} is projected (input feeding).
    cell = self.decoder.cell
    width = x.shape[-1]
    kernel, bias = cell.input_proj.kernel[...], cell.input_proj.bias[...]
    projected = jnp.swapaxes(x @ kernel[:width] + bias, 0, 1)               # [T, N, G*H]
    valid = jnp.swapaxes(length_mask(target_lengths, target_in.shape[1]), 0, 1)

    def body(state, xs):
      projected_t, valid_t = xs
      if self.input_feeding:
        projected_t = projected_t + state["feed"] @ kernel[width:]
      carry, hidden = cell.step(state["carry"], projected_t)
      coverage = state.get("coverage")
      attentional, weights, context = self.attend(
          hidden[:, None], encoded, None if coverage is None else coverage[:, None])
      weights = weights[:, 0]
      new = {"carry": carry, "feed": attentional[:, 0]}
      step_loss = jnp.zeros(hidden.shape[:1], hidden.dtype)
      if coverage is not None:
        step_loss = coverage_loss(weights, coverage)
        new["coverage"] = coverage + weights
      keep = lambda n, o: jnp.where(valid_t.reshape(valid_t.shape + (1,) * (n.ndim - 1)), n, o)
      state = jax.tree.map(keep, new, state)
      return state, (attentional[:, 0], weights, context[:, 0], hidden, step_loss)

    _, outs = jax.lax.scan(body, state, (projected, valid), unroll=self.decoder.unroll)
    attentional, weights, context, hidden, step_losses = (jnp.swapaxes(o, 0, 1) for o in outs)
    return {"attentional": attentional, "weights": weights, "context": context, "hidden": hidden,
            "inputs": x, "coverage_loss": step_losses}

  def decode_step(self, encoded: dict[str, jax.Array], state: dict, tokens: jax.Array):
    """One decoding step (no dropout): ``tokens int[N]`` (the previous outputs, extended
    ids allowed) -> ``(log_probs float[N, V], new state, weights float[N, S])``."""
    x = self.embed_targets(tokens)
    cell_inputs = jnp.concatenate([x, state["feed"]], axis=-1) if self.input_feeding else x
    cell = self.decoder.cell
    carry, hidden = cell.step(state["carry"], cell.project_inputs(cell_inputs))
    coverage = state.get("coverage")
    attentional, weights, context = self.attend(
        hidden[:, None], encoded, None if coverage is None else coverage[:, None])
    decoded = {"attentional": attentional, "weights": weights, "context": context,
               "hidden": hidden[:, None]}
    log_probs = self.output_log_probs(decoded, x[:, None], encoded)[:, 0]
    new = {"carry": carry, "feed": attentional[:, 0]}
    if coverage is not None:
      new["coverage"] = coverage + weights[:, 0]
    return log_probs, new, weights[:, 0]

  def __call__(self, source: jax.Array, source_lengths: jax.Array, target_in: jax.Array,
               target_lengths: jax.Array, *, rngs: nnx.Rngs | None = None):
    """Teacher forcing: ``(log_probs float[N, T, V], decode's dict)``."""
    encoded = self.encode(source, source_lengths, rngs=rngs)
    decoded = self.decode(encoded, target_in, target_lengths, rngs=rngs)
    return self.output_log_probs(decoded, decoded["inputs"], encoded, rngs=rngs), decoded

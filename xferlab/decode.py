"""Greedy and beam-search decoding of encoder-decoder models, whole under ``jit``.

Both loop with ``jax.lax.while_loop`` over output positions (no Python loop per
token) and stop as soon as every hypothesis has emitted ``EOS`` or
``max_length`` tokens exist. A model provides::

  encode(source, source_lengths) -> encoded      (a pytree of [N, ...] arrays)
  initial_state(encoded) -> state                (a pytree of [N, ...] arrays)
  decode_step(encoded, state, tokens int[N]) -> (scores float[N, V], state, weights)

where ``scores`` are logits (or log-probabilities: ``log_softmax`` leaves
those unchanged). ``PAD`` and ``BOS`` are never generated; after ``EOS`` a
hypothesis only appends ``PAD`` at no cost.

Outputs are ``int32[N, max_length]``: the tokens up to and including ``EOS``,
then ``PAD``. ``beam_search`` with ``beam_size=1`` is ``greedy``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from xferlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


def normalized_log_probs(scores: jax.Array) -> jax.Array:
  """``log_softmax`` with PAD and BOS excluded."""
  banned = (jnp.arange(scores.shape[-1]) == PAD_ID) | (jnp.arange(scores.shape[-1]) == BOS_ID)
  return jax.nn.log_softmax(jnp.where(banned, -jnp.inf, scores.astype(jnp.float32)), axis=-1)


def greedy(model, source: jax.Array, source_lengths: jax.Array, max_length: int) -> jax.Array:
  """``int32[N, max_length]``: the most probable token at every step."""
  n = source.shape[0]
  encoded = model.encode(source, source_lengths)

  def cond(c):
    step, _, _, _, finished = c
    return (step < max_length) & ~jnp.all(finished)

  def body(c):
    step, state, last, out, finished = c
    scores, state, _ = model.decode_step(encoded, state, last)
    token = jnp.argmax(normalized_log_probs(scores), axis=-1).astype(jnp.int32)
    token = jnp.where(finished, PAD_ID, token)
    out = out.at[:, step].set(token)
    return step + 1, state, token, out, finished | (token == EOS_ID)

  init = (jnp.int32(0), model.initial_state(encoded), jnp.full((n,), BOS_ID, jnp.int32),
          jnp.full((n, max_length), PAD_ID, jnp.int32), jnp.zeros((n,), bool))
  return jax.lax.while_loop(cond, body, init)[3]


def length_penalty(lengths: jax.Array, alpha: float) -> jax.Array:
  """GNMT's ``((5 + |y|) / 6) ** alpha`` (Wu et al. 2016); ``alpha = 0`` is none."""
  return ((5.0 + lengths.astype(jnp.float32)) / 6.0) ** alpha


def beam_search(model, source: jax.Array, source_lengths: jax.Array, max_length: int,
                beam_size: int = 4, alpha: float = 0.6) -> jax.Array:
  """``int32[N, max_length]``: the best of ``beam_size`` hypotheses by
  ``log p(y | x) / length_penalty(|y|, alpha)``.

  Hypotheses are ranked by their log-probability while they grow (finished
  ones stay in the beam with a frozen score); the length penalty decides
  between the final ``beam_size`` hypotheses.
  """
  n, k = source.shape[0], beam_size
  tile = lambda x: jnp.repeat(x, k, axis=0)                           # [N, ...] -> [N*K, ...]
  encoded = jax.tree.map(tile, model.encode(source, source_lengths))
  state = model.initial_state(encoded)

  def regroup(x, beam):
    """Rows of ``x [N*K, ...]`` reordered so hypothesis ``(b, j)`` continues ``(b, beam[b, j])``."""
    x = x.reshape((n, k) + x.shape[1:])
    x = jnp.take_along_axis(x, beam.reshape((n, k) + (1,) * (x.ndim - 2)), axis=1)
    return x.reshape((n * k,) + x.shape[2:])

  def cond(c):
    step, _, _, _, _, finished, _ = c
    return (step < max_length) & ~jnp.all(finished)

  def body(c):
    step, state, last, tokens, scores, finished, lengths = c
    step_scores, state, _ = model.decode_step(encoded, state, last)
    log_p = normalized_log_probs(step_scores).reshape(n, k, -1)                 # [N, K, V]
    vocab = log_p.shape[-1]
    only_pad = jnp.where(jnp.arange(vocab) == PAD_ID, 0.0, -jnp.inf)
    log_p = jnp.where(finished[..., None], only_pad, log_p)
    candidates = (scores[..., None] + log_p).reshape(n, k * vocab)
    scores, index = jax.lax.top_k(candidates, k)                      # [N, K]
    beam, token = index // vocab, (index % vocab).astype(jnp.int32)
    was_finished = jnp.take_along_axis(finished, beam, axis=1)
    tokens = jnp.take_along_axis(tokens, beam[..., None], axis=1).at[:, :, step].set(token)
    lengths = jnp.take_along_axis(lengths, beam, axis=1) + (~was_finished).astype(jnp.int32)
    finished = was_finished | (token == EOS_ID)
    state = jax.tree.map(lambda x: regroup(x, beam), state)
    return step + 1, state, token.reshape(-1), tokens, scores, finished, lengths

  first_only = jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf)          # one live hypothesis at first
  init = (jnp.int32(0), state, jnp.full((n * k,), BOS_ID, jnp.int32),
          jnp.full((n, k, max_length), PAD_ID, jnp.int32),
          jnp.broadcast_to(first_only, (n, k)).astype(jnp.float32),
          jnp.zeros((n, k), bool), jnp.zeros((n, k), jnp.int32))
  _, _, _, tokens, scores, _, lengths = jax.lax.while_loop(cond, body, init)
  best = jnp.argmax(scores / length_penalty(lengths, alpha), axis=1)
  return jnp.take_along_axis(tokens, best[:, None, None], axis=1)[:, 0]


def strip(tokens) -> list[list[int]]:
  """Rows of ``int[N, L]`` cut before ``EOS`` (and padding): the ids to detokenize."""
  out = []
  for row in tokens.tolist():
    ids = []
    for t in row:
      if t in (EOS_ID, PAD_ID):
        break
      ids.append(t)
    out.append(ids)
  return out

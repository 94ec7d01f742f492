"""Attention over encoder states: multiplicative (Luong) or additive (Bahdanau) scores.

Shapes (``N`` = batch, ``S`` = source steps, ``T`` = query steps):

* ``memory: float[N, S, D]`` -- the encoder's outputs (the values);
* ``keys: float[N, S, K]`` -- ``precompute(memory)``, computed once per source;
* ``mask: bool[N, S]`` -- True at valid (unpadded) source steps;
* ``query: float[N, T, Q]`` -- decoder states; ``T = 1`` inside a decoding loop.

``__call__`` returns ``(context float[N, T, D], weights float[N, T, S])``; each
row of ``weights`` sums to one over the valid source steps and is zero on
padding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

ATTENTION_KINDS = ("luong", "bahdanau")

# Scores at padded steps; finite, so a row without any valid step (batch
# padding) gives uniform weights instead of NaN.
_MASKED = -1e9


class Attention(nnx.Module):
  """``luong``: ``score(q, m) = q · W m`` (Luong et al. 2015, "general");
  ``bahdanau``: ``score(q, m) = v · tanh(W_q q + W_m m)`` (Bahdanau et al. 2015).

  Args:
    query_size: ``Q``, the decoder state width.
    memory_size: ``D``, the encoder output width.
    kind: ``"luong"`` or ``"bahdanau"``.
    hidden: the additive score's hidden width (``bahdanau`` only; 0 = ``Q``).
  """

  def __init__(self, query_size: int, memory_size: int, *, kind: str = "luong", hidden: int = 0,
               rngs: nnx.Rngs):
    if kind not in ATTENTION_KINDS:
      raise ValueError(f"Unknown attention {kind!r}; choose one of {ATTENTION_KINDS}")
    self.kind = kind
    if kind == "luong":
      self.memory_proj = nnx.Linear(memory_size, query_size, use_bias=False, rngs=rngs)
      self.query_proj = None
      self.score_vector = None
    else:
      hidden = hidden or query_size
      self.memory_proj = nnx.Linear(memory_size, hidden, use_bias=False, rngs=rngs)
      self.query_proj = nnx.Linear(query_size, hidden, rngs=rngs)
      self.score_vector = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (hidden, 1)))

  def precompute(self, memory: jax.Array) -> jax.Array:
    """``float[N, S, D] -> keys float[N, S, K]`` (one matmul per source, not per step)."""
    return self.memory_proj(memory)

  def scores(self, query: jax.Array, keys: jax.Array) -> jax.Array:
    """``float[N, T, S]`` unnormalized scores."""
    if self.kind == "luong":
      return jnp.einsum("ntk,nsk->nts", query, keys)
    hidden = jnp.tanh(self.query_proj(query)[:, :, None, :] + keys[:, None, :, :])   # [N,T,S,K]
    return (hidden @ self.score_vector[...])[..., 0]

  def __call__(self, query: jax.Array, keys: jax.Array, memory: jax.Array,
               mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    scores = jnp.where(mask[:, None, :], self.scores(query, keys), _MASKED)
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(memory.dtype)
    weights = jnp.where(mask[:, None, :], weights, 0.0)
    return jnp.einsum("nts,nsd->ntd", weights, memory), weights

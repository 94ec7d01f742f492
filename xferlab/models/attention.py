"""Attention over encoder states: multiplicative (Luong) or additive (Bahdanau) scores.

Shapes (``N`` = batch, ``S`` = source steps, ``T`` = query steps):

* ``memory: float[N, S, D]`` -- the encoder's outputs (the values);
* ``keys: float[N, S, K]`` -- ``precompute(memory)``, computed once per source;
* ``mask: bool[N, S]`` -- True at valid (unpadded) source steps;
* ``query: float[N, T, Q]`` -- decoder states; ``T = 1`` inside a decoding loop.

``__call__`` returns ``(context float[N, T, D], weights float[N, T, S])``; each
row of ``weights`` sums to one over the valid source steps and is zero on
padding.

With ``coverage`` (See et al. 2017) the score also reads ``coverage: float[N, T, S]``,
the attention a source step has received so far: inside the additive score's
``tanh`` (``+ w_c · coverage``), or added to the multiplicative score.
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
               coverage: bool = False, rngs: nnx.Rngs):
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
    width = 1 if kind == "luong" else hidden
    self.coverage_weight = nnx.Param(jnp.zeros((width,))) if coverage else None

  def precompute(self, memory: jax.Array) -> jax.Array:
    """``float[N, S, D] -> keys float[N, S, K]`` (one matmul per source, not per step)."""
    return self.memory_proj(memory)

  def scores(self, query: jax.Array, keys: jax.Array, coverage: jax.Array | None = None):
    """``float[N, T, S]`` unnormalized scores."""
    if self.kind == "luong":
      scores = jnp.einsum("ntk,nsk->nts", query, keys)
      if self.coverage_weight is not None:
        scores = scores + coverage * self.coverage_weight[0]
      return scores
    hidden = self.query_proj(query)[:, :, None, :] + keys[:, None, :, :]             # [N,T,S,K]
    if self.coverage_weight is not None:
      hidden = hidden + coverage[..., None] * self.coverage_weight[...]
    return (jnp.tanh(hidden) @ self.score_vector[...])[..., 0]

  def __call__(self, query: jax.Array, keys: jax.Array, memory: jax.Array,
               mask: jax.Array, coverage: jax.Array | None = None):
    if (coverage is None) != (self.coverage_weight is None):
      raise ValueError("pass coverage exactly when the attention was built with coverage=True")
    scores = jnp.where(mask[:, None, :], self.scores(query, keys, coverage), _MASKED)
    weights = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(memory.dtype)
    weights = jnp.where(mask[:, None, :], weights, 0.0)
    return jnp.einsum("nts,nsd->ntd", weights, memory), weights

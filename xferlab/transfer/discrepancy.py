"""Parameter-free ``L_transfer`` choices: distribution distances between feature sets.

Both plug into the same slot as the domain-adversarial loss
(``L_source + λ · L_transfer``) and take the same arguments.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


def _weighted_covariance(x: jax.Array, w: jax.Array) -> jax.Array:
  """``float[n, d], float[n] -> float[d, d]`` unbiased weighted covariance."""
  n = jnp.maximum(jnp.sum(w), 2.0)
  mean = jnp.sum(x * w[:, None], axis=0) / n
  centered = (x - mean) * w[:, None]
  return centered.T @ centered / (n - 1.0)


class CoralLoss(nnx.Module):
  """Deep CORAL (Sun & Saenko 2016): ``||C_s - C_t||_F^2 / (4 d^2)``."""

  def __call__(self, source_features, target_features, source_weights, target_weights, *,
               rngs=None):
    del rngs
    d = source_features.shape[-1]
    diff = (_weighted_covariance(source_features, source_weights)
            - _weighted_covariance(target_features, target_weights))
    return jnp.sum(diff ** 2) / (4.0 * d * d), {}


class MMDLoss(nnx.Module):
  """Squared maximum mean discrepancy with a sum of Gaussian kernels (Long et al. 2015).

  Bandwidths are multiples of the mean pairwise squared distance of the batch.
  """

  def __init__(self, bandwidth_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0)):
    self.bandwidth_multipliers = tuple(bandwidth_multipliers)

  def __call__(self, source_features, target_features, source_weights, target_weights, *,
               rngs=None):
    del rngs
    x = jnp.concatenate([source_features, target_features], axis=0)
    w = jnp.concatenate([source_weights / jnp.maximum(jnp.sum(source_weights), 1.0),
                         -target_weights / jnp.maximum(jnp.sum(target_weights), 1.0)])
    sq = jnp.sum(x ** 2, axis=-1)
    dist = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    pair_w = jnp.abs(w)[:, None] * jnp.abs(w)[None, :]
    base = jax.lax.stop_gradient(jnp.sum(dist * pair_w) / jnp.maximum(jnp.sum(pair_w), 1e-12))
    kernel = sum(jnp.exp(-dist / (m * base + 1e-12)) for m in self.bandwidth_multipliers)
    return w @ kernel @ w, {}

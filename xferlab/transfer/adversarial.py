"""Domain-adversarial transfer (DANN, Ganin et al. 2016): gradient reversal + discriminator.

The trainer composes ``L_target = L_source + λ · L_transfer``
(``xferlab.losses.compose``). Here ``L_transfer`` is the domain
discriminator's binary cross-entropy on features read through a gradient
reversal layer of unit strength, so that with the λ of the composition:

* the discriminator descends ``λ · ∂L_d/∂θ_d`` (it learns to tell the domains apart);
* the feature extractor receives ``-λ · ∂L_d/∂θ_f`` (it learns to confuse it);

which is DANN's saddle point ``E = L_y - λ L_d`` (Ganin et al. 2016, eq. 9-10
and Algorithm 1, where the domain-regressor step is also scaled by λ). With
λ = 0 every transfer gradient is exactly zero, so λ = 0 *is* source-only
training. Under Adam the λ-scaling of the discriminator's own gradient is
normalized away, so the discriminator learns at its full rate for any λ > 0.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from xferlab.models.classifier import MLP


@jax.custom_vjp
def grad_reverse(x: jax.Array, scale: jax.Array) -> jax.Array:
  """Identity in the forward pass; multiplies the incoming gradient by ``-scale``.

  ``scale`` is an ordinary (traced) array, so a new value never recompiles.
  It receives no gradient.
  """
  return x


def _grad_reverse_fwd(x, scale):
  return x, scale


def _grad_reverse_bwd(scale, g):
  return (jax.tree.map(lambda t: -scale * t, g), jnp.zeros_like(scale))


grad_reverse.defvjp(_grad_reverse_fwd, _grad_reverse_bwd)


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  """``sum(w * v) / max(sum(w), 1)``; weights are 0 on batch-padding rows."""
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


class DomainAdversarialLoss(nnx.Module):
  """Owns the domain discriminator; ``L_transfer`` = its loss behind gradient reversal.

  Args:
    feature_size: width of the features it reads.
    hidden: hidden layer sizes of the discriminator MLP.
    dropout: dropout inside the discriminator.
  """

  def __init__(self, feature_size: int, hidden: Sequence[int] = (100,), *, dropout: float = 0.0,
               rngs: nnx.Rngs):
    self.discriminator = MLP(feature_size, hidden, 1, dropout=dropout, rngs=rngs)

  def __call__(self, source_features: jax.Array, target_features: jax.Array,
               source_weights: jax.Array, target_weights: jax.Array, *,
               rngs: nnx.Rngs | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Source rows have domain 0, target rows domain 1.

    Args:
      source_features, target_features: ``float[batch, feature_size]``.
      source_weights, target_weights: ``float[batch]``, 0 on padding rows.
    Returns:
      ``(loss, {"domain_accuracy": ...})``; the loss is the mean of the two
      domains' mean cross-entropies (so unequal batch sizes weigh equally).
    """
    feats = jnp.concatenate([source_features, target_features], axis=0)
    logits = self.discriminator(grad_reverse(feats, jnp.float32(1.0)), rngs=rngs)[:, 0]
    n = source_features.shape[0]
    domain = jnp.concatenate([jnp.zeros(n), jnp.ones(target_features.shape[0])])
    xent = optax.sigmoid_binary_cross_entropy(logits, domain)
    correct = ((logits > 0) == (domain > 0.5)).astype(jnp.float32)
    loss = 0.5 * (weighted_mean(xent[:n], source_weights) + weighted_mean(xent[n:], target_weights))
    accuracy = 0.5 * (weighted_mean(correct[:n], source_weights)
                      + weighted_mean(correct[n:], target_weights))
    return loss, {"domain_accuracy": accuracy}

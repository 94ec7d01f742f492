"""Relation-based transfer: ``L_transfer`` losses that relate source and target features.

The trainer composes ``L_target = L_source + λ · L_transfer``
(``xferlab.losses.compose``). Three kinds live here:

* **adversarial** -- DANN (Ganin et al. 2016): a domain discriminator read
  through a gradient-reversal layer (``DomainAdversarialLoss``, ``grad_reverse``);
* **discrepancy** -- parameter-free distribution distances between the feature
  sets, Deep CORAL and MMD (``CoralLoss``, ``MMDLoss``), taking the same arguments;
* **entropy** -- information maximization on the classifier's target
  predictions (``information_maximization``; SHOT), added as ``β · L_im``.

``make_transfer_loss(transfer_config, feature_size, rngs=...)`` builds the
module ``transfer.method`` names.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from xferlab.models.classifier import MLP


# ------------------------------------------------------------------------------
# Adversarial.
#
# Domain-adversarial transfer (DANN, Ganin et al. 2016): gradient reversal + discriminator.
#
# ``L_transfer`` is the domain
# discriminator's binary cross-entropy on features read through a gradient
# reversal layer of unit strength, so that with the λ of the composition:
#
# * the discriminator descends ``λ · ∂L_d/∂θ_d`` (it learns to tell the domains apart);
# * the feature extractor receives ``-λ · ∂L_d/∂θ_f`` (it learns to confuse it);
#
# which is DANN's saddle point ``E = L_y - λ L_d`` (Ganin et al. 2016, eq. 9-10
# and Algorithm 1, where the domain-regressor step is also scaled by λ). With
# λ = 0 every transfer gradient is exactly zero, so λ = 0 *is* source-only
# training. Under Adam the λ-scaling of the discriminator's own gradient is
# normalized away, so the discriminator learns at its full rate for any λ > 0.

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


# ------------------------------------------------------------------------------
# Discrepancy.
#
# Parameter-free ``L_transfer`` choices: distribution distances between feature sets.
#
# Both plug into the same slot as the domain-adversarial loss
# (``L_source + λ · L_transfer``) and take the same arguments.

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


# ------------------------------------------------------------------------------
# Entropy.
#
# Information maximization on unlabeled target text (Liang et al. 2020, SHOT; Grandvalet & Bengio 2005).
#
# The classifier's predictions on a target batch, ``p_i = softmax(logits_i)``:
#
#   ``L_im = mean_i H(p_i) - H(mean_i p_i)``
#
# The first term (conditional entropy, entropy minimization) pushes each target
# review away from the decision boundary, into a confident class; the second
# (the entropy of the batch's mean prediction, the diversity term) keeps the
# batch from collapsing into one class. ``L_im`` lies in ``[-log C, 0]`` (the
# entropy of a mean is at least the mean of the entropies): ``-log C`` for
# confident predictions spread evenly over the C classes, 0 for uniform ones or
# for a batch all in one class. Its gradient vanishes at uniform predictions, so
# it acts only once the source labels have made the classifier sure of something.
#
# The trainer adds ``β · L_im`` to ``L_source + λ · L_transfer``
# (``transfer.target_entropy`` = β; He et al. 2018 use the same kind of term,
# beside a feature-alignment loss, for cross-domain sentiment).

def information_maximization(logits: jax.Array, weights: jax.Array) -> tuple[jax.Array, dict]:
  """``(L_im, metrics)`` of one target batch.

  Args:
    logits: ``float[batch, classes]``, the classifier's target logits.
    weights: ``float[batch]``, 0 on batch-padding rows.
  Returns:
    ``(mean conditional entropy - entropy of the mean prediction,
    {"target_entropy": ..., "target_diversity": ...})``, all scalars in nats.
  """
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  p = jnp.exp(log_p)
  conditional = weighted_mean(-jnp.sum(p * log_p, axis=-1), weights)
  mean_p = jnp.sum(p * weights[:, None], axis=0) / jnp.maximum(jnp.sum(weights), 1.0)
  diversity = -jnp.sum(mean_p * jnp.log(jnp.maximum(mean_p, 1e-12)))
  return conditional - diversity, {"target_entropy": conditional, "target_diversity": diversity}


# ------------------------------------------------------------------------------

TRANSFER_METHODS = ("none", "dann", "coral", "mmd")


def make_transfer_loss(transfer_config, feature_size: int, *, rngs: nnx.Rngs):
  """The ``L_transfer`` module named by ``transfer.method``, or None for ``"none"``.

  Every such module is called as
  ``loss(source_features, target_features, source_weights, target_weights, rngs=...)``
  and returns ``(scalar loss, dict of scalar metrics)``.
  """
  method = transfer_config.method
  if method == "none":
    return None
  if method == "dann":
    return DomainAdversarialLoss(feature_size, tuple(transfer_config.discriminator_hidden),
                                 dropout=transfer_config.discriminator_dropout, rngs=rngs)
  if method == "coral":
    return CoralLoss()
  if method == "mmd":
    return MMDLoss()
  raise ValueError(f"Unknown transfer.method {method!r}; choose one of {TRANSFER_METHODS}")

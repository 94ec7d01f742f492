"""Information maximization on unlabeled target text (Liang et al. 2020, SHOT; Grandvalet & Bengio 2005).

The classifier's predictions on a target batch, ``p_i = softmax(logits_i)``:

  ``L_im = mean_i H(p_i) - H(mean_i p_i)``

The first term (conditional entropy, entropy minimization) pushes each target
review away from the decision boundary, into a confident class; the second
(the entropy of the batch's mean prediction, the diversity term) keeps the
batch from collapsing into one class. ``L_im`` lies in ``[-log C, 0]`` (the
entropy of a mean is at least the mean of the entropies): ``-log C`` for
confident predictions spread evenly over the C classes, 0 for uniform ones or
for a batch all in one class. Its gradient vanishes at uniform predictions, so
it acts only once the source labels have made the classifier sure of something.

The trainer adds ``β · L_im`` to ``L_source + λ · L_transfer``
(``transfer.target_entropy`` = β; He et al. 2018 use the same kind of term,
beside a feature-alignment loss, for cross-domain sentiment).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from xferlab.transfer.adversarial import weighted_mean


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

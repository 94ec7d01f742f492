"""The composition ``L_target = L_source + λ · L_transfer`` and the schedules of λ.

Nothing else lives here: task losses belong to their task, transfer losses to
``xferlab.transfer``. λ is always a traced array, so sweeping or scheduling it
never recompiles the train step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LAMBDA_SCHEDULES = ("constant", "dann")


def compose(source_loss: jax.Array, transfer_loss: jax.Array | None, lam: jax.Array) -> jax.Array:
  """``L_source + λ · L_transfer`` (just ``L_source`` when there is no transfer term)."""
  if transfer_loss is None:
    return source_loss
  return source_loss + lam * transfer_loss


def transfer_weight(progress: jax.Array, schedule: str, lam: jax.Array,
                    lam_min: jax.Array = 0.0, gamma: jax.Array = 10.0) -> jax.Array:
  """λ at training progress ``p = step / total_steps`` in [0, 1].

  * ``constant``: ``λ_p = lam``;
  * ``dann``: ``λ_p = lam_min + (lam - lam_min) · (2 / (1 + exp(-γ p)) - 1)``
    (Ganin et al. 2016), rising from ``lam_min`` at p = 0 towards ``lam``.
  """
  if schedule == "constant":
    return jnp.asarray(lam, jnp.float32)
  if schedule == "dann":
    p = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
    ramp = 2.0 / (1.0 + jnp.exp(-gamma * p)) - 1.0
    return lam_min + (lam - lam_min) * ramp
  raise ValueError(f"Unknown lambda schedule {schedule!r}; choose one of {LAMBDA_SCHEDULES}")

"""The plain optimizer of a run: ``config.optimizer`` as an optax chain.

Optional global-norm clipping, then ``adam`` / ``adamw`` / ``sgd`` with a
``constant`` / ``cosine`` / ``warmup_cosine`` / ``slanted_triangular`` schedule.
The fine-tuning controls built on top of it (freezing, discriminative rates,
gradual unfreezing) are model-based transfer: ``xferlab.transfer.model_based``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "cosine", "warmup_cosine", "slanted_triangular")
OPTIMIZERS = ("adam", "adamw", "sgd")


def slanted_triangular(total_steps: int, peak_lr: float, cut_frac: float = 0.1,
                       ratio: float = 32.0) -> optax.Schedule:
  """ULMFiT's slanted triangular learning rate (Howard & Ruder 2018, eq. 3).

  With ``T = total_steps``, ``cut = floor(T · cut_frac)``::

    p   = t / cut                                  if t < cut
          1 - (t - cut) / (cut · (1/cut_frac - 1))  otherwise
    η_t = peak_lr · (1 + p · (ratio - 1)) / ratio

  a short linear rise from ``peak_lr / ratio`` to ``peak_lr`` at step ``cut``,
  then a long linear decay back to ``peak_lr / ratio`` at step ``T``. ``p`` is
  clipped to ``[0, 1]``, so steps past ``T`` stay at ``peak_lr / ratio``, and
  ``cut`` is at least 1.
  """
  if not 0.0 < cut_frac < 1.0:
    raise ValueError(f"cut_frac must be in (0, 1), got {cut_frac}")
  if ratio < 1:
    raise ValueError(f"ratio must be >= 1, got {ratio}")
  cut = max(1, math.floor(total_steps * cut_frac))
  decay_steps = cut * (1.0 / cut_frac - 1.0)

  def schedule(count):
    t = jnp.asarray(count, jnp.float32)
    p = jnp.where(t < cut, t / cut, 1.0 - (t - cut) / decay_steps)
    p = jnp.clip(p, 0.0, 1.0)
    return peak_lr * (1.0 + p * (ratio - 1.0)) / ratio

  return schedule


def make_schedule(opt_config, total_steps: int) -> float | optax.Schedule:
  """The learning rate of ``config.optimizer``: a float (constant) or an optax schedule."""
  lr = opt_config.learning_rate
  name = opt_config.schedule
  if name == "constant":
    return lr
  if name == "cosine":
    return optax.cosine_decay_schedule(lr, max(total_steps, 1))
  if name == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(0.0, lr, opt_config.warmup_steps,
                                              max(total_steps, opt_config.warmup_steps + 1))
  if name == "slanted_triangular":
    return slanted_triangular(total_steps, lr, opt_config.cut_frac, opt_config.stlr_ratio)
  raise ValueError(f"Unknown optimizer.schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def direction(opt_config) -> optax.GradientTransformation:
  """The optimizer of ``config.optimizer`` without its learning rate (the update direction).

  ``adam``: ``scale_by_adam``; ``adamw``: that plus ``add_decayed_weights``;
  ``sgd``: ``trace`` (momentum) or the identity. Followed by
  ``scale_by_learning_rate`` this is exactly ``optax.adam`` / ``adamw`` / ``sgd``.
  """
  name = opt_config.name
  if name == "adam":
    return optax.scale_by_adam()
  if name == "adamw":
    return optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(opt_config.weight_decay))
  if name == "sgd":
    return optax.trace(decay=opt_config.momentum) if opt_config.momentum else optax.identity()
  raise ValueError(f"Unknown optimizer.name {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def make_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
  """The plain chain: optional global-norm clipping, then the named optax optimizer.

  The same transformations (and so the same optimizer-state structure, which
  checkpoints store) as the trainer's original ``make_optimizer``.
  """
  schedule = make_schedule(opt_config, total_steps)
  name = opt_config.name
  if name == "adam":
    tx = optax.adam(schedule)
  elif name == "adamw":
    tx = optax.adamw(schedule, weight_decay=opt_config.weight_decay)
  elif name == "sgd":
    tx = optax.sgd(schedule, momentum=opt_config.momentum or None)
  else:
    raise ValueError(f"Unknown optimizer.name {name!r}; choose one of {', '.join(OPTIMIZERS)}")
  if opt_config.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(opt_config.grad_clip), tx)
  return tx

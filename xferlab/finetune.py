"""The optimizer of a run: schedules, freezing, discriminative rates, gradual unfreezing.

``build_optimizer(config, params, total_steps)`` is what the trainer calls. With
no fine-tuning control switched on it returns the plain optax chain of
``config.optimizer`` (optional global-norm clipping, then ``adam`` / ``adamw`` /
``sgd`` with a ``constant`` / ``cosine`` / ``warmup_cosine`` /
``slanted_triangular`` schedule). Otherwise every parameter gets a label derived
from its path in the pure parameter dict (``xferlab.param_paths``) and the
update runs through ``optax.multi_transform``:

* **freezing** (``finetune.frozen``, path prefixes; plus the embedding when
  ``model.freeze_embeddings``): frozen leaves get ``optax.set_to_zero`` -- no
  gradient step, no weight decay, no momentum, no optimizer state;
* **discriminative learning rates** (``finetune.discriminative_factor``, ULMFiT's
  2.6; 0 or 1 = off): the layer groups of ``ulmfit_groups`` (embedding, each
  RNN layer, then everything else as the *top* group) are ordered bottom to
  top; the top group gets the schedule's rate, the group ``k`` below it the
  rate divided by ``factor ** k``;
* **gradual unfreezing** (``finetune.unfreeze_every`` steps per stage; 0 = off):
  stage ``s`` (steps ``[(s-1)·E, s·E)``) trains the top ``s`` groups, so the
  top group trains from step 0, the group ``k`` below it from step ``k·E``. The
  stage is computed from optax step counters inside the jitted update, so
  changing stage never recompiles.

Optimizer state across gradual unfreezing (the design decision): a group's
optimizer (Adam moments *and* Adam's bias-correction count, SGD momentum) is
wrapped in ``optax.transforms.conditionally_mask``, which, while the group is
frozen, returns zero updates and passes the inner state through *unchanged*.
So when a group unfreezes at step ``k·E`` its optimizer starts exactly as a
fresh one: zero moments and a count of 0, hence the usual bias correction and
an ordinary first Adam step. (Had the group's Adam merely seen zero gradients
while frozen, its moments would be zero but its count would be ``k·E``, so bias
correction would be skipped and its first few hundred steps would be up to
several times too large.) The learning-rate *schedule* is not restarted: it is
read from a counter that runs from step 0 for every group, so a group that
unfreezes late starts at the schedule's current rate times its discriminative
factor. Gradients of frozen and not yet unfrozen groups are zeroed before
global-norm clipping, so they never shrink the steps of the trainable groups.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import optax

from xferlab.param_paths import (check_prefixes, has_prefix, leaf_paths, map_with_paths,
                                 split_prefix)

SCHEDULES = ("constant", "cosine", "warmup_cosine", "slanted_triangular")
OPTIMIZERS = ("adam", "adamw", "sgd")
TOP = "top"          # the label of the top layer group (everything no other group claims)
FROZEN = "frozen"    # the label of frozen parameters


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


def ulmfit_groups(params: Any) -> list[tuple[str, str]]:
  """ULMFiT's layer groups of our encoder, bottom to top, as ``(name, prefix)`` pairs.

  ``embed`` (every ``.../encoder/embed``), then ``layer0``, ``layer1``, ...
  (every ``.../encoder/rnn/layers/<i>``; both directions of a bidirectional
  layer). Everything else (the classifier head, the transfer module, a
  decoder) is the top group, ``TOP``, which ``param_labels`` assigns by default.
  A name may carry several prefixes (a model with two encoders).
  """
  embed, layers = [], {}
  for path in leaf_paths(params):
    for j in range(len(path) - 1):
      if path[j] != "encoder":
        continue
      if path[j + 1] == "embed":
        embed.append(path[:j + 2])
      elif path[j + 1:j + 3] == ("rnn", "layers") and len(path) > j + 3:
        layers.setdefault(int(path[j + 3]), []).append(path[:j + 4])
  unique = lambda paths: list(dict.fromkeys("/".join(p) for p in paths))
  groups = [("embed", p) for p in unique(embed)]
  for i in sorted(layers):
    groups += [(f"layer{i}", p) for p in unique(layers[i])]
  return groups


def group_names(groups: Sequence[tuple[str, str]], default: str = TOP) -> list[str]:
  """The group names bottom to top: in order of first appearance, then ``default``."""
  names = list(dict.fromkeys(name for name, _ in groups))
  return [n for n in names if n != default] + [default]


def param_labels(params: Any, groups: Sequence[tuple[str, str]], frozen: Sequence[str] = (),
                 default: str = TOP) -> Any:
  """A pytree like ``params`` holding each leaf's label (a ``str``).

  A leaf under any ``frozen`` prefix is labeled ``FROZEN``; otherwise it takes
  the name of the first group whose prefix it lies under, else ``default``.
  Raises ``ValueError`` if a frozen or group prefix names no parameter.
  """
  if FROZEN in {name for name, _ in groups} | {default}:
    raise ValueError(f"{FROZEN!r} is reserved for frozen parameters; rename that group")
  check_prefixes(params, frozen, "finetune.frozen prefixes")
  check_prefixes(params, [p for _, p in groups], "Layer-group prefixes")
  frozen = [split_prefix(p) for p in frozen]
  groups = [(name, split_prefix(p)) for name, p in groups]

  def label(path, _):
    if any(has_prefix(path, f) for f in frozen):
      return FROZEN
    return next((name for name, prefix in groups if has_prefix(path, prefix)), default)

  return map_with_paths(label, params)


def learning_rate_multipliers(names: Sequence[str], factor: float) -> dict[str, float]:
  """``{name: factor ** -k}`` for groups ``names`` (bottom to top), ``k`` counted from the top.

  ``factor`` 0 or 1 switches discriminative rates off (every multiplier 1).
  """
  if factor < 0:
    raise ValueError(f"discriminative_factor must be >= 0, got {factor}")
  top = len(names) - 1
  return {n: (1.0 / factor ** (top - i) if factor else 1.0) for i, n in enumerate(names)}


def unfreeze_steps(names: Sequence[str], every: int) -> dict[str, int]:
  """``{name: first step it trains}``: ``k · every`` for the group ``k`` below the top.

  ``every`` 0 switches gradual unfreezing off (every group trains from step 0).
  """
  if every < 0:
    raise ValueError(f"unfreeze_every must be >= 0, got {every}")
  top = len(names) - 1
  return {n: (top - i) * every for i, n in enumerate(names)}


def _from_step(inner: optax.GradientTransformation, start: int) -> optax.GradientTransformation:
  """``inner`` from step ``start`` on; before it, zero updates and ``inner``'s state untouched."""
  if start <= 0:
    return inner
  return optax.transforms.conditionally_mask(inner, lambda step: step >= start)


def make_finetune_optimizer(
    direction_fn: Callable[[], optax.GradientTransformation], params: Any, *,
    learning_rate: float | optax.Schedule, groups: Sequence[tuple[str, str]] | None = None,
    frozen: Sequence[str] = (), discriminative_factor: float = 2.6, unfreeze_every: int = 0,
    grad_clip: float = 0.0) -> optax.GradientTransformation:
  """An optax transformation with per-group rates, frozen subtrees and gradual unfreezing.

  Args:
    direction_fn: builds the learning-rate-free optimizer of one group
      (``lambda: optax.scale_by_adam()``; see ``direction``). Called once per group.
    params: the pure parameter dict (only its structure and paths are read).
    learning_rate: the top group's rate, a float or an optax schedule of the
      global step.
    groups: ``(name, prefix)`` pairs bottom to top (default ``ulmfit_groups``);
      leaves under no prefix form the top group ``TOP``.
    frozen: prefixes of subtrees that never change.
    discriminative_factor: group ``k`` below the top trains at
      ``learning_rate / factor ** k``; 0 or 1 = the same rate everywhere.
    unfreeze_every: steps per gradual-unfreezing stage; group ``k`` below the top
      trains from step ``k · unfreeze_every``. 0 = everything trains from step 0.
    grad_clip: global-norm clipping of the trainable gradients; 0 = none.

  See the module docstring for how the optimizer state of a group that
  unfreezes is handled.
  """
  groups = ulmfit_groups(params) if groups is None else list(groups)
  labels = param_labels(params, groups, frozen)
  names = group_names(groups)
  rates = learning_rate_multipliers(names, discriminative_factor)
  starts = unfreeze_steps(names, unfreeze_every)

  def group_rate(name):
    mult = rates[name]
    if callable(learning_rate):
      return lambda count: learning_rate(count) * mult
    return learning_rate * mult

  transforms = {FROZEN: optax.set_to_zero()}
  for name in names:
    transforms[name] = optax.chain(_from_step(direction_fn(), starts[name]),
                                   optax.scale_by_learning_rate(group_rate(name)))
  tx = optax.multi_transform(transforms, labels)
  if grad_clip:
    # Zero what does not train yet, so that only trainable gradients enter the norm.
    gates = {FROZEN: optax.set_to_zero()}
    gates.update({name: _from_step(optax.identity(), starts[name]) for name in names})
    tx = optax.chain(optax.multi_transform(gates, labels), optax.clip_by_global_norm(grad_clip),
                     tx)
  return tx


def frozen_prefixes(config, params: Any) -> tuple[str, ...]:
  """``finetune.frozen`` plus, with ``model.freeze_embeddings``, every encoder embedding."""
  from xferlab.embeddings import embedding_paths  # pylint: disable=import-outside-toplevel
  frozen = tuple(config.finetune.frozen)
  if config.model.freeze_embeddings:
    frozen += tuple("/".join(p) for p in embedding_paths(params))
  return frozen


def build_optimizer(config, params: Any, total_steps: int) -> optax.GradientTransformation:
  """The optimizer of a run: ``config.optimizer`` plus the ``config.finetune`` controls.

  ``params`` is the pure parameter dict the trainer optimizes (its paths give
  the labels). Without frozen parameters, discriminative rates or gradual
  unfreezing this is ``make_optimizer(config.optimizer, total_steps)``.
  """
  o, f = config.optimizer, config.finetune
  frozen = frozen_prefixes(config, params)
  factor = f.discriminative_factor if f.discriminative_factor != 1 else 0
  if not frozen and not factor and not f.unfreeze_every:
    return make_optimizer(o, total_steps)
  direction(o)  # fail early on an unknown optimizer name
  groups = ulmfit_groups(params)
  if config.task == "language_model" and config.model.tie_embeddings:
    # The tied embedding is also the softmax layer: it trains with the top group, as in
    # ULMFiT's language-model fine-tuning (fastai's awd_lstm_lm_split), not at the lowest rate.
    groups = [(name, prefix) for name, prefix in groups if name != "embed"]
  return make_finetune_optimizer(
      lambda: direction(o), params, learning_rate=make_schedule(o, total_steps),
      groups=groups, frozen=frozen, discriminative_factor=factor,
      unfreeze_every=f.unfreeze_every, grad_clip=o.grad_clip)

r"""Differentially private training: DP-SGD (Abadi et al. 2016) and its privacy accountant.

Switched on by ``privacy.clip_norm`` = C > 0 (``xferlab.defaults``). The trainer's step then
takes, instead of the batch's mean gradient,

  g = (Σ_i clip_C(∇ℓ_i) + N(0, σ² C² I)) / B,     clip_C(v) = v · min(1, C / ‖v‖₂),

``∇ℓ_i`` the gradient of example ``i``'s loss alone (``jax.vmap(jax.grad(...))`` over the
batch rows, inside the jitted step), ``B = data.batch_size`` (padding rows have weight 0 and
a zero gradient: they add nothing), σ = ``privacy.noise_multiplier``. Clipping, noise and
averaging are optax's ``contrib.differentially_private_aggregate``; its key is drawn from
the run's key and step, so a resumed or vmapped run draws the noise a single run would.
Whatever follows (global-norm clipping, Adam, fine-tuning masks, the moving average) is
post-processing and costs no privacy. Parameters that never train (``finetune.frozen``,
its entry ``"embedding"`` included) are left out of each example's norm; groups that gradual
unfreezing has not reached yet are not (they count until they train). ``privacy.clip_norm
= 0`` leaves the step untouched: the same program as without this module.

**What is private.** The unit is one row of a training batch. For classification that
is one labeled training review (``source_train``; with ``data.in_domain`` the target
domain's labeled reviews -- the private-transfer use case,
``experiments/sentiment/private_transfer.py``). With DANN (``transfer.method = "dann"``)
a row is a pair: labeled source review ``i`` with unlabeled target review ``i`` of the
same step, whose joint gradient is clipped, so each review of either kind is protected;
ε is computed for the smaller of the two sets (the larger sampling rate), which covers
both. Not private: the tokenizer's vocabulary when it is learned from the training text
(use a public one, ``data.tokenizer_path``; a warning says so), model selection on a
validation split of private data (``train.early_stopping_metric``; a fixed budget,
``""``, releases the last model) and the evaluation metrics. The accountant assumes
the noise is secret: ``seed`` must be too.

**Tasks.** Batch rows must be independent examples: classification, with
``transfer.method`` none or dann. CORAL and MMD compare whole batches and the
information-maximization term (``transfer.target_entropy``) reads the batch's mean
prediction, so no per-example gradient exists; a language model's rows carry state
across batches. Those are refused.

**Accounting** (``epsilon``, Google's ``dp-accounting``). Each step is the Poisson-
subsampled Gaussian mechanism with sampling rate q = B / N (N training examples) and
noise multiplier σ; T steps compose (``SelfComposedDpEvent``), and the RDP accountant
(or PLD, ``privacy.accountant``) gives ε at ``privacy.delta`` under add-or-remove-one
adjacency. *Our batches are not Poisson samples*: each epoch is a shuffled, length-bucketed
partition of the data into batches of B. Like most of the DP-SGD literature (Abadi et al.
2016 and the libraries that follow it) we report the Poisson accounting for this
shuffled sampler; the two are not equivalent, and the ε of shuffled batches can be
larger (Chua et al. 2024, "How Private are DP-SGD Implementations?"). The ε reported is
therefore the standard but heuristic number, not a proof about this sampler.

``privacy.target_epsilon`` > 0 solves σ (``noise_multiplier_for``) so that all the run's
``total_steps`` spend that ε; training stopped early spends less. The reports:
``privacy_epsilon`` in every evaluation row of ``metrics.jsonl`` (steps so far) and in
``results.json`` (steps trained), with ``privacy_delta``, ``privacy_noise_multiplier``,
``privacy_clip_norm``, ``privacy_sampling_rate``, ``privacy_examples`` and ``privacy_steps``;
and per step the share of real rows whose gradient was clipped (``dp_clipped_fraction``)
and their mean norm before clipping (``dp_example_grad_norm``), to choose C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import warnings

import jax
import jax.numpy as jnp
import optax

from xferlab.param_paths import has_prefix, map_with_paths, split_prefix
from xferlab.transfer import model_based

PRIVATE_TASKS = ("classification",)
BATCH_LEVEL_TRANSFER = ("coral", "mmd")   # losses of whole batches: no per-example gradient


class PrivacyWarning(UserWarning):
  """A part of a private run that its ε does not cover (a vocabulary learned from the data)."""


def enabled(config) -> bool:
  """Whether ``config`` trains with DP-SGD (``privacy.clip_norm`` > 0)."""
  section = config.get("privacy")
  return bool(section is not None and section.clip_norm > 0)


def check(config) -> None:
  """Refuses (``ValueError``) a private configuration whose rows are not independent
  examples, and warns (``PrivacyWarning``) about what its ε will not cover."""
  if not enabled(config):
    return
  p, problems = config.privacy, []
  if config.task not in PRIVATE_TASKS:
    problems.append(f"task {config.task!r} (DP-SGD needs independent rows: "
                    f"{', '.join(PRIVATE_TASKS)})")
  if config.transfer.method in BATCH_LEVEL_TRANSFER:
    problems.append(f"transfer.method {config.transfer.method!r} (a loss of whole batches)")
  if config.transfer.get("target_entropy", 0.0) > 0:
    problems.append("transfer.target_entropy > 0 (reads the batch's mean prediction)")
  if not 0.0 < p.delta < 1.0:
    problems.append(f"privacy.delta = {p.delta} (must lie in (0, 1))")
  if problems:
    raise ValueError("privacy.clip_norm > 0 (DP-SGD) does not support: " + "; ".join(problems))
  accounting()   # installed? fail before anything is written
  if not config.data.tokenizer_path:
    warnings.warn("DP-SGD with a tokenizer trained on the training text: its vocabulary is "
                  "not covered by ε (set data.tokenizer_path to a public tokenizer)",
                  PrivacyWarning, stacklevel=2)
  if not p.noise_multiplier and not p.target_epsilon:
    warnings.warn("privacy.clip_norm > 0 without noise (noise_multiplier and target_epsilon "
                  "0): clipping only, ε is infinite", PrivacyWarning, stacklevel=2)


# ------------------------------------------------------------------------------
# The accountant.

def accounting():
  """Google's ``dp_accounting`` (the optional dependency ``pip install -e ".[privacy]"``)."""
  try:
    import dp_accounting   # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("DP-SGD's accountant needs dp-accounting: pip install -e \".[privacy]\" "
                      "(or pip install dp-accounting)") from e
  return dp_accounting


def dp_event(sampling_rate: float, noise_multiplier: float, steps: int):
  """``steps`` compositions of the Poisson-subsampled Gaussian mechanism."""
  dp_accounting = accounting()
  step = dp_accounting.PoissonSampledDpEvent(
      sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier))
  return dp_accounting.SelfComposedDpEvent(step, int(steps))


def make_accountant(kind: str = "rdp", orders=None):
  """A fresh ``dp_accounting`` accountant: ``rdp`` (its default orders, or ``orders``) or
  ``pld``."""
  dp_accounting = accounting()
  if kind == "rdp":
    return dp_accounting.rdp.RdpAccountant(orders) if orders else dp_accounting.rdp.RdpAccountant()
  if kind == "pld":
    return dp_accounting.pld.PLDAccountant()
  raise ValueError(f"Unknown privacy.accountant {kind!r}; choose rdp or pld")


@contextlib.contextmanager
def quiet_accountant():
  """Silences ``dp_accounting``'s absl warnings about RDP orders it had to leave out (large
  sampling rates at orders near 1): the ε it returns is still a valid bound."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


@functools.lru_cache(maxsize=4096)
def epsilon(sampling_rate: float, noise_multiplier: float, steps: int, delta: float,
            accountant: str = "rdp", orders: tuple | None = None) -> float:
  """ε at ``delta`` of ``steps`` DP-SGD steps at ``sampling_rate`` with ``noise_multiplier``
  (0 for no step, infinite without noise)."""
  if steps <= 0 or sampling_rate <= 0:
    return 0.0
  if noise_multiplier <= 0:
    return math.inf
  acc = make_accountant(accountant, orders)
  with quiet_accountant():
    acc.compose(dp_event(sampling_rate, noise_multiplier, steps))
    return float(acc.get_epsilon(delta))


@functools.lru_cache(maxsize=256)
def noise_multiplier_for(target_epsilon: float, sampling_rate: float, steps: int, delta: float,
                         accountant: str = "rdp", tol: float = 1e-4) -> float:
  """The smallest σ (within ``tol``, rounded up) whose ``steps`` steps spend at most
  ``target_epsilon`` at ``delta`` (``dp_accounting.calibrate_dp_mechanism``)."""
  dp_accounting = accounting()
  if steps <= 0:
    return 0.0
  with quiet_accountant():
    sigma = dp_accounting.calibrate_dp_mechanism(
        lambda: make_accountant(accountant), lambda s: dp_event(sampling_rate, s, steps),
        target_epsilon, delta, bracket_interval=dp_accounting.LowerEndpointAndGuess(0.1, 1.0),
        tol=tol)
  sigma = float(sigma) + tol
  while epsilon(sampling_rate, sigma, steps, delta, accountant) > target_epsilon:
    sigma += tol
  return sigma


def training_examples(stream) -> int:
  """N of the sampling rate: the examples a training stream draws rows from (the smaller
  side of a paired source / target stream)."""
  parts = (stream.source, stream.target) if hasattr(stream, "source") else (stream,)
  return min(len(part.sequences) for part in parts)


@dataclasses.dataclass(frozen=True)
class Budget:
  """A private run's DP-SGD settings, resolved: C, σ (given or solved), q, δ."""
  clip_norm: float
  noise_multiplier: float
  sampling_rate: float
  delta: float
  examples: int
  total_steps: int
  accountant: str = "rdp"

  def epsilon(self, steps: int) -> float:
    return epsilon(self.sampling_rate, self.noise_multiplier, int(steps), self.delta,
                   self.accountant)

  def report(self, steps: int) -> dict[str, float]:
    """What ``results.json`` records after ``steps`` steps."""
    return {"privacy_epsilon": self.epsilon(steps), "privacy_delta": self.delta,
            "privacy_noise_multiplier": self.noise_multiplier,
            "privacy_clip_norm": self.clip_norm, "privacy_sampling_rate": self.sampling_rate,
            "privacy_examples": self.examples, "privacy_steps": int(steps)}


def budget(config, stream, total_steps: int) -> Budget | None:
  """The ``Budget`` of a private run training ``total_steps`` on ``stream`` (None when
  DP-SGD is off)."""
  if not enabled(config):
    return None
  p = config.privacy
  examples = training_examples(stream)
  q = min(1.0, config.data.batch_size / examples)
  sigma = (noise_multiplier_for(p.target_epsilon, q, total_steps, p.delta, p.accountant)
           if p.target_epsilon > 0 else float(p.noise_multiplier))
  return Budget(float(p.clip_norm), sigma, q, float(p.delta), examples, int(total_steps),
                p.accountant)


def hparams(run_budget: Budget | None) -> dict[str, jax.Array]:
  """The traced DP-SGD values of the step's ``hparams`` (none when off): changing C or σ
  never recompiles."""
  if run_budget is None:
    return {}
  return {"dp_clip_norm": jnp.float32(run_budget.clip_norm),
          "dp_noise_multiplier": jnp.float32(run_budget.noise_multiplier)}


def evaluation_metrics(run_budget: Budget | None, steps: int) -> dict[str, float]:
  """What an evaluation row of ``metrics.jsonl`` records (nothing when off)."""
  return {} if run_budget is None else {"privacy_epsilon": run_budget.epsilon(steps)}


# ------------------------------------------------------------------------------
# The private gradient (traced, inside the jitted step).

def row_weights(batch) -> jax.Array:
  """``float[B]``: 1 on a batch's real rows, 0 on padding (a paired batch: its source rows)."""
  rows = batch["source"] if "source" in batch else batch
  return rows["weights"].astype(jnp.float32)


def batch_rows(batch) -> int:
  """B, the rows every leaf of ``batch`` has on its leading axis."""
  sizes = {leaf.shape[0] for leaf in jax.tree.leaves(batch)}
  if len(sizes) != 1:
    raise ValueError(f"DP-SGD needs one row per example in every batch array; got leading "
                     f"sizes {sorted(sizes)}")
  return sizes.pop()


def without_frozen(grads, frozen_prefixes) -> dict:
  """``grads`` with the leaves under ``frozen_prefixes`` replaced by zeros, so parameters
  that never train take no share of the clipping norm (nor memory: XLA drops their
  per-example gradients)."""
  prefixes = [split_prefix(p) for p in frozen_prefixes]
  return map_with_paths(
      lambda path, g: jnp.zeros_like(g) if any(has_prefix(path, p) for p in prefixes) else g,
      grads)


def value_and_grad(loss_fn, params, batch, key, dp_hparams, frozen_prefixes=()):
  """DP-SGD's ``((loss, (metrics, None)), gradient)`` of one batch.

  ``loss_fn(params, batch, key) -> (loss, (metrics, task_state))`` is the task's loss
  of a batch with dropout key ``key``; it is called on each row alone (a batch of one,
  with a key of its own) under ``jax.vmap``. ``dp_hparams`` holds ``dp_clip_norm`` and
  ``dp_noise_multiplier`` (``hparams``). The loss and metrics are means over the real rows.
  """
  rows = batch_rows(batch)
  example_keys = jax.random.split(jax.random.fold_in(key, 1), rows)
  examples = jax.tree.map(lambda x: x[:, None], batch)

  def one(example, example_key):
    (loss, (out, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, example, example_key)
    return loss, out, grads

  losses, outs, grads = jax.vmap(one)(examples, example_keys)
  grads = without_frozen(grads, frozen_prefixes)
  norms = jax.vmap(optax.tree.norm)(grads)
  clip, sigma = dp_hparams["dp_clip_norm"], dp_hparams["dp_noise_multiplier"]
  noise_key = jax.random.wrap_key_data(jax.random.fold_in(key, 2))
  aggregate = optax.contrib.differentially_private_aggregate(clip, sigma, noise_key)
  grads, _ = aggregate.update(grads, aggregate.init(params))
  w = row_weights(batch)
  mean = lambda v: jnp.sum(w * v.astype(jnp.float32)) / jnp.maximum(jnp.sum(w), 1.0)
  out = dict(jax.tree.map(mean, outs), dp_clipped_fraction=mean(norms > clip),
             dp_example_grad_norm=mean(norms))
  return (mean(losses), (out, None)), grads


def frozen_prefixes(config, params) -> tuple[str, ...]:
  """The parameter prefixes a run never updates (``transfer.model_based.frozen_prefixes``)."""
  return model_based.frozen_prefixes(config, params)

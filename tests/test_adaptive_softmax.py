"""Adaptive softmax: a normalized distribution, the full softmax without cutoffs, an exact
training loss whichever way the tails are computed, finite gradients, the LM wiring."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab.models import adaptive_softmax as asm

V, D, N = 60, 16, 40
CUTOFFS = (10, 30)


def _head(cutoffs=CUTOFFS, tied=True, seed=0):
  head = asm.AdaptiveSoftmax(D, V, cutoffs, div_value=2.0, tied=tied, rngs=nnx.Rngs(params=seed))
  rng = np.random.default_rng(seed)
  # non-zero biases, so that the checks see them
  head.head_bias[...] = jnp.asarray(rng.normal(size=head.head_bias.shape), jnp.float32)
  for tail in head.tails:
    tail.bias[...] = jnp.asarray(rng.normal(size=tail.bias.shape), jnp.float32)
  return head


def _data(seed=1):
  rng = np.random.default_rng(seed)
  h = jnp.asarray(rng.normal(size=(N, D)), jnp.float32)
  emb = jnp.asarray(rng.normal(size=(V, D)), jnp.float32)
  targets = rng.integers(0, V, size=N).astype(np.int32)
  targets[:3] = (0, 10, V - 1)      # cluster borders
  return h, emb, targets


@pytest.mark.parametrize("tied", [True, False])
def test_log_probabilities_normalize_over_the_whole_vocabulary(tied):
  head = _head(tied=tied)
  h, emb, _ = _data()
  logp = head.log_prob(h, emb)
  assert logp.shape == (N, V)
  np.testing.assert_allclose(jax.nn.logsumexp(logp, axis=-1), 0.0, atol=1e-5)
  assert head.tails[0].projection.shape == (D, D // 2) and head.tails[1].projection.shape == (D, D // 4)


def test_without_cutoffs_it_is_the_full_softmax_with_the_same_parameters():
  head = _head(cutoffs=())
  h, emb, targets = _data()
  full = jax.nn.log_softmax(h @ emb.T + head.head_bias[...], axis=-1)
  np.testing.assert_allclose(head.log_prob(h, emb), full, rtol=1e-6, atol=1e-6)
  nll = head.nll(h, jnp.asarray(targets), emb)
  np.testing.assert_allclose(nll, -full[np.arange(N), targets], rtol=1e-6, atol=1e-6)
  assert head.tails == [] or len(head.tails) == 0
  untied = _head(cutoffs=(), tied=False)
  full = jax.nn.log_softmax(h @ untied.head_kernel[...] + untied.head_bias[...], axis=-1)
  np.testing.assert_allclose(untied.log_prob(h), full, rtol=1e-6, atol=1e-6)


def test_training_loss_is_the_log_probability_of_the_targets_dense_or_gathered():
  head = _head()
  h, emb, targets = _data()
  expected = -np.asarray(head.log_prob(h, emb))[np.arange(N), targets]
  dense = head.nll(h, jnp.asarray(targets), emb)
  np.testing.assert_allclose(dense, expected, rtol=1e-5, atol=1e-5)
  counts = asm.tail_counts(targets[None, None], CUTOFFS)[0]
  capacities = [asm.round_capacity(c) for c in counts]
  positions = asm.tail_positions(targets, CUTOFFS, capacities)
  assert all(p.shape == (c,) for p, c in zip(positions, capacities))
  assert sorted(np.concatenate([p[p >= 0] for p in positions])) == list(
      np.flatnonzero(targets >= CUTOFFS[0]))
  gathered = head.nll(h, jnp.asarray(targets), emb, positions)
  np.testing.assert_allclose(gathered, expected, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="more than its capacity"):
    asm.tail_positions(targets, CUTOFFS, [1, 1])


def test_gradients_are_finite_and_agree_between_dense_and_gathered_tails():
  head = _head()
  h, emb, targets = _data()
  positions = asm.tail_positions(targets, CUTOFFS, (N, N))     # generous capacity: padding
  graphdef, params = nnx.split(head, nnx.Param)

  def loss(params, h, emb, positions):
    return nnx.merge(graphdef, params).nll(h, jnp.asarray(targets), emb, positions).mean()

  dense = jax.grad(loss, argnums=(0, 1, 2))(params, h, emb, None)
  gathered = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, h, emb, positions)
  for a, b in zip(jax.tree.leaves(dense), jax.tree.leaves(gathered)):
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert np.abs(np.asarray(dense[2])[30:]).sum() == 0       # tied: only the shortlist's rows


def test_bad_cutoffs_are_refused():
  for cutoffs in ((30, 10), (0, 10), (10, V)):
    with pytest.raises(ValueError, match="increase strictly"):
      asm.AdaptiveSoftmax(D, V, cutoffs, rngs=nnx.Rngs(0))


def test_language_model_with_adaptive_softmax_trains_and_batches_carry_positions(tmp_path):
  from tests.test_language_model import tiny_lm_config
  from xferlab.tasks import language_model as lm
  from xferlab.train import train_and_evaluate
  config = tiny_lm_config(**{"language_model.adaptive_softmax_cutoffs": (20, 60)})
  task = lm.LanguageModelTask()
  model = task.build_model(config, 100)
  assert model.softmax_bias is None and model.adaptive.shortlist == 20
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 100, size=(2, 7)))
  logp, _ = model(tokens)
  np.testing.assert_allclose(jax.nn.logsumexp(logp, axis=-1), 0.0, atol=1e-5)
  stream = np.random.default_rng(0).integers(0, 100, size=4001).astype(np.int32)
  batches = lm.StreamBatches(stream, rows=4, bptt=10, cutoffs=(20, 60))
  batch = next(batches)
  features, _ = model.features(jnp.asarray(batch["inputs"]))
  gathered = model.nll(features, jnp.asarray(batch["targets"]), batch["tail_positions"])
  dense = model.nll(features, jnp.asarray(batch["targets"]))
  np.testing.assert_allclose(gathered, dense, rtol=1e-5, atol=1e-5)
  results = train_and_evaluate(config, str(tmp_path))
  assert results["train_step_compilations"] == 1
  assert 1.0 < results["test_perplexity"] < 1e4

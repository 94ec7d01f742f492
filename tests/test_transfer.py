"""Gradient reversal, λ composition and schedules, transfer losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import losses
from xferlab.config import apply_overrides
from xferlab.data import batching
from xferlab.tasks import get_task
from xferlab.transfer.relation_based import (CoralLoss, DomainAdversarialLoss, MMDLoss, grad_reverse,
                              information_maximization)


@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
def test_gradient_reversal_gradient_is_minus_lambda_times_identity(lam):
  x = jnp.array([[0.5, -1.0, 2.0]])
  f = lambda x: jnp.sum(jnp.sin(x) * jnp.arange(3.0))
  identity_grad = jax.grad(lambda x: f(x))(x)
  reversed_grad = jax.grad(lambda x: f(grad_reverse(x, jnp.float32(lam))))(x)
  np.testing.assert_allclose(reversed_grad, -lam * identity_grad, rtol=1e-6)
  np.testing.assert_array_equal(grad_reverse(x, jnp.float32(lam)), x)   # identity forward


def test_gradient_reversal_scale_is_traced_not_static():
  f = jax.jit(jax.grad(lambda x, s: jnp.sum(grad_reverse(x, s) ** 2)))
  x = jnp.ones(3)
  for s in (0.1, 0.5, 1.0):
    np.testing.assert_allclose(f(x, jnp.float32(s)), -s * 2 * x, rtol=1e-6)
  assert f._cache_size() == 1


def test_compose_is_source_plus_lambda_times_transfer():
  assert float(losses.compose(jnp.float32(2.0), jnp.float32(3.0), jnp.float32(0.5))) == 3.5
  assert float(losses.compose(jnp.float32(2.0), None, jnp.float32(0.5))) == 2.0


def test_dann_schedule():
  lam = lambda p: float(losses.transfer_weight(p, "dann", 1.0, 0.0, 10.0))
  assert lam(0.0) == 0.0
  np.testing.assert_allclose(lam(1.0), 2 / (1 + np.exp(-10)) - 1, rtol=1e-6)
  np.testing.assert_allclose(lam(0.25), 2 / (1 + np.exp(-2.5)) - 1, rtol=1e-6)
  lo_hi = float(losses.transfer_weight(0.5, "dann", 0.5, 0.1, 5.0))
  np.testing.assert_allclose(lo_hi, 0.1 + 0.4 * (2 / (1 + np.exp(-2.5)) - 1), rtol=1e-6)
  assert float(losses.transfer_weight(0.7, "constant", 0.25)) == 0.25
  with pytest.raises(ValueError, match="constant"):
    losses.transfer_weight(0.1, "linear", 1.0)


def _batch(config, tokenizer_size=50, seed=0):
  rng = np.random.default_rng(seed)
  seqs = [list(rng.integers(4, tokenizer_size, rng.integers(3, 12))) for _ in range(8)]
  src = batching.make_batch(seqs, range(6), 8, 16, np.array([0, 1] * 4))
  tgt = batching.make_batch(seqs[::-1], range(8), 8, 16)
  return {"source": src, "target": tgt}


def test_lambda_zero_gives_exactly_the_source_only_gradients(tiny_config):
  config = apply_overrides(tiny_config, {"transfer.method": "dann"})
  task = get_task("classification")
  model = task.build_model(config, 50)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  batch = jax.tree.map(jnp.asarray, _batch(config))

  def composed(params, lam):
    return task.loss(nnx.merge(graphdef, params, rest), batch, lam, None, None)[0]

  def source_only(params):
    m = nnx.merge(graphdef, params, rest)
    return task.loss(m, batch, jnp.float32(0.0), None, None)[1][0]["source_loss"]

  g_zero = jax.grad(composed)(params, jnp.float32(0.0))
  g_src = jax.grad(source_only)(params)
  g_some = jax.grad(composed)(params, jnp.float32(0.5))
  for path, a in nnx.to_flat_state(g_zero):
    b = dict(nnx.to_flat_state(g_src))[path]
    np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value), err_msg=str(path))
  # ... while λ > 0 does change the encoder's gradient, and trains the discriminator.
  enc = lambda g: np.asarray(g["classifier"]["encoder"]["embed"]["embedding"].value)
  assert not np.array_equal(enc(g_zero), enc(g_some))
  disc = jax.tree.leaves(g_some["transfer"])
  assert all(np.any(np.asarray(x) != 0) for x in disc)
  assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(g_zero["transfer"]))


def test_source_only_arm_trains_like_lambda_zero_without_the_target_batch(tiny_config):
  """``transfer.method = "none"`` (the benchmark's λ = 0 arms): the classifier starts from the
  same weights as DANN's and gets the same gradient as DANN at λ = 0, from the source batch."""
  task = get_task("classification")
  dann_config = apply_overrides(tiny_config, {"transfer.method": "dann", "model.dropout": 0.0})
  none_config = apply_overrides(dann_config, {"transfer.method": "none"})
  dann, alone = task.build_model(dann_config, 50), task.build_model(none_config, 50)
  assert alone.transfer is None
  batch = jax.tree.map(jnp.asarray, _batch(dann_config))

  def classifier_init_and_grad(model, data):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    loss = lambda p: task.loss(nnx.merge(graphdef, p, rest), data, jnp.float32(0.0), None, None)[0]
    flat = lambda tree: {k: np.asarray(v.value) for k, v in nnx.to_flat_state(tree["classifier"])}
    return flat(params), flat(jax.grad(loss)(params))

  dann_init, dann_grad = classifier_init_and_grad(dann, batch)
  alone_init, alone_grad = classifier_init_and_grad(alone, batch["source"])
  assert alone_grad.keys() == dann_grad.keys()
  for path in alone_grad:
    np.testing.assert_array_equal(alone_init[path], dann_init[path], err_msg=str(path))
    np.testing.assert_allclose(alone_grad[path], dann_grad[path], rtol=1e-5, atol=1e-7,
                               err_msg=str(path))


def test_domain_adversarial_loss_reports_discriminator_accuracy():
  loss = DomainAdversarialLoss(4, (8,), rngs=nnx.Rngs(0))
  s, t = jnp.ones((5, 4)), -jnp.ones((7, 4))
  value, out = loss(s, t, jnp.ones(5), jnp.ones(7))
  assert value.shape == () and np.isfinite(value)
  assert 0.0 <= float(out["domain_accuracy"]) <= 1.0
  # Padding rows (weight 0) do not count.
  v2, _ = loss(s, jnp.concatenate([t, 100 * jnp.ones((3, 4))]), jnp.ones(5),
               jnp.concatenate([jnp.ones(7), jnp.zeros(3)]))
  np.testing.assert_allclose(v2, value, rtol=1e-6)


@pytest.mark.parametrize("cls", [CoralLoss, MMDLoss])
def test_discrepancy_losses_vanish_on_identical_sets_and_grow_with_shift(cls):
  x = jax.random.normal(jax.random.key(0), (64, 6))
  w = jnp.ones(64)
  same, _ = cls()(x, x, w, w)
  shifted, _ = cls()(x, 3.0 * x + 1.0, w, w)
  assert abs(float(same)) < 1e-5
  assert float(shifted) > 10 * abs(float(same)) + 1e-3


def test_information_maximization_rewards_confident_and_balanced_predictions():
  w = jnp.ones(4)
  confident_balanced = jnp.array([[9.0, -9.0], [-9.0, 9.0]] * 2)
  confident_one_class = jnp.array([[9.0, -9.0]] * 4)
  uncertain = jnp.zeros((4, 2))
  value = lambda logits, weights=w: float(information_maximization(logits, weights)[0])
  np.testing.assert_allclose(value(confident_balanced), -np.log(2), atol=1e-3)   # the minimum
  np.testing.assert_allclose(value(confident_one_class), 0.0, atol=1e-3)         # collapsed
  np.testing.assert_allclose(value(uncertain), 0.0, atol=1e-6)
  _, out = information_maximization(uncertain, w)
  np.testing.assert_allclose([out["target_entropy"], out["target_diversity"]], [np.log(2)] * 2,
                             rtol=1e-6)
  # Padding rows (weight 0) count for nothing: appended one-class rows change no value.
  padded = jnp.concatenate([confident_balanced, jnp.array([[9.0, -9.0]] * 3)])
  np.testing.assert_allclose(value(padded, jnp.concatenate([w, jnp.zeros(3)])),
                             value(confident_balanced), rtol=1e-6)
  # Its gradient vanishes at uniform predictions.
  grad = jax.grad(lambda l: information_maximization(l, w)[0])(uncertain)
  np.testing.assert_allclose(grad, 0.0, atol=1e-7)


def test_target_entropy_adds_beta_times_im_of_the_target_predictions(tiny_config):
  """``transfer.target_entropy = β``: the loss is DANN's plus β·L_im of the classifier's target
  predictions; with no ``L_transfer`` (method none) the target batches are still read."""
  task = get_task("classification")
  base = apply_overrides(tiny_config, {"transfer.method": "dann", "model.dropout": 0.0})
  batch = jax.tree.map(jnp.asarray, _batch(base))
  plain = task.build_model(base, 50)
  with_im = task.build_model(apply_overrides(base, {"transfer.target_entropy": 0.5}), 50)
  lam = jnp.float32(0.1)
  plain_loss, _ = task.loss(plain, batch, lam, None, None)
  loss, (out, _) = task.loss(with_im, batch, lam, None, None)
  target_logits, _ = with_im.classifier(batch["target"]["tokens"], batch["target"]["lengths"])
  expected_im, _ = information_maximization(target_logits, batch["target"]["weights"])
  np.testing.assert_allclose(out["im_loss"], expected_im, rtol=1e-5)
  np.testing.assert_allclose(loss, plain_loss + 0.5 * expected_im, rtol=1e-5)
  im_only = apply_overrides(base, {"transfer.method": "none", "transfer.target_entropy": 0.5})
  assert get_task("classification").build_model(im_only, 50).transfer is None
  from xferlab.tasks.classification import uses_target_batches
  assert uses_target_batches(im_only) and not uses_target_batches(
      apply_overrides(im_only, {"transfer.target_entropy": 0.0}))
  loss_none, (out_none, _) = task.loss(task.build_model(im_only, 50), batch, lam, None, None)
  assert "transfer_loss" not in out_none
  np.testing.assert_allclose(loss_none, out_none["source_loss"] + 0.5 * out_none["im_loss"],
                             rtol=1e-6)

"""Fine-tuning controls: freezing, discriminative rates, the STLR schedule, gradual unfreezing."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from xferlab import optim
from xferlab.transfer import model_based as finetune
from xferlab.config import apply_overrides
from xferlab.defaults import base_config

# Groups bottom to top, and each group's index k counted from the top.
GROUPS = ("embed", "layer0", "layer1", "top")
BELOW_TOP = {"embed": 3, "layer0": 2, "layer1": 1, "top": 0}


def _params(seed=0):
  """A pure parameter dict shaped like a 2-layer classifier with a DANN discriminator."""
  rng = np.random.default_rng(seed)
  a = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
  cell = lambda: {"cell": {"input_proj": {"kernel": a(4, 12), "bias": a(12)},
                           "hidden_proj": {"kernel": a(4, 12), "bias": a(12)}}}
  return {"classifier": {"encoder": {"embed": {"embedding": a(10, 4)},
                                     "rnn": {"layers": {0: cell(), 1: cell()}}},
                         "head": {"layers": {0: {"kernel": a(12, 2), "bias": a(2)}}}},
          "transfer": {"discriminator": {"layers": {0: {"kernel": a(12, 1), "bias": a(1)}}}}}


def _grads(params, seed):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(jax.tree.leaves(params)))
  leaves = [jax.random.normal(k, x.shape) for k, x in zip(keys, jax.tree.leaves(params))]
  return jax.tree.unflatten(jax.tree.structure(params), leaves)


def _config(**overrides):
  return apply_overrides(base_config(), {"optimizer.grad_clip": 0.0, **overrides})


def _labels(params):
  return finetune.param_labels(params, finetune.ulmfit_groups(params))


def _changed_groups(before, after, labels):
  """The set of group labels with at least one leaf that changed."""
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after)
  return {l for l, c in zip(jax.tree.leaves(labels), jax.tree.leaves(changed)) if c}


def _run(tx, params, steps, seed=0):
  """``steps`` updates with fresh random gradients; returns the params after each step."""
  state = tx.init(params)
  update = jax.jit(tx.update)
  history = [params]
  for i in range(steps):
    updates, state = update(_grads(params, seed + i), state, params)
    params = optax.apply_updates(params, updates)
    history.append(params)
  return history


def test_ulmfit_groups_of_the_encoder():
  params = _params()
  assert finetune.ulmfit_groups(params) == [
      ("embed", "classifier/encoder/embed"), ("layer0", "classifier/encoder/rnn/layers/0"),
      ("layer1", "classifier/encoder/rnn/layers/1")]
  labels = _labels(params)
  assert labels["classifier"]["encoder"]["rnn"]["layers"][1]["cell"]["input_proj"]["kernel"] \
      == "layer1"
  assert labels["classifier"]["head"]["layers"][0]["bias"] == "top"
  assert labels["transfer"]["discriminator"]["layers"][0]["kernel"] == "top"


def test_ulmfit_groups_of_a_real_bidirectional_model():
  from flax import nnx
  from xferlab.models.classifier import SequenceClassifier, TextEncoder
  rngs = nnx.Rngs(0)
  encoder = TextEncoder(30, 8, 8, 2, bidirectional=True, rngs=rngs)
  model = SequenceClassifier(encoder, 2, rngs=rngs)
  params = {"classifier": nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])}
  groups = finetune.ulmfit_groups(params)
  assert [n for n, _ in groups] == ["embed", "layer0", "layer1"]
  labels = _labels(params)
  encoder = jax.tree.leaves(labels["classifier"]["encoder"])
  assert set(encoder) == {"embed", "layer0", "layer1"}
  assert set(jax.tree.leaves(labels["classifier"]["head"])) == {"top"}
  both = labels["classifier"]["encoder"]["rnn"]["layers"][1]
  assert set(jax.tree.leaves(both["forward"])) == set(jax.tree.leaves(both["backward"])) \
      == {"layer1"}


@pytest.mark.parametrize("overrides", [
    {"optimizer.name": "adamw", "optimizer.weight_decay": 0.1, "optimizer.grad_clip": 1.0},
    {"optimizer.name": "sgd", "optimizer.momentum": 0.9},
    {"optimizer.name": "adam", "finetune.discriminative_factor": 2.6,
     "finetune.unfreeze_every": 1},
])
def test_frozen_parameters_do_not_change(overrides):
  params = _params()
  config = _config(**{"finetune.frozen": ("classifier/encoder/embed",
                                          "classifier.encoder.rnn.layers.0"), **overrides})
  history = _run(finetune.build_optimizer(config, params, 100), params, 4)
  labels = finetune.param_labels(params, finetune.ulmfit_groups(params),
                                 config.finetune.frozen)
  for before, after in zip(history, history[1:]):
    for label, a, b in zip(jax.tree.leaves(labels), jax.tree.leaves(before),
                           jax.tree.leaves(after)):
      if label == "frozen":
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _changed_groups(history[0], history[-1], labels) == {"layer1", "top"}


def test_freeze_embeddings_freezes_every_encoder_embedding():
  params = _params()
  config = _config(**{"finetune.frozen": ("embedding",)})
  assert finetune.frozen_prefixes(config, params) == ("classifier/encoder/embed/embedding",)
  history = _run(finetune.build_optimizer(config, params, 100), params, 2)
  np.testing.assert_array_equal(history[-1]["classifier"]["encoder"]["embed"]["embedding"],
                                params["classifier"]["encoder"]["embed"]["embedding"])
  assert _changed_groups(params, history[-1], _labels(params)) == {"layer0", "layer1", "top"}


def test_a_frozen_prefix_that_names_nothing_is_an_error():
  with pytest.raises(ValueError, match=r"classifier/encoder/rnn/layers/7.*classifier/encoder"):
    finetune.build_optimizer(_config(**{"finetune.frozen": ("classifier/encoder/rnn/layers/7",)}),
                             _params(), 10)


def test_discriminative_rates_give_each_group_its_rate():
  params = _params()
  config = _config(**{"optimizer.name": "sgd", "optimizer.momentum": 0.0,
                      "optimizer.learning_rate": 0.1, "finetune.discriminative_factor": 2.6})
  tx = finetune.build_optimizer(config, params, 100)
  grads = _grads(params, 0)
  updates, _ = tx.update(grads, tx.init(params), params)
  labels = _labels(params)
  for label, u, g in zip(jax.tree.leaves(labels), jax.tree.leaves(updates),
                         jax.tree.leaves(grads)):
    rate = 0.1 / 2.6 ** BELOW_TOP[label]
    np.testing.assert_allclose(u, -rate * g, rtol=1e-6)


def test_slanted_triangular_follows_howard_and_ruder():
  T, peak, cut_frac, ratio = 1000, 0.01, 0.1, 32
  schedule = optim.slanted_triangular(T, peak, cut_frac, ratio)
  cut = 100

  def paper(t):   # eq. (3) of Howard & Ruder (2018)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    return peak * (1 + p * (ratio - 1)) / ratio

  np.testing.assert_allclose(schedule(0), peak / ratio, rtol=1e-6)
  np.testing.assert_allclose(schedule(cut), peak, rtol=1e-6)
  np.testing.assert_allclose(schedule(T), peak / ratio, rtol=1e-6)
  for t in (1, 37, 99, 101, 550, 999):
    np.testing.assert_allclose(schedule(t), paper(t), rtol=1e-5)
  assert float(schedule(2 * T)) == pytest.approx(peak / ratio)   # stays at the floor
  # Through the config, as the optimizer's schedule.
  config = _config(**{"optimizer.schedule": "slanted_triangular", "optimizer.learning_rate": peak,
                      "optimizer.cut_frac": cut_frac, "optimizer.stlr_ratio": float(ratio)})
  np.testing.assert_allclose(optim.make_schedule(config.optimizer, T)(550), paper(550),
                             rtol=1e-5)


def test_gradual_unfreezing_unfreezes_top_group_first_then_down():
  params = _params()
  config = _config(**{"optimizer.name": "sgd", "optimizer.momentum": 0.9,
                      "finetune.unfreeze_every": 2, "finetune.discriminative_factor": 2.6})
  history = _run(finetune.build_optimizer(config, params, 100), params, 8)
  labels = _labels(params)
  changed = [_changed_groups(a, b, labels) for a, b in zip(history, history[1:])]
  assert changed == [{"top"}, {"top"},
                     {"top", "layer1"}, {"top", "layer1"},
                     {"top", "layer1", "layer0"}, {"top", "layer1", "layer0"},
                     set(GROUPS), set(GROUPS)]


def test_a_group_that_unfreezes_starts_with_a_fresh_adam():
  """Moments and bias-correction count of a frozen group are held back until it unfreezes."""
  params = _params()
  lr, factor, every = 0.01, 2.6, 3
  config = _config(**{"optimizer.learning_rate": lr, "finetune.discriminative_factor": factor,
                      "finetune.unfreeze_every": every})
  tx = finetune.build_optimizer(config, params, 100)
  state, update = tx.init(params), jax.jit(tx.update)
  layer1 = lambda tree: tree["classifier"]["encoder"]["rnn"]["layers"][1]
  head = lambda tree: tree["classifier"]["head"]
  fresh_layer1, fresh_head = optax.adam(lr / factor), optax.adam(lr)
  fresh_layer1_state = fresh_layer1.init(layer1(params))
  fresh_head_state = fresh_head.init(head(params))
  for step in range(every + 2):
    grads = _grads(params, step)
    updates, state = update(grads, state, params)
    expected, fresh_head_state = fresh_head.update(head(grads), fresh_head_state)
    for a, b in zip(jax.tree.leaves(head(updates)), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    if step < every:
      assert all(not np.any(u) for u in jax.tree.leaves(layer1(updates)))
    else:   # from its first trainable step on: exactly Adam started at that step
      expected, fresh_layer1_state = fresh_layer1.update(layer1(grads), fresh_layer1_state)
      for a, b in zip(jax.tree.leaves(layer1(updates)), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
      if step == every:   # bias-corrected first step: about lr / factor per coordinate
        first = np.concatenate([np.abs(np.ravel(u)) for u in jax.tree.leaves(layer1(updates))])
        np.testing.assert_allclose(first, lr / factor, rtol=1e-3)
    params = optax.apply_updates(params, updates)


def test_clipping_sees_only_the_gradients_that_train():
  params = _params()
  config = _config(**{"optimizer.name": "sgd", "optimizer.momentum": 0.0,
                      "optimizer.learning_rate": 1.0, "optimizer.grad_clip": 1.0,
                      "finetune.unfreeze_every": 10})
  tx = finetune.build_optimizer(config, params, 100)
  labels = _labels(params)
  # Huge gradients below the top; a top gradient of global norm 0.5.
  grads = jax.tree.map(lambda l, x: jnp.full(x.shape, 100.0 if l != "top" else 0.0), labels,
                       params)
  grads["classifier"]["head"]["layers"][0]["bias"] = jnp.array([0.3, 0.4])
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["classifier"]["head"]["layers"][0]["bias"], [-0.3, -0.4],
                             rtol=1e-6)
  assert not np.any(updates["classifier"]["encoder"]["embed"]["embedding"])


def test_without_finetune_controls_it_is_the_plain_optimizer():
  from xferlab import train
  params = _params()
  for name in ("adam", "adamw", "sgd"):
    config = apply_overrides(base_config(), {"optimizer.name": name,
                                             "optimizer.schedule": "warmup_cosine",
                                             "optimizer.warmup_steps": 3})
    ours = finetune.build_optimizer(config, params, 50)
    theirs = train.make_optimizer(config.optimizer, 50)
    a, b = ours.init(params), theirs.init(params)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    grads = _grads(params, 1)
    for _ in range(3):
      (ua, a), (ub, b) = ours.update(grads, a, params), theirs.update(grads, b, params)
    for x, y in zip(jax.tree.leaves(ua), jax.tree.leaves(ub)):
      np.testing.assert_array_equal(x, y)


def test_tied_language_model_embedding_trains_with_the_top_group():
  """The tied embedding is the softmax layer too: the top rate, not the lowest."""
  import optax as optax_lib
  config = apply_overrides(base_config(), {"task": "language_model", "optimizer.name": "sgd",
                                           "optimizer.momentum": 0.0, "optimizer.grad_clip": 0.0,
                                           "finetune.discriminative_factor": 2.0})
  params = {"encoder": {"embed": {"embedding": np.ones((3, 2), np.float32)},
                        "rnn": {"layers": {0: {"w": np.ones((2,), np.float32)}}}},
            "softmax_bias": np.ones((3,), np.float32)}
  tx = finetune.build_optimizer(config, params, 10)
  grads = jax.tree.map(np.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  lr = config.optimizer.learning_rate
  np.testing.assert_allclose(updates["encoder"]["embed"]["embedding"], -lr)
  np.testing.assert_allclose(updates["softmax_bias"], -lr)
  np.testing.assert_allclose(updates["encoder"]["rnn"]["layers"][0]["w"], -lr / 2.0)

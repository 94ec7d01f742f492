"""Differential privacy: DP-SGD's per-example clipping and noise, the accountant, a private run
and the membership-inference attack (xferlab.privacy, xferlab.studies.privacy)."""

import json
import os
import warnings

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("dp_accounting")

from xferlab import privacy, train   # noqa: E402
from xferlab.config import ConfigError, apply_overrides, flatten, load_experiment, validate  # noqa: E402
from xferlab.studies import privacy as mia   # noqa: E402
from xferlab.tasks import get_task   # noqa: E402
from tests.conftest import QUICKSTART, ROOT, TINY   # noqa: E402

DP = {"privacy.clip_norm": 1.0, "privacy.target_epsilon": 3.0, "train.progress_bar": False}


def _tiny(overrides=None):
  config, _ = load_experiment(QUICKSTART + ":dann")
  return apply_overrides(config, dict(TINY, **(overrides or {})))


def _dp_hparams(clip, sigma):
  return privacy.hparams(privacy.Budget(clip, sigma, 0.1, 1e-5, 64, 10))


# ------------------------------------------------------------------------------
# The accountant.

def test_accountant_matches_the_libraries_documented_examples():
  # dp_accounting's rdp_privacy_accountant_test, test_compute_epsilon_delta_gaussian: σ =
  # 4.530877117 is "chosen to obtain exactly (1, 1e-6)-DP" for one unsampled Gaussian step.
  orders = tuple(0.001 * i for i in range(1000, 100000))
  assert privacy.epsilon(1.0, 4.530877117, 1, 1e-6, "rdp", orders) == pytest.approx(1.0, abs=1e-6)
  # test_compute_rdp_poisson_sampled_gaussian: q = 0.01, σ = 2.5, 50 steps have these RDP
  # values at these orders; their ε at δ = 1e-5 is what ours must be.
  from dp_accounting.rdp import compute_epsilon
  orders = (1.5, 2.5, 5, 50, 100)
  documented = [6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02]
  expected, _ = compute_epsilon(orders, documented, 1e-5)
  assert privacy.epsilon(0.01, 2.5, 50, 1e-5, "rdp", orders) == pytest.approx(expected, rel=1e-6)


def test_epsilon_grows_with_steps_and_falls_with_noise():
  by_steps = [privacy.epsilon(0.02, 1.0, t, 1e-5) for t in (10, 100, 1000)]
  by_noise = [privacy.epsilon(0.02, s, 500, 1e-5) for s in (0.7, 1.0, 2.0, 4.0)]
  assert by_steps == sorted(by_steps) and len(set(by_steps)) == 3
  assert by_noise == sorted(by_noise, reverse=True) and len(set(by_noise)) == 4
  assert privacy.epsilon(0.02, 1.0, 0, 1e-5) == 0.0
  assert privacy.epsilon(0.02, 0.0, 10, 1e-5) == float("inf")
  # PLD accounting is tighter than RDP for the same mechanism.
  assert privacy.epsilon(0.02, 1.0, 100, 1e-5, "pld") < by_steps[1]


def test_the_noise_multiplier_is_solved_for_a_target_epsilon():
  for target in (1.0, 8.0):
    sigma = privacy.noise_multiplier_for(target, 0.03, 300, 1e-5)
    assert target - 0.01 < privacy.epsilon(0.03, sigma, 300, 1e-5) <= target
  assert (privacy.noise_multiplier_for(1.0, 0.03, 300, 1e-5)
          > privacy.noise_multiplier_for(8.0, 0.03, 300, 1e-5))


# ------------------------------------------------------------------------------
# Per-example clipping and noise.

def _linear_loss(params, batch, key):
  """Example i's gradient is its row x_i (weight 1) or 0 (weight 0)."""
  del key
  value = jnp.sum(batch["weights"] * (batch["x"] @ params["w"]))
  return value, ({"value": value}, None)


def test_clipping_bounds_each_example_and_a_huge_one_does_not_dominate():
  x = np.array([[0.3, 0.4, 0.0], [3.0, 0.0, 4.0], [0.0, 1e6, 0.0], [1.0, 1.0, 1.0]], np.float32)
  batch = {"x": jnp.asarray(x), "weights": jnp.ones(4)}
  params = {"w": jnp.zeros(3)}
  step = jax.jit(lambda b: privacy.value_and_grad(_linear_loss, params, b, jax.random.PRNGKey(0),
                                                  _dp_hparams(1.0, 0.0)))
  (_, (out, _)), grads = step(batch)
  total = 4 * np.asarray(grads["w"])          # the clipped sum (noise 0)
  clipped = x * np.minimum(1.0, 1.0 / np.linalg.norm(x, axis=1, keepdims=True))
  np.testing.assert_allclose(total, clipped.sum(0), rtol=1e-6)
  assert np.linalg.norm(clipped[2]) == pytest.approx(1.0)     # the huge example counts as C
  assert float(out["dp_clipped_fraction"]) == pytest.approx(0.75)   # all but the first
  for i in range(4):                          # each example alone: at most C
    alone = dict(batch, weights=jnp.zeros(4).at[i].set(1.0))
    norm = np.linalg.norm(4 * np.asarray(step(alone)[1]["w"]))
    assert norm <= 1.0 + 1e-6 and norm == pytest.approx(min(1.0, np.linalg.norm(x[i])), rel=1e-5)


def test_the_noise_has_std_sigma_times_clip_over_batch():
  params = {"w": jnp.zeros(20000)}
  batch = {"x": jnp.zeros((4, 20000)), "weights": jnp.zeros(4)}   # padding only
  (_, _), grads = privacy.value_and_grad(_linear_loss, params, batch, jax.random.PRNGKey(1),
                                          _dp_hparams(0.5, 2.0))
  assert float(jnp.std(grads["w"])) == pytest.approx(2.0 * 0.5 / 4, rel=0.03)
  (_, _), silent = privacy.value_and_grad(_linear_loss, params, batch, jax.random.PRNGKey(1),
                                          _dp_hparams(0.5, 0.0))
  assert not np.any(np.asarray(silent["w"]))   # padding rows add nothing


def test_frozen_parameters_take_no_share_of_the_clipping_norm():
  grads = {"classifier": {"encoder": {"embed": {"embedding": jnp.ones((2, 5, 3))},
                                      "rnn": {"kernel": jnp.ones((2, 4))}}}}
  kept = privacy.without_frozen(grads, ("classifier/encoder/embed", "classifier.other"))
  assert not np.any(np.asarray(kept["classifier"]["encoder"]["embed"]["embedding"]))
  assert np.all(np.asarray(kept["classifier"]["encoder"]["rnn"]["kernel"]) == 1)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
  """A tiny DANN classifier's task, loss and first (full) paired batch."""
  config = _tiny()
  task = get_task(config.task)
  data = task.prepare(config, str(tmp_path_factory.mktemp("classifier")))
  graphdef, params, rest = nnx.split(task.build_model(config, data.tokenizer.vocab_size),
                                     nnx.Param, ...)

  def loss_fn(p, batch, key):
    return task.loss(nnx.merge(graphdef, p, rest), batch, jnp.float32(0.1),
                     nnx.Rngs(dropout=key), None)

  return config, data, nnx.to_pure_dict(params), loss_fn, next(data.train)


def test_clipping_is_per_example_in_the_real_classifier(classifier):
  """Each (source, target) pair's contribution to the summed gradient has norm <= C, and the
  batch's sum is the sum of those contributions: clipping acts per example, not per batch."""
  _, _, params, loss_fn, batch = classifier
  clip, rows = 0.05, batch["source"]["weights"].shape[0]
  assert np.all(batch["source"]["weights"] == 1) and np.all(batch["target"]["weights"] == 1)
  step = jax.jit(lambda b: privacy.value_and_grad(loss_fn, params, b, jax.random.PRNGKey(0),
                                                  _dp_hparams(clip, 0.0))[1])
  summed = lambda g: np.concatenate([np.ravel(x) for x in jax.tree.leaves(g)]) * rows
  contributions = []
  for i in range(rows):
    only = jax.tree.map(lambda w: np.where(np.arange(rows) == i, w, 0.0).astype(w.dtype),
                        {"source": batch["source"]["weights"], "target": batch["target"]["weights"]})
    alone = {side: dict(batch[side], weights=only[side]) for side in ("source", "target")}
    contributions.append(summed(step(alone)))
    assert np.linalg.norm(contributions[-1]) <= clip * (1 + 1e-5)
  assert np.linalg.norm(contributions[0]) == pytest.approx(clip, rel=1e-4)   # it was clipped
  np.testing.assert_allclose(summed(step(batch)), np.sum(contributions, 0), atol=1e-6)


def _two_steps(config, batch, data, hparams):
  task = get_task(config.task)
  graphdef, params, rest = nnx.split(task.build_model(config, data.tokenizer.vocab_size),
                                     nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  tx = train.make_optimizer(config.optimizer, 100)
  train_step, _ = train.make_steps(task, config, graphdef, tx, 100)
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                           rng=jax.random.PRNGKey(0))
  for _ in range(2):
    state, out = train_step(state, rest, batch, hparams)
  return jax.tree.map(np.asarray, state.params), jax.device_get(out)


def _reference_two_steps(config, batch, data):
  """The trainer's step as it was before DP-SGD: the batch's gradient, the optimizer."""
  import optax
  task = get_task(config.task)
  graphdef, params, rest = nnx.split(task.build_model(config, data.tokenizer.vocab_size),
                                     nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  tx = train.make_optimizer(config.optimizer, 100)

  @jax.jit
  def step(params, opt_state, i):
    key = jax.random.fold_in(jax.random.PRNGKey(0), i)
    loss_fn = lambda p: task.loss(nnx.merge(graphdef, p, rest), batch, jnp.float32(0.1),
                                  nnx.Rngs(dropout=key), None)
    (_, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  opt_state = tx.init(params)
  for i in range(2):
    params, opt_state = step(params, opt_state, jnp.int32(i))
  return jax.tree.map(np.asarray, params)


def test_clip_zero_is_the_plain_step_and_a_huge_clip_its_mean_gradient(classifier):
  config, data, _, _, batch = classifier
  config = apply_overrides(config, {"optimizer.name": "sgd", "optimizer.momentum": 0.0,
                                    "optimizer.learning_rate": 0.5})
  hp = train.lambda_hparams(config)
  plain, plain_out = _two_steps(config, batch, data, hp)
  reference = _reference_two_steps(config, batch, data)
  assert jax.tree.all(jax.tree.map(np.array_equal, plain, reference))   # bit for bit
  # A configuration written before the privacy section existed: the same compiled step.
  old = ml_collections.ConfigDict({k: v for k, v in config.items() if k != "privacy"})
  graphdef = nnx.graphdef(get_task(config.task).build_model(config, data.tokenizer.vocab_size))
  task = get_task(config.task)
  assert not privacy.enabled(old) and not privacy.enabled(config)
  assert (train.StepCache.key(task, old, graphdef, 100, 0)
          == train.StepCache.key(task, config, graphdef, 100, 0))
  assert "dp_clipped_fraction" not in plain_out
  # Clip far above every gradient, no noise: the mean of per-example gradients is the batch's.
  private = apply_overrides(config, {"privacy.clip_norm": 1e9})
  dp, dp_out = _two_steps(private, batch, data, dict(hp, **_dp_hparams(1e9, 0.0)))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), plain, dp)
  assert dp_out["loss"] == pytest.approx(plain_out["loss"], rel=1e-5)
  assert dp_out["dp_clipped_fraction"] == 0.0


def test_private_configurations_that_cannot_work_are_refused():
  for bad in ({"transfer.method": "coral"}, {"transfer.method": "mmd"},
              {"transfer.target_entropy": 0.1}):
    with pytest.raises(ValueError, match="DP-SGD"):
      privacy.check(_tiny(dict(bad, **{"privacy.clip_norm": 1.0})))
  lm = _tiny({"privacy.clip_norm": 1.0})
  lm.task = "language_model"
  with pytest.raises(ValueError, match="language_model"):
    privacy.check(lm)
  with pytest.raises(ConfigError, match="privacy.accountant"):
    validate(_tiny({"privacy.accountant": "moments"}))
  with pytest.raises(ConfigError, match="privacy.clip_norm"):
    validate(_tiny({"privacy.clip_norm": -1.0}))
  with pytest.warns(privacy.PrivacyWarning, match="tokenizer"):
    privacy.check(_tiny({"privacy.clip_norm": 1.0, "privacy.noise_multiplier": 1.0}))
  privacy.check(_tiny({"transfer.method": "coral"}))   # off: anything goes


# ------------------------------------------------------------------------------
# A private run and the membership-inference attack on it.

@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("private") / "run")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")       # a 6-step model is degenerate; the tokenizer warning
    results = train.train_and_evaluate(_tiny(DP), workdir)
  return workdir, results


def test_a_private_run_reports_epsilon(private_run):
  workdir, results = private_run
  with open(os.path.join(workdir, "results.json")) as f:
    written = json.load(f)
  assert written == results
  assert 2.99 < written["privacy_epsilon"] <= 3.0            # all 6 steps spend the target
  assert written["privacy_steps"] == 6 and written["privacy_examples"] == 64
  assert written["privacy_sampling_rate"] == 16 / 64 and written["privacy_delta"] == 1e-5
  assert written["privacy_noise_multiplier"] > 0
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  spent = [r["privacy_epsilon"] for r in rows if r["split"] == "eval"]
  assert len(spent) == 3 and spent == sorted(spent) and spent[-1] == written["privacy_epsilon"]
  assert all("dp_clipped_fraction" in r for r in rows if r["split"] == "train")


def test_membership_inference_auc():
  rng = np.random.default_rng(0)
  same = rng.exponential(size=500)
  assert mia.loss_threshold_auc(same, same) == 0.5
  assert mia.loss_threshold_auc(rng.exponential(size=4000), rng.exponential(size=4000)) \
      == pytest.approx(0.5, abs=0.02)
  low, high = rng.uniform(0, 1, 300), rng.uniform(2, 3, 200)
  assert mia.loss_threshold_auc(low, high) == 1.0       # members' losses all lower: separable
  assert mia.loss_threshold_auc(high, low) == 0.0
  report = mia.attack_report(low, high)
  assert report["advantage_best"] == 1.0 and report["advantage_yeom"] == pytest.approx(0.5, abs=0.1)
  assert mia.dp_advantage_bound(0.0, 0.0) == 0.0
  assert 0.4 < mia.dp_advantage_bound(1.0, 1e-5) < 0.5 and mia.dp_advantage_bound(50, 0) == 1.0


def test_membership_inference_cli_on_a_private_run(private_run, capsys):
  workdir, results = private_run
  out = os.path.join(os.path.dirname(workdir), "mia.json")
  assert mia.main([os.path.dirname(workdir), "--max-examples", "40", "--out", out]) == 0
  with open(os.path.join(workdir, mia.RESULT_FILE)) as f:
    report = json.load(f)
  assert report["members"] == 40 and report["nonmembers"] == 32
  assert 0.0 <= report["auc"] <= 1.0
  assert report["privacy_epsilon"] == results["privacy_epsilon"]
  assert 0 < report["dp_advantage_bound"] < 1
  assert json.load(open(out)) == [report]
  assert "| run |" in capsys.readouterr().out


def test_the_private_transfer_experiment():
  config, _ = load_experiment(os.path.join(ROOT, "experiments", "sentiment",
                                           "private_transfer.py") + ":target=kitchen")
  assert tuple(config.seeds) == (0, 1, 2) and config.data.in_domain
  assert sorted(config.arms) == sorted(f"{p}_{e}" for p in ("lm", "lm_head", "scratch")
                                       for e in ("eps1", "eps3", "eps8", "nonprivate"))
  for name, arm in config.arms.items():
    arm_config = apply_overrides(config, flatten(arm))
    validate(arm_config)
    with warnings.catch_warnings():
      warnings.simplefilter("error", privacy.PrivacyWarning)
      privacy.check(arm_config)        # no warning: a public tokenizer, noise
    assert arm_config.data.tokenizer_path.endswith("tokenizer")
    assert bool(arm_config.init_from.path) == name.startswith("lm")
    expected = 0.0 if name.endswith("nonprivate") else float(name.split("eps")[-1])
    assert arm_config.privacy.target_epsilon == expected
    assert privacy.enabled(arm_config) == (expected > 0)


def test_private_transfer_from_a_public_source_classifier(tmp_path):
  """``public_source=DIR``: the network and tokenizer of the public classifier in DIR, its whole
  classifier restored in the ``source_*`` arms; no language model is read."""
  from xferlab.config import to_json
  amazon, _ = load_experiment(os.path.join(ROOT, "experiments", "sentiment", "amazon.py")
                              + ":source=electronics,target=electronics,arms=source_only")
  amazon.model.hidden_size = 96                     # a network the private arms must copy
  public = tmp_path / "public_electronics"
  public.mkdir()
  (public / "config.json").write_text(to_json(amazon))
  spec = os.path.join(ROOT, "experiments", "sentiment", "private_transfer.py")
  with pytest.raises(FileNotFoundError, match="holds an unfinished run"):   # no results.json
    load_experiment(f"{spec}:target=kitchen,public_source={public}")
  (public / "results.json").write_text("{}")
  config, _ = load_experiment(f"{spec}:target=kitchen,public_source={public}")
  assert sorted(config.arms) == sorted(f"{p}_{e}" for p in ("source", "source_head", "scratch")
                                       for e in ("eps1", "eps3", "eps8", "nonprivate"))
  assert config.data.tokenizer_path == str(public / "tokenizer")
  assert config.model.hidden_size == 96 and config.data.vocab_size == amazon.data.vocab_size
  for name, arm in config.arms.items():
    arm_config = apply_overrides(config, flatten(arm))
    validate(arm_config)
    assert bool(arm_config.init_from.path) == name.startswith("source")
  source = apply_overrides(config, flatten(config.arms["source_eps8"]))
  assert source.init_from.path == str(public) and tuple(source.init_from.subtrees) == ("classifier",)
  assert "amazon.py:source=electronics,target=electronics," in source.init_from.made_by
  assert "embedding" in source.finetune.frozen
  head = apply_overrides(config, flatten(config.arms["source_head_eps8"]))
  assert tuple(head.finetune.frozen) == ("classifier.encoder",) and head.init_from.path
  with pytest.raises(FileNotFoundError, match="train the public model first"):
    load_experiment(f"{spec}:target=kitchen,public_source={tmp_path / 'missing'}")

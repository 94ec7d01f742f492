"""The linear probe of frozen encoder features (xferlab.studies.probe), on features made here."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from xferlab.studies import probe  # noqa: E402


def test_balanced_subset_takes_each_class_equally_and_is_seeded():
  labels = np.array([0] * 30 + [1] * 10)
  idx = probe.balanced_subset(labels, 11, seed=3)
  assert len(idx) == 11 and len(set(idx)) == 11
  assert sorted(np.bincount(labels[idx]).tolist()) == [5, 6]
  np.testing.assert_array_equal(idx, probe.balanced_subset(labels, 11, seed=3))
  assert not np.array_equal(idx, probe.balanced_subset(labels, 11, seed=4))
  np.testing.assert_array_equal(probe.balanced_subset(labels, 40, seed=0), np.arange(40))
  with pytest.raises(ValueError, match="class-balanced"):
    probe.balanced_subset(labels, 30, seed=0)      # 15 of class 1 wanted, 10 exist


def test_linear_probe_reads_informative_features_and_not_noise():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 2, 400)
  informative = rng.normal(size=(400, 8)) + 2.0 * y[:, None]
  noise = rng.normal(size=(400, 8))
  good = probe.linear_probe(informative[:100], y[:100], informative[100:], y[100:])
  bad = probe.linear_probe(noise[:100], y[:100], noise[100:], y[100:])
  assert good["accuracy"] > 0.95 and good["C"] in probe.C_GRID
  assert 0.35 < bad["accuracy"] < 0.65


def test_the_probe_as_a_linear_head_gives_the_probe_probabilities():
  rng = np.random.default_rng(1)
  y = rng.integers(0, 2, 200)
  x = 3.0 + 5.0 * rng.normal(size=(200, 6)) + 4.0 * y[:, None]   # far from standardized
  search = probe.fit_probe(x, y)
  kernel, bias = probe.probe_as_linear_head(search, num_classes=2)
  assert kernel.shape == (6, 2) and bias.shape == (2,)
  logits = x @ kernel + bias
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  np.testing.assert_allclose(probs, search.predict_proba(x), rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="binary probe"):
    probe.probe_as_linear_head(search, num_classes=3)


def test_a_saved_probe_head_is_restored_by_init_from_and_predicts_as_the_probe(tiny_config,
                                                                               tmp_path):
  from xferlab import launch
  from xferlab.config import apply_overrides
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.studies.domain_distance import encode_features
  config = apply_overrides(tiny_config, {"classification.head_hidden": ()})
  info = probe.save_probe_head(config, str(tmp_path / "head"))
  assert info["reviews"] > 0 and info["C"] in probe.C_GRID and 0.5 <= info["train_accuracy"] <= 1
  texts, labels = load_domain_adaptation(config.data, config.seed)["source_train"]
  started = launch.build(apply_overrides(
      config, {"init_from.extra": ((str(tmp_path / "head"), ("classifier.head",)),)}))
  # The same seed builds the same encoder, so its features are the ones the probe was fit on.
  refit = probe.fit_probe(encode_features(started, list(texts)), np.asarray(labels))
  some = list(texts)[:64]
  np.testing.assert_allclose(started.predict_proba(some),
                             refit.predict_proba(encode_features(started, some)),
                             rtol=1e-3, atol=1e-4)
  with pytest.raises(ValueError, match="linear head"):
    probe.save_probe_head(apply_overrides(config, {"classification.head_hidden": (8,)}),
                          str(tmp_path / "other"))

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

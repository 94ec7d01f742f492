"""The proxy A-distance and the feature pictures (xferlab.studies.domain_distance)."""

import os

import numpy as np
import pytest

pytest.importorskip("sklearn")

from xferlab.studies import domain_distance as analysis  # noqa: E402


def test_separable_domains_are_near_two_and_identical_ones_near_zero():
  rng = np.random.default_rng(0)
  source = rng.normal(size=(400, 16))
  far = rng.normal(size=(400, 16)) + 4.0
  same = rng.normal(size=(400, 16))
  assert analysis.proxy_a_distance(source, far)["pad"] > 1.95
  identical = analysis.proxy_a_distance(source, same)
  assert identical["pad"] < 0.3 and 0.4 < identical["error"] <= 0.6
  assert identical["num_test"] == 400
  # In between: a shift along one direction is partly separable.
  partial = analysis.proxy_a_distance(source, same + np.eye(16)[0])
  assert 0.3 < partial["pad"] < 1.9


def test_pictures_have_one_panel_per_run(tmp_path):
  rng = np.random.default_rng(1)
  panels = {"source_only": (rng.normal(size=(60, 8)), rng.normal(size=(50, 8)) + 2),
            "dann": (rng.normal(size=(60, 8)), rng.normal(size=(50, 8)))}
  s, t = analysis.project(*panels["dann"], method="pca")
  assert s.shape == (60, 2) and t.shape == (50, 2)
  path = analysis.plot_domains(panels, str(tmp_path / "pca.png"), distances={"dann": 0.1})
  assert os.path.getsize(path) > 1000
  path = analysis.plot_domains(panels, str(tmp_path / "tsne.png"), method="tsne")
  assert os.path.getsize(path) > 1000


def test_features_of_a_trained_run(tmp_path, tiny_config):
  """encode_features reads the restored classifier's pooled features; the distance is cached."""
  from xferlab.launch import restore, run_config
  run_config(tiny_config, str(tmp_path))
  restored = restore(str(tmp_path))
  texts = ["a sturdy kettle , really great", "flimsy lid", "the pan was good"]
  features = analysis.encode_features(restored, texts)
  assert features.shape == (3, restored.model.classifier.feature_size)
  one = analysis.encode_features(restored, texts[1:2])
  np.testing.assert_allclose(one[0], features[1], rtol=1e-5, atol=1e-6)   # order-independent
  first = analysis.run_domain_distance(str(tmp_path), num_texts=30)
  assert 0.0 <= first["pad"] <= 2.0 and first["num_test"] == 30
  assert analysis.run_domain_distance(str(tmp_path), num_texts=30) == first
  source, target = analysis.run_features(str(tmp_path), num_texts=30)   # kept, not re-encoded
  with np.load(tmp_path / "domain_features.npz") as kept:
    np.testing.assert_array_equal(kept["source"], source)
  assert source.shape == target.shape == (30, restored.model.classifier.feature_size)

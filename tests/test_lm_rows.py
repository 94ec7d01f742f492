"""The per-row view of a language model's evaluation adds up to the task's own perplexity."""

import numpy as np
import pytest

from tests.test_language_model import tiny_lm_config
from xferlab.studies import lm_rows


def test_rows_pool_to_the_reported_perplexity(tmp_path):
  from xferlab.train import train_and_evaluate
  results = train_and_evaluate(tiny_lm_config(), str(tmp_path))
  report = lm_rows.study(str(tmp_path))
  assert set(report) == {"valid", "test"}
  for split in ("valid", "test"):
    assert report[split]["perplexity"] == pytest.approx(results[f"{split}_perplexity"], rel=1e-4)
    assert len(report[split]["row_perplexity"]) > 1


def test_an_outlier_row_is_named_and_left_out_of_the_second_figure():
  count = np.full(4, 100.0)
  nll = np.log([80.0, 90.0, 85.0, 1e8]) * count
  report = lm_rows.split_report(nll, count, outlier=10.0)
  assert report["outlier_rows"] == [3]
  assert report["perplexity_without_outliers"] == pytest.approx(np.exp(np.log([80, 90, 85]).mean()))
  assert report["perplexity"] > 1000

"""Degenerate results warn: a constant prediction, accuracy at chance, empty outputs, BLEU 0."""

import io
import json
import types

import numpy as np
import pytest

from xferlab import callbacks as cb
from xferlab.metrics import (DegenerateResultWarning, degenerate_classification,
                             degenerate_scores, empty_outputs)
from xferlab.train import evaluate


def test_a_constant_prediction_is_degenerate():
  confusion = [[0, 40], [0, 60]]          # rows: true class; columns: predicted
  assert degenerate_classification(confusion) == "predicts class 1 for all 100 examples"


def test_accuracy_within_a_point_of_the_majority_rate_is_at_chance():
  found = degenerate_classification([[30, 30], [10, 30]])    # 60% right, majority class 60%
  assert "at chance" in found and "60.0%" in found
  assert degenerate_classification([[25, 5], [5, 65]]) is None   # 90%: a real classifier
  assert degenerate_classification(np.zeros((2, 2))) is None     # nothing evaluated
  assert degenerate_classification({"nll": 1.0, "count": 3.0}) is None   # not a classifier


def test_zero_generation_scores_are_degenerate():
  found = degenerate_scores({"test_bleu": 0.0, "valid_bleu": 12.0, "test_chrf": 3.0,
                             "val_rouge1_max": 0.0, "val_rougeL_max": 0.0,
                             "test_rouge1_max": 20.0, "test_rougeL_max": 0.0})
  assert found == ["test: BLEU is 0 (are the outputs empty?)",
                   "val: every ROUGE score is 0 (are the summaries empty?)"]


def test_all_empty_output_files_are_degenerate(tmp_path):
  (tmp_path / "test.txt").write_text("\n\n\n")
  (tmp_path / "ok.txt").write_text("un chat\n\n")
  (tmp_path / "s.jsonl").write_text("".join(json.dumps({"prediction": "", "references": ["a"]})
                                            + "\n" for _ in range(2)))
  assert empty_outputs(str(tmp_path / "test.txt")) == (
      f"all 3 outputs in {tmp_path / 'test.txt'} are empty")
  assert empty_outputs(str(tmp_path / "ok.txt")) is None
  assert "all 2 outputs" in empty_outputs(str(tmp_path / "s.jsonl"))
  assert empty_outputs(str(tmp_path / "missing.txt")) is None


class _Task:
  def eval_metrics(self, sums):
    sums = np.asarray(sums)
    return {"accuracy": float(np.trace(sums) / sums.sum())}


def _loop(tmp_path, confusion):
  """A one-run loop whose evaluation (the real ``train.evaluate``) sees ``confusion``."""
  member = types.SimpleNamespace(workdir=str(tmp_path), tracker={"best_step": None,
                                                                  "best_metrics": {}})
  loop = types.SimpleNamespace(members=[member], step=10)
  check = cb.DegenerateCheck(stream=io.StringIO())
  results = evaluate(_Task(), lambda params, rest, batch: np.asarray(batch, np.float32), None,
                     None, {"target": [confusion]}, on_sums=check.observe)
  member.tracker.update(best_step=10, best_metrics={f"target_{k}": v
                                                   for k, v in results[0].items()})
  check.on_eval(loop)
  return loop, check


def test_a_run_that_selected_a_constant_classifier_warns_in_one_line(tmp_path):
  loop, check = _loop(tmp_path, [[0, 50], [0, 50]])
  with pytest.warns(DegenerateResultWarning, match="target: predicts class 1 for all 100"):
    check.report(loop, [{}])
  printed = check.stream.getvalue().splitlines()
  assert len(printed) == 1 and printed[0].startswith("[xferlab] warning: degenerate result in")


def test_translations_all_empty_warn_and_a_good_run_does_not(tmp_path, recwarn):
  loop, check = _loop(tmp_path, [[45, 5], [5, 45]])
  check.report(loop, [{}])
  assert not [w for w in recwarn if issubclass(w.category, DegenerateResultWarning)]
  (tmp_path / "translations").mkdir()
  (tmp_path / "translations" / "test.txt").write_text("\n" * 7)
  with pytest.warns(DegenerateResultWarning) as caught:
    check.report(loop, [{"test_bleu": 0.0}])
  assert {str(w.message).split(": ", 1)[1] for w in caught} == {
      "test: BLEU is 0 (are the outputs empty?)",
      f"all 7 outputs in {tmp_path / 'translations' / 'test.txt'} are empty"}


def test_only_process_zero_reports(tmp_path, recwarn):
  loop, check = _loop(tmp_path, [[0, 50], [0, 50]])
  check.enabled = False
  check.report(loop, [{}])
  assert not recwarn.list and not check.stream.getvalue()

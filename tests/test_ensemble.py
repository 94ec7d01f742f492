"""xferlab.studies.ensemble and the sentiment benchmark's ensemble arms."""

import json
import os

import numpy as np
import pytest

from benchmarks import records
from benchmarks import sentiment as bench
from xferlab.studies import ensemble


def member(probs, labels):
  return {"target_probabilities": np.asarray(probs, np.float16),
          "target_labels": np.asarray(labels, np.int32)}


def test_the_ensemble_averages_probabilities_not_votes():
  """Example 0: one member is sure of class 0, the other unsure of class 1: the mean says 0,
  a vote would tie. The ensemble is right where the confident member is right."""
  labels = [0, 1, 1, 0]
  a = member([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.4, 0.6]], labels)   # 2 of 4 right
  b = member([[0.45, 0.55], [0.2, 0.8], [0.7, 0.3], [0.9, 0.1]], labels)   # 2 of 4 right
  assert ensemble.ensemble_metrics([a])["target_accuracy"] == 0.5
  both = ensemble.ensemble_metrics([a, b])
  assert both["target_accuracy"] == 1.0 and both["target_count"] == 4
  assert both["target_macro_f1"] == 1.0
  with pytest.raises(ValueError, match="same target examples"):
    ensemble.ensemble_metrics([a, member(a["target_probabilities"], [1, 1, 1, 0])])


def test_an_ensemble_of_runs_matches_their_evaluation_and_survives_a_record(tmp_path,
                                                                         tiny_config):
  """A one-member ensemble reproduces the run's own evaluation; a two-member one is written
  with its members; packed into a record and unpacked elsewhere, without weights, the same
  numbers come back; a run with neither weights nor predictions says what to do."""
  from xferlab.config import apply_overrides
  from xferlab.launch import run_config
  runs = [str(tmp_path / "out" / f"seed_{s}") for s in (0, 1)]
  own = [run_config(apply_overrides(tiny_config, {"seed": s}), w, verbose=False)
         for s, w in zip((0, 1), runs)]
  for run, results in zip(runs, own):
    alone = ensemble.write_ensemble([run], run + "_alone")
    for key in ("target_accuracy", "source_val_accuracy", "target_macro_f1"):
      assert alone[key] == pytest.approx(results[key], abs=1e-9), key
  both = ensemble.write_ensemble(runs, str(tmp_path / "out" / "both"), ["s0", "s1"])
  spec = json.loads((tmp_path / "out" / "both" / ensemble.ENSEMBLE).read_text())
  assert spec == {"members": ["../seed_0", "../seed_1"], "names": ["s0", "s1"]}
  assert both["train_seconds"] == 0          # a report summing its runs counts members once
  assert both["member_train_seconds"] == pytest.approx(sum(r["train_seconds"] for r in own))
  records.save(str(tmp_path / "out"), str(tmp_path / "record"))
  records.unpack(str(tmp_path / "record"), str(tmp_path / "elsewhere"))
  moved = [str(tmp_path / "elsewhere" / f"seed_{s}") for s in (0, 1)]
  assert not any(os.path.exists(os.path.join(m, "best")) for m in moved)
  again = ensemble.write_ensemble(moved, str(tmp_path / "elsewhere" / "again"), ["s0", "s1"])
  assert again == both
  os.remove(os.path.join(moved[1], ensemble.PREDICTIONS))
  with pytest.raises(ensemble.NoPredictions, match="Remove it and run the benchmark again"):
    ensemble.write_ensemble(moved, str(tmp_path / "elsewhere" / "new"), ["s0", "s1"])
  # ... unless the ensemble of these members was already computed there (read back).
  assert ensemble.write_ensemble(moved, str(tmp_path / "elsewhere" / "both"),
                                 ["s0", "s1"]) == both
  with pytest.raises(ensemble.NoPredictions):                         # not these members
    ensemble.write_ensemble(moved[::-1], str(tmp_path / "elsewhere" / "both"))


def test_the_ensemble_arms_train_their_members_and_nothing_else():
  assert bench.trained_arms(["ensemble_lm_dann", "vectors_ema", "dann"]) == [
      "vectors_ema", "lm_dann_ema", "dann"]
  assert set(bench.ENSEMBLES) <= set(bench.ARMS)
  assert all(m in bench.ARMS and m not in bench.ENSEMBLES
             for members in bench.ENSEMBLES.values() for m in members)
  assert ("ensemble_lm_dann", "lm_dann_ema") in bench.ENSEMBLE_MEMBERS
  # An ensemble with a self-trained member trains that student's teacher and recipe first.
  assert bench.trained_arms(["ensemble_lm_student"]) == ["lm_ema", "vectors_ema"]
  assert ("ensemble_lm_student", "self_train_lm") in bench.ENSEMBLE_MEMBERS

"""xferlab.transfer.self_training, xferlab.studies.pseudo_labels and the sentiment benchmark's
self-trained arms."""

import json
import os

import numpy as np
import pytest

from benchmarks import sentiment as bench
from xferlab.studies import ensemble, pseudo_labels
from xferlab.transfer import self_training


def test_the_most_confident_share_of_each_predicted_class_is_kept():
  """Class 1 is predicted 4 times and class 0 twice: half of each keeps 2 and 1 rows, the
  surest of each, not the 3 surest overall (which are all class 1)."""
  probs = np.array([[0.10, 0.90], [0.40, 0.60], [0.80, 0.20],
                    [0.05, 0.95], [0.45, 0.55], [0.65, 0.35]])
  indices, labels, confidences = self_training.select_confident(probs, 0.5)
  assert indices.tolist() == [0, 2, 3]
  assert labels.tolist() == [1, 0, 1]
  np.testing.assert_allclose(confidences, [0.90, 0.80, 0.95], rtol=1e-6)
  assert self_training.select_confident(probs, 1.0)[0].tolist() == list(range(6))
  # rows 0, 2, 3 kept; row 2's true class is 1: two of the three kept labels are right
  assert self_training.kept_accuracy(probs, [1, 0, 1, 1, 0, 0], 0.5) == pytest.approx(2 / 3)
  with pytest.raises(ValueError, match="in \\(0, 1\\]"):
    self_training.select_confident(probs, 0.0)


def test_pseudo_labels_are_read_back_only_for_the_texts_they_label(tmp_path):
  texts = ["great", "awful", "fine", "broken"]
  probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
  path = str(tmp_path / "pseudo.npz")
  summary = self_training.write_pseudo_labels(path, probs, texts, 0.5)
  assert summary == {"kept": 2, "of": 4, "fraction": 0.5, "per_class": {0: 1, 1: 1},
                     "mean_confidence": pytest.approx(0.9)}
  kept, labels = self_training.read_pseudo_labels(path, texts)
  assert kept == ["great", "awful"] and labels.tolist() == [1, 0]
  with pytest.raises(ValueError, match="labels other texts than this run's target_unlabeled"):
    self_training.read_pseudo_labels(path, texts[::-1])
  with pytest.raises(ValueError, match="3 teacher predictions for 4 texts"):
    self_training.write_pseudo_labels(path, probs[:3], texts)


def test_a_few_pseudo_labels_are_repeated_to_weigh_as_much_as_the_source():
  texts, labels = self_training.with_pseudo_labels(["a", "b", "c", "d", "e", "f"],
                                                   np.array([0, 1, 0, 1, 0, 1]),
                                                   ["x", "y"], np.array([1, 0]))
  assert texts == ["a", "b", "c", "d", "e", "f", "x", "y", "x", "y", "x", "y"]
  assert labels.tolist() == [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0]
  many = self_training.with_pseudo_labels(["a"], np.array([0]), ["x", "y", "z"],
                                          np.array([1, 1, 0]))
  assert many[0] == ["a", "x", "y", "z"]          # never fewer than once


def test_a_student_trains_on_the_source_rows_and_its_teachers_labels(tmp_path, tiny_config):
  """A teacher run labels the synthetic target's unlabeled text through the CLI; a student
  configured with the file trains on the source rows plus those, labelled as the teacher
  said."""
  from xferlab.config import apply_overrides
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.launch import run_config
  from xferlab.tasks.classification import ClassificationTask
  config = apply_overrides(tiny_config, {"transfer.method": "none", "transfer.lam": 0.0})
  teacher = str(tmp_path / "teacher")
  run_config(config, teacher, verbose=False)
  pseudo = str(tmp_path / "pseudo.npz")
  assert pseudo_labels.main([teacher, "--out", pseudo, "--fraction", "0.25"]) == 0
  corpus = load_domain_adaptation(config.data, config.seed)
  probs, texts = pseudo_labels.unlabeled_probabilities([teacher])
  assert texts == list(corpus["target_unlabeled"]) and probs.shape == (64, 2)
  kept, labels = self_training.read_pseudo_labels(pseudo, texts)
  assert len(kept) in (16, 17)                   # a quarter of each predicted class, rounded up
  assert labels.tolist() == probs.argmax(-1)[[texts.index(t) for t in kept]].tolist()
  student = apply_overrides(config, {"data.pseudo_labels": pseudo})
  (tmp_path / "student").mkdir()
  data = ClassificationTask().prepare(student, str(tmp_path / "student"))
  source_texts, source_labels = corpus["source_train"]
  repeats = max(1, round(len(source_texts) / len(kept)))
  assert len(data.train.labels) == len(source_texts) + repeats * len(kept)
  assert data.train.labels[len(source_texts):].tolist() == labels.tolist() * repeats
  results = run_config(student, str(tmp_path / "student_run"), verbose=False)
  assert 0.0 <= results["target_accuracy"] <= 1.0
  written = json.loads((tmp_path / "student_run" / "config.json").read_text())
  assert written["data"]["pseudo_labels"] == pseudo


def test_a_teacher_read_back_from_its_record_labels_as_it_did_where_it_trained(tmp_path,
                                                                               tiny_config):
  """A teacher's probabilities on the target's unlabeled text are kept in its
  predictions.npz: read back from a record, without weights, it gives the same labels; a
  record made before they were kept says what to do; with weights, such a file is completed."""
  from benchmarks import records
  from xferlab.config import apply_overrides
  from xferlab.launch import run_config
  config = apply_overrides(tiny_config, {"transfer.method": "none", "transfer.lam": 0.0})
  teacher = tmp_path / "out" / "teacher"
  run_config(config, str(teacher), verbose=False)
  probs, texts = pseudo_labels.unlabeled_probabilities([str(teacher)])
  assert probs.shape == (len(texts), 2) and len(texts) == 64
  records.save(str(tmp_path / "out"), str(tmp_path / "record"))
  records.unpack(str(tmp_path / "record"), str(tmp_path / "again"))
  again = tmp_path / "again" / "teacher"
  assert not (again / "best").exists()
  back, back_texts = pseudo_labels.unlabeled_probabilities([str(again)])
  assert back_texts == texts and np.array_equal(back, probs)

  def drop_unlabeled(run):
    with np.load(run / ensemble.PREDICTIONS) as f:
      kept = {k: f[k] for k in f.files if not k.startswith(ensemble.UNLABELED)}
    np.savez_compressed(run / ensemble.PREDICTIONS, **kept)

  drop_unlabeled(again)
  with pytest.raises(ensemble.NoPredictions, match="Remove it and run the benchmark again"):
    pseudo_labels.unlabeled_probabilities([str(again)])
  drop_unlabeled(teacher)
  completed, _ = pseudo_labels.unlabeled_probabilities([str(teacher)])
  assert np.array_equal(completed, probs)
  with np.load(teacher / ensemble.PREDICTIONS) as f:
    assert str(f[ensemble.UNLABELED + "_fingerprint"]) == ensemble.texts_fingerprint(texts)


def test_the_self_trained_arms_train_their_teacher_first_and_are_never_shared():
  assert bench.trained_arms(["self_train_lm_dann", "dann"]) == ["vectors_ema", "lm_dann_ema",
                                                                "dann"]
  assert set(bench.SELF_TRAINED) <= set(bench.ARMS)
  assert ("self_train_lm", "ensemble_lm") in bench.STUDENTS
  assert ("self_train_lm", "vectors_ema") in bench.STUDENTS
  config = bench.arm_config("A", "books", "dvd", "lm_ema", 0, [], "runs/lm_all_reviews")
  assert bench.target_free(config)
  config.data.pseudo_labels = "pseudo_labels.npz"
  assert not bench.target_free(config)


def test_the_report_says_how_clean_each_students_labels_were():
  stat = {"mean": 0.95, "std": 0.01, "values": [0.94, 0.96]}
  pairs = {"B→D": {"arms": {"self_train_lm_dann": {"pseudo_label_accuracy": stat}}},
           "D→B": {"arms": {"vectors_ema": {}}}}
  lines = bench.pseudo_label_lines(pairs)
  assert lines[-1] == "- self_train_lm_dann: B→D 95.0 ± 1.0"
  assert bench.pseudo_label_lines({"D→B": pairs["D→B"]}) == []


def test_a_self_trained_arm_runs_resumes_and_comes_back_from_its_record(tmp_path, monkeypatch):
  """books -> dvd with a tiny model, source_only as both teacher and student recipe: the
  teacher trains, labels dvd's unlabeled reviews, the student trains on them, and the two
  are averaged (an ensemble with a self-trained member); a second call
  trains nothing; the record (no weights, the pseudo-labels kept) resumes elsewhere."""
  from benchmarks import records
  from xferlab.data import catalog
  from tests.test_sentiment_benchmark import TINY
  if not catalog.data_root().is_dir():
    pytest.skip("real corpora not found")
  monkeypatch.setattr(bench, "SELF_TRAINED", {"self_train_lm": ("source_only", "source_only")})
  # ... and the teacher averaged with its student, an ensemble with a self-trained member.
  monkeypatch.setattr(bench, "ENSEMBLES", {"ensemble_lm_student": ("source_only", "self_train_lm")})
  args = ["--pairs", "books:dvd", "--seeds", "1", "--arms",
          "self_train_lm,source_only,ensemble_lm_student",
          "--out", str(tmp_path / "out"), "--distance-texts", "0"] + [
              a for item in TINY for a in ("--set", item)]
  assert bench.main(args) == 0
  student = tmp_path / "out" / "A" / "books_dvd" / "self_train_lm" / "seed_0"
  summary = json.loads((student / "pseudo_labels.json").read_text())
  assert summary["of"] == 5391 and summary["kept"] >= 2695
  assert json.loads((student / "config.json").read_text())["data"]["pseudo_labels"] == \
      "pseudo_labels.npz"
  arms = json.loads((tmp_path / "out" / "results.json").read_text())["A"]["pairs"]["B→D"]["arms"]
  teacher = np.load(student.parent.parent / "source_only" / "seed_0" / "predictions.npz")
  assert arms["self_train_lm"]["pseudo_label_accuracy"]["mean"] == pytest.approx(
      self_training.kept_accuracy(teacher["target_probabilities"], teacher["target_labels"]))
  members = [ensemble.run_predictions(str(d))
             for d in (student.parent.parent / "source_only" / "seed_0", student)]
  assert arms["ensemble_lm_student"]["target_accuracy"]["mean"] == pytest.approx(
      ensemble.ensemble_metrics(members)["target_accuracy"])
  stamp = os.path.getmtime(student / "results.json")
  assert bench.main(args) == 0
  assert os.path.getmtime(student / "results.json") == stamp
  records.save(str(tmp_path / "out"), str(tmp_path / "record"))
  records.unpack(str(tmp_path / "record"), str(tmp_path / "again"))
  again = args[:args.index("--out") + 1] + [str(tmp_path / "again")] + args[
      args.index("--out") + 2:]
  assert bench.main(again) == 0
  assert not list((tmp_path / "again").rglob("checkpoints"))
  back = json.loads((tmp_path / "again" / "results.json").read_text())["A"]["pairs"]["B→D"]
  assert back["arms"] == arms

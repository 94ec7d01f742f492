"""The IMDb benchmark's arms, its resumable bookkeeping and its report (no corpus needed)."""

import json

import pytest

from benchmarks import imdb
from xferlab.config import validate


@pytest.mark.parametrize("arm", ["scratch", "lm_imdb", "lm_imdb_resets", "lm_imdb_resets_lpft",
                                 "lm_imdb_resets_probe", "lm_wiki_imdb", "lm_wiki", "glove",
                                 "vectors"])
def test_every_arm_is_a_valid_run_at_every_budget(arm, tmp_path):
  for budget in (100, 1000, 0):
    config, module = imdb.arm_config(arm, budget, 2, str(tmp_path / "lms"),
                                     str(tmp_path / "vec"))
    validate(config)
    assert config.seed == 2 and config.data.subset_size == budget
    assert config.data.name == "imdb" and tuple(config.train.final_eval_sets) == ("target",)
    assert config.train.early_stopping_metric == "source_val_accuracy"   # never the test set
    assert config.train.num_steps >= 30 and config.train.eval_every >= 1
    if arm.startswith("lm_"):
      assert config.init_from.path.startswith(str(tmp_path / "lms"))
      assert config.init_from.subtrees == ("classifier.encoder=encoder",)
      assert config.data.tokenizer_path == config.init_from.path + "/tokenizer"
      assert config.finetune.discriminative_factor == 2.6
      stage = config.finetune.unfreeze_every / config.train.num_steps   # a group per stage
      if arm.endswith("_lpft"):       # the head alone for a fifth of the run, the embedding kept
        assert 0.17 < stage <= 0.2 and config.finetune.frozen == ("embedding",)
      else:                           # ULMFiT's: a group every tenth, everything trains
        assert 0.07 < stage <= 0.1 and config.finetune.frozen == ()
      if arm.endswith("_probe"):      # a linear head, restored from the probe fitted per run
        assert tuple(config.classification.head_hidden) == ()
        assert config.init_from.extra == ((imdb.probe_head_dir("runs", arm, budget, 2),
                                           ("classifier.head",)),)
      else:
        assert tuple(config.classification.head_hidden) == (50,) and not config.init_from.extra
    else:
      assert not config.init_from.path
    if arm in ("glove", "vectors"):
      assert config.finetune.frozen == ("embedding",) and config.model.pretrained_vectors
    assert "not found; make it first" in imdb.missing(config, module)


def test_a_missing_language_model_names_the_command_that_makes_it(tmp_path):
  config, module = imdb.arm_config("lm_wiki", 100, 0, str(tmp_path), str(tmp_path))
  assert imdb.missing(config, module).endswith(
      "make it first: python launch.py experiments/lm/wiki.py --workdir runs/wiki")


def test_an_unfinished_language_model_is_not_fine_tuned(tmp_path):
  lm = tmp_path / "lm_imdb_scratch"
  (lm / "tokenizer").mkdir(parents=True)
  (lm / "checkpoints").mkdir()
  config, module = imdb.arm_config("lm_imdb", 1000, 0, str(tmp_path), str(tmp_path))
  assert "has not finished training" in imdb.missing(config, module)
  (lm / "results.json").write_text("{}")
  assert imdb.missing(config, module) is None


def test_arms_without_a_language_model_read_whichever_imdb_tokenizer_exists(tmp_path):
  scratch_lm = tmp_path / "lm_imdb_scratch" / "tokenizer"
  scratch_lm.mkdir(parents=True)
  config, _ = imdb.arm_config("scratch", 1000, 0, str(tmp_path), str(tmp_path))
  assert config.data.tokenizer_path == str(scratch_lm)          # only the scratch LM so far
  (tmp_path / "lm_imdb" / "tokenizer").mkdir(parents=True)
  config, _ = imdb.arm_config("glove", 1000, 0, str(tmp_path), str(tmp_path))
  assert config.data.tokenizer_path == str(tmp_path / "lm_imdb" / "tokenizer")


def test_peers_alone_and_a_report_of_nothing_yet_do_not_fail(tmp_path):
  assert imdb.main(["--out", str(tmp_path), "--budgets", "1000", "--arms", "", "--peers",
                    "--report-only"]) == 0
  assert json.loads((tmp_path / "results.json").read_text()) == {}


def test_first_seed_splits_the_seeds_between_invocations(tmp_path):
  peers = tmp_path / "1000" / "peers"
  peers.mkdir(parents=True)
  for seed, accuracy in enumerate((0.5, 0.7, 0.9)):
    (peers / f"nbsvm_seed_{seed}.json").write_text(json.dumps({"target_accuracy": accuracy}))
  common = ["--out", str(tmp_path), "--budgets", "1000", "--arms", "", "--peers",
            "--report-only"]
  assert imdb.main(common + ["--first-seed", "1", "--seeds", "3"]) == 0
  stats = json.loads((tmp_path / "results.json").read_text())["1000"]["nbsvm"]
  assert stats["seeds"] == 2 and stats["test_accuracy"]["values"] == [0.7, 0.9]


def test_the_report_has_a_row_per_arm_and_a_column_per_budget(tmp_path):
  runs = {"100": {"scratch": [{"target_accuracy": 0.6, "target_macro_f1": 0.6,
                               "source_val_accuracy": 0.7},
                              {"target_accuracy": 0.8, "target_macro_f1": 0.8,
                               "source_val_accuracy": 0.9}]},
          "25000": {"scratch": [{"target_accuracy": 0.87, "target_macro_f1": 0.87,
                                 "source_val_accuracy": 0.88}], "nbsvm": []}}
  summary = imdb.summarize(runs)
  assert summary["100"]["scratch"]["test_accuracy"]["mean"] == pytest.approx(0.7)
  assert summary["100"]["scratch"]["seeds"] == 2 and "nbsvm" not in summary["25000"]
  imdb.write_reports(str(tmp_path), summary)
  assert json.loads((tmp_path / "results.json").read_text())["25000"]["scratch"]["seeds"] == 1
  table = (tmp_path / "results.md").read_text()
  assert "| arm | 100 labels | 25,000 labels |" in table
  assert "| scratch | 70.00 ± 10.00 (2) | 87.00 (1) |" in table


def test_the_smoke_arm_trains_and_scores_its_test_set_once(tmp_path):
  from xferlab import launch
  from xferlab.config import load_experiment
  from xferlab.metrics import read_metrics
  config, _ = load_experiment(imdb.EXPERIMENT + ":smoke")
  results = launch.run_config(config, str(tmp_path / "run"), verbose=False)
  assert 0.0 <= results["target_accuracy"] <= 1.0
  assert not any(k.startswith("target_") for row in read_metrics(str(tmp_path / "run"))
                 for k in row)


def test_a_finished_run_is_reported_with_the_tokenizer_folder_it_ran_with(tmp_path):
  from xferlab.config import to_json
  (tmp_path / "lm_imdb_resets" / "tokenizer").mkdir(parents=True)   # what exists now
  config, _ = imdb.arm_config("scratch", 1000, 0, str(tmp_path), str(tmp_path))
  config.data.tokenizer_path = str(tmp_path / "lm_imdb_scratch" / "tokenizer")   # then
  run = tmp_path / "out" / "1000" / "scratch" / "seed_0"
  run.mkdir(parents=True)
  (run / "config.json").write_text(to_json(config))
  (run / "results.json").write_text(json.dumps(
      {"target_accuracy": 0.7, "target_macro_f1": 0.7, "source_val_accuracy": 0.7}))
  assert imdb.main(["--out", str(tmp_path / "out"), "--budgets", "1000", "--seeds", "1",
                    "--arms", "scratch", "--lms", str(tmp_path), "--report-only"]) == 0
  stats = json.loads((tmp_path / "out" / "results.json").read_text())["1000"]["scratch"]
  assert stats["test_accuracy"]["values"] == [0.7]

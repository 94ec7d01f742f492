"""The translation and summarization benchmarks' arm handling and reports (no training)."""

from __future__ import annotations

import pytest

from benchmarks import arms, summarization, translation
from xferlab.config import ConfigError, load_experiment
from xferlab.metrics import mean_std


def test_arms_are_checked_and_parents_named():
  assert arms.selected_arms("de_full, de_10_transfer", translation.ARMS) == ["de_full",
                                                                          "de_10_transfer"]
  with pytest.raises(ConfigError, match="de_10_scratch"):
    arms.selected_arms("de_5", translation.ARMS)
  for table in (translation.ARMS, summarization.ARMS):
    for arm, (_, parent) in table.items():
      assert parent is None or table[parent][1] is None, arm   # one level of parents
  config = arms.arm_config(translation.EXPERIMENT, translation.ARMS, "de_10_transfer", 1,
                           "/tmp/out", ["train.num_steps=3"])
  assert (config.seed, config.data.subset_size, config.translation.pair) == (1, 0.1, "en-de")
  assert config.init_from.path == "/tmp/out/fr_full/seed_0" and config.train.num_steps == 3


def test_translation_report_states_the_acceptance_figures(tmp_path):
  stats = lambda *v: mean_std(v)
  results = {"de_full": {"test_bleu": stats(36.0)},
             "de_10_scratch": {"test_bleu": stats(12.0, 14.0)},
             "de_10_transfer": {"test_bleu": stats(30.0, 32.0), "train_seconds": stats(60.0, 120.0)}}
  text = translation.report(results, str(tmp_path))
  assert "| de_10_transfer | 2 | 31.0 ± 1.0 |" in text
  assert "+18.0 BLEU" in text and "86%" in text and "36.0 (acceptance: ≥ 35)" in text
  assert (tmp_path / "results.json").exists()
  assert "adversarial" not in text
  results["de_10_mixed"] = {"test_bleu": stats(33.0)}
  text = translation.report(results, str(tmp_path))
  assert "de_10_mixed − de_10_scratch: +20.0 BLEU" in text and "de_10_mixed / de_full: 92%" in text
  results.update(deen_10_transfer={"test_bleu": stats(20.0)},
                 de_10_adversarial={"test_bleu": stats(21.5)})
  assert "adversarial − plain transfer: +1.5 BLEU" in translation.report(results, str(tmp_path))


def test_summarization_report_has_baselines_comparisons_and_gallery(tmp_path):
  keys = [f"test_{k}" for k in summarization.ROUGE]
  results = {"scratch": {k: mean_std([20.0, 22.0]) for k in keys},
             "news": {k: mean_std([25.0, 25.0]) for k in keys}}
  baselines = {"lead1": {k: 31.3 for k in summarization.ROUGE},
               "oracle": {k: 44.4 for k in summarization.ROUGE}}
  rows = [{"title": f"T{i}", "document": f"First {i}. Second.", "references": [f"ref {i}"]}
          for i in range(6)]
  summaries = tmp_path / "news" / "seed_0" / "summaries"
  summaries.mkdir(parents=True)
  (summaries / "test.jsonl").write_text("".join(f'{{"prediction": "pred {i}"}}\n'
                                                for i in range(6)))
  text = summarization.report(results, baselines, rows, str(tmp_path), ["scratch", "news"])
  assert "| lead1 | - | 31.3 |" in text and "| scratch | 2 | 21.0 ± 1.0 |" in text
  assert "news − scratch: +4.0" in text and "against Lead-1 31.3" in text
  assert text.count("- **news:** pred") == 5 and "**Lead-1:** First 4." in text


def test_summarization_learning_curve_keeps_steps_and_tabulates_fractions(tmp_path):
  assert summarization.fraction_arm("news", 1.0) == "news"
  assert summarization.fraction_arm("news", 0.25) == "news_frac0.25"
  config, _ = load_experiment(f"{summarization.EXPERIMENT}:scratch")
  epochs = config.train.num_epochs
  assert summarization.fraction_overrides("scratch", 0.25) == [
      "data.subset_size=0.25", f"train.num_epochs={4 * epochs}", "train.eval_every_epochs=4"]
  curve = {"scratch": {1.0: mean_std([30.0, 32.0]), 0.25: mean_std([20.0])},
           "news": {1.0: mean_std([33.0, 33.0])}}
  text = summarization.learning_curve(curve, {0.25: 498, 1.0: 1992}, 31.3, str(tmp_path))
  assert "| 498 (0.25) | 20.0 | - | 31.3 |" in text
  assert "| 1992 (1) | 31.0 ± 1.0 | 33.0 ± 0.0 | 31.3 |" in text
  assert "- 1992 abstracts: news +2.0" in text and "498 abstracts:" not in text
  assert (tmp_path / "learning_curve.png").stat().st_size > 0
  assert (tmp_path / "learning_curve.md").read_text() == text


def test_parent_gets_its_own_overrides(tmp_path, monkeypatch):
  seen = {}
  monkeypatch.setattr(arms.launch, "run_config",
                      lambda config, workdir: seen.setdefault(workdir, config) and {})
  arms.train(summarization.EXPERIMENT, summarization.ARMS, "news", 1, str(tmp_path),
             ["data.subset_size=0.5"], parent_overrides=[])
  parent, child = (seen[arms.run_dir(str(tmp_path), arm, seed)] for arm, seed in
                   (("bbc", 0), ("news", 1)))
  assert parent.data.subset_size == 0 and child.data.subset_size == 0.5 and child.seed == 1
  assert child.init_from.path == str((tmp_path / "bbc" / "seed_0").resolve())

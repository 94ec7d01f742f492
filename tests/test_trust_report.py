"""benchmarks.trust: the studies' files of plain and adversarially trained runs, one table."""

import json
import os

from benchmarks import trust


def _write(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(obj, f)


def test_collect_groups_runs_by_arm_and_variant(tmp_path):
  plain, adv = str(tmp_path / "plain"), str(tmp_path / "adv")
  for root, accs in ((plain, (0.70, 0.80)), (adv, (0.75, 0.75))):
    for seed, acc in enumerate(accs):
      _write(f"{root}/dann/seed_{seed}/results.json", {"target_accuracy": acc})
  _write(f"{plain}/dann/seed_0/membership_inference.json", {"auc": 0.6, "advantage_yeom": 0.2})
  summary = {"clean_accuracy": 0.8, "attacked_accuracy": 0.2, "success_rate": 0.75}
  _write(str(tmp_path / "rob.json"), {"runs": {
      f"{plain}/dann/seed_0": {"word": {"summary": summary}},
      f"{adv}/dann/seed_1": {"typo": {"summary": dict(summary, attacked_accuracy=0.5)}}}})
  _write(str(tmp_path / "explain.json"), {"runs": {f"{plain}/dann/seed_0": {
      "completeness_error": {"mean": 0.001, "max": 0.004},
      "faithfulness": [{"k": 5, "top_k": {"mean_probability_drop": 0.5, "flip_rate": 0.6},
                        "random": {"mean_probability_drop": 0.05, "flip_rate": 0.1}}],
      "word_groups": {"shared": {"share": 0.5}}}}})
  results = trust.collect(plain, adv, str(tmp_path / "explain.json"), [str(tmp_path / "rob.json")])
  assert set(results) == {"dann", "dann+adv"}
  assert results["dann"]["target_accuracy"]["values"] == [0.70, 0.80]
  assert results["dann+adv"]["target_accuracy"]["mean"] == 0.75
  assert results["dann"]["word_attacked_accuracy"]["values"] == [0.2]
  assert results["dann+adv"]["typo_attacked_accuracy"]["values"] == [0.5]
  assert results["dann"]["membership_auc"]["values"] == [0.6]
  assert results["dann"]["deletion_k5_top_k_probability_drop"]["mean"] == 0.5
  text = trust.write_report(results, "books -> kitchen")
  assert "| dann+adv | 75.0 ± 0.0 |" in text and "top-k: probability drop" in text


def test_private_runs_become_an_accuracy_against_epsilon_table(tmp_path):
  pretrained, scratch = str(tmp_path / "pre"), str(tmp_path / "scr")
  for root, start, base in ((pretrained, "source", 0.8), (scratch, "scratch", 0.6)):
    for budget, drop in (("eps1", 0.2), ("eps8", 0.05), ("nonprivate", 0.0)):
      for seed in range(2):
        _write(f"{root}/{start}_{budget}/seed_{seed}/results.json",
               {"target_accuracy": base - drop + 0.01 * seed,
                **({} if budget == "nonprivate" else {"privacy_epsilon": float(budget[3:])})})
  _write(f"{scratch}/scratch_eps1/seed_0/membership_inference.json", {"auc": 0.51})
  private = trust.collect_private([pretrained, scratch])
  assert sorted(private) == sorted(f"{s}_{b}" for s in ("source", "scratch")
                                   for b in ("eps1", "eps8", "nonprivate"))
  assert private["source_eps8"]["target_accuracy"]["values"] == [0.75, 0.76]
  assert private["scratch_eps1"]["membership_auc"]["values"] == [0.51]
  assert "privacy_epsilon" not in private["source_nonprivate"]
  assert trust.collect("", "", "", []) == {}      # a record of private runs alone
  text = trust.write_report({}, "public books -> private kitchen", private)
  assert "Accuracy and robustness" not in text     # no empty table of plain runs
  # columns in order of ε, the non-private one last; one row per start
  assert "| start | ε = 1 | ε = 8 | ε = ∞ (non-private) |" in text
  assert "| source | 60.5 ± 0.5 | 75.5 ± 0.5 | 80.5 ± 0.5 |" in text
  assert "| scratch_eps1 | 1.00 ± 0.00 | 40.5 ± 0.5 | 0.510 ± 0.000 |" in text

"""The public API end to end: run, sweep, restore and predict, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from xferlab import launch
from tests.conftest import QUICKSTART, ROOT, TINY


def test_quickstart_smoke_end_to_end(tmp_path):
  results = launch.run(QUICKSTART + ":smoke", TINY, str(tmp_path))
  on_disk = json.loads((tmp_path / "results.json").read_text())
  assert set(on_disk) == {"source_only", "dann"} == set(results)
  for arm in on_disk.values():
    stat = arm["target_accuracy"]
    assert 0.0 <= stat["mean"] <= 1.0 and stat["std"] >= 0.0 and len(stat["values"]) == 1
  for arm in ("source_only", "dann"):
    run_dir = tmp_path / arm / "seed_0"
    for name in ("config.json", "metrics.jsonl", "results.json", "tokenizer/tokenizer.json"):
      assert (run_dir / name).exists(), name
    assert os.listdir(run_dir / "checkpoints") and os.listdir(run_dir / "tensorboard")
  assert json.loads((tmp_path / "source_only/seed_0/config.json").read_text())["transfer"]["lam"] == 0
  from xferlab import native     # which recurrent loops ran: they round differently
  run_results = json.loads((tmp_path / "dann/seed_0/results.json").read_text())
  assert run_results["native_loops"] == (native.instruction_set() if native.available() else None)
  assert "| source_only |" in (tmp_path / "results.md").read_text()


def test_sweep_from_python_then_restore_and_predict(tmp_path):
  rows = launch.sweep(QUICKSTART + ":dann", {"transfer.lam": [0.0, 0.1, 1.0]}, str(tmp_path),
                      overrides=TINY)
  assert [r["point"]["transfer.lam"] for r in rows] == [0.0, 0.1, 1.0]
  for name in ("sweep.json", "sweep.md", "sweep.png"):
    assert (tmp_path / name).stat().st_size > 0
  restored = launch.restore(rows[1]["workdir"])
  assert restored.config.transfer.lam == 0.1
  texts = ["a sturdy pan , really great", "flimsy lid , awful and a waste", "the"]
  probs = restored.predict_proba(texts)
  assert probs.shape == (3, 2)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(restored.predict(texts), probs.argmax(axis=1))
  # Restoring twice gives the same predictions; order of texts does not matter.
  again = launch.restore(rows[1]["workdir"]).predict_proba(texts[::-1])[::-1]
  np.testing.assert_allclose(again, probs, rtol=1e-5)


def test_rerun_in_same_workdir_resumes_instead_of_retraining(tmp_path, tiny_config):
  from xferlab.launch import run_config
  first = run_config(tiny_config, str(tmp_path))
  lines = (tmp_path / "metrics.jsonl").read_text().count("\n")
  second = run_config(tiny_config, str(tmp_path))
  assert second["target_accuracy"] == first["target_accuracy"]
  assert (tmp_path / "metrics.jsonl").read_text().count("\n") == lines   # nothing retrained
  changed = tiny_config.copy_and_resolve_references()
  changed.transfer.lam = 0.5
  with pytest.raises(ValueError, match="transfer.lam"):
    run_config(changed, str(tmp_path))


def test_restoring_an_unfinished_run_says_so(tmp_path, tiny_config, capsys):
  from xferlab.launch import run_config
  run_config(tiny_config, str(tmp_path), verbose=False)
  capsys.readouterr()
  assert launch.restore(str(tmp_path)).results and "not finished" not in capsys.readouterr().err
  os.remove(tmp_path / "results.json")                 # as if killed before its last step
  restored = launch.restore(str(tmp_path))
  assert restored.results == {} and "has not finished" in capsys.readouterr().err


def test_restore_of_a_multi_run_directory_lists_the_runs(tmp_path):
  launch.run(QUICKSTART + ":smoke", TINY, str(tmp_path))
  with pytest.raises(ValueError, match="seed_0"):
    launch.restore(str(tmp_path))


def test_cli_reports_unknown_keys_and_runs(tmp_path):
  cmd = [sys.executable, os.path.join(ROOT, "launch.py"), QUICKSTART + ":dann",
         "--set", "transfer.lamda=0.1", "--workdir", str(tmp_path)]
  bad = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert bad.returncode == 2 and "transfer.lam" in bad.stderr
  sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
  ok = subprocess.run(cmd[:3] + sets + ["--sweep", "transfer.lam=0,0.5", "--workdir",
                                        str(tmp_path)],
                      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert sorted(os.listdir(tmp_path)) == sorted(
      ["sweep.json", "sweep.md", "sweep.png", "transfer.lam=0", "transfer.lam=0.5"])

"""A corrupt newest checkpoint (a truncated data file, deleted metadata) falls back to the
previous readable one with a warning naming both; none readable names the directory."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from xferlab import checkpoint, launch
from xferlab.checkpoint import CheckpointError, CheckpointFallbackWarning, CheckpointMismatchError
from tests.conftest import QUICKSTART, TINY


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A finished tiny run (6 steps: checkpoints/4, checkpoints/6, best/6), kept pristine."""
  workdir = tmp_path_factory.mktemp("ckpt") / "run"
  launch.run(QUICKSTART + ":dann", TINY, str(workdir))
  return workdir


def _copy(trained, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(trained, run)
  return run


def _truncate_data(step_dir):
  """Cuts the array data files of a step directory to their first bytes (a copy stopped by a
  full disk). (Cutting one file in half need not hit the parameters' bytes.)"""
  data = os.path.join(step_dir, "state", "ocdbt.process_0", "d")
  for name in os.listdir(data):
    with open(os.path.join(data, name), "r+b") as f:
      f.truncate(min(8, os.path.getsize(os.path.join(data, name))))


def _delete_metadata(step_dir):
  os.remove(os.path.join(step_dir, "state", "_METADATA"))


TEXTS = ["a sturdy pan , really great", "flimsy lid , awful"]


@pytest.mark.parametrize("corrupt", [_truncate_data, _delete_metadata])
def test_restore_falls_back_from_a_corrupt_best_checkpoint(trained, tmp_path, corrupt):
  expected = launch.restore(str(trained)).predict_proba(TEXTS)
  run = _copy(trained, tmp_path)
  corrupt(run / "best" / "6")
  with pytest.warns(CheckpointFallbackWarning, match=r"best/6.*checkpoints/6"):
    restored = launch.restore(str(run))
  # The run keeps no moving average, so checkpoints/6 holds the selected parameters.
  np.testing.assert_allclose(restored.predict_proba(TEXTS), expected, rtol=1e-5)
  corrupt(run / "checkpoints" / "6")
  with pytest.warns(CheckpointFallbackWarning, match=r"checkpoints/4 \(not the selected"):
    launch.restore(str(run))
  corrupt(run / "checkpoints" / "4")
  with pytest.raises(CheckpointError, match=f"No readable checkpoint in {run}"):
    launch.restore(str(run))


@pytest.mark.parametrize("corrupt", [_truncate_data, _delete_metadata])
def test_resume_falls_back_to_the_previous_step_and_finishes(trained, tmp_path, corrupt, capsys):
  run = _copy(trained, tmp_path)
  os.remove(run / "results.json")          # as if killed after the last checkpoint
  corrupt(run / "checkpoints" / "6")
  ckpt = checkpoint.Checkpointer(str(run / "checkpoints"), None)
  try:
    assert ckpt.all_steps() == [4, 6]
  finally:
    ckpt.close()
  logged = lambda path: [(r["step"], r["split"]) for r in map(json.loads, open(path))]
  with pytest.warns(CheckpointFallbackWarning, match=r"checkpoints/6.*checkpoints/4"):
    results = launch.run(QUICKSTART + ":dann", TINY, str(run))
  assert results["steps"] == 6
  assert "resuming from its checkpoint at step 4" in capsys.readouterr().out
  # Steps 5-6, logged before the checkpoint at 6 was lost and again after resuming from 4,
  # appear once: the log reads as the uninterrupted run's.
  assert logged(run / "metrics.jsonl") == logged(trained / "metrics.jsonl")
  ckpt = checkpoint.Checkpointer(str(run / "checkpoints"), None)
  try:
    assert ckpt.latest_step() == 6       # the corrupt step was replaced by a good one
  finally:
    ckpt.close()
  launch.restore(str(run))               # and reads without a warning


def test_a_config_edited_to_another_model_is_refused_naming_the_parameter(trained, tmp_path):
  run = _copy(trained, tmp_path)
  config = json.loads((run / "config.json").read_text())
  config["model"]["hidden_size"] *= 2          # no longer the network the weights belong to
  (run / "config.json").write_text(json.dumps(config))
  with pytest.raises(CheckpointMismatchError,
                     match=r"config\.json: parameter .* has shape .* in the checkpoint"):
    launch.restore(str(run))


def test_an_empty_best_folder_warns_and_takes_the_selected_step_from_checkpoints(trained,
                                                                                 tmp_path):
  run = _copy(trained, tmp_path)
  shutil.rmtree(run / "best" / "6")              # as if killed during best/'s first save
  results = json.loads((run / "results.json").read_text())
  results["best_step"] = 4                       # the step the run selected (not the latest)
  (run / "results.json").write_text(json.dumps(results))
  with pytest.warns(CheckpointFallbackWarning, match=r"best \(.*holds no saved step\).*"
                    r"checkpoints/4$"):
    launch.restore(str(run))


def test_damaged_run_files_and_wrong_paths_are_named_in_the_error(trained, tmp_path):
  run = _copy(trained, tmp_path)
  with pytest.raises(ValueError, match=r"is not a run; the run inside it is .*run$"):
    launch.restore(str(tmp_path))              # the folder above one run
  with pytest.raises(ValueError, match="empty path"):
    launch.restore("")                         # not the whole current directory tree
  (run / "results.json").write_text("{ truncated")
  with pytest.raises(ValueError, match=r"results\.json is not valid JSON .*the run's results"):
    launch.restore(str(run))
  (run / "config.json").unlink()
  with pytest.raises(FileNotFoundError, match=r"config\.json is missing: the run's configuration"):
    launch.restore(str(run))


def test_the_metrics_log_keeps_the_rows_up_to_the_resumed_step_and_drops_a_cut_row(tmp_path):
  from xferlab.metrics import MetricWriter
  writer = MetricWriter(str(tmp_path))
  for step in (1, 2, 3):
    writer.write(step, "train", {"loss": 1.0})
  with open(writer.path, "a") as f:
    f.write('{"step": 4, "spl')                  # the kill cut this row short
  writer.keep_until(2)                           # resumed from the checkpoint at step 2
  writer.write(3, "train", {"loss": 0.5})
  writer.close()
  rows = [json.loads(line) for line in open(writer.path)]
  assert [(r["step"], r["loss"]) for r in rows] == [(1, 1.0), (2, 1.0), (3, 0.5)]

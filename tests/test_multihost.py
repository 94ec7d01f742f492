"""Multi-host for real: ``python -m xferlab.launch_local --processes 2`` runs the quick start
as two ``jax.distributed`` processes (CPU, gloo, one device each) and gets the results one
process gets with the same global batch; process 0 alone writes the run, and it resumes."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, xla_flags_with_devices

# The quick start's DANN run (one seed), shortened to 2 epochs.
EXPERIMENT = "experiments/quickstart.py:dann"
OVERRIDES = ["--set", "train.num_epochs=2"]
IGNORED = ("train_seconds", "tokens_per_second",
           "native_loops")   # one device runs the native loops, two the scan: compared below


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS=xla_flags_with_devices(None))   # one CPU device per process


def _run(command, timeout=300):
  out = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=timeout)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
  return out


def _two_processes(workdir, logdir, *extra):
  return _run([sys.executable, "-m", "xferlab.launch_local", "--processes", "2", "--logdir",
               str(logdir), "--", EXPERIMENT, *OVERRIDES, *extra, "--workdir", str(workdir)])


def _results(workdir):
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


def _assert_same_numbers(a, b):
  assert set(a) == set(b)
  assert b["native_loops"] is None   # two processes, two devices: the scan (no loops)
  for key in a:
    if key not in IGNORED:
      np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-7, err_msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  base = tmp_path_factory.mktemp("multihost")
  _run([sys.executable, "launch.py", EXPERIMENT, *OVERRIDES, "--workdir", str(base / "one")])
  out = _two_processes(base / "two", base / "logs")
  return base, out


def test_two_processes_give_the_results_of_one(runs):
  base, out = runs
  one, two = _results(base / "one"), _results(base / "two")
  assert 0.6 < one["target_accuracy"] < 1.0     # a trained model, not a constant one
  _assert_same_numbers(one, two)
  with open(base / "logs" / "process_1.log") as f:
    log = f.read()
  assert '"steps": ' in log and "results in" in log   # process 1 trained along to the end
  assert "results in" in out.stdout                     # process 0's output is streamed


def test_process_zero_alone_writes_the_run(runs):
  base, _ = runs
  assert sorted(os.listdir(base / "two")) == sorted(os.listdir(base / "one"))
  for name in ("metrics.jsonl",):
    with open(base / "one" / name) as f, open(base / "two" / name) as g:
      assert len(f.readlines()) == len(g.readlines())   # written once, not once per process
  assert sorted(os.listdir(base / "two" / "checkpoints")) == sorted(
      os.listdir(base / "one" / "checkpoints"))


def test_two_process_run_resumes_from_its_checkpoint(runs):
  base, _ = runs
  resumed = base / "resumed"
  shutil.copytree(base / "two", resumed)
  steps = sorted(int(s) for s in os.listdir(resumed / "checkpoints"))
  assert len(steps) >= 2
  shutil.rmtree(resumed / "checkpoints" / str(steps[-1]))   # killed before the last save
  os.remove(resumed / "results.json")
  _two_processes(resumed, base / "logs_resumed")
  _assert_same_numbers(_results(base / "one"), _results(resumed))


def test_a_failing_process_fails_the_launch(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "xferlab.launch_local", "--processes", "2", "--logdir",
       str(tmp_path / "logs"), "--", EXPERIMENT, "--set", "train.num_epochs=-1",
       "--workdir", str(tmp_path / "run")],
      cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-3000:]
  assert "num_epochs" in out.stderr


def test_the_launcher_stops_the_others_when_one_fails(tmp_path):
  from xferlab.launch_local import wait
  log = tmp_path / "process_1.log"
  with open(log, "w") as f:
    children = [(subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"]), None),
                (subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                  stdout=f), str(log))]
  assert wait(children, grace=0.5) == 3        # the failure, not the stopped process's signal
  assert children[1][0].returncode < 0          # the waiting process was stopped

"""The fast paths give the same answers as the plain ones: vmapped λ sweeps,
data parallelism over several devices, and mixed precision."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from xferlab import checkpoint, launch
from tests.conftest import QUICKSTART, ROOT, TINY, xla_flags_with_devices


def _final_params(run_dir):
  return checkpoint.load_state(os.path.join(run_dir, "checkpoints"))["params"]


def test_vectorized_sweep_equals_sequential_runs(tmp_path):
  grid = {"transfer.lam": [0.0, 0.1, 1.0], "transfer.schedule": ["dann"]}
  seq = launch.sweep(QUICKSTART + ":dann", grid, str(tmp_path / "seq"), overrides=TINY)
  vec = launch.sweep(QUICKSTART + ":dann", grid, str(tmp_path / "vec"), overrides=TINY,
                     vectorize=True)
  for a, b in zip(seq, vec):
    assert a["point"] == b["point"]
    for metric in ("target_accuracy", "source_val_accuracy", "target_macro_f1"):
      assert a["results"][metric] == pytest.approx(b["results"][metric], abs=1e-6)
    assert a["results"]["best_step"] == b["results"]["best_step"]
    pa, pb = _final_params(a["workdir"]), _final_params(b["workdir"])
    for x, y in zip(_leaves(pa), _leaves(pb)):
      np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)
  # λ really differs between the members: logged λ and trained encoders differ.
  lams = [_logged(b["workdir"], "lam") for b in vec]
  assert lams[0] == 0.0 and 0.0 < lams[1] < lams[2]
  p0, p2 = (_leaves(_final_params(vec[i]["workdir"])["classifier"]) for i in (0, 2))
  assert any(not np.allclose(x, y, atol=1e-4) for x, y in zip(p0, p2))
  # Each vmapped member is a complete run: restore and predict work on it.
  assert launch.restore(vec[1]["workdir"]).predict(["a sturdy pan , really great"]).shape == (1,)


def test_an_auto_vectorized_sweep_measures_both_ways_and_records_its_choice(tmp_path,
                                                                           monkeypatch):
  """vectorize="auto": the population is timed vmapped and one run after the other, the
  faster way trains, and either way the results are those of sequential runs."""
  monkeypatch.setenv("XFERLAB_DECISIONS", str(tmp_path / "decisions.json"))
  grid = {"transfer.lam": [0.0, 0.3]}
  seq = launch.sweep(QUICKSTART + ":dann", grid, str(tmp_path / "seq"), overrides=TINY)
  auto = launch.sweep(QUICKSTART + ":dann", grid, str(tmp_path / "auto"), overrides=TINY,
                      vectorize="auto")
  record = json.loads((tmp_path / "auto" / "vectorize.json").read_text())
  (decision,) = record["populations"]
  assert record["mode"] == "auto" and decision["runs"] == 2
  assert decision["vmapped_s"] > 0 and decision["sequential_s"] > 0
  assert decision["vectorize"] == (decision["vmapped_s"] < decision["sequential_s"])
  assert decision["remembered"] is False
  for a, b in zip(seq, auto):
    for metric in ("target_accuracy", "source_val_accuracy"):
      assert a["results"][metric] == pytest.approx(b["results"][metric], abs=1e-6)
  assert not list(tmp_path.glob("xferlab-vmap-probe-*"))

  # The same program on the same machine: the decision is reused, nothing is measured.
  from xferlab import train
  monkeypatch.setattr(train, "_measure_vectorization",
                      lambda *a: pytest.fail("measured a remembered decision"))
  launch.sweep(QUICKSTART + ":dann", {"transfer.lam": [0.1, 1.0]}, str(tmp_path / "again"),
               overrides=TINY, vectorize="auto")
  (again,) = json.loads((tmp_path / "again" / "vectorize.json").read_text())["populations"]
  assert again["remembered"] is True
  assert {k: again[k] for k in ("vectorize", "vmapped_s", "sequential_s", "measured_at")} == {
      k: decision[k] for k in ("vectorize", "vmapped_s", "sequential_s", "measured_at")}


def test_a_remembered_vectorize_decision_is_keyed_by_program_and_can_be_turned_off(
    tmp_path, monkeypatch):
  from xferlab import decisions, train
  from xferlab.config import apply_overrides, load_experiment
  monkeypatch.setenv("XFERLAB_DECISIONS", str(tmp_path / "decisions.json"))
  measured = []

  def measure(configs, steps):
    measured.append(len(configs))
    return {"vmapped_s": 1.0, "sequential_s": 2.0, "vectorize": True, "runs": len(configs),
            "steps": steps}
  monkeypatch.setattr(train, "_measure_vectorization", measure)
  config = apply_overrides(load_experiment(QUICKSTART + ":dann")[0], TINY)
  lams = [apply_overrides(config, {"transfer.lam": lam}) for lam in (0.0, 0.1, 1.0)]
  assert train.vectorization_choice(lams[:2])["remembered"] is False
  assert train.vectorization_choice(lams[1:])["remembered"] is True   # only λ differs
  assert measured == [2]
  train.vectorization_choice(lams)                                     # 3 runs: another key
  wider = [apply_overrides(c, {"model.hidden_size": 24}) for c in lams[:2]]
  train.vectorization_choice(wider)                                    # another program
  assert measured == [2, 3, 2]
  monkeypatch.setenv("XFERLAB_DECISIONS", "0")                         # off: always measures
  assert decisions.path() is None
  assert train.vectorization_choice(lams[:2])["remembered"] is False
  assert measured == [2, 3, 2, 2]
  (tmp_path / "decisions.json").write_text("not json")                 # unreadable: measure
  monkeypatch.setenv("XFERLAB_DECISIONS", str(tmp_path / "decisions.json"))
  assert train.vectorization_choice(lams[:2])["remembered"] is False
  assert train.vectorization_choice(lams[:2])["remembered"] is True


def test_the_vectorize_measurement_prepares_the_data_once(monkeypatch):
  from xferlab import train
  from xferlab.config import apply_overrides, load_experiment
  monkeypatch.setenv("XFERLAB_DECISIONS", "0")   # nothing remembered: it measures
  config = apply_overrides(load_experiment(QUICKSTART + ":dann")[0], TINY)
  lams = [apply_overrides(config, {"transfer.lam": lam}) for lam in (0.0, 0.3)]
  prepared = []
  real = train.prepare_data
  monkeypatch.setattr(train, "prepare_data", lambda *a: prepared.append(1) or real(*a))
  choice = train.vectorization_choice(lams, steps=2)
  assert prepared == [1] and choice["vmapped_s"] > 0 and choice["sequential_s"] > 0


def test_vectorize_on_the_command_line_also_trains_an_experiments_arms_together(tmp_path):
  """``launch.py EXPERIMENT --vectorize``, no sweep: the arms (λ 0 and 0.1) train as one
  vmapped program, and the run's results are those of training them one after the other."""
  from xferlab.launch import main
  tiny = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")] + ["--set", "seeds=(0,)"]
  assert main([QUICKSTART, *tiny, "--workdir", str(tmp_path / "seq")]) == 0
  assert main([QUICKSTART, *tiny, "--vectorize", "on", "--workdir", str(tmp_path / "vec")]) == 0
  (population,) = json.loads((tmp_path / "vec" / "vectorize.json").read_text())["populations"]
  assert sorted(os.path.basename(os.path.dirname(d)) for d in population["workdirs"]) == [
      "dann", "source_only"]
  seq = json.loads((tmp_path / "seq" / "results.json").read_text())
  vec = json.loads((tmp_path / "vec" / "results.json").read_text())
  assert vec.keys() == seq.keys()
  for arm in ("dann", "source_only"):
    assert vec[arm]["target_accuracy"]["mean"] == pytest.approx(
        seq[arm]["target_accuracy"]["mean"], abs=1e-6)


def _leaves(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _logged(run_dir, key):
  with open(os.path.join(run_dir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if '"train"' in line]
  return rows[-1][key]


def test_vectorize_refuses_configurations_that_differ_in_the_program(tmp_path):
  from xferlab.config import apply_overrides, load_experiment
  from xferlab.train import train_population
  config, _ = load_experiment(QUICKSTART + ":dann")
  a = apply_overrides(config, TINY)
  b = apply_overrides(a, {"model.hidden_size": 16})
  with pytest.raises(ValueError, match="may differ only in"):
    train_population([a, b], [str(tmp_path / "a"), str(tmp_path / "b")])


_DATA_PARALLEL = r"""
import json, sys
import jax, numpy as np
from xferlab.config import apply_overrides, load_experiment
from xferlab.train import train_and_evaluate
from xferlab import checkpoint
config, _ = load_experiment(sys.argv[1] + ":dann")
config = apply_overrides(config, json.loads(sys.argv[2]))
results = train_and_evaluate(config, sys.argv[3])
params = checkpoint.load_state(sys.argv[3] + "/checkpoints")["params"]
np.save(sys.argv[3] + "/params.npy", np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)]))
rows = [json.loads(l) for l in open(sys.argv[3] + "/metrics.jsonl") if '"train"' in l]
print(json.dumps({"devices": jax.device_count(), "losses": [r["loss"] for r in rows],
                  "target_accuracy": results["target_accuracy"]}))
"""


def _run_on_devices(n, run_dir, overrides):
  env = dict(os.environ, XLA_FLAGS=xla_flags_with_devices(n),
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", _DATA_PARALLEL, QUICKSTART, json.dumps(overrides),
                        str(run_dir)], env=env, cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_parallel_on_four_devices_equals_one_device(tmp_path):
  overrides = dict(TINY, **{"train.progress_bar": False, "model.dropout": 0.2})
  one = _run_on_devices(1, tmp_path / "one", dict(overrides, **{"train.devices": 1}))
  four = _run_on_devices(4, tmp_path / "four", overrides)
  assert one["devices"] == 1 and four["devices"] == 4
  np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-5, atol=1e-6)
  assert four["target_accuracy"] == pytest.approx(one["target_accuracy"], abs=1e-6)
  np.testing.assert_allclose(np.load(tmp_path / "four" / "params.npy"),
                             np.load(tmp_path / "one" / "params.npy"), rtol=1e-4, atol=1e-6)


def test_batch_that_cannot_be_split_over_devices_is_refused():
  import jax
  from jax.sharding import Mesh
  from xferlab.train import batch_placer
  mesh = Mesh(np.array(jax.devices()[:1] * 1), ("data",))
  place = batch_placer(mesh)
  assert place({"tokens": np.zeros((3, 2))})["tokens"].shape == (3, 2)   # one device: anything goes


def test_bfloat16_mixed_precision_trains_close_to_float32(tmp_path):
  from xferlab.config import apply_overrides, load_experiment
  from xferlab.train import train_and_evaluate
  config, _ = load_experiment(QUICKSTART + ":dann")
  config = apply_overrides(config, dict(TINY, **{"train.progress_bar": False}))
  f32 = train_and_evaluate(config, str(tmp_path / "f32"))
  bf16 = train_and_evaluate(apply_overrides(config, {"train.precision": "bfloat16"}),
                            str(tmp_path / "bf16"))
  for run in ("f32", "bf16"):
    params = checkpoint.load_state(str(tmp_path / run / "checkpoints"))["params"]
    assert all(np.asarray(x).dtype == np.float32 for x in _leaves(params))   # f32 master weights
  l32, l16 = _logged(str(tmp_path / "f32"), "loss"), _logged(str(tmp_path / "bf16"), "loss")
  assert l16 == pytest.approx(l32, rel=0.05)
  assert bf16["target_accuracy"] == pytest.approx(f32["target_accuracy"], abs=0.1)


def test_time_limit_stops_evaluates_and_checkpoints(tmp_path):
  from xferlab.config import apply_overrides, load_experiment
  from xferlab.train import train_and_evaluate
  config, _ = load_experiment(QUICKSTART + ":dann")
  config = apply_overrides(config, dict(TINY, **{"train.progress_bar": False,
                                                 "train.num_steps": 1000,
                                                 "train.max_train_minutes": 1e-4}))
  results = train_and_evaluate(config, str(tmp_path))
  assert 1 <= results["steps"] < 1000 and results["best_step"] == results["steps"]
  assert "target_accuracy" in results
  assert checkpoint.Checkpointer(str(tmp_path / "checkpoints")).latest_step() == results["steps"]

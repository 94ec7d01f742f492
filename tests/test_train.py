"""The shared trainer: steps, λ without recompiles, NaN stop, checkpoints, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import checkpoint, train
from xferlab.transfer import model_based
from xferlab.config import ConfigError, apply_overrides, to_json, validate
from xferlab.tasks import get_task
from tests.conftest import KILL_SCRIPT, ROOT, TINY


def _setup(config, tmp_path):
  task = get_task(config.task)
  data = task.prepare(config, str(tmp_path))
  model = task.build_model(config, data.tokenizer.vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  tx = train.make_optimizer(config.optimizer, 100)
  steps = train.compiled_steps(task, config, graphdef, tx, 100)
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                           rng=jax.random.PRNGKey(0))
  return data, rest, steps, state


def test_one_train_step_changes_every_trainable_parameter(tiny_config, tmp_path):
  config = apply_overrides(tiny_config, {"transfer.lam": 0.5, "transfer.schedule": "constant"})
  data, rest, (train_step, _), state = _setup(config, tmp_path)
  before = jax.tree.map(np.asarray, state.params)
  state, out = train_step(state, rest, next(data.train), train.lambda_hparams(config))
  after = jax.tree.map(np.asarray, state.params)
  flat_before = jax.tree_util.tree_flatten_with_path(before)[0]
  flat_after = jax.tree.leaves(after)
  assert len(flat_before) >= 10
  for (path, a), b in zip(flat_before, flat_after):
    assert not np.array_equal(a, b), f"parameter {jax.tree_util.keystr(path)} did not change"
  assert int(state.step) == 1 and np.isfinite(float(out["loss"]))


def test_changing_lambda_never_recompiles(tiny_config, tmp_path):
  data, rest, (train_step, _), state = _setup(tiny_config, tmp_path)
  batch = next(data.train)
  size = None
  for lam in (0.0, 0.1, 1.0, 3.0):
    hp = train.lambda_hparams(apply_overrides(tiny_config, {"transfer.lam": lam}))
    state, out = train_step(state, rest, batch, hp)
    size = size or train_step._cache_size()
  assert train_step._cache_size() == size == 1


def test_steps_are_shared_between_runs_of_the_same_structure(tiny_config, tmp_path):
  a = _setup(tiny_config, tmp_path / "a")[2]
  b = _setup(apply_overrides(tiny_config, {"seed": 3, "transfer.lam": 0.0}), tmp_path / "b")[2]
  assert a[0] is b[0]


def test_checkpoint_round_trip(tiny_config, tmp_path):
  data, rest, (train_step, _), state = _setup(tiny_config, tmp_path)
  state, _ = train_step(state, rest, next(data.train), train.lambda_hparams(tiny_config))
  ckpt = checkpoint.Checkpointer(str(tmp_path / "ckpt"))
  ckpt.save(1, state, {"data": data.train.state(), "note": "x"})
  fresh = _setup(tiny_config, tmp_path / "fresh")[3]
  restored, meta = ckpt.restore(fresh)
  ckpt.close()
  assert meta == {"data": data.train.state(), "note": "x"}
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert jax.tree.structure(state) == jax.tree.structure(restored)


def test_partial_restore_and_mismatch_error(tiny_config, tmp_path):
  results = train.train_and_evaluate(tiny_config, str(tmp_path / "donor"))
  assert results["steps"] == 6
  donor = checkpoint.load_state(str(tmp_path / "donor"))["params"]
  task = get_task("classification")
  model = task.build_model(apply_overrides(tiny_config, {"seed": 9}), 100)
  params = nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])
  vocab = len(donor["classifier"]["encoder"]["embed"]["embedding"])
  with pytest.raises(ValueError) as e:
    model_based.restore_subtrees(params, str(tmp_path / "donor"), ["classifier.encoder"])
  assert "classifier.encoder.embed.embedding" in str(e.value) and f"({vocab}, 8)" in str(e.value)
  model = task.build_model(apply_overrides(tiny_config, {"seed": 9}), vocab)
  params = nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])
  out = model_based.restore_subtrees(params, str(tmp_path / "donor"), ["classifier.encoder"])
  np.testing.assert_array_equal(out["classifier"]["encoder"]["embed"]["embedding"],
                                donor["classifier"]["encoder"]["embed"]["embedding"])
  np.testing.assert_array_equal(out["classifier"]["head"]["layers"][0]["kernel"],
                                params["classifier"]["head"]["layers"][0]["kernel"])


class _PoisonedStream:
  """Wraps a training stream; from batch ``start`` on, source weights are NaN."""

  def __init__(self, stream, start):
    self.stream, self.start, self.n = stream, start, 0
    self.batches_per_epoch = stream.batches_per_epoch
    self.state, self.restore = stream.state, stream.restore

  def __next__(self):
    batch = next(self.stream)
    self.n += 1
    if self.n >= self.start:
      batch["source"]["weights"] = np.full_like(batch["source"]["weights"], np.nan)
    return batch


def test_nan_stops_naming_metric_and_step_and_keeps_last_good_checkpoint(tiny_config, tmp_path,
                                                                         monkeypatch):
  task = get_task("classification")
  prepare = task.prepare

  def poisoned_prepare(config, workdir):
    data = prepare(config, workdir)
    data.train = _PoisonedStream(data.train, start=5)
    return data

  monkeypatch.setattr(task, "prepare", poisoned_prepare)
  workdir = str(tmp_path / "run")
  with pytest.raises(train.NonFiniteError) as e:
    train.train_and_evaluate(apply_overrides(tiny_config, {"train.eval_every": 2}), workdir)
  assert "Training metric 'loss' is nan at step 5" in str(e.value), str(e.value)
  assert "Last good checkpoint: step 4" in str(e.value)
  assert checkpoint.Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 4
  state = checkpoint.load_state(workdir + "/checkpoints")
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state["params"]))


def test_killed_and_resumed_run_ends_with_the_same_parameters(tiny_config, tmp_path):
  # with the weights' moving average on, which the checkpoint must carry across the kill
  config = apply_overrides(tiny_config, {"model.dropout": 0.3, "model.embed_dropout": 0.2,
                                         "model.num_layers": 2, "train.num_steps": 8,
                                         "train.eval_every": 2, "train.ema_decay": 0.9})
  (tmp_path / "config.json").write_text(to_json(config))
  (tmp_path / "kill.py").write_text(KILL_SCRIPT.format(root=ROOT))
  run = lambda kill_at, workdir: subprocess.run(
      [sys.executable, str(tmp_path / "kill.py"), str(tmp_path / "config.json"), str(kill_at),
       str(workdir)], capture_output=True, text=True, timeout=300)
  killed = run(4, tmp_path / "resumed")
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert not (tmp_path / "resumed" / "results.json").exists()
  assert run(-1, tmp_path / "resumed").returncode == 0
  assert run(-1, tmp_path / "straight").returncode == 0
  a = checkpoint.load_state(str(tmp_path / "resumed" / "checkpoints"))
  b = checkpoint.load_state(str(tmp_path / "straight" / "checkpoints"))
  assert int(a["step"]) == int(b["step"]) == 8
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  ra = json.loads((tmp_path / "resumed" / "results.json").read_text())
  rb = json.loads((tmp_path / "straight" / "results.json").read_text())
  assert ra["target_accuracy"] == rb["target_accuracy"] and ra["best_step"] == rb["best_step"]
  # The metrics log shows the resumed run picked up after step 4, not from scratch.
  steps = [json.loads(l)["step"] for l in open(tmp_path / "resumed" / "metrics.jsonl")
           if json.loads(l)["split"] == "train"]
  assert steps == sorted(steps) and steps.count(1) == 1


def test_resuming_with_another_configuration_is_refused_but_new_default_keys_are_not(
    tiny_config, tmp_path):
  import json as json_lib
  from xferlab.config import apply_overrides, to_json
  from xferlab.train import check_workdir_config
  (tmp_path / "config.json").write_text(to_json(tiny_config))
  (tmp_path / "checkpoints" / "5").mkdir(parents=True)                   # it has trained
  check_workdir_config(tiny_config, str(tmp_path))                       # the same: fine
  with pytest.raises(ValueError, match="differs in: transfer.lam"):
    check_workdir_config(apply_overrides(tiny_config, {"transfer.lam": 0.5}), str(tmp_path))
  old = json_lib.loads(to_json(tiny_config))
  del old["data"]["subset_size"]                # a run started before the key existed
  (tmp_path / "config.json").write_text(json_lib.dumps(old))
  check_workdir_config(tiny_config, str(tmp_path))                       # default: no difference
  with pytest.raises(ValueError, match="data.subset_size"):
    check_workdir_config(apply_overrides(tiny_config, {"data.subset_size": 5}), str(tmp_path))


def test_a_workdir_without_training_takes_a_corrected_configuration(tiny_config, tmp_path,
                                                                    capsys):
  from xferlab import workdir
  from xferlab.config import apply_overrides, from_json
  workdir.claim(tiny_config, str(tmp_path))            # a run that then failed before training
  fixed = apply_overrides(tiny_config, {"data.manual_dir": "/elsewhere"})
  workdir.claim(fixed, str(tmp_path))
  assert "changed: data.manual_dir" in capsys.readouterr().out
  assert from_json((tmp_path / "config.json").read_text()).data.manual_dir == "/elsewhere"
  (tmp_path / "best" / "3").mkdir(parents=True)        # once it has trained, a change is refused
  with pytest.raises(ValueError, match="differs in: data.manual_dir"):
    workdir.claim(tiny_config, str(tmp_path))
  (tmp_path / "a_file").write_text("")
  with pytest.raises(NotADirectoryError, match="is a file"):
    workdir.claim(tiny_config, str(tmp_path / "a_file"))


def test_a_bad_value_fails_in_one_line_before_anything_is_written(tiny_config, tmp_path):
  from xferlab.config import ConfigError, apply_overrides
  bad = apply_overrides(tiny_config, {"model.cell": "lstmm", "train.num_epochs": -1})
  with pytest.raises(ConfigError) as error:
    train.train_and_evaluate(bad, str(tmp_path / "run"))
  message = str(error.value)
  assert "\n" not in message and "model.cell = 'lstmm'" in message and "'lstm'" in message
  assert "train.num_epochs = -1 must be at least 0" in message
  assert not (tmp_path / "run").exists()


def test_eval_every_epochs_sets_the_evaluation_grid(tiny_config, tmp_path):
  """64 source reviews in batches of 16: 4 steps per epoch, so every half epoch is 2 steps."""
  config = apply_overrides(tiny_config, {"train.eval_every": 0, "train.eval_every_epochs": 0.5,
                                         "train.num_steps": 6})
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in records if r.get("split") == "eval"] == [2, 4, 6]


def test_ema_update_averages_with_a_warm_up():
  ema, params = {"w": jnp.zeros(3)}, {"w": jnp.ones(3)}
  # step 0: d = min(0.99, 1/10) = 0.1, so the average moves 90% of the way to the weights
  np.testing.assert_allclose(train.ema_update(ema, params, 0, 0.99)["w"], 0.9, rtol=1e-6)
  # late: d = decay
  np.testing.assert_allclose(train.ema_update(ema, params, 10_000, 0.99)["w"], 0.01, rtol=1e-4)


def test_ema_run_evaluates_and_keeps_the_moving_average(tiny_config, tmp_path):
  """With train.ema_decay the best checkpoint holds the average, not the last weights, and a
  state written at the last step carries both."""
  config = apply_overrides(tiny_config, {"train.num_steps": 6, "train.eval_every": 6,
                                         "train.ema_decay": 0.9})
  results = train.train_and_evaluate(config, str(tmp_path))
  state = checkpoint.load_state(str(tmp_path / "checkpoints"))
  best = checkpoint.load_state(str(tmp_path / "best"))["params"]
  assert results["best_step"] == 6
  for kept, ema, raw in zip(jax.tree.leaves(best), jax.tree.leaves(state["ema_params"]),
                            jax.tree.leaves(state["params"])):
    np.testing.assert_array_equal(kept, ema)
  assert any(not np.allclose(e, r) for e, r in zip(jax.tree.leaves(state["ema_params"]),
                                                   jax.tree.leaves(state["params"])))


def test_a_final_only_evaluation_set_scores_the_selected_model_once(tiny_config, tmp_path):
  """train.final_eval_sets: the target set is never scored during training, and the selected
  model's score on it equals what scoring it at every evaluation recorded for that model."""
  from xferlab.metrics import read_metrics
  config = apply_overrides(tiny_config, {"train.num_epochs": 3})
  every = train.train_and_evaluate(config, str(tmp_path / "every"))
  once = train.train_and_evaluate(
      apply_overrides(config, {"train.final_eval_sets": ("target",)}), str(tmp_path / "once"))
  assert once["best_step"] == every["best_step"]
  for key in ("target_accuracy", "target_macro_f1", "source_val_accuracy"):
    assert once[key] == pytest.approx(every[key], abs=1e-6)
  assert not any(k.startswith("target_") for row in read_metrics(str(tmp_path / "once"))
                 for k in row)
  with pytest.raises(ValueError, match="final_eval_sets names"):
    train.train_and_evaluate(apply_overrides(config, {"train.final_eval_sets": ("nope",)}),
                             str(tmp_path / "bad"))
  # The same run either way: a finished run is read back under the other setting ...
  from xferlab import workdir
  moved = apply_overrides(config, {"train.final_eval_sets": ("target",)})
  assert workdir.finished_results(moved, str(tmp_path / "every")) == every
  # ... and a model is never selected on a set scored only after training.
  with pytest.raises(ConfigError, match="scores only once, after training"):
    validate(apply_overrides(moved, {"train.early_stopping_metric": "target_accuracy"}))

"""Language modelling: the continuous stream, the carried state, exact evaluation, tying."""

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

from xferlab.config import apply_overrides, load_experiment
from xferlab.tasks import language_model as lm
from tests.conftest import KILL_SCRIPT, ROOT

PTB = ROOT + "/experiments/lm/ptb.py"
TINY_LM = {"data.name": "synthetic", "data.word_split": "words", "data.batch_size": 8,
           "data.eval_batch_size": 4, "language_model.bptt": 10, "model.embed_dim": 16,
           "model.hidden_size": 24, "train.progress_bar": False}


def tiny_lm_config(**extra):
  config, _ = load_experiment(PTB + ":smoke")
  return apply_overrides(config, dict(TINY_LM, **extra))


def test_stream_batches_are_contiguous_and_resumable():
  stream = np.arange(1000, dtype=np.int32)
  batches = lm.StreamBatches(stream, rows=4, bptt=7)
  a, b = next(batches), next(batches)
  np.testing.assert_array_equal(a["targets"][:, :-1], a["inputs"][:, 1:])
  np.testing.assert_array_equal(b["inputs"][:, 0], a["targets"][:, -1])   # row continues
  np.testing.assert_array_equal(a["inputs"][:, 0], [0, 250, 500, 750])
  state = batches.state()
  c = next(batches)
  batches.restore(state)
  np.testing.assert_array_equal(next(batches)["inputs"], c["inputs"])



def test_state_resets_are_staggered_follow_the_position_and_zero_the_carry():
  stream = np.arange(1000, dtype=np.int32)
  batches = lm.StreamBatches(stream, rows=4, bptt=7, reset_every=2)
  resets = np.stack([next(batches)["reset"] for _ in range(4)])
  np.testing.assert_array_equal(resets, [[1, 0, 1, 0], [0, 1, 0, 1]] * 2)
  batches.restore({"position": 3})
  np.testing.assert_array_equal(next(batches)["reset"], resets[3])   # a resume resets alike
  assert "reset" not in next(lm.StreamBatches(stream, rows=4, bptt=7))

  config = tiny_lm_config()
  model, task = _model(config), lm.LanguageModelTask()
  tokens = np.random.default_rng(2).integers(4, 50, size=(2, 6)).astype(np.int32)
  _, carry = model(jnp.asarray(tokens))
  batch = {"inputs": jnp.asarray(tokens), "targets": jnp.asarray(tokens),
           "reset": jnp.asarray([1.0, 0.0])}
  model.eval()
  _, (_, after) = task.loss(model, batch, 0.0, None, carry)
  fresh = model(jnp.asarray(tokens[:1]))[1]                     # row 0 from the zero state
  kept = model(jnp.asarray(tokens[1:]), jax.tree.map(lambda s: s[1:], carry))[1]
  for got, zero_start, carried in zip(jax.tree.leaves(after), jax.tree.leaves(fresh),
                                      jax.tree.leaves(kept)):
    np.testing.assert_allclose(got[0], zero_start[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], carried[0], rtol=1e-5, atol=1e-6)

def _model(config, vocab=50):
  return lm.LanguageModelTask().build_model(config, vocab)


def test_evaluation_equals_one_pass_over_the_whole_stream():
  config = tiny_lm_config()
  model = _model(config)
  stream = np.random.default_rng(0).integers(4, 50, size=3 * 150 + 1).astype(np.int32)
  batch = lm.eval_stream_batch(stream, rows=3)
  assert batch["inputs"].shape[1] % lm.EVAL_CHUNK == 0
  sums = lm.LanguageModelTask().eval_sums(model, jax.tree.map(jnp.asarray, batch))
  rows = lm.batchify(stream, 3)
  logits, _ = model(jnp.asarray(rows[:, :-1]))                       # no chunking at all
  logp = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(logp, jnp.asarray(rows[:, 1:])[..., None], -1).sum()
  assert float(sums["count"]) == rows[:, 1:].size
  np.testing.assert_allclose(float(sums["nll"]), float(nll), rtol=1e-5)


def test_carried_state_changes_the_prediction_and_tying_shares_the_embedding():
  config = tiny_lm_config()
  model = _model(config)
  tokens = jnp.asarray(np.random.default_rng(1).integers(4, 50, size=(2, 6)))
  a, carry = model(tokens)
  b, _ = model(tokens, carry)
  assert not np.allclose(a, b)
  assert model.softmax_kernel is None                 # tied: the softmax reads the embedding
  assert model.projection.kernel[...].shape == (24, 16)   # hidden 24 -> embed 16 first
  assert _model(tiny_lm_config(**{"model.hidden_size": 16})).projection is None
  untied = _model(tiny_lm_config(**{"model.tie_embeddings": False}))
  assert untied.softmax_kernel[...].shape == (24, 50)   # hidden -> vocab directly


def test_weight_and_variational_dropout_only_when_training():
  config = tiny_lm_config(**{"model.weight_dropout": 0.5, "model.embed_dropout": 0.3})
  model = _model(config)
  tokens = jnp.asarray(np.random.default_rng(1).integers(4, 50, size=(2, 6)))
  np.testing.assert_array_equal(model(tokens)[0], model(tokens)[0])
  assert not np.allclose(model(tokens)[0], model(tokens, rngs=nnx.Rngs(dropout=0))[0])
  # Variational: the embedding mask is shared by all steps of a row.
  x = model.encoder.embed_dropout(jnp.ones((2, 6, 16)), rngs=nnx.Rngs(dropout=1))
  np.testing.assert_array_equal(x[:, 0], x[:, 5])


def test_trains_with_carried_state_and_reports_perplexity(tmp_path):
  from xferlab.train import train_and_evaluate
  results = train_and_evaluate(tiny_lm_config(), str(tmp_path))
  assert results["valid_perplexity"] == pytest.approx(np.exp(results["valid_loss"]), rel=1e-6)
  assert 1.0 < results["test_perplexity"] < 1e4
  assert results["train_step_compilations"] == 1
  from xferlab.metrics import plot_curves
  assert os.path.getsize(plot_curves(str(tmp_path), ["valid_perplexity", "test_perplexity"])) > 0
  with pytest.raises(ValueError, match="No eval metric 'bleu'"):
    plot_curves(str(tmp_path), ["bleu"])
  from xferlab.metrics import main as plot_command   # its command line: one line, no traceback
  assert plot_command([str(tmp_path), "valid_perplexity", "--out", str(tmp_path / "c.png")]) == 0
  assert plot_command([str(tmp_path), "bleu"]) == 1
  assert plot_command([str(tmp_path / "missing"), "valid_perplexity"]) == 1
  with pytest.raises(SystemExit) as usage:
    plot_command([])
  assert usage.value.code == 2


def test_language_model_encoder_restores_into_a_classifier(tmp_path):
  from xferlab import checkpoint
  from xferlab.transfer import model_based
  from xferlab.tasks.classification import ClassificationTask
  from xferlab.train import train_and_evaluate
  config = tiny_lm_config()
  train_and_evaluate(config, str(tmp_path / "lm"))
  lm_params = checkpoint.load_state(str(tmp_path / "lm"))["params"]
  clf_config = apply_overrides(config, {"task": "classification"})
  clf = ClassificationTask().build_model(clf_config, lm_params["encoder"]["embed"]["embedding"].shape[0])
  params = nnx.to_pure_dict(nnx.state(clf, nnx.Param))
  restored = model_based.restore_subtrees(params, str(tmp_path / "lm"),
                                         ("classifier.encoder=encoder",))
  for a, b in zip(jax.tree.leaves(restored["classifier"]["encoder"]),
                  jax.tree.leaves(lm_params["encoder"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(jax.tree.leaves(restored["classifier"]["head"]),
                  jax.tree.leaves(params["classifier"]["head"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))          # untouched


def test_review_lm_without_its_general_lm_names_the_command(tmp_path):
  """ULMFiT's stage 2 from a PTB model that was never trained: a clear error before any work."""
  from xferlab.train import train_and_evaluate
  config, _ = load_experiment(ROOT + "/experiments/lm/reviews.py:smoke")
  config = apply_overrides(config, {"init_from.path": str(tmp_path / "ptb")})
  with pytest.raises(FileNotFoundError, match="init_from.path = .* not found .* Make it first: "
                                              "python launch.py experiments/lm/ptb.py"):
    train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()    # nothing written


def test_killed_mid_epoch_and_resumed_lm_run_ends_like_an_uninterrupted_one(tmp_path):
  """A SIGKILL right after the step-3 checkpoint; the resumed run reads batch 4 of the epoch next
  (the stream position and the carried hidden state are in the checkpoint) and ends with the
  parameters and perplexities of a run never killed."""
  from xferlab import checkpoint
  from xferlab.config import to_json
  config = tiny_lm_config(**{"train.num_steps": 8, "train.eval_every": 4,
                             "train.checkpoint_every": 3, "train.log_every": 1,
                             "model.dropout": 0.2, "model.embed_dropout": 0.1})
  epoch = lm.LanguageModelTask().prepare(config, str(tmp_path / "prepare")).train.batches_per_epoch
  assert epoch > 8                  # the kill, and the whole run, fall inside the first epoch
  (tmp_path / "config.json").write_text(to_json(config))
  (tmp_path / "kill.py").write_text(KILL_SCRIPT.format(root=ROOT))
  run = lambda kill_at, workdir: subprocess.run(
      [sys.executable, str(tmp_path / "kill.py"), str(tmp_path / "config.json"), str(kill_at),
       str(workdir)], capture_output=True, text=True, timeout=300)
  killed = run(3, tmp_path / "resumed")
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert "KILLED AT DATA POSITION 3" in killed.stdout
  assert not (tmp_path / "resumed" / "results.json").exists()
  resumed = run(-1, tmp_path / "resumed")
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  straight = run(-1, tmp_path / "straight")
  assert straight.returncode == 0, straight.stderr[-2000:]
  a = checkpoint.load_state(str(tmp_path / "resumed" / "checkpoints"))
  b = checkpoint.load_state(str(tmp_path / "straight" / "checkpoints"))
  assert int(a["step"]) == int(b["step"]) == 8
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):     # parameters, Adam, hidden state
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  ra = json.loads((tmp_path / "resumed" / "results.json").read_text())
  rb = json.loads((tmp_path / "straight" / "results.json").read_text())
  for key in ("valid_perplexity", "test_perplexity", "best_step"):
    assert ra[key] == pytest.approx(rb[key], rel=1e-6), key
  # The resumed run picked up after step 3: its training log has steps 1-3 once (killed run)
  # and 4-8 once (resumed run), with the losses of the uninterrupted run.
  log = lambda w: [(r["step"], r["loss"]) for r in map(json.loads, open(w / "metrics.jsonl"))
                   if r["split"] == "train"]
  la, lb = log(tmp_path / "resumed"), log(tmp_path / "straight")
  assert [s for s, _ in la] == [s for s, _ in lb] == list(range(1, 9))
  for (step, x), (_, y) in zip(la, lb):
    assert x == pytest.approx(y, rel=1e-5), step


def test_token_streams_are_int32_arrays_cached_by_texts_and_tokenizer(tmp_path, monkeypatch):
  from xferlab.data.tokenizer import EOS_ID, WordTokenizer
  texts = ["the cat sat .", "a dog ran", "the end"] * 50
  tok = WordTokenizer.train(texts, split="words")
  stream = lm.token_stream(tok, texts)
  assert stream.dtype == np.int32
  expected = [i for t in texts for i in tok.encode(t) + [EOS_ID]]
  np.testing.assert_array_equal(stream, expected)
  monkeypatch.setattr(lm, "CACHE_MIN_CHARS", 0)
  first = lm.cached_token_stream(tok, texts, str(tmp_path))
  assert len(list(tmp_path.glob("*.npy"))) == 1
  monkeypatch.setattr(lm, "token_stream", lambda *a: pytest.fail("tokenized again"))
  np.testing.assert_array_equal(lm.cached_token_stream(tok, texts, str(tmp_path)), first)
  other = WordTokenizer.train(texts[:3], max_size=6, split="words")     # another tokenizer
  with pytest.raises(pytest.fail.Exception, match="tokenized again"):
    lm.cached_token_stream(other, texts, str(tmp_path))


def test_imdb_held_out_reviews_are_a_fixed_one_percent_each():
  splits = [lm.imdb_split_of(f"review {i}") for i in range(20000)]
  assert splits == [lm.imdb_split_of(f"review {i}") for i in range(20000)]
  for split in ("validation", "test"):
    assert 0.007 < splits.count(split) / len(splits) < 0.013

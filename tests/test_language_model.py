"""Language modelling: the continuous stream, the carried state, exact evaluation, tying."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab.config import apply_overrides, load_experiment
from xferlab.tasks import language_model as lm
from tests.conftest import ROOT

PTB = ROOT + "/experiments/lm/ptb.py"
TINY_LM = {"data.name": "synthetic", "data.word_split": "words", "data.batch_size": 8,
           "data.eval_batch_size": 4, "data.bptt": 10, "model.embed_dim": 16,
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

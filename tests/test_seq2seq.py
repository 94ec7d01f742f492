"""Encoder-decoder: attention, teacher forcing against step-wise decoding, greedy and beam
search, the translation loss, the copy task end to end, and Multi30k pairs."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import decode
from xferlab.data import batching
from xferlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from xferlab.models.attention import Attention
from xferlab.models.classifier import TextEncoder
from xferlab.models.seq2seq import Seq2Seq
from xferlab.tasks import encoder_decoder, translation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI30K = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
VOCAB = 24


def _model(attention="luong", input_feeding=True, cell="lstm", seed=0, tie=True):
  rngs = nnx.Rngs(seed)
  encoder = TextEncoder(VOCAB, 12, 10, cell=cell, bidirectional=True, rngs=rngs)
  return Seq2Seq(encoder, cell=cell, decoder_hidden=14, attention=attention,
                 input_feeding=input_feeding, tie_embeddings=tie, rngs=rngs)


def _sources(n=5, length=7, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(4, VOCAB, (n, length))
  lengths = np.array([length, 4, 1, 6, 3][:n])
  tokens = np.where(np.arange(length)[None] < lengths[:, None], tokens, PAD_ID)
  return jnp.asarray(tokens, jnp.int32), jnp.asarray(lengths, jnp.int32)


@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
def test_attention_weights_sum_to_one_over_unpadded_steps(kind):
  attention = Attention(6, 8, kind=kind, rngs=nnx.Rngs(0))
  memory = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 8))
  query = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 6))
  mask = jnp.arange(5)[None] < jnp.array([5, 2, 1])[:, None]
  context, weights = attention(query, attention.precompute(memory), memory, mask)
  assert context.shape == (3, 4, 8) and weights.shape == (3, 4, 5)
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
  assert float(jnp.abs(jnp.where(mask[:, None], 0.0, weights)).max()) == 0.0
  # A row with one valid step attends to it only; the context is that memory state.
  np.testing.assert_allclose(context[2], jnp.broadcast_to(memory[2, 0], (4, 8)), atol=1e-6)
  # Padded memory never changes the context.
  changed = memory.at[1, 2:].set(100.0)
  np.testing.assert_allclose(attention(query, attention.precompute(changed), changed, mask)[0][1],
                             context[1], atol=1e-5)


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_step_wise_decoding_equals_teacher_forcing(attention, input_feeding):
  model = _model(attention, input_feeding)
  source, source_lengths = _sources()
  target_in = jax.random.randint(jax.random.PRNGKey(3), (5, 6), 4, VOCAB)
  target_lengths = jnp.array([6, 2, 5, 6, 1])
  logits, _ = model(source, source_lengths, target_in, target_lengths)
  encoded = model.encode(source, source_lengths)
  state, steps = model.initial_state(encoded), []
  for t in range(6):
    step_logits, state, _ = model.decode_step(encoded, state, target_in[:, t])
    steps.append(step_logits)
  valid = (jnp.arange(6)[None] < target_lengths[:, None])[..., None]
  np.testing.assert_allclose(jnp.where(valid, jnp.stack(steps, 1), 0.0),
                             jnp.where(valid, logits, 0.0), atol=1e-5)


@pytest.mark.parametrize("input_feeding", [True, False])
def test_beam_of_one_is_greedy(input_feeding):
  model = _model("bahdanau", input_feeding, cell="gru", seed=4)
  model.softmax_bias[...] = model.softmax_bias[...].at[EOS_ID].set(2.0)   # hypotheses end
  source, source_lengths = _sources(seed=5)
  greedy = decode.greedy(model, source, source_lengths, 12)
  beam1 = decode.beam_search(model, source, source_lengths, 12, beam_size=1)
  np.testing.assert_array_equal(np.asarray(greedy), np.asarray(beam1))
  assert (np.asarray(greedy) == EOS_ID).any()
  for row in np.asarray(greedy):                      # after EOS only padding follows
    if EOS_ID in row:
      assert np.all(row[list(row).index(EOS_ID) + 1:] == PAD_ID)


def test_a_beam_as_wide_as_the_search_space_finds_the_most_probable_output():
  """Vocabulary of 6 (4 generable tokens), 3 steps: a beam of 64 is exhaustive search."""
  rngs = nnx.Rngs(7)
  encoder = TextEncoder(6, 8, 8, bidirectional=True, rngs=rngs)
  model = Seq2Seq(encoder, decoder_hidden=8, rngs=rngs)
  model.softmax_bias[...] = jnp.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
  source = jnp.array([[4, 5, 4], [5, 5, 0]])
  lengths = jnp.array([3, 2])
  beam = np.asarray(decode.beam_search(model, source, lengths, 3, beam_size=64, alpha=0.0))
  generable = [t for t in range(6) if t not in (PAD_ID, BOS_ID)]
  outputs = np.array([[a, b, c] for a in generable for b in generable for c in generable])
  for row in range(2):
    candidates = np.concatenate([outputs, beam[row:row + 1]])
    encoded = jax.tree.map(lambda x: jnp.repeat(x[row:row + 1], len(candidates), 0),
                           model.encode(source, lengths))
    state, last, log_p = model.initial_state(encoded), jnp.full((len(candidates),), BOS_ID), []
    for t in range(3):
      scores, state, _ = model.decode_step(encoded, state, last)
      log_p.append(np.asarray(decode.normalized_log_probs(scores))[np.arange(len(candidates)),
                                                         candidates[:, t]])
      last = jnp.asarray(candidates[:, t])
    log_p = np.stack(log_p, 1)
    ended = np.cumsum(candidates == EOS_ID, 1) - (candidates == EOS_ID) > 0   # after the first EOS
    totals = np.where(ended, 0.0, log_p).sum(1)
    assert totals[-1] >= totals[:-1].max() - 1e-5


def test_decoding_is_one_jitted_loop():
  """No Python loop per token: the whole search traces into one jaxpr with a while loop."""
  model = _model()
  graphdef, state = nnx.split(model)
  source, source_lengths = _sources()

  def search(state, tokens, lengths):
    return decode.beam_search(nnx.merge(graphdef, state), tokens, lengths, 30, beam_size=3)

  jaxpr = jax.make_jaxpr(search)(state, source, source_lengths)
  assert sum(e.primitive.name == "while" for e in jaxpr.jaxpr.eqns) == 1
  # The jaxpr does not grow with max_length (it would with a Python loop per token).
  longer = jax.make_jaxpr(lambda s, t, l: decode.beam_search(nnx.merge(graphdef, s), t, l, 90,
                                                             beam_size=3))(state, source,
                                                                           source_lengths)
  assert len(longer.jaxpr.eqns) == len(jaxpr.jaxpr.eqns)


def test_target_batches_shift_by_one():
  batch = batching.make_batch([[5, 6], [7]], [0, 1], 3, 4, targets=[[8, 9, 10], [11]])
  np.testing.assert_array_equal(batch["target_in"][:2], [[BOS_ID, 8, 9, 10], [BOS_ID, 11, 0, 0]])
  np.testing.assert_array_equal(batch["target_out"][:2], [[8, 9, 10, EOS_ID], [11, EOS_ID, 0, 0]])
  np.testing.assert_array_equal(batch["target_lengths"], [4, 2, 0])
  # A pair's bucket fits the longer side (target + EOS).
  stream = batching.BatchStream([[5]], None, 1, (2, 4), seed=0, targets=[[1, 2, 3]])
  assert next(stream)["target_in"].shape == (1, 4)
  # Targets with buckets of their own: the smallest that fits the batch's longest target.
  batch = batching.make_batch([[5] * 9, [6] * 9], [0, 1], 2, 16, targets=[[1], [2, 3, 4]],
                              target_buckets=(2, 4, 8))
  assert batch["tokens"].shape == (2, 16) and batch["target_in"].shape == (2, 4)


def test_label_smoothing():
  log_p = jax.nn.log_softmax(jax.random.normal(jax.random.PRNGKey(0), (2, 3, 7)))
  targets = jnp.array([[1, 2, 3], [4, 5, 6]])
  smoothed, nll = encoder_decoder.smoothed_cross_entropy(log_p, targets, 0.0)
  np.testing.assert_allclose(smoothed, nll)
  np.testing.assert_allclose(nll[1, 2], -log_p[1, 2, 6], rtol=1e-6)
  smoothed, _ = encoder_decoder.smoothed_cross_entropy(log_p, targets, 0.1)
  np.testing.assert_allclose(smoothed[0, 0], -0.9 * log_p[0, 0, 1] - 0.1 * log_p[0, 0].mean(),
                             rtol=1e-6)


def test_adversarial_term_composes_with_lambda(tiny_config):
  from xferlab.config import apply_overrides, load_experiment
  config, _ = load_experiment(MULTI30K + ":copy")
  config = apply_overrides(config, {"transfer.method": "dann"})
  task = translation.TranslationTask()
  model = task.build_model(config, VOCAB)
  seqs = [[4, 5, 6], [7, 8], [9, 10, 11, 12]]
  pairs = batching.make_batch(seqs, [0, 1, 2], 4, 12, targets=seqs)
  other = batching.make_batch(seqs[::-1], [0, 1, 2], 4, 12)
  plain, (out0, _) = task.loss(model, {"source": pairs, "target": other}, jnp.float32(0.0), None,
                             None)
  mixed, (out, _) = task.loss(model, {"source": pairs, "target": other}, jnp.float32(0.5), None,
                             None)
  np.testing.assert_allclose(mixed, plain + 0.5 * out["transfer_loss"], rtol=1e-5)
  assert 0.0 <= float(out["domain_accuracy"]) <= 1.0


def test_copy_task_is_learned_and_restored_model_translates(tmp_path):
  """Target = source: near-perfect BLEU after 300 steps of a tiny model (seconds)."""
  from xferlab import launch
  results = launch.run(MULTI30K + ":copy", {"train.progress_bar": False}, str(tmp_path))
  assert results["test_bleu"] > 90.0, results
  assert results["valid_perplexity"] < 1.5
  assert os.path.exists(tmp_path / "translations" / "test_2016_flickr.txt")
  restored = launch.restore(str(tmp_path))
  sentences = ["w1 w2 w3 w4", "w5 w5 w6 w7 w8 w9 w10"]
  assert restored.translate(sentences) == sentences


def test_unknown_pairs_are_refused():
  for pair in ("de-fr", "en-en", "en-xx", "ende"):
    with pytest.raises(ValueError, match="Multi30k pair"):
      translation.parse_pair(pair)


REAL = pytest.mark.skipif(not (ROOT and os.path.isdir(os.path.join(ROOT, "..", "shared", "data",
                                                                       "multi30k"))),
                          reason="Multi30k not found at ../shared/data/multi30k")


@REAL
def test_multi30k_pairs_fraction_and_direction():
  from xferlab.config import load_experiment
  config, _ = load_experiment(MULTI30K + ":en-de,0.1")
  sources, targets = translation.load_pairs(config, "train")
  assert len(sources) == len(targets) == 2900
  again = translation.load_pairs(config, "train")
  assert again[0] == sources                              # the same subset every time
  config.translation.pair, config.data.subset_size = "de-en", 0.0
  de, en = translation.load_pairs(config, "test_2016_flickr")
  assert len(de) == 1000 and en[0].startswith("A man") and de[0].startswith("Ein Mann")


@REAL
def test_multi30k_mixed_fine_tuning_pairs_carry_language_tags():
  from xferlab.config import load_experiment
  config, _ = load_experiment(MULTI30K + ":en-de,0.1,mixed")
  sources, targets = translation.load_pairs(config, "train")
  assert config.translation.mix_pair == "en-fr" and config.translation.mix_repeat == 10
  assert len(sources) == len(targets) == 10 * 2900 + 29000
  assert sources[:2900] == sources[2900:5800]               # the child's pairs, repeated
  assert all(s.startswith("<2de> ") for s in sources[:29000])
  assert all(s.startswith("<2fr> ") for s in sources[29000:])
  assert targets[-1].startswith("Un homme")
  valid, _ = translation.load_pairs(config, "validation")
  assert len(valid) == 1014 and all(s.startswith("<2de> ") for s in valid)
  config.translation.language_tags = False
  with pytest.raises(ValueError, match="needs translation.language_tags"):
    translation.load_pairs(config, "train")

"""Pointer-generator and summarization: forced copying, coverage, extended ids, ROUGE, baselines."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import decode, metrics
from xferlab.data.tokenizer import UNK_ID, WordTokenizer
from xferlab.models.classifier import TextEncoder
from xferlab.models.seq2seq import Seq2Seq, coverage_loss
from xferlab.tasks import summarization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = os.path.join(ROOT, "experiments", "summarization", "news_to_science.py")
VOCAB = 12


def _pointer_generator(coverage=True, seed=0):
  rngs = nnx.Rngs(seed)
  encoder = TextEncoder(VOCAB, 8, 8, bidirectional=True, rngs=rngs)
  return Seq2Seq(encoder, decoder_hidden=10, attention="bahdanau", input_feeding=False,
                 copy=True, coverage=coverage, rngs=rngs)


def test_forced_copy_puts_all_mass_on_source_tokens_including_oov():
  model = _pointer_generator()
  gate = model.copy_gate
  gate.kernel[...] = jnp.zeros_like(gate.kernel[...])
  gate.bias[...] = jnp.full_like(gate.bias[...], -50.0)         # p_gen = 0: copy only
  # Extended ids >= VOCAB are the example's out-of-vocabulary source words.
  source = jnp.array([[5, VOCAB + 0, 7, VOCAB + 1, 0], [VOCAB + 0, 4, 4, 0, 0]])
  lengths = jnp.array([4, 3])
  target_in = jnp.array([[2, 5, VOCAB + 0], [2, VOCAB + 0, 4]])
  log_probs, decoded = model(source, lengths, target_in, jnp.array([3, 3]))
  assert log_probs.shape == (2, 3, VOCAB + 5)
  probs = np.exp(np.asarray(log_probs))
  for row in range(2):
    ids = np.asarray(source[row, :lengths[row]])
    expected = np.zeros((3, VOCAB + 5))
    for s, token in enumerate(ids):
      expected[:, token] += np.asarray(decoded["weights"][row, :, s])
    np.testing.assert_allclose(probs[row], expected, atol=1e-5)
    assert probs[row][:, np.setdiff1d(np.arange(VOCAB + 5), ids)].max() < 1e-6
  # Decoding reproduces source tokens only, out-of-vocabulary ones included.
  out = np.asarray(decode.greedy(model, source, lengths, 6))
  for row in range(2):
    produced = set(out[row]) - {0, 3}
    assert produced <= set(np.asarray(source[row, :lengths[row]]).tolist())
  assert (out >= VOCAB).any()


def test_coverage_loss_is_zero_when_attention_never_repeats():
  eye = jnp.eye(4)
  coverage = jnp.zeros(4)
  total = 0.0
  for t in range(4):                                             # one new position per step
    total += float(coverage_loss(eye[t][None], coverage[None])[0])
    coverage = coverage + eye[t]
  assert total == 0.0
  assert float(coverage_loss(eye[1][None], eye[1][None])[0]) == 1.0   # attending twice costs
  # The model's coverage loss is Σ_s min(α_t, Σ_{t'<t} α_t') of its own attention.
  model = _pointer_generator()
  source, lengths = jnp.array([[4, 5, 6, 7, 8]]), jnp.array([5])
  _, decoded = model(source, lengths, jnp.array([[2, 4, 5, 6]]), jnp.array([4]))
  w = np.asarray(decoded["weights"][0])
  expected = [np.minimum(w[t], w[:t].sum(0)).sum() for t in range(4)]
  np.testing.assert_allclose(decoded["coverage_loss"][0], expected, atol=1e-6)
  assert expected[0] == 0.0 and expected[-1] > 0.0


def test_extended_ids():
  tokenizer = WordTokenizer(["the", "cat", "sat"])
  vocab = tokenizer.vocab_size
  src, tgt, oov = summarization.extended_ids(tokenizer, "The zyx cat qwe zyx", "zyx sat on qwe",
                                             max_source=10)
  assert oov == ["zyx", "qwe"]
  the, cat, sat = (tokenizer.stoi[w] for w in ("the", "cat", "sat"))
  assert src == [the, vocab, cat, vocab + 1, vocab]
  assert tgt == [vocab, sat, UNK_ID, vocab + 1]                  # "on" is in neither: UNK
  # Words past the source cut are not copyable.
  src, tgt, oov = summarization.extended_ids(tokenizer, "the zyx cat qwe", "qwe", max_source=2)
  assert oov == ["zyx"] and tgt == [UNK_ID]


def test_rouge_wrapper_agrees_with_rouge_score():
  from rouge_score import rouge_scorer
  predictions = ["the cat sat on the mat", "a quick brown dog jumps", "nothing in common"]
  references = [["the cat was sitting on the mat", "a cat on a mat"], ["the quick brown fox jumps"],
                ["completely different words", "still unrelated"]]
  ours = metrics.rouge_scores(predictions, references)
  scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
  for kind in ("rouge1", "rouge2", "rougeL"):
    per = [[scorer.score(r, p)[kind].fmeasure for r in refs]
           for p, refs in zip(predictions, references)]
    assert ours[f"{kind}_max"] == pytest.approx(100 * np.mean([max(f) for f in per]))
    assert ours[f"{kind}_mean"] == pytest.approx(100 * np.mean([np.mean(f) for f in per]))
  assert metrics.rouge_scores(["a b c"], [["a b c"]])["rougeL_max"] == pytest.approx(100.0)


def test_lead1_and_oracle_baselines():
  rows = [{"document": "First one here. Second sentence is the summary!\n\nThird.",
           "references": ["second sentence is the summary"]},
          {"document": "A. B.", "document_sentences": ["A.", "B."], "source_labels": [0, 1],
           "references": ["b"]}]
  assert summarization.first_sentence(rows[0]["document"]) == "First one here."
  scores = summarization.baselines(rows)
  assert scores["oracle"]["rouge1_max"] == pytest.approx(100.0)
  assert scores["lead1"]["rouge1_max"] < 50.0


def test_copy_task_learns_to_copy_unseen_words(tmp_path):
  """The summary is the first three words, one of them a word never seen in training."""
  from xferlab import launch
  results = launch.run(EXPERIMENT + ":copy", {"train.progress_bar": False}, str(tmp_path))
  assert results["test_rouge1_max"] > 90.0, results
  rows = [json.loads(line) for line in open(tmp_path / "summaries" / "test.jsonl")]
  exact = np.mean([r["prediction"] == r["references"][0] for r in rows])
  assert exact > 0.9
  restored = launch.restore(str(tmp_path))
  assert restored.summarize(["w1 unseenword w2 w3 w4 w5"]) == ["w1 unseenword w2"]


def test_data_subset_size_keeps_the_same_share_of_training_pairs_for_every_seed():
  from xferlab.config import load_experiment
  config, _ = load_experiment(EXPERIMENT + ":copy")
  task = summarization.SummarizationTask()
  documents, summaries = task.load_pairs(config, "train")
  config.data.subset_size = 0.25
  kept_docs, kept_summaries = task.load_pairs(config, "train")
  assert len(kept_docs) == round(0.25 * len(documents))
  pairs = set(zip(documents, summaries))
  assert all(pair in pairs for pair in zip(kept_docs, kept_summaries))
  config.seed = 7                                   # the model seed does not change the subset
  assert task.load_pairs(config, "train")[0] == kept_docs
  config.data.subset_seed = 1
  assert task.load_pairs(config, "train")[0] != kept_docs
  config.data.subset_size = 5.0                     # a count
  assert len(task.load_pairs(config, "train")[0]) == 5
  config.data.subset_size = -0.5
  with pytest.raises(ValueError, match="data.subset_size"):
    task.load_pairs(config, "train")
  assert len(task.load_pairs(config, "validation")[0]) > 0   # evaluation sets stay whole

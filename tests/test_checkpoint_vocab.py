"""Partial restore across vocabularies: mapped rows bit for bit, mean rows, mismatch errors."""

import os

import numpy as np
import pytest

from xferlab import checkpoint
from xferlab.transfer import model_based
from xferlab.config import apply_overrides
from xferlab.data.tokenizer import WordTokenizer
from xferlab.defaults import base_config

OLD_WORDS = ["a", "b", "c", "d"]              # vocabulary 8 (with the 4 special tokens)
NEW_WORDS = ["c", "x", "a", "y", "b"]         # vocabulary 9: "x", "y" are new, "d" is gone
# New id -> old id: specials 0..3 keep theirs; c -> 6, x -> -1, a -> 4, y -> -1, b -> 5.
EXPECTED_MAP = [0, 1, 2, 3, 6, -1, 4, -1, 5]
EMBED, HIDDEN = 5, 12     # sizes no vocabulary here has


def _params(vocab, seed, hidden=HIDDEN):
  """An encoder, a classifier head and an LM output projection over ``vocab`` tokens."""
  rng = np.random.default_rng(seed)
  a = lambda *shape: rng.normal(size=shape).astype(np.float32)
  return {"classifier": {"encoder": {"embed": {"embedding": a(vocab, EMBED)},
                                     "rnn": {"layers": {0: {"cell": {
                                         "input_proj": {"kernel": a(EMBED, hidden),
                                                        "bias": a(hidden)}}}}}},
                         "head": {"layers": {0: {"kernel": a(hidden, 2), "bias": a(2)}}}},
          "lm": {"output": {"kernel": a(EMBED, vocab), "bias": a(vocab)}}}


def _save(workdir, params, tokenizer=None):
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "best"), 1)
  ckpt.save(7, {"params": params}, {})
  ckpt.close()
  if tokenizer is not None:
    tokenizer.save(os.path.join(workdir, "tokenizer"))
  return str(workdir)


def test_vocab_mapping_matches_token_strings():
  vocab_map = model_based.vocab_mapping(WordTokenizer(OLD_WORDS), WordTokenizer(NEW_WORDS))
  assert vocab_map.dtype == np.int32 and vocab_map.tolist() == EXPECTED_MAP


def test_restore_into_another_vocabulary(tmp_path):
  old = _params(8, seed=0)
  workdir = _save(tmp_path / "lm", old)
  new = _params(9, seed=1)
  vocab_map = np.array(EXPECTED_MAP)
  out = model_based.restore_subtrees(new, workdir, ["classifier.encoder", "lm"], vocab_map)
  emb, old_emb = out["classifier"]["encoder"]["embed"]["embedding"], \
      old["classifier"]["encoder"]["embed"]["embedding"]
  kernel, old_kernel = out["lm"]["output"]["kernel"], old["lm"]["output"]["kernel"]
  bias, old_bias = out["lm"]["output"]["bias"], old["lm"]["output"]["bias"]
  assert emb.shape == (9, EMBED) and kernel.shape == (EMBED, 9) and bias.shape == (9,)
  for i, j in enumerate(EXPECTED_MAP):
    if j >= 0:   # a token both vocabularies have: its row, bit for bit
      np.testing.assert_array_equal(emb[i], old_emb[j])
      np.testing.assert_array_equal(kernel[:, i], old_kernel[:, j])
      assert bias[i] == old_bias[j]
    else:        # a new token: the mean of the checkpoint's rows
      np.testing.assert_allclose(emb[i], old_emb.mean(axis=0), rtol=1e-6)
      np.testing.assert_allclose(kernel[:, i], old_kernel.mean(axis=1), rtol=1e-6)
      np.testing.assert_allclose(bias[i], old_bias.mean(), rtol=1e-6)
  # The rest of the restored subtree comes over unchanged; the head stays initialized.
  cell = lambda p: p["classifier"]["encoder"]["rnn"]["layers"][0]["cell"]["input_proj"]["kernel"]
  np.testing.assert_array_equal(cell(out), cell(old))
  np.testing.assert_array_equal(out["classifier"]["head"]["layers"][0]["kernel"],
                                new["classifier"]["head"]["layers"][0]["kernel"])
  assert set(out["classifier"]["encoder"]["rnn"]["layers"]) == {0}   # int keys kept


def test_init_from_vocab_auto_reads_the_checkpoints_tokenizer(tmp_path):
  old = _params(8, seed=0)
  workdir = _save(tmp_path / "lm", old, WordTokenizer(OLD_WORDS))
  config = apply_overrides(base_config(), {"init_from.path": workdir + "/best/7",
                                           "init_from.vocab": "auto"})
  vocab_map = model_based.init_from_vocab_map(config.init_from, WordTokenizer(NEW_WORDS))
  assert vocab_map.tolist() == EXPECTED_MAP
  config = apply_overrides(config, {"init_from.vocab": os.path.join(workdir, "tokenizer")})
  assert model_based.init_from_vocab_map(config.init_from, WordTokenizer(NEW_WORDS)).tolist() \
      == EXPECTED_MAP
  assert model_based.init_from_vocab_map(apply_overrides(config, {"init_from.vocab": ""}).init_from,
                                        WordTokenizer(NEW_WORDS)) is None
  with pytest.raises(FileNotFoundError, match="init_from.vocab"):
    model_based.tokenizer_dir(str(tmp_path))


def test_mismatch_errors_list_the_offending_paths(tmp_path):
  workdir = _save(tmp_path / "lm", _params(8, seed=0))
  # Without a vocab map the vocabularies must agree: the existing error.
  with pytest.raises(ValueError) as e:
    model_based.restore_subtrees(_params(9, seed=1), workdir, ["classifier.encoder"])
  assert "classifier.encoder.embed.embedding: checkpoint (8, 5) vs model (9, 5)" in str(e.value)
  # With one, the other shapes must still match; every offending path is listed.
  with pytest.raises(ValueError) as e:
    model_based.restore_subtrees(_params(9, seed=1, hidden=13), workdir,
                                ["classifier.encoder", "classifier.head", "lm"],
                                np.array(EXPECTED_MAP))
  message = str(e.value)
  assert "classifier.encoder.rnn.layers.0.cell.input_proj.kernel: checkpoint (5, 12) vs model " \
      "(5, 13)" in message
  assert "classifier.encoder.rnn.layers.0.cell.input_proj.bias: checkpoint (12,) vs model (13,)" \
      in message
  assert "classifier.head.layers.0.kernel: checkpoint (12, 2) vs model (13, 2)" in message
  assert "embedding" not in message and "lm." not in message
  # A vocab map of the wrong length names the embedding.
  with pytest.raises(ValueError, match=r"classifier\.encoder\.embed\.embedding: checkpoint "
                                       r"\(8, 5\) vs model \(9, 5\) with a vocab map of 8"):
    model_based.restore_subtrees(_params(9, seed=1), workdir, ["classifier.encoder"],
                                np.arange(8))


def test_a_tied_softmax_bias_moves_with_its_tokens(tmp_path):
  """Same vocabulary size, other order (a retrained sentencepiece model): the ``softmax_bias``
  of a tied output layer is vocabulary-indexed too, not a plain copy."""
  rng = np.random.default_rng(0)
  old = {"seq2seq": {"embed": {"embedding": rng.normal(size=(8, EMBED)).astype(np.float32)},
                     "softmax_bias": rng.normal(size=(8,)).astype(np.float32)}}
  new = {"seq2seq": {"embed": {"embedding": np.zeros((8, EMBED), np.float32)},
                     "softmax_bias": np.zeros((8,), np.float32)}}
  vocab_map = np.array([0, 1, 2, 3, 7, 6, -1, 4])
  out = model_based.restore_subtrees(new, _save(tmp_path / "s2s", old), ["seq2seq"], vocab_map)
  bias, old_bias = out["seq2seq"]["softmax_bias"], old["seq2seq"]["softmax_bias"]
  for i, j in enumerate(vocab_map):
    if j >= 0:
      assert bias[i] == old_bias[j]
      np.testing.assert_array_equal(out["seq2seq"]["embed"]["embedding"][i],
                                    old["seq2seq"]["embed"]["embedding"][j])
  np.testing.assert_allclose(bias[6], old_bias.mean(), rtol=1e-6)

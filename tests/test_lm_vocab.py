"""The OOV-adjusted perplexity of ``benchmarks.lm_vocab``: what an ``<unk>`` hides is paid for."""

import math

import pytest

from benchmarks.lm_vocab import oov_log_probs, oov_penalty
from xferlab.data.tokenizer import WordTokenizer


def test_unknown_words_pay_their_add_one_unigram_probability():
  tokenizer = WordTokenizer(["a", "b"], split="whitespace")
  train = ["a b c c d", "a a b"]               # OOV in train: c twice, d once
  valid = ["a c e", "b d"]                    # e is OOV and unseen in train
  log_probs = oov_log_probs(tokenizer, train, valid)
  total = 3 + 3                               # 3 OOV tokens, 3 OOV types (c, d, e), add-one
  assert log_probs == pytest.approx({"c": math.log(3 / total), "d": math.log(2 / total),
                                     "e": math.log(1 / total)})
  # stream: a c e </s> b d </s> -> one row; targets c e </s> b d </s>
  nats, unks, targets = oov_penalty(tokenizer, valid, log_probs, rows=1)
  assert (unks, targets) == (3, 6)
  assert nats == pytest.approx(-(log_probs["c"] + log_probs["e"] + log_probs["d"]))


def test_a_vocabulary_that_covers_the_text_pays_nothing():
  tokenizer = WordTokenizer(["a", "b", "c"], split="whitespace")
  log_probs = oov_log_probs(tokenizer, ["a b c"], ["c b a a"])
  assert log_probs == {}
  assert oov_penalty(tokenizer, ["c b a a", "b"], log_probs, rows=2) == (0.0, 0, 4)

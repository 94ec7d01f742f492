"""Word vectors trained with gensim (xferlab.transfer.feature_based.train_word2vec) and read back by its loader."""

import json

import numpy as np
import pytest

from xferlab.transfer import feature_based as embeddings
from xferlab.transfer import feature_based as word2vec
from xferlab.data.tokenizer import WordTokenizer

pytest.importorskip("gensim")


def _texts(n=300, seed=0):
  """Two word families that never share a sentence: cats and dogs vs cars and roads."""
  rng = np.random.default_rng(seed)
  animals = ["cat", "dog", "kitten", "puppy", "pet", "fur"]
  traffic = ["car", "road", "truck", "engine", "wheel", "tyre"]
  return [" ".join(rng.choice(animals if i % 2 else traffic, 12)) + "." for i in range(n)]


def test_vectors_are_written_readable_deterministic_and_learn_co_occurrence(tmp_path):
  texts = _texts()
  info = word2vec.train_word2vec(texts, str(tmp_path / "a"), dim=16, min_count=1, epochs=20)
  assert info["texts"] == 300 and info["vocabulary"] == 13 and info["dim"] == 16
  assert json.loads((tmp_path / "a" / "word2vec.json").read_text())["seed"] == 0
  word2vec.train_word2vec(texts, str(tmp_path / "b"), dim=16, min_count=1, epochs=20)
  assert ((tmp_path / "a" / "vectors.txt").read_text()
          == (tmp_path / "b" / "vectors.txt").read_text())        # one worker, fixed seed
  tokenizer = WordTokenizer.train(texts)                           # the classifier's own words
  tokens = embeddings.token_strings(tokenizer)
  vectors, _, _ = embeddings.read_word_vectors(str(tmp_path / "a" / "vectors.txt"), tokenizer, 16)
  assert len(vectors) == 13                                        # every word and the "."
  row = {t: vectors[tokens.index(t)] for t in ("cat", "kitten", "car")}
  cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
  assert cos(row["cat"], row["kitten"]) > cos(row["cat"], row["car"]) + 0.2

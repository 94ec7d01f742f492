"""Pretrained word vectors: GloVe / word2vec text in, coverage, export and round trip."""

import gzip

import numpy as np
import pytest

from xferlab.transfer import feature_based as embeddings, model_based as finetune
from xferlab.config import apply_overrides
from xferlab.data.tokenizer import WordTokenizer
from xferlab.defaults import base_config

DIM = 5
WORDS = ["the", "cat", "dog", "sat", "mat", "on"]    # ids 4..9
# The file: "Cat" comes before "cat" (the exact match must still win); "Dog" is the
# only form of "dog" (a case-folded match); "zebra" is not in the vocabulary;
# "mat" and "on" have no vector.
FILE_WORDS = ["Cat", "the", "cat", "Dog", "sat", "zebra"]


def _vectors(n, seed=0):
  return (np.random.default_rng(seed).normal(size=(n, DIM)) * 0.3).astype(np.float32)


def _write(path, words, vectors, header=False, gz=False):
  lines = [f"{len(words)} {DIM}\n"] if header else []
  lines += [w + " " + " ".join(str(v) for v in row) + "\n" for w, row in zip(words, vectors)]
  data = "".join(lines).encode("utf-8")
  with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
    f.write(data)
  return str(path)


def _bits(x):
  return np.asarray(x, np.float32).view(np.int32)


@pytest.mark.parametrize("fmt", ["glove", "word2vec.gz"])
def test_loaded_rows_are_the_files_vectors_bit_for_bit(tmp_path, fmt):
  tok = WordTokenizer(WORDS)
  file_vectors = _vectors(len(FILE_WORDS))
  path = _write(tmp_path / f"vectors.{fmt}", FILE_WORDS, file_vectors,
                header=fmt.startswith("word2vec"), gz=fmt.endswith(".gz"))
  init = _vectors(tok.vocab_size, seed=1) + 5.0
  counts = np.array([0, 7, 0, 0, 10, 5, 3, 2, 4, 1])   # per id: <unk> and the specials ignored
  matrix, coverage = embeddings.load_word_vectors(path, tok, DIM, init=init, counts=counts)
  assert matrix.dtype == np.float32 and matrix.shape == (tok.vocab_size, DIM)
  row = lambda word: file_vectors[FILE_WORDS.index(word)]
  for word, source in (("the", "the"), ("cat", "cat"), ("dog", "Dog"), ("sat", "sat")):
    np.testing.assert_array_equal(_bits(matrix[tok.stoi[word]]), _bits(row(source)))
  for word in ("mat", "on"):   # no vector: the caller's init, untouched
    np.testing.assert_array_equal(_bits(matrix[tok.stoi[word]]), _bits(init[tok.stoi[word]]))
  assert not np.any(matrix[:4])   # PAD, UNK, BOS, EOS: not in the file -> zero
  assert coverage == {"vocab": 4 / 6, "found": 4, "total": 6, "inexact": 1,
                      "tokens": (10 + 5 + 3 + 2) / (10 + 5 + 3 + 2 + 4 + 1)}


def test_random_rows_match_the_spread_of_the_vectors(tmp_path):
  words = [f"w{i}" for i in range(200)]
  vectors = _vectors(len(words))
  path = _write(tmp_path / "v.txt", words, vectors)
  tok = WordTokenizer(words + [f"x{i}" for i in range(400)])
  matrix, coverage = embeddings.load_word_vectors(path, tok)
  assert coverage["found"] == 200 and coverage["total"] == 600
  missing = matrix[4 + 200:]
  assert np.std(missing) == pytest.approx(np.std(vectors), rel=0.1)


def test_sentencepiece_pieces_match_words_without_their_mark(tmp_path):
  pieces = ["<pad>", "<unk>", "<s>", "</s>", "\u2581the", "\u2581ca", "t"]
  vectors = _vectors(2)
  path = _write(tmp_path / "v.txt", ["the", "t"], vectors)
  matrix, coverage = embeddings.load_word_vectors(path, pieces, init=np.zeros((7, DIM)))
  np.testing.assert_array_equal(_bits(matrix[4]), _bits(vectors[0]))
  np.testing.assert_array_equal(_bits(matrix[6]), _bits(vectors[1]))
  assert not np.any(matrix[5])
  assert coverage["found"] == 2 and coverage["inexact"] == 1


@pytest.mark.parametrize("fmt,name", [("glove", "out.txt"), ("word2vec", "out.vec.gz")])
def test_export_then_load_round_trips(tmp_path, fmt, name):
  tok = WordTokenizer(WORDS)
  matrix = _vectors(tok.vocab_size, seed=3)
  matrix[2] = [1e-30, -3e12, 0.0, 1.0, -0.0]   # awkward values survive too
  path = str(tmp_path / name)
  embeddings.export_word_vectors(path, tok, matrix, fmt=fmt)
  with (gzip.open(path, "rt") if name.endswith(".gz") else open(path)) as f:
    first = f.readline().split()
  if fmt == "word2vec":
    assert first == [str(tok.vocab_size), str(DIM)]
  else:
    assert first[0] == "<pad>" and len(first) == DIM + 1
  loaded, coverage = embeddings.load_word_vectors(path, tok, DIM)
  np.testing.assert_array_equal(_bits(loaded), _bits(matrix))   # special rows included
  assert coverage["vocab"] == 1.0 and coverage["inexact"] == 0


def test_a_file_of_another_dimension_is_an_error(tmp_path):
  path = _write(tmp_path / "v.txt", ["the"], _vectors(1))
  with pytest.raises(ValueError, match="5-dimensional vectors; expected 8"):
    embeddings.load_word_vectors(path, WordTokenizer(WORDS), 8)
  (tmp_path / "bad.txt").write_text("the 1 2 3 4 5\ncat 1 2\n")
  with pytest.raises(ValueError, match="line 2"):
    embeddings.load_word_vectors(str(tmp_path / "bad.txt"), WordTokenizer(WORDS))


def test_apply_pretrained_vectors_writes_every_encoder_embedding(tmp_path):
  tok = WordTokenizer(WORDS)
  file_vectors = _vectors(len(FILE_WORDS))
  path = _write(tmp_path / "v.txt", FILE_WORDS, file_vectors)
  init = _vectors(tok.vocab_size, seed=4)
  head = np.ones((3, 2), np.float32)
  params = {"classifier": {"encoder": {"embed": {"embedding": init}},
                           "head": {"layers": {0: {"kernel": head}}}}}
  config = apply_overrides(base_config(), {"model.pretrained_vectors": path,
                                           "finetune.frozen": ("embedding",)})
  out, coverage = embeddings.apply_pretrained_vectors(params, config, tok)
  embedding = np.asarray(out["classifier"]["encoder"]["embed"]["embedding"])
  np.testing.assert_array_equal(_bits(embedding[tok.stoi["cat"]]),
                                _bits(file_vectors[FILE_WORDS.index("cat")]))
  np.testing.assert_array_equal(embedding[tok.stoi["mat"]], init[tok.stoi["mat"]])
  assert not np.any(embedding[0])
  assert out["classifier"]["head"]["layers"][0]["kernel"] is head   # the rest is untouched
  assert params["classifier"]["encoder"]["embed"]["embedding"] is init   # input not modified
  assert coverage["found"] == 4
  assert finetune.frozen_prefixes(config, out) == ("classifier/encoder/embed/embedding",)
  none = apply_overrides(base_config(), {})
  assert embeddings.apply_pretrained_vectors(params, none, tok) == (params, {})

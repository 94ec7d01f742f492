"""Sentencepiece tokenizer: special ids, round trips, saving, caching and determinism."""

from __future__ import annotations

import pickle
import random

import pytest

from xferlab.data import sentencepiece_tokenizer as sp_tok
from xferlab.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, WordTokenizer, load_tokenizer

_WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "after", "ball", "red", "blue",
          "quickly", "slowly", "house", "garden", "under", "tree", "big", "small")


def corpus(n: int = 400, seed: int = 0) -> list[str]:
  rng = random.Random(seed)
  return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12))).capitalize() + "."
          for _ in range(n)]


@pytest.fixture(scope="module")
def texts():
  return corpus()


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_special_ids_round_trip_and_vocab_size(texts, tmp_path, model_type):
  tok = sp_tok.train_tokenizer(texts, model_type=model_type, vocab_size=60, cache_dir=tmp_path)
  assert isinstance(tok, sp_tok.SentencePieceTokenizer)
  assert tok.vocab_size == 60
  assert tok.tokens("<pad>")[-1] != "<pad>"  # control pieces never come out of plain text
  pieces = [tok._sp.id_to_piece(i) for i in range(4)]  # pylint: disable=protected-access
  assert pieces == ["<pad>", "<unk>", "<s>", "</s>"]
  ids = tok.encode("The cat sat on a mat.")
  assert all(i > EOS_ID for i in ids)  # no special ids inside the text
  assert tok.decode(ids) == "The cat sat on a mat."
  assert tok.decode([BOS_ID] + ids + [EOS_ID, PAD_ID, PAD_ID]) == "The cat sat on a mat."
  assert UNK_ID in tok.encode("Zebra")  # 'Z' never occurs in the training text


def test_save_and_load_tokenizer_round_trip(texts, tmp_path):
  tok = sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path / "cache")
  tok.save(str(tmp_path / "saved"))
  assert (tmp_path / "saved" / sp_tok.MODEL_FILE).exists()
  loaded = load_tokenizer(str(tmp_path / "saved"))
  assert isinstance(loaded, sp_tok.SentencePieceTokenizer)
  assert loaded.encode("A red ball.") == tok.encode("A red ball.")
  assert pickle.loads(pickle.dumps(tok)).encode("A dog.") == tok.encode("A dog.")


def test_second_call_loads_the_cache_without_training(texts, tmp_path, monkeypatch):
  first = sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path)
  monkeypatch.setattr(sp_tok.spm.SentencePieceTrainer, "train",
                      lambda **_: pytest.fail("retrained a cached tokenizer"))
  again = sp_tok.train_tokenizer(iter(texts), vocab_size=50, cache_dir=tmp_path)  # an iterator
  assert again.model_proto == first.model_proto
  assert len(list(tmp_path.iterdir())) == 1


def test_cache_key_covers_texts_and_options(texts, tmp_path):
  key = sp_tok.cache_key(texts, "unigram", 50, {"a": 1})
  assert key.startswith("unigram-50-")
  assert sp_tok.cache_key(texts, "unigram", 50, {"a": 1}) == key
  assert sp_tok.cache_key(texts[:-1], "unigram", 50, {"a": 1}) != key
  assert sp_tok.cache_key(texts, "unigram", 50, {"a": 2}) != key
  assert sp_tok.cache_key(texts, "bpe", 50, {"a": 1}) != key
  assert (sp_tok.cache_key(["ab", "c"], "unigram", 50, {})
          != sp_tok.cache_key(["a", "bc"], "unigram", 50, {}))
  sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path)
  sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path, character_coverage=1.0)
  assert len(list(tmp_path.iterdir())) == 2


def test_training_is_deterministic(texts, tmp_path):
  a = sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path / "a",
                             input_sentence_size=200)
  b = sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path / "b",
                             input_sentence_size=200)
  assert a.model_proto == b.model_proto


def test_word_model_type_gives_a_whitespace_word_tokenizer(tmp_path):
  texts = [" the cat <unk> sat ", " the N cats "]
  tok = sp_tok.train_tokenizer(texts, model_type="word", vocab_size=100, cache_dir=tmp_path)
  assert isinstance(tok, WordTokenizer) and tok.split == "whitespace"
  assert tok.decode(tok.encode("the cat <unk> N")) == "the cat <unk> N"
  cached = sp_tok.train_tokenizer(texts, model_type="word", vocab_size=100, cache_dir=tmp_path)
  assert isinstance(cached, WordTokenizer) and cached.itos == tok.itos


def test_long_lines_are_cut_for_training_instead_of_skipped():
  long_text = " ".join(["word"] * 50) + "\n\nshort line\n"
  pieces = list(sp_tok.training_sentences([long_text], max_bytes=30))
  assert pieces[-1] == "short line"
  assert all(len(p.encode()) <= 30 for p in pieces)
  assert " ".join(pieces[:-1]).split() == ["word"] * 50


def test_bad_arguments_are_rejected(texts, tmp_path):
  with pytest.raises(ValueError, match="model_type"):
    sp_tok.train_tokenizer(texts, model_type="char", vocab_size=50, cache_dir=tmp_path)
  with pytest.raises(ValueError, match="fixed"):
    sp_tok.train_tokenizer(texts, vocab_size=50, cache_dir=tmp_path, pad_id=5)
  with pytest.raises(ValueError, match="do not apply"):
    sp_tok.train_tokenizer(texts, model_type="word", vocab_size=50, cache_dir=tmp_path,
                           num_threads=2)


def test_default_cache_dir_is_under_the_data_dir(texts, tmp_path, monkeypatch):
  monkeypatch.setenv("XFERLAB_DATA_DIR", str(tmp_path))
  sp_tok.train_tokenizer(texts, vocab_size=50)
  assert [p.name.split("-")[0] for p in (tmp_path / "tokenizers").iterdir()] == ["unigram"]

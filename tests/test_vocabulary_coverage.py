"""No unknown-piece garbage: byte fallback in new sentencepiece tokenizers, decoding that never
shows `` ⁇ `` / ``<unk>``, and a vocabulary covering both languages of every Multi30k pair."""

from __future__ import annotations

import os

import pytest

from xferlab.data.sentencepiece_tokenizer import SentencePieceTokenizer, train_tokenizer
from xferlab.data.tokenizer import UNK_ID, WordTokenizer, decode_without_unknowns, unknown_rate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI30K = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
TEXTS = [f"the cat number {i} sat on the mat with a dog" for i in range(300)] + \
        ["a quick brown fox jumps over the lazy dog"] * 50
HOSTILE = "the cat 😀 中文 café sat"


def test_new_tokenizers_fall_back_to_bytes(tmp_path):
  tok = train_tokenizer(TEXTS, vocab_size=300, cache_dir=tmp_path)
  ids = tok.encode(HOSTILE)
  assert UNK_ID not in ids
  assert tok.decode(ids) == HOSTILE
  # Saved and loaded again, it still round-trips.
  tok.save(str(tmp_path / "saved"))
  from xferlab.data.tokenizer import load_tokenizer
  assert load_tokenizer(str(tmp_path / "saved")).decode(ids) == HOSTILE


def test_old_tokenizers_without_byte_fallback_load_and_never_render_unk(tmp_path):
  old = train_tokenizer(TEXTS, vocab_size=60, cache_dir=tmp_path, byte_fallback=False)
  assert isinstance(old, SentencePieceTokenizer)
  ids = old.encode(HOSTILE)
  assert UNK_ID in ids
  spans = old.unknown_spans(HOSTILE)
  assert spans == ["😀", "中文", "é"]
  assert old.decode(ids) == "the cat caf sat"                        # dropped
  assert old.decode(ids, unknowns=spans) == HOSTILE                  # copied back
  assert decode_without_unknowns(old, ids, spans[:1]) == "the cat 😀 caf sat"


def test_word_tokenizer_copies_or_drops_unknown_words():
  tok = WordTokenizer.train(["the cat sat"])
  ids = tok.encode("the emu sat")
  assert tok.decode(ids) == "the <unk> sat"
  assert tok.decode(ids, unknowns=tok.unknown_spans("the emu sat")) == "the emu sat"
  assert tok.decode(ids, unknowns=[]) == "the sat"
  assert unknown_rate([ids]) == pytest.approx(1 / 3)


def test_every_pair_reads_a_vocabulary_with_both_languages():
  from xferlab.config import load_experiment
  from xferlab.tasks import translation
  for pair in ("en-de", "de-en", "en-fr", "fr-en", "en-cs", "cs-en"):
    config, _ = load_experiment(f"{MULTI30K}:{pair}")
    assert set(pair.split("-")) <= set(translation.vocab_languages(config)), pair
  config, _ = load_experiment(f"{MULTI30K}:en-de")
  config.translation.pair = "cs-en"          # a pair the vocabulary lacks: added, with a warning
  with pytest.warns(UserWarning, match="lacks"):
    assert "cs" in translation.vocab_languages(config)


REAL = pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "..", "shared", "data", "multi30k")),
                          reason="Multi30k not found at ../shared/data/multi30k")


@pytest.mark.slow
@REAL
@pytest.mark.parametrize("pair", ["en-de", "de-en", "en-fr", "fr-en", "en-cs", "cs-en"])
def test_target_side_unknown_rate_is_below_half_a_percent(pair, tmp_path):
  from xferlab.config import load_experiment
  from xferlab.tasks import translation
  config, _ = load_experiment(f"{MULTI30K}:{pair}")
  tokenizer = translation.TranslationTask().train_tokenizer(config)
  _, targets = translation.load_pairs(config, "test_2016_flickr")
  assert unknown_rate([tokenizer.encode(t) for t in targets]) < 0.005

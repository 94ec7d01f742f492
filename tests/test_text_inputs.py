"""The input contract of every text API (``xferlab.text_inputs``): hostile inputs against
``predict``, ``predict_proba``, ``translate`` and ``summarize`` of tiny restored runs, and
no recompilation across repeated calls of one padded shape."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xferlab import launch
from xferlab.text_inputs import InputTruncatedWarning, as_texts, batch_rows, clean_text
from tests.conftest import QUICKSTART, ROOT, TINY

MULTI30K = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
SUMMARIZATION = os.path.join(ROOT, "experiments", "summarization", "news_to_science.py")
FEW_STEPS = {"train.num_steps": 4, "train.eval_every": 4, "train.progress_bar": False}

LONG = "w1 " * 33_334   # 100k characters
HOSTILE = ["", "   ", "\x00", "\ud800", "emoji 😀 中文 café", "w1\x1b[31m w2\r\n", LONG]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Tiny restored runs: a classifier, a translator, a summarizer (a few steps each)."""
  base = tmp_path_factory.mktemp("runs")
  launch.run(QUICKSTART + ":dann", TINY, str(base / "cls"))
  launch.run(MULTI30K + ":copy", FEW_STEPS, str(base / "mt"))
  launch.run(SUMMARIZATION + ":copy", FEW_STEPS, str(base / "sum"))
  return {"predict": launch.restore(str(base / "cls")),
          "translate": launch.restore(str(base / "mt")),
          "summarize": launch.restore(str(base / "sum"))}


def test_as_texts_contract():
  assert as_texts("abc") == (["abc"], True)
  assert as_texts(("a", "b")) == (["a", "b"], False)
  assert as_texts(t for t in ["x"]) == (["x"], False)
  assert as_texts(np.array(["a", "b"])) == (["a", "b"], False)
  assert as_texts([]) == ([], False)
  for bad in (None, 42, 1.5, b"bytes"):
    with pytest.raises(TypeError, match="str or a sequence of str"):
      as_texts(bad)
  with pytest.raises(TypeError, match="must be ordered.*sorted"):   # results in no known order
    as_texts({"a", "b"})
  with pytest.raises(TypeError, match=r"texts\[2\] is NoneType"):
    as_texts(["a", "b", None])
  with pytest.raises(TypeError, match=r"texts\[0\] is bytes.*decode"):
    as_texts([b"x"])
  assert clean_text("a\x00b\x7fc\td\ne") == "a b c\td\ne"
  assert clean_text("x\ud800y") == "x\ufffdy"
  assert clean_text("\ud83d\ude00") == "😀"          # a valid surrogate pair is its character
  assert clean_text("emoji 😀 中文 café") == "emoji 😀 中文 café"
  with pytest.warns(InputTruncatedWarning, match="1 of 2"):
    assert as_texts(["abcdef", "ab"], max_chars=3)[0] == ["abc", "ab"]
  assert [batch_rows(n, 100) for n in (1, 2, 3, 5, 64, 65, 300)] == [1, 2, 4, 8, 64, 100, 100]


@pytest.mark.parametrize("api", ["predict", "predict_proba", "translate", "summarize"])
def test_every_text_api_survives_hostile_inputs(runs, api):
  restored = runs["predict" if api == "predict_proba" else api]
  call = getattr(restored, api)
  # A bare string is one text: one result, not one per character.
  one = call("w1 w2 w3 w4")
  if api == "predict":
    assert isinstance(one, int)
  elif api == "predict_proba":
    assert one.shape == (restored.config.classification.num_classes,)
  else:
    assert isinstance(one, str)
  # Wrong types raise TypeError naming the index and the type.
  for bad in (None, 42):
    with pytest.raises(TypeError, match="str or a sequence of str"):
      call(bad)
  with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
    call(["w1", None])
  with pytest.raises(TypeError, match=r"texts\[0\] is int"):
    call([42])
  # [] gives an empty result of the usual type.
  empty = call([])
  if api == "predict_proba":
    assert empty.shape == (0, restored.config.classification.num_classes)
  elif api == "predict":
    assert empty.shape == (0,)
  else:
    assert empty == []
  # Hostile texts: one result each, the long one with a truncation warning.
  with pytest.warns(InputTruncatedWarning):
    out = call(HOSTILE)
  assert len(out) == len(HOSTILE)
  if api == "predict_proba":
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(np.isfinite(out))
  elif api in ("translate", "summarize"):
    assert all(isinstance(t, str) for t in out)
    assert out[0] == out[1] == ""                      # empty and whitespace-only texts
    assert not any("⁇" in t or "<unk>" in t for t in out), out
  # The same text alone and inside a batch gives the same result.
  alone = call(HOSTILE[4])
  if api == "predict_proba":
    np.testing.assert_allclose(alone, out[4], rtol=1e-5, atol=1e-6)
  else:
    assert alone == out[4]


def test_repeated_calls_do_not_recompile(runs):
  for api, text in (("predict", "a sturdy pan , really great"), ("translate", "w1 w2 w3"),
                    ("summarize", "w1 w2 w3 w4 w5 w6")):
    restored = runs[api]
    call = getattr(restored, api)
    call([text])
    compiled = restored.compilations()
    assert compiled >= 1
    for other in (text + " w4", text, "w7"):         # one row, the same length bucket
      call([other])
    assert restored.compilations() == compiled, api

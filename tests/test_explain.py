"""Explanations: integrated gradients are complete, gradient × input has the right shape, the
HTML page holds every token and is valid (and renders in headless Chromium when it is
installed), the faithfulness test, and attention maps of encoder-decoders."""

from __future__ import annotations

import html
import json
import os
from html.parser import HTMLParser

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import decode, launch
from xferlab.data.tokenizer import BOS_ID, PAD_ID
from xferlab.models.classifier import TextEncoder
from xferlab.models.seq2seq import Seq2Seq
from xferlab.studies import explain
from tests.conftest import QUICKSTART, ROOT, TINY

# A tiny classifier that learns the synthetic sentiment corpus in 100 steps (seconds).
TRAINED = dict(TINY, **{"train.num_steps": 100, "train.eval_every": 100,
                        "optimizer.learning_rate": 0.01, "transfer.method": "none",
                        "train.progress_bar": False})
SUMMARIZATION = os.path.join(ROOT, "experiments", "summarization", "news_to_science.py")
TRANSLATION = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
SMALL_SEQ2SEQ = {"model.embed_dim": 8, "model.hidden_size": 8, "seq2seq.decoder_hidden": 8,
                 "decode.beam_size": 1}


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory):
  """``(workdir, Restored)`` of a tiny classifier trained on the synthetic corpus."""
  workdir = tmp_path_factory.mktemp("explain") / "run"
  launch.run(QUICKSTART + ":dann", TRAINED, str(workdir))
  return str(workdir), launch.restore(str(workdir))


@pytest.fixture(scope="session")
def target_reviews(trained_classifier):
  return explain.target_texts(trained_classifier[1], 16)


def test_integrated_gradients_sum_to_the_output_difference(trained_classifier, target_reviews):
  """Completeness within 1 %: Σ_t IG_t = f(x) - f(baseline), with f(x) the model's own
  probability and f(PAD baseline) the model on PAD tokens, both computed independently."""
  restored = trained_classifier[1]
  texts = target_reviews[0][:8]
  attributions = explain.integrated_gradients(restored, texts, steps=64, baseline="pad")
  probs = restored.predict_proba(texts)
  checked = 0
  for a, p in zip(attributions, probs):
    assert a.target == int(np.argmax(p))
    np.testing.assert_allclose(a.output, p[a.target], atol=1e-5)
    pads = explain.sequence_probabilities(restored, [[PAD_ID] * len(a.ids)])[0]
    np.testing.assert_allclose(a.baseline_output, pads[a.target], atol=1e-5)
    delta = a.output - a.baseline_output
    assert abs(float(a.scores.sum()) - delta) <= 0.01 * max(abs(delta), explain.DELTA_FLOOR)
    assert a.completeness_error <= 0.01
    checked += abs(delta) > 0.05
  assert checked >= 2   # the check is not only about differences near zero
  # A given class, the zero baseline and a logit output are complete too.
  for a in explain.integrated_gradients(restored, texts[:3], target=0, baseline="zero",
                                        output="logit"):
    assert a.target == 0 and a.completeness_error <= 0.01


def test_refinement_stops_at_the_point_cap(trained_classifier, target_reviews):
  """An unreachable tolerance refines until every text has MAX_PATH_POINTS points, then stops
  (float32 noise keeps the error estimate of a tiny difference above a tiny budget)."""
  texts = target_reviews[0][:2]
  attributions = explain.integrated_gradients(trained_classifier[1], texts, steps=16,
                                              tolerance=1e-12, refine=40)
  assert len(attributions) == 2
  assert all(a.completeness_error <= 0.01 for a in attributions)


def test_quadrature_rules():
  for rule in explain.RULES:
    alphas, weights = explain.quadrature(8, rule)
    assert np.isclose(weights.sum(), 1.0) and alphas.min() >= 0 and alphas.max() <= 1
    exact = rule in ("trapezoid", "middle")           # for a linear integrand
    assert np.isclose(np.dot(weights, alphas), 0.5) == exact
  grid = np.array([0.0, 0.1, 0.15, 0.5, 1.0])
  assert np.isclose(explain.trapezoid_weights(grid).sum(), 1.0)
  with pytest.raises(ValueError):
    explain.quadrature(0)


def test_gradient_x_input_shapes_and_types(trained_classifier):
  restored = trained_classifier[1]
  texts = ["a sturdy pan , really great", "", "flimsy"]
  out = explain.gradient_x_input(restored, texts)
  assert [type(a) for a in out] == [explain.Attribution] * 3
  for a, text in zip(out, texts):
    assert a.scores.dtype == np.float32 and a.scores.shape == (len(a.tokens),) == (len(a.ids),)
    assert np.all(np.isfinite(a.scores)) and a.method == "grad_x_input"
    assert a.tokens == (restored.tokenizer.tokens(text) or ["<unk>"])
  assert out[1].ids == [1]                                  # an empty text reads as one UNK
  single = explain.gradient_x_input(restored, "a sturdy pan")  # one str is one text
  assert len(single) == 1 and single[0].tokens == ["a", "sturdy", "pan"]
  with pytest.raises(TypeError, match=r"texts\[1\]"):
    explain.gradient_x_input(restored, ["fine", None])
  with pytest.raises(TypeError, match="translation or summarization"):
    explain.attention_maps(restored, "a classifier has no attention")


class _Validator(HTMLParser):
  """Collects tags and text; fails on unbalanced tags."""
  VOID = {"meta", "br", "hr", "img", "link", "input"}

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.stack, self.tags, self.text, self.problems = [], [], [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append((tag, dict(attrs)))
    if tag not in self.VOID:
      self.stack.append(tag)

  def handle_endtag(self, tag):
    if not self.stack or self.stack.pop() != tag:
      self.problems.append(f"unbalanced </{tag}>")

  def handle_data(self, data):
    self.text.append(data)


def _validate(page: str) -> _Validator:
  v = _Validator()
  v.feed(page)
  v.close()
  assert not v.problems and not v.stack, (v.problems, v.stack)
  assert page.startswith("<!DOCTYPE html>")
  names = [t for t, _ in v.tags]
  assert names[:4] == ["html", "head", "meta", "title"] and names.count("style") == 1
  assert not {"script", "link", "img", "iframe"} & set(names)          # self-contained
  assert not any(k in ("src", "href") for _, attrs in v.tags for k in attrs)
  assert "http" not in page and "url(" not in page
  return v


def test_html_page_holds_every_token_and_is_valid(trained_classifier, tmp_path):
  restored = trained_classifier[1]
  texts = ["a sturdy pan <script>alert(1)</script> & 'quotes' \"too\"", "great knife"]
  attributions = explain.gradient_x_input(restored, texts)
  page = explain.render_html(attributions, str(tmp_path / "a.html"), labels=("neg", "pos"))
  assert open(tmp_path / "a.html", encoding="utf-8").read() == page
  v = _validate(page)
  spans = [attrs for tag, attrs in v.tags if tag == "span" and attrs.get("class") == "tok"]
  assert len(spans) == sum(len(a.tokens) for a in attributions)
  text = "".join(v.text)
  for a in attributions:
    position = 0
    for token in a.tokens:                         # every token, in order, escaped
      position = text.index(token, position) + len(token)
      assert html.escape(token) in page
  assert "<script>alert" not in page


def test_html_renders_in_headless_chromium(trained_classifier, tmp_path):
  """The page displays in a real browser: a screenshot with the highlight colours in it."""
  if not os.path.exists(explain.CHROMIUM):
    pytest.skip(f"{explain.CHROMIUM} is absent (apt-get install -y chromium)")
  import matplotlib.image
  restored = trained_classifier[1]
  attributions = explain.gradient_x_input(restored, ["great sturdy pan", "awful flimsy lid"])
  explain.render_html(attributions, str(tmp_path / "page.html"))
  explain.screenshot(str(tmp_path / "page.html"), str(tmp_path / "page.png"), size=(800, 500))
  image = matplotlib.image.imread(str(tmp_path / "page.png"))[..., :3]
  assert image.shape[:2] == (500, 800)
  blue = (image[..., 2] - image[..., 0] > 0.15).sum()
  red = (image[..., 0] - image[..., 2] > 0.15).sum()
  dark = (image.mean(-1) < 0.3).sum()                              # the text itself
  assert blue > 50 and red > 50 and dark > 200, (blue, red, dark)


def test_faithfulness_reports_top_k_against_random(trained_classifier, target_reviews):
  restored = trained_classifier[1]
  result = explain.faithfulness(restored, target_reviews[0][:12], k=3, method="ig", steps=16,
                                repeats=3)
  assert set(result) == {"k", "method", "num_texts", "repeats", "top_k", "random",
                         "drop_difference", "top_k_wins"}
  for part in ("top_k", "random"):
    assert set(result[part]) == {"mean_probability_drop", "flip_rate"}
    assert 0.0 <= result[part]["flip_rate"] <= 1.0
  assert result["num_texts"] == 12 and result["k"] == 3 and result["method"] == "ig"
  np.testing.assert_allclose(result["drop_difference"], result["top_k"]["mean_probability_drop"]
                             - result["random"]["mean_probability_drop"])
  # This model leans on a few sentiment words: deleting them hurts far more than random words.
  assert result["top_k"]["mean_probability_drop"] > result["random"]["mean_probability_drop"]
  given = explain.gradient_x_input(restored, target_reviews[0][:4])
  again = explain.faithfulness(restored, k=1, attributions=given, repeats=2)
  assert again["method"] == "grad_x_input" and again["num_texts"] == 4


def test_word_groups_split_domain_words_from_shared_ones(trained_classifier):
  restored = trained_classifier[1]
  source = ["great gripping novel", "awful dull plot", "great dull novel"] * 3
  target = ["great sturdy pan", "awful flimsy lid", "great flimsy pan"] * 3
  groups = explain.domain_word_groups(source, target, restored.tokenizer, min_count=3)
  assert {"sturdy", "flimsy", "pan"} <= groups["target_specific"]
  assert {"gripping", "novel"} <= groups["source_specific"]
  assert {"great", "awful"} <= groups["shared"]
  mass = explain.word_group_mass(explain.gradient_x_input(restored, target[:3]), groups)
  assert set(mass) == set(groups)
  assert all(0.0 <= g["share"] <= 1.0 for g in mass.values())
  assert sum(g["share"] for g in mass.values()) <= 1.0 + 1e-6


def test_command_writes_pages_pictures_and_numbers(trained_classifier, tmp_path):
  workdir = trained_classifier[0]
  out = tmp_path / "out"
  assert explain.main([workdir, "--texts", "a sturdy pan", "awful flimsy lid", "--out",
                       str(out), "--steps", "8", "--faithfulness", "1,2",
                       "--random-repeats", "2"]) == 0
  written = json.load(open(out / "attributions.json"))
  assert [f["k"] for f in written["faithfulness"]] == [1, 2]
  assert len(written["attributions"]) == 2
  summary = json.load(open(out / "explain.json"))
  assert set(summary["arms"]["run"]) >= {"k1_top_k_mean_probability_drop", "k2_top_k_wins"}
  assert "| run | 2 |" in open(out / "explain.md").read()
  assert os.path.getsize(out / "attribution_000.png") > 1000
  _validate(open(out / "attributions.html", encoding="utf-8").read())


def _seq2seq(copy=False):
  rngs = nnx.Rngs(0)
  encoder = TextEncoder(24, 12, 10, cell="lstm", bidirectional=True, rngs=rngs)
  return Seq2Seq(encoder, cell="lstm", decoder_hidden=14, attention="bahdanau", copy=copy,
                 coverage=copy, rngs=rngs)


@pytest.mark.parametrize("copy", [False, True])
def test_attention_maps_are_what_the_decoder_attended_to(copy):
  """Teacher-forced maps of a greedy output equal the step-wise decoding's attention; rows
  sum to 1 over the valid source steps; p_copy lies in (0, 1)."""
  graphdef, params = nnx.split(_seq2seq(copy))
  call = lambda method: jax.jit(lambda p, *a: getattr(nnx.merge(graphdef, p), method)(*a))
  source = jnp.array([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]], jnp.int32)
  lengths = jnp.array([5, 3], jnp.int32)
  output = jax.jit(lambda p: decode.greedy(nnx.merge(graphdef, p), source, lengths, 6))(params)
  encoded = call("encode")(params, source, lengths)
  state = call("initial_state")(params, encoded)
  tokens, steps, step = jnp.full((2,), BOS_ID, jnp.int32), [], call("decode_step")
  for t in range(6):
    _, state, weights = step(params, encoded, state, tokens)
    steps.append(weights)
    tokens = output[:, t]
  target_in = jnp.concatenate([jnp.full((2, 1), BOS_ID, jnp.int32), output[:, :5]], axis=1)
  maps = call("attention_maps")(params, source, lengths, target_in,
                                jnp.array([6, 6], jnp.int32))
  np.testing.assert_allclose(maps["weights"], jnp.stack(steps, 1), atol=1e-5)
  np.testing.assert_allclose(maps["weights"].sum(-1), 1.0, atol=1e-5)
  assert float(jnp.abs(maps["weights"][1, :, 3:]).max()) == 0.0
  assert ("p_copy" in maps) == copy
  if copy:
    assert maps["p_copy"].shape == (2, 6)
    assert float(maps["p_copy"].min()) > 0.0 and float(maps["p_copy"].max()) < 1.0


@pytest.mark.parametrize("experiment", [SUMMARIZATION + ":copy", TRANSLATION + ":copy"])
def test_attention_maps_of_a_built_encoder_decoder(experiment, tmp_path):
  from xferlab.config import apply_overrides, load_experiment
  config, _ = load_experiment(experiment)
  restored = launch.build(apply_overrides(config, SMALL_SEQ2SEQ), str(tmp_path / "build"))
  texts = ["w1 unseenword w2 w3 w4 w5", "w3 w4", ""]
  maps = explain.attention_maps(restored, texts)
  assert len(maps) == 3
  for m in maps:
    assert m.weights.shape == (len(m.output_tokens), len(m.source_tokens))
    np.testing.assert_allclose(m.weights.sum(1), 1.0, atol=1e-5)
    assert (m.p_copy is not None) == bool(config.seq2seq.copy)
    if m.p_copy is not None:
      assert m.p_copy.shape == (len(m.output_tokens),) and 0 < m.p_copy.min() <= m.p_copy.max() < 1
  if config.task == "summarization":
    assert maps[0].source_tokens == ["w1", "unseenword", "w2", "w3", "w4", "w5"]
  explain.plot_attention(maps[0], str(tmp_path / "attention.png"))
  assert os.path.getsize(tmp_path / "attention.png") > 1000
  _validate(explain.render_attention_html(maps, str(tmp_path / "attention.html")))

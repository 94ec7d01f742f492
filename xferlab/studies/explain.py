r"""Explanations of a trained model: what a classifier's prediction rests on, what a translation
or summarization model reads, and whether the attributions are faithful.

  python -m xferlab.studies.explain RUN_DIR (--texts TEXT [TEXT ...] | --from-target N) \
      --out DIR [--method ig|grad_x_input] [--steps 64] [--baseline pad|zero|unk] \
      [--rule trapezoid] [--faithfulness 1,5,10] [--random-repeats 5] [--screenshot]

``RUN_DIR`` is one run's workdir (``best/`` and ``config.json``) or a folder of runs (an
experiment's ``arm/seed_s`` workdirs): each run is explained into ``DIR/<its path below
RUN_DIR>`` (``attributions.html`` or ``attention.html``, PNG heatmaps of the first ``--plots``
texts, ``attributions.json`` or ``attention.json``, ``page.png`` with ``--screenshot``), and the
faithfulness and word-group numbers are averaged per arm (mean ± std over seeds) into
``DIR/explain.json`` and ``DIR/explain.md``. ``--from-target N`` takes the same N test texts
(``--seed``) for every run, and for classifiers also compares attributions on domain word
groups. Every text argument goes through ``xferlab.text_inputs.as_texts``.

Classifiers (token attributions toward the predicted class, or a given one):

* ``integrated_gradients(restored, texts)``: Sundararajan et al. (2017) on the embeddings,
  ``IG_t = Σ_e (x - x')_te · ∫_0^1 ∂f(x' + α (x - x')) / ∂x_te dα``, ``f`` the class
  probability (``output="probability"``; or its ``logit`` / ``log_probability``), the integral
  by the trapezoid rule (or a left / right / midpoint Riemann sum) over ``steps`` intervals,
  jitted in chunks of path points. The baseline ``x'`` is the zero embedding or the ``PAD``
  (or ``UNK``) embedding at every token. Completeness: ``Σ_t IG_t = f(x) - f(x')`` up to the
  quadrature error, reported per text as ``completeness_error`` (relative);
* ``gradient_x_input(restored, texts)``: ``Σ_e x_te · ∂f(x) / ∂x_te``;
* ``faithfulness(restored, texts, k)``: delete each text's ``k`` tokens of highest attribution
  (toward the predicted class) against ``k`` random tokens (``repeats`` draws); reports the mean
  drop of the predicted class's probability and the flip rate of both;
* ``domain_word_groups`` / ``word_group_mass``: corpus statistics split the vocabulary into
  target-specific, source-specific and shared words (smoothed frequency ratio of the
  target's unlabeled text to the source's training text); the share of each text's positive
  attribution that falls on each group compares what two arms (``source_only``, ``dann``)
  lean on in target reviews.

Encoder-decoders (translation, summarization): ``attention_maps(restored, texts)`` decodes each
text (beam search, ``config.decode``) and returns the decoder's attention over the source for
every output token (``xferlab.tasks.encoder_decoder.attention_maps``), with the
pointer-generator's copy probability ``p_copy = 1 - p_gen`` per output token.

Outputs: PNG heatmaps (``plot_attribution``, ``plot_attention``), one self-contained HTML page
(inline CSS, no script, no external asset; ``render_html`` / ``render_attention_html``) that
highlights tokens, and ``screenshot(html, png)``, which renders a page in headless Chromium
(``apt-get install chromium``) -- the check that the page displays in a real browser
(``tests/test_explain.py`` does it when ``/usr/bin/chromium`` exists).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import subprocess
import tempfile
import weakref
from typing import Any, Sequence

import numpy as np

METHODS = ("ig", "grad_x_input")
BASELINES = ("pad", "zero", "unk")
RULES = ("trapezoid", "left", "right", "middle")
OUTPUTS = ("probability", "logit", "log_probability")
DELTA_FLOOR = 1e-4   # |f(x) - f(baseline)| below this is float noise: errors are relative to it
MAX_PATH_POINTS = 2048   # per text: refinement stops there (float32 noise can keep the error
                         # estimate of a near-zero difference above any budget)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--hide-scrollbars")
_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # Restored -> jitted fns


@dataclasses.dataclass
class Attribution:
  """One text's token attributions toward class ``target``.

  ``tokens`` are the model's input tokens (display strings), ``ids`` their ids, ``scores``
  ``float32[len(tokens)]`` (positive: supports ``target``); ``probability`` is
  ``p(target | text)``, ``output`` and ``baseline_output`` are ``f`` at the text and at the
  baseline (integrated gradients), ``completeness_error`` is
  ``|Σ scores - (output - baseline_output)| / max(|output - baseline_output|, DELTA_FLOOR)``.
  """
  text: str
  tokens: list[str]
  ids: list[int]
  scores: np.ndarray
  target: int
  probability: float
  method: str
  output: float
  baseline_output: float | None = None
  completeness_error: float | None = None

  def to_json(self) -> dict:
    return {"text": self.text, "tokens": self.tokens, "scores": [float(s) for s in self.scores],
            "target": self.target, "probability": self.probability, "method": self.method,
            "output": self.output, "baseline_output": self.baseline_output,
            "completeness_error": self.completeness_error}


@dataclasses.dataclass
class AttentionMap:
  """One decoded text: ``weights float32[len(output_tokens), len(source_tokens)]`` (rows sum
  to 1; the last output token is ``</s>`` when decoding finished) and, with copy,
  ``p_copy float32[len(output_tokens)]``."""
  source: str
  output: str
  source_tokens: list[str]
  output_tokens: list[str]
  weights: np.ndarray
  p_copy: np.ndarray | None = None


# ------------------------------------------------------------------------------
# Inputs and the jitted functions of a restored classifier.

def _cache(restored) -> dict:
  if restored not in _CACHES:
    _CACHES[restored] = {}
  return _CACHES[restored]


def encode_texts(restored, texts) -> tuple[list[str], list[list[int]], list[list[str]]]:
  """``(clean texts, ids, tokens)`` of ``texts`` (``as_texts``): the ids the model reads (an
  empty text is one ``UNK``; cut to the largest bucket with an ``InputTruncatedWarning``) and
  the token string of each."""
  from xferlab.data.tokenizer import UNK_ID, vocabulary
  from xferlab.text_inputs import as_texts, max_chars_for, truncate_ids
  items, _ = as_texts(texts, max_chars=max_chars_for(restored.config))
  tokenizer, vocab = restored.tokenizer, vocabulary(restored.tokenizer)
  ids = truncate_ids([tokenizer.encode(t) or [UNK_ID] for t in items],
                     max(restored.config.data.buckets))
  tokens = []
  for text, seq in zip(items, ids):   # the text's own words (an unknown one too), else pieces
    words = tokenizer.tokens(text) if hasattr(tokenizer, "tokens") else []
    tokens.append(list(words[:len(seq)]) if len(words) >= len(seq) else [vocab[t] for t in seq])
  return items, ids, tokens


def _batches(sequences: Sequence[Sequence[int]], config, cap: int):
  """``(indices, padded batch)`` over ``sequences`` sorted by length: a power-of-two number of
  rows (at most ``cap``) and a bucketed length (``text_inputs.time_buckets``)."""
  from xferlab.data import batching
  from xferlab.text_inputs import batch_rows, time_buckets
  buckets = time_buckets(tuple(config.data.buckets))
  lengths = np.array([len(s) for s in sequences])
  order = np.argsort(lengths, kind="stable")
  rows = batch_rows(len(sequences), cap)
  for start in range(0, len(sequences), rows):
    idx = order[start:start + rows]
    time = batching.bucket_length(int(lengths[idx].max()), buckets)
    yield idx, batching.make_batch(sequences, idx, rows, time)


def _output(logits, classes, output: str):
  import jax
  import jax.numpy as jnp
  if output == "logit":
    values = logits
  elif output == "log_probability":
    values = jax.nn.log_softmax(logits, axis=-1)
  else:
    values = jax.nn.softmax(logits, axis=-1)
  return jnp.take_along_axis(values, classes[:, None], axis=-1)[:, 0]


def _jitted(restored, output: str) -> dict:
  """The restored classifier's jitted functions, compiled once per shape:

  * ``probs(tokens, lengths) -> float[B, C]``;
  * ``path(x, base, alphas, lengths, classes) -> (f float[R], c float[R, T])``: at each row's
    point ``p = base + α (x - base)``, ``f(p)`` (``output`` of the row's class) and the
    per-token ``c_t = Σ_e (x - base)_te ∂f(p)/∂p_te`` (``Σ_t c_t = df/dα``).
  """
  import jax
  from flax import nnx
  cache = _cache(restored)
  if output in cache:
    return cache[output]
  graphdef, state = nnx.split(restored.model.classifier)

  @jax.jit
  def probs(state, tokens, lengths):
    logits, _ = nnx.merge(graphdef, state)(tokens, lengths)
    return jax.nn.softmax(logits.astype("float32"), axis=-1)

  @jax.jit
  def path(state, x, base, alphas, lengths, classes):
    def total(points):
      logits, _ = nnx.merge(graphdef, state).from_embeddings(points, lengths)
      f = _output(logits.astype("float32"), classes, output)
      return f.sum(), f
    points = base + alphas[:, None, None] * (x - base)
    (_, f), g = jax.value_and_grad(total, has_aux=True)(points)
    return f, ((x - base) * g).sum(-1)

  cache[output] = {"probs": lambda *a: probs(state, *a), "path": lambda *a: path(state, *a)}
  return cache[output]


def embedding_matrix(restored) -> np.ndarray:
  """The classifier's input embedding ``float32[vocab, embed_dim]``."""
  return np.asarray(restored.model.classifier.encoder.embed.embedding[...], np.float32)


def sequence_probabilities(restored, sequences: Sequence[Sequence[int]],
                           batch_size: int = 0) -> np.ndarray:
  """Class probabilities ``float32[len(sequences), classes]`` of token-id sequences (each
  non-empty, at most the largest bucket long): what the attacks and the deletion test score."""
  out = np.zeros((len(sequences), restored.config.classification.num_classes), np.float32)
  if not len(sequences):
    return out
  probs = _jitted(restored, "probability")["probs"]
  cap = batch_size or restored.config.data.eval_batch_size
  for idx, batch in _batches(sequences, restored.config, cap):
    out[idx] = np.asarray(probs(batch["tokens"], batch["lengths"]))[:len(idx)]
  return out


# ------------------------------------------------------------------------------
# Attributions.

def quadrature(steps: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
  """``(alphas, weights)`` of ``∫_0^1 g(α) dα ≈ Σ w_i g(α_i)`` with ``steps`` intervals."""
  if steps < 1 or rule not in RULES:
    raise ValueError(f"need steps >= 1 and a rule in {RULES}, got {steps}, {rule!r}")
  if rule == "trapezoid":
    return np.linspace(0.0, 1.0, steps + 1), trapezoid_weights(np.linspace(0.0, 1.0, steps + 1))
  offset = {"left": 0.0, "right": 1.0, "middle": 0.5}[rule]
  return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def trapezoid_weights(alphas: np.ndarray) -> np.ndarray:
  """The trapezoid rule's weights on a sorted grid from 0 to 1 (spacing may vary)."""
  h = np.diff(alphas)
  return np.concatenate([h, [0.0]]) / 2 + np.concatenate([[0.0], h]) / 2


def _baseline(matrix: np.ndarray, tokens: np.ndarray, lengths: np.ndarray, kind: str):
  """The inputs' and the baseline's embeddings of a batch: the baseline is ``kind`` at every
  valid token and the input itself on padding."""
  from xferlab.data.tokenizer import PAD_ID, UNK_ID
  if kind not in BASELINES:
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
  x = matrix[tokens]
  row = {"zero": np.zeros(matrix.shape[1], np.float32), "pad": matrix[PAD_ID],
         "unk": matrix[UNK_ID]}[kind]
  valid = (np.arange(tokens.shape[1])[None] < lengths[:, None])[..., None]
  return x, np.where(valid, row[None, None], x).astype(np.float32)


def _evaluate(path, rows: dict, pairs: list[tuple[int, float]], cap: int):
  """``f float[P]`` and ``c float[P, T]`` at ``(row, α)`` pairs of a batch (``rows``: its
  ``x``, ``base``, ``lengths``, ``classes``), ``batch_rows(P, cap)`` pairs per call."""
  from xferlab.text_inputs import batch_rows
  f = np.zeros(len(pairs), np.float32)
  c = np.zeros((len(pairs), rows["x"].shape[1]), np.float32)
  size = batch_rows(len(pairs), cap)
  for start in range(0, len(pairs), size):
    part = pairs[start:start + size]
    part = part + [(0, 0.0)] * (size - len(part))
    r = np.array([p[0] for p in part])
    a = np.array([p[1] for p in part], np.float32)
    out_f, out_c = path(rows["x"][r], rows["base"][r], a, rows["lengths"][r],
                        rows["classes"][r])
    n = min(size, len(pairs) - start)
    f[start:start + n], c[start:start + n] = np.asarray(out_f)[:n], np.asarray(out_c)[:n]
  return f, c


def _refinements(points: dict[float, tuple], tolerance: float) -> list[float]:
  """Midpoints of the trapezoid intervals whose error ``|Δf - h (D_i + D_{i+1}) / 2|`` (``D =
  df/dα``) is above ``tolerance · |f(1) - f(0)| / intervals``, while their summed error
  exceeds ``tolerance · max(|f(1) - f(0)|, DELTA_FLOOR)`` (which bounds the completeness
  error); else none."""
  alphas = np.array(sorted(points))
  f = np.array([points[a][0] for a in alphas])
  d = np.array([points[a][1].sum() for a in alphas])
  error = np.abs(np.diff(f) - np.diff(alphas) * (d[:-1] + d[1:]) / 2)
  budget = tolerance * max(abs(f[-1] - f[0]), DELTA_FLOOR)
  if error.sum() <= budget:
    return []
  bad = np.flatnonzero(error > budget / len(error))
  bad = bad if len(bad) else np.array([int(np.argmax(error))])
  return [float((alphas[j] + alphas[j + 1]) / 2) for j in bad if alphas[j + 1] - alphas[j] > 1e-7]


def _integrate(path, rows: dict, count: int, steps: int, rule: str, tolerance: float,
               rounds: int, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(scores float[count, T], f(x), f(baseline))`` of the first ``count`` rows: the
  quadrature of ``c(α)`` over ``α ∈ [0, 1]``; with the trapezoid rule, intervals whose error
  is large are halved for up to ``rounds`` rounds (``_refinements``), while a text has fewer
  than ``MAX_PATH_POINTS`` points."""
  alphas, weights = quadrature(steps, rule)
  points: list[dict[float, tuple]] = [{} for _ in range(count)]
  new = [(i, float(a)) for i in range(count) for a in sorted(set(alphas) | {0.0, 1.0})]
  for round_ in range(rounds + 1):
    f, c = _evaluate(path, rows, new, cap)
    for (i, a), fa, ca in zip(new, f, c):
      points[i][a] = (float(fa), ca)
    if rule != "trapezoid" or tolerance <= 0 or round_ == rounds:
      break
    new = [(i, a) for i in range(count) if len(points[i]) < MAX_PATH_POINTS
           for a in _refinements(points[i], tolerance)]
    if not new:
      break
  scores = np.zeros((count, rows["x"].shape[1]), np.float32)
  for i, pts in enumerate(points):
    grid = np.array(sorted(pts)) if rule == "trapezoid" else alphas
    w = trapezoid_weights(grid) if rule == "trapezoid" else weights
    scores[i] = np.tensordot(w, np.stack([pts[float(a)][1] for a in grid]), axes=1)
  ends = np.array([[pts[0.0][0], pts[1.0][0]] for pts in points])
  return scores, ends[:, 1], ends[:, 0]


def _targets(target, count: int, probs: np.ndarray) -> np.ndarray:
  if target is None:
    return np.argmax(probs, axis=-1).astype(np.int32)
  target = np.broadcast_to(np.asarray(target, np.int32), (count,))
  if count and (target.min() < 0 or target.max() >= probs.shape[-1]):
    raise ValueError(f"target classes must lie in [0, {probs.shape[-1]}), got {target}")
  return target.astype(np.int32)


def _attribute(restored, texts, target, method: str, options: dict) -> list[Attribution]:
  """Integrated gradients (``method="ig"``) or gradient × input of every text."""
  items, ids, tokens = encode_texts(restored, texts)
  probs = sequence_probabilities(restored, ids)
  classes = _targets(target, len(items), probs)
  path, matrix = _jitted(restored, options["output"])["path"], embedding_matrix(restored)
  out: list[Attribution] = [None] * len(items)   # type: ignore[list-item]
  for idx, batch in _batches(ids, restored.config, options["batch_size"]):
    cls = np.zeros(len(batch["lengths"]), np.int32)
    cls[:len(idx)] = classes[idx]
    x, base = _baseline(matrix, batch["tokens"], batch["lengths"], options["baseline"])
    rows = {"x": x, "base": base, "lengths": batch["lengths"], "classes": cls}
    if method == "ig":
      scores, f_x, f_b = _integrate(path, rows, len(idx), options["steps"], options["rule"],
                                    options["tolerance"], options["refine"], options["cap"])
    else:
      rows["base"] = np.zeros_like(x)
      f_x, scores = _evaluate(path, rows, [(r, 1.0) for r in range(len(idx))], options["cap"])
      f_b = None
    for row, i in enumerate(idx):
      n = len(ids[i])
      a = Attribution(items[i], tokens[i], list(ids[i]), scores[row, :n].astype(np.float32),
                      int(classes[i]), float(probs[i, classes[i]]), method, float(f_x[row]))
      if f_b is not None:
        delta = float(f_x[row] - f_b[row])
        a.baseline_output = float(f_b[row])
        a.completeness_error = abs(float(a.scores.sum()) - delta) / max(abs(delta),
                                                                         DELTA_FLOOR)
      out[i] = a
  return out


def integrated_gradients(restored, texts, target=None, *, steps: int = 64,
                         baseline: str = "pad", rule: str = "trapezoid",
                         output: str = "probability", tolerance: float = 0.01,
                         refine: int = 24, batch_size: int = 16,
                         cap: int = 256) -> list[Attribution]:
  """Integrated gradients of ``f`` = ``output`` of class ``target`` (an int or one per text;
  ``None``: each text's predicted class) on the embeddings of each text, one ``Attribution``
  per text (a list also for a single ``str``).

  ``steps`` equal intervals of ``rule``; with the trapezoid rule, up to ``refine`` rounds
  halve the intervals whose quadrature error is large until the completeness error is below
  ``tolerance`` (relative; a sharp rise of ``f`` along the path needs more points than a
  uniform grid gives; ``refine=0``: the plain uniform rule). ``batch_size`` texts go together;
  at most ``cap`` path points go through the network in one call.
  """
  if output not in OUTPUTS:
    raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
  return _attribute(restored, texts, target, "ig", dict(
      steps=steps, baseline=baseline, rule=rule, output=output, tolerance=tolerance,
      refine=refine, batch_size=batch_size, cap=cap))


def gradient_x_input(restored, texts, target=None, *, output: str = "probability",
                     batch_size: int = 16) -> list[Attribution]:
  """Gradient × input, ``Σ_e x_te ∂f(x)/∂x_te``, per token (one ``Attribution`` per text)."""
  if output not in OUTPUTS:
    raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
  return _attribute(restored, texts, target, "grad_x_input", dict(
      output=output, baseline="zero", batch_size=batch_size, cap=batch_size))


def attribute(restored, texts, method: str = "ig", **options) -> list[Attribution]:
  """``integrated_gradients`` (``method="ig"``) or ``gradient_x_input`` (which takes only
  ``target``, ``output`` and ``batch_size`` of ``options``)."""
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  if method == "ig":
    return integrated_gradients(restored, texts, **options)
  keep = {k: v for k, v in options.items() if k in ("target", "output", "batch_size")}
  return gradient_x_input(restored, texts, **keep)


# ------------------------------------------------------------------------------
# Faithfulness: delete the top-k attributed tokens against k random ones.

def _without(ids: Sequence[int], drop) -> list[int]:
  from xferlab.data.tokenizer import UNK_ID
  drop = set(int(i) for i in drop)
  return [t for i, t in enumerate(ids) if i not in drop] or [UNK_ID]


def _deletion_stats(probs: np.ndarray, before: np.ndarray, classes: np.ndarray) -> dict:
  picked = probs[np.arange(len(classes)), classes]
  return {"mean_probability_drop": float(np.mean(before - picked)) if len(classes) else 0.0,
          "flip_rate": float(np.mean(np.argmax(probs, -1) != classes)) if len(classes) else 0.0}


def faithfulness(restored, texts=None, k: int = 5, *, attributions=None, method: str = "ig",
                 repeats: int = 5, seed: int = 0, **options) -> dict[str, Any]:
  """Deletion test of attributions (computed here with ``method`` and ``options``, or given).

  For each text, delete the ``min(k, length)`` tokens with the highest attribution toward the
  predicted class, and separately ``repeats`` times as many random tokens (``seed``); an
  emptied text reads as one ``UNK``. Returns ``{"k", "method", "num_texts", "repeats",
  "top_k": {"mean_probability_drop", "flip_rate"}, "random": {...}, "drop_difference"
  (top-k minus random), "top_k_wins" (share of texts whose top-k drop beats their mean
  random drop)}``.
  """
  if attributions is None:
    attributions = attribute(restored, texts, method, **options)
  rng = np.random.default_rng(seed)
  top, rand, owners = [], [], []
  for a in attributions:
    n, kk = len(a.ids), min(k, len(a.ids))
    top.append(_without(a.ids, np.argsort(-a.scores, kind="stable")[:kk]))
    for _ in range(repeats):
      rand.append(_without(a.ids, rng.choice(n, kk, replace=False)))
  classes = np.array([a.target for a in attributions], np.int32)
  before = np.array([a.probability for a in attributions], np.float32)
  top_probs = sequence_probabilities(restored, top)
  rand_probs = sequence_probabilities(restored, rand)
  rand_classes, rand_before = np.repeat(classes, repeats), np.repeat(before, repeats)
  top_stats = _deletion_stats(top_probs, before, classes)
  rand_stats = _deletion_stats(rand_probs, rand_before, rand_classes)
  n = len(attributions)
  top_drop = before - top_probs[np.arange(n), classes]
  rand_drop = (rand_before - rand_probs[np.arange(n * repeats), rand_classes]).reshape(
      n, repeats).mean(-1) if n else np.zeros(0)
  return {"k": k, "method": attributions[0].method if n else method, "num_texts": n,
          "repeats": repeats, "top_k": top_stats, "random": rand_stats,
          "drop_difference": top_stats["mean_probability_drop"]
          - rand_stats["mean_probability_drop"],
          "top_k_wins": float(np.mean(top_drop > rand_drop)) if n else 0.0}


# ------------------------------------------------------------------------------
# What the model leans on: domain-specific against shared words.

def domain_word_groups(source_texts: Sequence[str], target_texts: Sequence[str], tokenizer,
                       min_count: int = 5, ratio: float = 4.0) -> dict[str, set[str]]:
  """``{"target_specific", "source_specific", "shared"}`` token sets from corpus counts.

  With add-one smoothed frequencies ``p_s``, ``p_t`` of a token in each corpus: a token seen
  at least ``min_count`` times in the target and with ``p_t / p_s >= ratio`` is
  target-specific (``sturdy`` for kitchen against books); symmetrically source-specific;
  a token seen ``min_count`` times in both with a ratio within ``[1/2, 2]`` is shared.
  """
  from collections import Counter
  counts = []
  for texts in (source_texts, target_texts):
    c = Counter()
    for text in texts:
      c.update(tokenizer.tokens(text))
    counts.append(c)
  (cs, ct), vocab = counts, set(counts[0]) | set(counts[1])
  ns, nt = sum(cs.values()) + len(vocab), sum(ct.values()) + len(vocab)
  groups = {"target_specific": set(), "source_specific": set(), "shared": set()}
  for w in vocab:
    r = ((ct[w] + 1) / nt) / ((cs[w] + 1) / ns)
    if ct[w] >= min_count and r >= ratio:
      groups["target_specific"].add(w)
    elif cs[w] >= min_count and r <= 1 / ratio:
      groups["source_specific"].add(w)
    elif min(cs[w], ct[w]) >= min_count and 0.5 <= r <= 2.0:
      groups["shared"].add(w)
  return groups


def word_group_mass(attributions: Sequence[Attribution], groups: dict[str, set[str]],
                    top: int = 10) -> dict[str, Any]:
  """The mean share of each text's positive attribution (toward its class) on each group,
  and each group's ``top`` tokens by summed positive attribution."""
  shares = {g: [] for g in groups}
  totals = {g: {} for g in groups}
  for a in attributions:
    positive = np.maximum(a.scores, 0.0)
    mass = float(positive.sum())
    for g, words in groups.items():
      hit = np.array([t in words for t in a.tokens], bool)
      shares[g].append(float(positive[hit].sum()) / mass if mass > 0 else 0.0)
      for t, s in zip(np.asarray(a.tokens)[hit], positive[hit]):
        totals[g][t] = totals[g].get(t, 0.0) + float(s)
  return {g: {"share": float(np.mean(v)) if v else 0.0, "size": len(groups[g]),
              "top": [w for w, _ in sorted(totals[g].items(), key=lambda x: -x[1])[:top]]}
          for g, v in shares.items()}


# ------------------------------------------------------------------------------
# Attention maps of an encoder-decoder.

def _source_ids(restored, text: str) -> tuple[list[int], list[str], list[str]]:
  """``(source ids, their token strings, the source's out-of-vocabulary words)`` as the run's
  task reads a source (translation: the language tag first; summarization: extended ids)."""
  from xferlab.data.tokenizer import UNK_ID, vocabulary
  config, tokenizer = restored.config, restored.tokenizer
  longest = max(config.data.buckets)
  if config.task == "summarization":
    from xferlab.tasks.summarization import extended_ids
    ids, _, oov = extended_ids(tokenizer, text, None, longest)
    return ids or [UNK_ID], tokenizer.tokens(text)[:longest] or ["<unk>"], oov
  from xferlab.tasks.translation import tag_sources
  tagged = tag_sources(config, [text])[0]
  ids = (tokenizer.encode(tagged) or [UNK_ID])[:longest]
  words = tokenizer.tokens(tagged)
  vocab = vocabulary(tokenizer)
  return ids, list(words[:len(ids)]) if len(words) >= len(ids) else [vocab[i] for i in ids], []


def attention_maps(restored, texts) -> list[AttentionMap]:
  """Decodes each text (``config.decode``) and returns what every output token attended to."""
  from xferlab.data.tokenizer import vocabulary
  from xferlab.tasks import encoder_decoder
  from xferlab.text_inputs import as_texts, max_chars_for
  if restored.config.task not in ("translation", "summarization"):
    raise TypeError(f"attention maps need a translation or summarization run, not "
                    f"{restored.config.task!r}")
  items, _ = as_texts(texts, max_chars=max_chars_for(restored.config))
  sources = [_source_ids(restored, t) for t in items]
  seq2seq, cache = restored.model.seq2seq, _cache(restored)
  outputs = encoder_decoder.generate(seq2seq, [s[0] for s in sources], restored.config, cache)
  maps = encoder_decoder.attention_maps(seq2seq, [s[0] for s in sources], outputs,
                                        restored.config, cache)
  vocab, size = vocabulary(restored.tokenizer), restored.tokenizer.vocab_size
  out = []
  for text, (ids, source_tokens, oov), output, m in zip(items, sources, outputs, maps):
    words = [vocab[i] if i < size else oov[i - size] for i in output]
    finished = len(output) < restored.config.decode.max_length   # else it stopped unfinished
    rows = len(words) + finished
    shown = " ".join(words) if restored.config.task == "summarization" else \
        restored.tokenizer.decode(output)
    p_copy = m.get("p_copy")
    out.append(AttentionMap(text, shown, source_tokens, words + ["</s>"] * finished,
                            m["weights"][:rows], None if p_copy is None else p_copy[:rows]))
  return out


# ------------------------------------------------------------------------------
# Pictures and pages.

def _display(token: str) -> str:
  return token.replace("\u2581", " ").strip() or token


def plot_attribution(a: Attribution, path: str, per_row: int = 16) -> None:
  """A heatmap of one text's attributions: its tokens in rows of ``per_row`` cells, each
  coloured by its score (red against the class, blue for it; one colour scale per text)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  n = len(a.tokens)
  rows = max(1, -(-n // per_row))
  grid = np.full((rows, per_row), np.nan)
  grid.flat[:n] = a.scores
  scale = float(np.max(np.abs(a.scores))) or 1.0
  fig, ax = plt.subplots(figsize=(per_row * 0.9, 0.45 * rows + 0.9))
  ax.imshow(grid, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
  for i, (token, score) in enumerate(zip(a.tokens, a.scores)):
    ax.text(i % per_row, i // per_row, _display(token)[:12], ha="center", va="center",
            fontsize=7, color="white" if abs(score) > 0.6 * scale else "black")
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(f"{a.method}: class {a.target}, p = {a.probability:.3f}", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_attention(m: AttentionMap, path: str) -> None:
  """The attention heatmap (output tokens × source tokens) and, for a pointer-generator,
  the copy probability of each output token beside it."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows, cols = m.weights.shape
  width = 2.0 + 0.32 * cols + (0.6 if m.p_copy is not None else 0.0)
  fig = plt.figure(figsize=(width, 1.5 + 0.3 * rows))
  ratios = [cols, 1.2] if m.p_copy is not None else [cols]
  grid = fig.add_gridspec(1, len(ratios), width_ratios=ratios, wspace=0.05)
  ax = fig.add_subplot(grid[0, 0])
  top = max(float(m.weights.max()), 1e-6)   # darkest = the largest weight of this map
  ax.imshow(m.weights, cmap="Greys", vmin=0.0, vmax=top, aspect="auto")
  ax.set_title(f"attention (black = {top:.2f})", fontsize=8)
  ax.set_xticks(range(cols), [_display(t) for t in m.source_tokens], rotation=90, fontsize=7)
  ax.set_yticks(range(rows), [_display(t) for t in m.output_tokens], fontsize=7)
  ax.set_xlabel("source")
  ax.set_ylabel("output")
  if m.p_copy is not None:
    side = fig.add_subplot(grid[0, 1], sharey=ax)
    side.imshow(m.p_copy[:, None], cmap="Oranges", vmin=0.0, vmax=1.0, aspect="auto")
    for t, p in enumerate(m.p_copy):
      side.text(0, t, f"{p:.2f}", ha="center", va="center", fontsize=6)
    side.set_xticks([0], ["p_copy"], fontsize=7)
    side.tick_params(labelleft=False)
  fig.savefig(path, dpi=110, bbox_inches="tight")
  plt.close(fig)


_CSS = """body{font-family:Georgia,serif;max-width:60em;margin:2em auto;color:#222;line-height:2}
h1{font-size:1.3em}.text{border-top:1px solid #ccc;padding:.6em 0}.meta{font:12px sans-serif;
color:#555}.tok{padding:.15em .12em;margin:0 .05em;border-radius:3px}.legend span{padding:.2em
.5em;margin-right:.5em}table{border-collapse:collapse;font:12px sans-serif}td,th{border:1px
solid #ddd;padding:.2em .4em}"""


def _colour(score: float, scale: float) -> str:
  strength = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
  rgb = "33,102,172" if score >= 0 else "178,24,43"
  return f"rgba({rgb},{0.75 * strength:.3f})"


def _page(title: str, body: list[str]) -> str:
  return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
          f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def render_html(attributions: Sequence[Attribution], path: str,
                title: str = "Token attributions", labels: Sequence[str] | None = None) -> str:
  """One self-contained page (inline CSS; no script, image or link) that highlights every
  token by its attribution (blue: for the explained class, red: against it; the score in
  the tooltip). Writes ``path`` and returns the page."""
  body = ["<p class=\"legend\"><span style=\"background:rgba(33,102,172,.6)\">supports the "
          "class</span><span style=\"background:rgba(178,24,43,.6)\">against it</span></p>"]
  for n, a in enumerate(attributions):
    scale = float(np.max(np.abs(a.scores))) if len(a.scores) else 0.0
    name = labels[a.target] if labels is not None else str(a.target)
    extra = ("" if a.completeness_error is None else
             f", f(x) - f(baseline) = {a.output - a.baseline_output:.4f}, "
             f"Σ attributions = {float(a.scores.sum()):.4f}")
    spans = [f"<span class=\"tok\" style=\"background:{_colour(float(s), scale)}\" "
             f"title=\"{float(s):+.4f}\">{html.escape(_display(t))}</span>"
             for t, s in zip(a.tokens, a.scores)]
    body.append(f"<div class=\"text\"><div class=\"meta\">#{n + 1} {html.escape(a.method)}: "
                f"class {html.escape(name)}, p = {a.probability:.3f}{html.escape(extra)}</div>"
                f"<p>{' '.join(spans)}</p></div>")
  page = _page(title, body)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return page


def render_attention_html(maps: Sequence[AttentionMap], path: str,
                          title: str = "Attention") -> str:
  """A self-contained page: each output token shaded by its copy probability (when the model
  copies), its most-attended source token and weight in a table under the source."""
  body = []
  for n, m in enumerate(maps):
    cells = []
    for t, token in enumerate(m.output_tokens):
      p = float(m.p_copy[t]) if m.p_copy is not None else 0.0
      best = int(np.argmax(m.weights[t]))
      cells.append(f"<tr><td style=\"background:rgba(230,85,13,{0.8 * p:.3f})\">"
                   f"{html.escape(_display(token))}</td><td>"
                   f"{html.escape(_display(m.source_tokens[best]))}</td>"
                   f"<td>{m.weights[t, best]:.2f}</td>"
                   f"<td>{'' if m.p_copy is None else f'{p:.2f}'}</td></tr>")
    body.append(f"<div class=\"text\"><div class=\"meta\">#{n + 1} source</div>"
                f"<p>{html.escape(m.source)}</p><div class=\"meta\">output</div>"
                f"<p>{html.escape(m.output)}</p><table><tr><th>output token</th>"
                f"<th>most attended source token</th><th>weight</th><th>p_copy</th></tr>"
                + "".join(cells) + "</table></div>")
  page = _page(title, body)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return page


def screenshot(html_path: str, png_path: str, chromium: str = CHROMIUM,
               size: tuple[int, int] = (1200, 900), timeout: float = 60.0) -> str:
  """Renders ``html_path`` in headless Chromium into ``png_path`` (``CHROMIUM_FLAGS``, a
  throwaway profile); raises ``FileNotFoundError`` without Chromium, ``RuntimeError`` when no
  picture comes back. Returns ``png_path``."""
  if not os.path.exists(chromium):
    raise FileNotFoundError(f"{chromium} not found: apt-get update && apt-get install -y chromium")
  with tempfile.TemporaryDirectory(prefix="xferlab-chromium-") as profile:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={size[0]},{size[1]}", f"--screenshot={os.path.abspath(png_path)}",
               "file://" + os.path.abspath(html_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          check=False)
  if not os.path.exists(png_path) or os.path.getsize(png_path) == 0:
    raise RuntimeError(f"chromium wrote no screenshot (status {done.returncode}): "
                       f"{done.stderr.strip()[-500:]}")
  return png_path


# ------------------------------------------------------------------------------
# The command.

def run_dirs(path: str) -> list[str]:
  """``path`` itself when it is one run's workdir, else every run workdir below it."""
  if os.path.isdir(os.path.join(path, "best")):
    return [path]
  found = []
  for root, dirs, _ in os.walk(path):
    if "best" in dirs and os.path.exists(os.path.join(root, "config.json")):
      found.append(root)
      dirs[:] = []
  if not found:
    raise FileNotFoundError(f"No trained run in {path}: expected best/ and config.json")
  return sorted(found)


def arm_of(run: str, root: str) -> str:
  """The arm a run belongs to: its path below ``root`` without the ``seed_s`` folder."""
  parts = [p for p in os.path.relpath(run, root).split(os.sep) if p != "."]
  return "/".join(p for p in parts if not p.startswith("seed_")) or "run"


def target_texts(restored, count: int, seed: int = 0) -> tuple[list[str], np.ndarray | None]:
  """``count`` texts of the run's target test set (classification: the target domain's test
  reviews and their labels; translation / summarization: test sources), chosen with ``seed``."""
  config = restored.config
  if config.task == "classification":
    from xferlab.data.domains import load_domain_adaptation
    texts, labels = load_domain_adaptation(config.data, config.seed)["target_test"]
    labels = np.asarray(labels)
  else:
    from xferlab.tasks import get_task
    task = get_task(config.task)
    texts, labels = task.load_pairs(config, task.eval_sets["test"])[0], None
  pick = np.sort(np.random.default_rng(seed).permutation(len(texts))[:count])
  return [texts[i] for i in pick], None if labels is None else labels[pick]


def _explain_classifier(restored, texts, args, out: str) -> dict:
  options = dict(steps=args.steps, baseline=args.baseline, rule=args.rule,
                 tolerance=args.tolerance, refine=args.refine) if args.method == "ig" else {}
  attributions = attribute(restored, texts, args.method, **options)
  names = ("negative", "positive") if restored.config.classification.num_classes == 2 else None
  render_html(attributions, os.path.join(out, "attributions.html"),
              f"{args.method} attributions: {restored.workdir}", labels=names)
  for n, a in enumerate(attributions[:args.plots]):
    plot_attribution(a, os.path.join(out, f"attribution_{n:03d}.png"))
  result = {"attributions": [a.to_json() for a in attributions]}
  errors = [a.completeness_error for a in attributions if a.completeness_error is not None]
  if errors:
    result["completeness_error"] = {"mean": float(np.mean(errors)), "max": float(max(errors))}
  ks = [int(k) for k in str(args.faithfulness).split(",") if k.strip()]
  result["faithfulness"] = [faithfulness(restored, k=k, attributions=attributions,
                                         repeats=args.random_repeats, seed=args.seed)
                            for k in ks]
  if args.from_target:
    from xferlab.data.domains import load_domain_adaptation
    corpus = load_domain_adaptation(restored.config.data, restored.config.seed)
    groups = domain_word_groups(corpus["source_train"][0], corpus["target_unlabeled"],
                                restored.tokenizer)
    result["word_groups"] = word_group_mass(attributions, groups)
  return result


def _explain_seq2seq(restored, texts, args, out: str) -> dict:
  maps = attention_maps(restored, texts)
  render_attention_html(maps, os.path.join(out, "attention.html"), f"Attention: "
                        f"{restored.workdir}")
  for n, m in enumerate(maps[:args.plots]):
    plot_attention(m, os.path.join(out, f"attention_{n:03d}.png"))
  return {"maps": [{"source": m.source, "output": m.output, "source_tokens": m.source_tokens,
                    "output_tokens": m.output_tokens, "weights": m.weights.round(4).tolist(),
                    "p_copy": None if m.p_copy is None else m.p_copy.round(4).tolist()}
                   for m in maps]}


def explain_run(run: str, args, out: str) -> dict:
  """Explains one run into ``out``: pictures, page, ``attributions.json`` (classifiers) or
  ``attention.json``; returns its summary (all but the per-text attributions or maps)."""
  from xferlab import launch
  restored = launch.restore(run)
  texts = list(args.texts or [])
  if args.from_target:
    texts += target_texts(restored, args.from_target, args.seed)[0]
  os.makedirs(out, exist_ok=True)
  if restored.config.task == "classification":
    result = _explain_classifier(restored, texts, args, out)
    page = os.path.join(out, "attributions.html")
  else:
    result = _explain_seq2seq(restored, texts, args, out)
    page = os.path.join(out, "attention.html")
  if args.screenshot:
    result["screenshot"] = screenshot(page, os.path.join(out, "page.png"))
  name = "attributions.json" if "attributions" in result else "attention.json"
  with open(os.path.join(out, name), "w") as f:
    json.dump(dict(result, run=run), f, indent=1)
  return {k: v for k, v in result.items() if k not in ("attributions", "maps")}


def summarize_runs(per_run: dict[str, dict], root: str) -> dict[str, dict]:
  """Per arm, mean ± std over its runs of every faithfulness and word-group number."""
  from xferlab.metrics import mean_std
  arms: dict[str, list[dict]] = {}
  for run, summary in per_run.items():
    flat = {}
    for f in summary.get("faithfulness", []):
      for part in ("top_k", "random"):
        for key, value in f[part].items():
          flat[f"k{f['k']}_{part}_{key}"] = value
      flat[f"k{f['k']}_top_k_wins"] = f["top_k_wins"]
    for group, g in summary.get("word_groups", {}).items():
      flat[f"share_{group}"] = g["share"]
    arms.setdefault(arm_of(run, root), []).append(flat)
  return {arm: {k: mean_std([r[k] for r in runs if k in r]) for k in runs[0]}
          for arm, runs in arms.items()}


def write_report(summary: dict[str, dict], out: str, note: str = "") -> str:
  """``explain.md``: per arm and k, the deletion test (probability drop and flip rate of the
  top-k and of random tokens, share of texts where top-k wins), then the word-group shares."""
  cell = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f}" if s else "-"
  ks = sorted({int(k[1:].split("_")[0]) for s in summary.values() for k in s
               if k.startswith("k")})
  parts = ("top_k_mean_probability_drop", "random_mean_probability_drop", "top_k_flip_rate",
           "random_flip_rate", "top_k_wins")
  lines = [f"# Explanations{note}", "", "mean ± std over the runs (seeds) of each arm", "",
           "| arm | k | top-k drop | random drop | top-k flips | random flips | top-k wins |",
           "|---|---|---|---|---|---|---|"]
  for arm, stats in summary.items():
    for k in ks:
      if f"k{k}_{parts[0]}" in stats:
        lines.append(f"| {arm} | {k} | " + " | ".join(cell(stats.get(f"k{k}_{p}"))
                                                      for p in parts) + " |")
  groups = [g for g in ("target_specific", "shared", "source_specific")
            if any(f"share_{g}" in stats for stats in summary.values())]
  if groups:
    lines += ["", "Share of each text's positive attribution on domain word groups "
              "(`domain_word_groups`)", "", "| arm | " + " | ".join(groups) + " |",
              "|---" * (len(groups) + 1) + "|"]
    lines += [f"| {arm} | " + " | ".join(cell(stats.get(f"share_{g}")) for g in groups) + " |"
              for arm, stats in summary.items()]
  text = "\n".join(lines) + "\n"
  with open(os.path.join(out, "explain.md"), "w") as f:
    f.write(text)
  return text


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.explain",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("run", help="a run's workdir, or a folder of runs (arms x seeds)")
  parser.add_argument("--texts", nargs="+", default=None, help="texts to explain")
  parser.add_argument("--from-target", type=int, default=0, metavar="N",
                      help="explain N texts of the run's target test set (same N for every run)")
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument("--method", choices=METHODS, default="ig")
  parser.add_argument("--steps", type=int, default=64, help="integrated gradients: intervals")
  parser.add_argument("--baseline", choices=BASELINES, default="pad")
  parser.add_argument("--rule", choices=RULES, default="trapezoid")
  parser.add_argument("--tolerance", type=float, default=0.01,
                      help="integrated gradients: relative completeness error to refine to")
  parser.add_argument("--refine", type=int, default=24,
                      help="integrated gradients: rounds of interval halving (0 = uniform)")
  parser.add_argument("--faithfulness", default="1,5,10", metavar="K[,K...]",
                      help="deletion test at these k ('' = none)")
  parser.add_argument("--random-repeats", type=int, default=5)
  parser.add_argument("--plots", type=int, default=10, help="PNG heatmaps of the first N texts")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--screenshot", action="store_true",
                      help="render each page in headless Chromium into page.png")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if not args.texts and not args.from_target:
    _parser().error("give --texts or --from-target N")
  runs = run_dirs(args.run)
  per_run = {}
  for run in runs:
    out = os.path.join(args.out, os.path.relpath(run, args.run)) if len(runs) > 1 else args.out
    print(f"[explain] {run} -> {out}", flush=True)
    per_run[run] = explain_run(run, args, out)
  summary = summarize_runs(per_run, args.run)
  with open(os.path.join(args.out, "explain.json"), "w") as f:
    json.dump({"runs": per_run, "arms": summary, "args": vars(args)}, f, indent=1)
  if any(summary.values()):
    print(write_report(summary, args.out, f" (k = {args.faithfulness}, {args.method})"))
  print(f"[explain] results in {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

"""Source and pretrained-model selection: rank candidates for a target by label-free similarity.

Given a target domain's unlabeled text and candidates -- labeled source domains,
the union of them (multi-source), classifier runs and pretrained language
models -- ``select`` scores every candidate by measures computed without a
single target label, and ranks them (closest first):

* ``vocab_overlap``: Jaccard index of the ``TOP_WORDS`` most frequent words of
  source and target (higher = closer);
* ``weighted_jaccard``: the weighted Jaccard index of the two unigram
  distributions, ``sum min(p, q) / sum max(p, q)`` (higher = closer);
* ``coverage``: the share of target word tokens whose word occurs in the source
  text (higher = closer);
* ``jsd``: Jensen-Shannon divergence (bits, in [0, 1]) of the unigram
  distributions (lower = closer);
* ``tfidf_pad``: proxy A-distance (``xferlab.studies.domain_distance``) on
  TF-IDF features reduced to ``TFIDF_COMPONENTS`` dimensions by a truncated SVD,
  averaged over ``PAD_REPEATS`` splits: a linear classifier told to separate
  source from target text (lower = closer);
* ``source_confidence``: the mean top-class probability on target text of the
  TF-IDF peer's classifier (``xferlab.studies.peers``: uni+bigrams, logistic
  regression) trained on the candidate's *source* labels; it needs a labeled
  candidate (higher = closer);
* ``model_pad`` (``--runs``): proxy A-distance on a trained classifier's pooled
  encoder features (``domain_distance.encode_features``), source text of the
  run's corpus against the target text (lower = closer);
* ``lm_perplexity`` (``--lms``): a language model's perplexity on target text,
  through the language-model task's own evaluation (lower = closer); the
  perplexity per word (``words``) and the unknown-token rate are reported beside
  it, since token perplexities of models with different vocabularies are not
  comparable alone.

Word statistics read words as the RNN runs do (``xferlab.data.tokenizer.split_words``,
punctuation dropped). Every candidate and the target are sampled to the same number
of texts (``--max-texts``, fixed seed 0), so that a bigger corpus is not closer by size.
The default measure, ``DEFAULT_MEASURE`` (``jsd``), was chosen by ``DEFAULT_RULE`` on
protocol A's 12 pairs (``benchmarks/results/selection/results.md``).

  python -m xferlab.studies.select --target kitchen --candidates books,dvd,electronics
  python -m xferlab.studies.select --target kitchen --candidates books,imdb_2k \\
      --lms /runs/wiki,/runs/reviews --measure lm_perplexity

``--report OUT`` instead correlates every text measure with the realized target
accuracies of benchmark records (``benchmarks/results/*/results.json``): Spearman
and Kendall with p-values per arm, how often the top-ranked source is the best or
the worst of a target's candidates, and one picture (``correlation_report``).

  python -m xferlab.studies.select --report benchmarks/results/selection

Needs scikit-learn, scipy and matplotlib (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import math
import os
from typing import Callable, Mapping, Sequence

import numpy as np

MAX_TEXTS = 2000        # texts per candidate and target (protocol A's labeled size)
TOP_WORDS = 2000        # vocab_overlap: the most frequent words compared
TFIDF_COMPONENTS = 100  # tfidf_pad: SVD dimensions of the TF-IDF features the classifier reads
PAD_REPEATS = 3         # tfidf_pad: random halvings averaged
LM_TEXTS = 500          # lm_perplexity: target texts read by each language model
TRANSFER_ARMS = ("source_only", "dann", "vectors_ema")   # the arms the default is chosen on
DEFAULT_MEASURE = "jsd"   # chosen by DEFAULT_RULE on protocol A (benchmarks/results/selection)
DEFAULT_RULE = (
    "among the measures computable from text alone, the highest mean Spearman correlation "
    "with target accuracy over the arms " + ", ".join(TRANSFER_ARMS) + " on protocol A's 12 "
    "pairs, requiring a positive Spearman on each arm and a top-ranked source that is never "
    "the worst of its target's candidates; chosen on the same 12 pairs it is reported on")
RECORDS = ("benchmarks/results/sentiment_A/results.json",
           "benchmarks/results/sentiment_movie/results.json")
UNION_NOTE = (
    "Note: the measures rank similarity, not the number of labels. On protocol A, training on "
    "the union of the other three domains was more accurate than every single source for all "
    "4 targets (source_only and vectors_ema, 3 seeds; benchmarks/results/selection), while "
    "the text measures rank it first on at most 2 of the 4 (jsd on none).")
PROTOCOL_DATA = {"A": "amazon", "B": "amazon_hatn", "movie": "movie", "movie_full": "movie",
                 "multi": "amazon"}   # multi: protocol A with a '+'-joined union of sources


# ------------------------------------------------------------------------------
# Texts.

def words(text: str) -> list[str]:
  """Lowercased words of ``text`` as the RNN runs split them, punctuation dropped."""
  from xferlab.data.tokenizer import split_words
  return [w for w in split_words(text) if w[:1].isalnum()]


@dataclasses.dataclass(eq=False)
class Corpus:
  """One side of a comparison: texts, their labels when known (a labeled source), a kind
  (``domain``, ``union``) and, once asked for, word counts."""
  name: str
  texts: list[str]
  labels: np.ndarray | None = None
  kind: str = "domain"

  @functools.cached_property
  def counts(self) -> collections.Counter:
    counts = collections.Counter()
    for text in self.texts:
      counts.update(words(text))
    return counts


def sample(texts, labels, max_texts: int, seed: int = 0):
  """At most ``max_texts`` of ``texts`` (and their labels), chosen with ``seed``, in order."""
  if max_texts <= 0 or len(texts) <= max_texts:
    return list(texts), labels
  keep = np.sort(np.random.default_rng(seed).choice(len(texts), max_texts, replace=False))
  return [texts[i] for i in keep], None if labels is None else np.asarray(labels)[keep]


def data_config(name: str, source: str, target: str):
  """The ``data`` section that ``xferlab.data.domains`` reads for one pair."""
  from xferlab.defaults import base_config
  data = base_config().data
  data.name, data.source, data.target = name, source, target
  return data


def protocol_data(source: str, protocol: str = "A") -> str:
  """The ``data.name`` a candidate source is read from: movie sources from ``movie``,
  ``imdb_full`` from ``imdb``, Amazon domains from the protocol's corpus."""
  from xferlab.data.domains import MOVIE_SOURCES
  if source in MOVIE_SOURCES:
    return "movie"
  if source == "imdb_full":
    return "imdb"
  return PROTOCOL_DATA.get(protocol, protocol)


@functools.lru_cache(maxsize=None)
def source_corpus(source: str, protocol: str = "A", max_texts: int = MAX_TEXTS) -> Corpus:
  """A candidate's labeled source texts (training and validation parts, as the TF-IDF peer
  reads them) from the protocol's own splits, sampled to ``max_texts``."""
  from xferlab.data.domains import AMAZON_DOMAINS, load_domain_adaptation
  # the loader wants a target outside the source; the source's split does not depend on it
  other = next(d for d in reversed(AMAZON_DOMAINS) if d not in source.split("+"))
  corpus = load_domain_adaptation(data_config(protocol_data(source, protocol), source, other))
  texts = list(corpus["source_train"][0]) + list(corpus["source_val"][0])
  labels = np.concatenate([corpus["source_train"][1], corpus["source_val"][1]])
  return Corpus(source, *sample(texts, labels, max_texts))


@functools.lru_cache(maxsize=None)
def target_corpus(target: str, max_texts: int = MAX_TEXTS) -> Corpus:
  """An Amazon domain's unlabeled reviews (``amazon_unlabeled``: no labeled benchmark review
  among them), the text every protocol adapts to, sampled to ``max_texts``."""
  from xferlab.data.domains import load_domain_adaptation
  corpus = load_domain_adaptation(data_config("amazon", target, target))
  return Corpus(target, sample(corpus["target_unlabeled"], None, max_texts)[0], kind="target")


def union(corpora: Sequence[Corpus], max_texts: int = MAX_TEXTS) -> Corpus:
  """The multi-source candidate: every text of ``corpora`` together, sampled to
  ``max_texts``, named ``a+b+c``."""
  texts = [t for c in corpora for t in c.texts]
  labels = (None if any(c.labels is None for c in corpora)
            else np.concatenate([c.labels for c in corpora]))
  return Corpus("+".join(c.name for c in corpora), *sample(texts, labels, max_texts),
                kind="union")


# ------------------------------------------------------------------------------
# Measures on text.

def vocab_overlap(source: Corpus, target: Corpus, top: int = TOP_WORDS) -> float:
  """Jaccard index of the ``top`` most frequent words of each side."""
  a = {w for w, _ in source.counts.most_common(top)}
  b = {w for w, _ in target.counts.most_common(top)}
  return len(a & b) / max(1, len(a | b))


def unigram_pair(source: Corpus, target: Corpus) -> tuple[np.ndarray, np.ndarray]:
  """``(p, q)``: both unigram distributions over the union of their words."""
  vocab = sorted(set(source.counts) | set(target.counts))
  p = np.array([source.counts.get(w, 0) for w in vocab], np.float64)
  q = np.array([target.counts.get(w, 0) for w in vocab], np.float64)
  return p / max(1.0, p.sum()), q / max(1.0, q.sum())


def weighted_jaccard(source: Corpus, target: Corpus) -> float:
  """``sum min(p, q) / sum max(p, q)`` of the unigram distributions."""
  p, q = unigram_pair(source, target)
  return float(np.minimum(p, q).sum() / np.maximum(p, q).sum())


def coverage(source: Corpus, target: Corpus) -> float:
  """The share of target word tokens whose word occurs in the source text."""
  total = sum(target.counts.values())
  return sum(c for w, c in target.counts.items() if w in source.counts) / max(1, total)


def jsd(source: Corpus, target: Corpus) -> float:
  """Jensen-Shannon divergence (bits, 0 to 1) of the unigram distributions."""
  p, q = unigram_pair(source, target)
  m = (p + q) / 2

  def kl(a):
    nz = a > 0
    return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

  return 0.5 * kl(p) + 0.5 * kl(q)


def tfidf_pad(source: Corpus, target: Corpus, seed: int = 0,
              components: int = TFIDF_COMPONENTS, repeats: int = PAD_REPEATS) -> float:
  """Proxy A-distance of TF-IDF (SVD-reduced) features, mean over ``repeats`` halvings."""
  from sklearn.decomposition import TruncatedSVD
  from sklearn.feature_extraction.text import TfidfVectorizer

  from xferlab.studies.domain_distance import one_thread, proxy_a_distance
  vectorizer = TfidfVectorizer(tokenizer=words, lowercase=False, token_pattern=None, min_df=2,
                               sublinear_tf=True)
  x = vectorizer.fit_transform(list(source.texts) + list(target.texts))
  with one_thread():
    x = TruncatedSVD(min(components, x.shape[1] - 1), random_state=seed).fit_transform(x)
  s, t = x[:len(source.texts)], x[len(source.texts):]
  return float(np.mean([proxy_a_distance(s, t, seed=seed + r)["pad"] for r in range(repeats)]))


def source_confidence(source: Corpus, target: Corpus) -> float:
  """Mean top-class probability on the target text of a TF-IDF classifier trained on the
  source labels (NaN for an unlabeled candidate)."""
  from sklearn.feature_extraction.text import TfidfVectorizer
  from sklearn.linear_model import LogisticRegression

  from xferlab.studies.domain_distance import one_thread
  from xferlab.studies.peers import TFIDF_C
  if source.labels is None or len(set(np.asarray(source.labels).tolist())) < 2:
    return float("nan")
  vectorizer = TfidfVectorizer(ngram_range=(1, 2))
  x = vectorizer.fit_transform(list(source.texts))
  with one_thread():
    classifier = LogisticRegression(C=TFIDF_C, max_iter=2000).fit(x, source.labels)
    probs = classifier.predict_proba(vectorizer.transform(list(target.texts)))
  return float(probs.max(axis=1).mean())


@dataclasses.dataclass(frozen=True)
class Measure:
  """A similarity measure: ``fn(source, target) -> float``; ``closer`` says whether a
  ``"higher"`` or ``"lower"`` value means a closer candidate."""
  fn: Callable[[Corpus, Corpus], float] | None
  closer: str
  about: str


TEXT_MEASURES = {
    "vocab_overlap": Measure(vocab_overlap, "higher", f"Jaccard of the top-{TOP_WORDS} words"),
    "weighted_jaccard": Measure(weighted_jaccard, "higher",
                                "weighted Jaccard of unigram distributions"),
    "coverage": Measure(coverage, "higher", "share of target tokens seen in the source"),
    "jsd": Measure(jsd, "lower", "Jensen-Shannon divergence of unigram distributions"),
    "tfidf_pad": Measure(tfidf_pad, "lower",
                         f"proxy A-distance on TF-IDF features (SVD {TFIDF_COMPONENTS})"),
    "source_confidence": Measure(source_confidence, "higher",
                                 "mean confidence of the source TF-IDF classifier on target"),
}
MODEL_MEASURES = {
    "model_pad": Measure(None, "lower", "proxy A-distance on a classifier run's features"),
    "lm_perplexity": Measure(None, "lower", "a language model's perplexity on target text"),
    "model_pad_recorded": Measure(None, "lower", "proxy A-distance of a benchmark record's "
                                  "source_only run features (a trained model per pair)"),
}
MEASURES = {**TEXT_MEASURES, **MODEL_MEASURES}


def closeness(measure: str, value: float) -> float:
  """``value`` oriented so that higher always means closer (distances negated)."""
  return value if MEASURES[measure].closer == "higher" else -value


# ------------------------------------------------------------------------------
# Measures on models.

def as_restored(run):
  """A ``xferlab.launch.Restored`` run: ``run`` itself, or the run restored from its workdir."""
  if isinstance(run, (str, os.PathLike)):
    from xferlab.launch import restore
    return restore(os.fspath(run))
  return run


def run_name(run) -> str:
  return os.path.basename(os.path.normpath(run if isinstance(run, str) else run.workdir))


def model_pad(run, target: Corpus, max_texts: int = 1000) -> tuple[str, dict]:
  """``(source name, {"pad", "error", ...})``: proxy A-distance of a classification run's
  pooled encoder features (``run``: its workdir or a ``Restored``), the source text of the
  run's corpus against ``target``'s text."""
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.studies.domain_distance import encode_features, proxy_a_distance
  restored = as_restored(run)
  corpus = load_domain_adaptation(restored.config.data, restored.config.seed)
  texts = list(corpus["source_train"][0]) + list(corpus["source_val"][0])
  source = sample(texts, None, max_texts)[0]
  target_texts = sample(target.texts, None, max_texts)[0]
  result = proxy_a_distance(encode_features(restored, source),
                            encode_features(restored, target_texts))
  return restored.config.data.source, result


def lm_perplexity(restored, texts: Sequence[str]) -> dict[str, float]:
  """A language model's perplexity on ``texts`` (each followed by EOS, read as one stream,
  state carried, the task's own ``eval_sums``): ``{"perplexity", "word_perplexity" (the
  same total NLL per word of ``words``, comparable across tokenizers), "unk_rate",
  "tokens"}``. ``restored`` is a ``xferlab.launch.restore`` (or ``build``) result."""
  import jax
  from flax import nnx

  from xferlab.special_ids import UNK_ID
  from xferlab.tasks import get_task
  from xferlab.tasks.language_model import eval_stream_batch, token_stream
  if restored.config.task != "language_model":
    raise ValueError(f"{restored.workdir} is a {restored.config.task!r} run, not a "
                     "language model")
  task = get_task(restored.config.task)
  stream = token_stream(restored.tokenizer, list(texts))
  rows = max(1, min(restored.config.data.eval_batch_size, len(stream) // 2))
  batch = eval_stream_batch(stream, rows)
  graphdef, state = nnx.split(restored.model)
  sums = jax.jit(lambda s, b: task.eval_sums(nnx.merge(graphdef, s), b))(state, batch)
  nll, count = float(sums["nll"]), float(sums["count"])
  num_words = sum(len(words(t)) + 1 for t in texts) * count / max(1, len(stream) - 1)
  return {"perplexity": math.exp(nll / count), "word_perplexity": math.exp(nll / num_words),
          "unk_rate": float(np.mean(stream == UNK_ID)), "tokens": int(count)}


# ------------------------------------------------------------------------------
# Ranking.

def score_texts(target: Corpus, candidates: Sequence[Corpus],
                measures: Sequence[str] = tuple(TEXT_MEASURES)) -> dict[str, dict[str, float]]:
  """``{candidate: {measure: value}}`` for every text measure."""
  return {c.name: {m: float(TEXT_MEASURES[m].fn(c, target)) for m in measures}
          for c in candidates}


def rank(scores: Mapping[str, Mapping[str, float]], measure: str) -> list[str]:
  """Candidate names, closest first by ``measure``; candidates without a finite value of
  it are left out."""
  have = {name: s[measure] for name, s in scores.items()
          if measure in s and s[measure] is not None and math.isfinite(s[measure])}
  return sorted(have, key=lambda name: -closeness(measure, have[name]))


def format_ranking(scores: Mapping[str, Mapping[str, float]], measure: str) -> str:
  """A Markdown table: candidates ordered by ``measure``, one column per measure with the
  value and the candidate's rank under it."""
  measures = [m for m in MEASURES if any(m in s for s in scores.values())]
  ranks = {m: {name: i + 1 for i, name in enumerate(rank(scores, m))} for m in measures}
  order = rank(scores, measure) + [n for n in scores if n not in rank(scores, measure)]
  head = ["rank", "candidate"] + [f"{m} ({MEASURES[m].closer} = closer)" for m in measures]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for i, name in enumerate(order):
    cells = []
    for m in measures:
      value = scores[name].get(m)
      cells.append("-" if name not in ranks[m] else f"{value:.4f} ({ranks[m][name]})")
    place = str(i + 1) if name in ranks[measure] else "-"
    lines.append("| " + " | ".join([place, name] + cells) + " |")
  return "\n".join(lines)


def score_candidates(target: Corpus, corpora: Sequence[Corpus], runs: Sequence = (),
                     lms: Sequence = (), with_union: bool = True,
                     lm_texts: int = LM_TEXTS) -> tuple[dict, dict]:
  """``(scores, details)``: every text measure of ``corpora`` and, with ``with_union`` and
  at least two of them, of their union (the multi-source candidate); ``model_pad`` of each
  classifier run in ``runs`` on the candidate of its source; ``lm_perplexity`` of each
  language model in ``lms`` (workdirs or ``Restored``), each a candidate of its own."""
  corpora = list(corpora)
  if with_union and len(corpora) >= 2:
    corpora.append(union(corpora, max(len(c.texts) for c in corpora)))
  scores = score_texts(target, corpora)
  details: dict[str, dict] = {}
  for run in runs:
    source, result = model_pad(run, target)
    scores.setdefault(source, {})["model_pad"] = result["pad"]
    details[f"model_pad:{source}"] = dict(result, run=run_name(run))
  for lm in lms:
    result = lm_perplexity(as_restored(lm), target.texts[:lm_texts])
    name = f"lm:{run_name(lm)}"
    scores[name] = {"lm_perplexity": result["perplexity"]}
    details[name] = dict(result, run=run_name(lm))
  return scores, details


def select(target: str, candidates: Sequence[str], lms: Sequence = (), runs: Sequence = (),
           measure: str = DEFAULT_MEASURE, protocol: str = "A", max_texts: int = MAX_TEXTS,
           with_union: bool = True, lm_texts: int = LM_TEXTS) -> dict:
  """Scores and ranks the source domains ``candidates`` for the Amazon domain ``target``
  (its unlabeled reviews), with their union, ``runs`` and ``lms`` (``score_candidates``).
  Returns ``{"target", "measure", "ranking" (closest first), "scores", "details", ...}``."""
  if measure not in MEASURES:
    raise ValueError(f"Unknown measure {measure!r}; choose one of {sorted(MEASURES)}")
  tgt = target_corpus(target, max_texts)
  corpora = [source_corpus(c, protocol, max_texts) for c in candidates]
  scores, details = score_candidates(tgt, corpora, runs, lms, with_union, lm_texts)
  return {"target": target, "protocol": protocol, "measure": measure,
          "ranking": rank(scores, measure), "scores": scores, "details": details,
          "num_texts": {"target": len(tgt.texts), **{c.name: len(c.texts) for c in corpora}}}


# ------------------------------------------------------------------------------
# Correlation with realized accuracy.

def rank_correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
  """Spearman's rho and Kendall's tau-b of ``x`` against ``y``, each with its two-sided
  p-value (scipy.stats), and ``n``."""
  from scipy import stats
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) != len(y) or len(x) < 3:
    raise ValueError(f"rank_correlation needs two equally long series of 3 or more "
                     f"(got {len(x)} and {len(y)})")
  rho, rho_p = stats.spearmanr(x, y)
  tau, tau_p = stats.kendalltau(x, y)
  return {"spearman": float(rho), "spearman_p": float(rho_p), "kendall": float(tau),
          "kendall_p": float(tau_p), "n": int(len(x))}


def record_pairs(path: str) -> list[dict]:
  """Every pair of a sentiment benchmark record (``results.json``): ``{"protocol", "pair",
  "source", "target", "accuracy": {arm: mean target accuracy, "tfidf_peer": ...},
  "recorded_pad": mean proxy A-distance of the source_only run's features}``."""
  with open(path) as f:
    record = json.load(f)
  out = []
  for protocol, body in record.items():
    for pair, entry in body.get("pairs", {}).items():
      accuracy = {arm: a["target_accuracy"]["mean"] for arm, a in entry["arms"].items()
                  if "target_accuracy" in a}
      if "tfidf_peer" in entry:
        accuracy["tfidf_peer"] = entry["tfidf_peer"]["target_accuracy"]
      pad = entry["arms"].get("source_only", {}).get("proxy_a_distance", {}).get("mean")
      out.append({"protocol": protocol, "pair": pair, "source": entry["source"],
                  "target": entry["target"], "accuracy": accuracy, "recorded_pad": pad})
  return out


def pair_scores(pairs: Sequence[dict], measures: Sequence[str] = tuple(TEXT_MEASURES),
                max_texts: int = MAX_TEXTS) -> dict[str, dict[str, float]]:
  """``{protocol:pair: {measure: value}}``: the text measures of every record pair, and
  ``model_pad_recorded`` where the record kept the source_only run's proxy A-distance."""
  out = {}
  for p in pairs:
    source = source_corpus(p["source"], p["protocol"], max_texts)
    scores = score_texts(target_corpus(p["target"], max_texts), [source], measures)
    out[f"{p['protocol']}:{p['pair']}"] = scores[source.name]
    if p.get("recorded_pad") is not None:
      out[f"{p['protocol']}:{p['pair']}"]["model_pad_recorded"] = p["recorded_pad"]
  return out


def group_pairs(pairs: Sequence[dict]) -> dict[str, list[dict]]:
  """The pair sets correlated: each record protocol alone, all of them together when there
  are several, and ``A+multi``: each target's three single sources and their union
  (protocol ``multi``, never a set of its own) as four candidates. The arms compared are
  those every pair of a set has."""
  groups: dict[str, list[dict]] = {}
  for p in pairs:
    if p["protocol"] != "multi":       # one union per target: ranked only beside protocol A
      groups.setdefault(p["protocol"], []).append(p)
  if len(groups) > 1:
    groups["+".join(groups)] = [p for p in pairs if p["protocol"] != "multi"]
  unions = [p for p in pairs if p["protocol"] == "multi"]
  if "A" in groups and unions:
    groups["A+multi"] = groups["A"] + unions
  return groups


def common_arms(pairs: Sequence[dict]) -> list[str]:
  """The arms (and peers) every pair of ``pairs`` has a realized accuracy for, the transfer
  arms first; ``in_domain`` (trained on the target, whatever the source) is left out."""
  arms = set.intersection(*(set(p["accuracy"]) for p in pairs)) - {"in_domain"}
  return [a for a in TRANSFER_ARMS if a in arms] + sorted(arms - set(TRANSFER_ARMS))


def selection_stats(pairs: Sequence[dict], scores: Mapping[str, Mapping[str, float]],
                    measure: str, arm: str) -> dict:
  """Per target, the top-ranked source under ``measure`` against the realized best and worst
  source under ``arm``: ``{"targets", "top_is_best", "top_is_worst", "mean_regret" (points
  of accuracy lost against the best source), "per_target"}``."""
  by_target: dict[str, list[tuple[str, float, float]]] = {}
  for p in pairs:
    value = scores[f"{p['protocol']}:{p['pair']}"].get(measure)
    if value is not None and math.isfinite(value) and arm in p["accuracy"]:
      by_target.setdefault(p["target"], []).append(
          (f"{p['protocol']}:{p['source']}", closeness(measure, value), p["accuracy"][arm]))
  per_target, best_hits, worst_hits, regrets = {}, 0, 0, []
  for target, rows in sorted(by_target.items()):
    if len(rows) < 2:
      continue
    top = max(rows, key=lambda r: r[1])
    best, worst = max(rows, key=lambda r: r[2]), min(rows, key=lambda r: r[2])
    best_hits += top[2] == best[2]
    worst_hits += top[2] == worst[2]
    regrets.append(100 * (best[2] - top[2]))
    per_target[target] = {"top": top[0], "best": best[0], "worst": worst[0],
                          "regret_points": regrets[-1]}
  return {"targets": len(per_target), "top_is_best": int(best_hits),
          "top_is_worst": int(worst_hits),
          "mean_regret": float(np.mean(regrets)) if regrets else float("nan"),
          "per_target": per_target}


def centered(values: Sequence[float], groups: Sequence[str]) -> np.ndarray:
  """``values`` minus the mean of their group (a target's candidates): what is left once
  how hard each target is has been taken out."""
  values = np.asarray(values, np.float64)
  means = {g: values[[h == g for h in groups]].mean() for g in set(groups)}
  return values - np.array([means[g] for g in groups])


def correlations(pairs: Sequence[dict], scores: Mapping[str, Mapping[str, float]]) -> dict:
  """``{group: {"pairs", "arms", "measures": {measure: {arm: {spearman, ..., selection}}}}}``:
  every measure's closeness (higher = closer) against every arm's realized accuracy."""
  out = {}
  for group, members in group_pairs(pairs).items():
    if len(members) < 3:           # too few pairs to rank
      continue
    arms = common_arms(members)
    keys = [f"{p['protocol']}:{p['pair']}" for p in members]
    measures = [m for m in MEASURES if all(m in scores[k] for k in keys)]
    table = {}
    targets = [p["target"] for p in members]
    for m in measures:
      x = [closeness(m, scores[k][m]) for k in keys]
      table[m] = {}
      for arm in arms:
        y = [p["accuracy"][arm] for p in members]
        within = rank_correlation(centered(x, targets), centered(y, targets))["spearman"]
        table[m][arm] = dict(rank_correlation(x, y), within_target_spearman=within,
                             selection=selection_stats(members, scores, m, arm))
    out[group] = {"pairs": keys, "arms": arms, "measures": table}
  return out


def choose_default(report: Mapping, group: str = "A") -> dict:
  """The default measure by ``DEFAULT_RULE`` on the record's ``group`` pairs."""
  table = report[group]["measures"]
  candidates = {}
  for m in TEXT_MEASURES:
    if m not in table or not all(a in table[m] for a in TRANSFER_ARMS):
      continue
    rhos = [table[m][a]["spearman"] for a in TRANSFER_ARMS]
    never_worst = all(table[m][a]["selection"]["top_is_worst"] == 0 for a in TRANSFER_ARMS)
    candidates[m] = {"mean_spearman": float(np.mean(rhos)),
                     "eligible": bool(min(rhos) > 0 and never_worst)}
  eligible = {m: c for m, c in candidates.items() if c["eligible"]}
  chosen = max(eligible, key=lambda m: eligible[m]["mean_spearman"]) if eligible else None
  return {"measure": chosen, "rule": DEFAULT_RULE, "group": group,
          "num_pairs": len(report[group]["pairs"]), "compared": candidates}


def multi_source(targets: Sequence[str], sources: Sequence[str], protocol: str = "A",
                 max_texts: int = MAX_TEXTS) -> dict[str, dict]:
  """For each target, the other ``sources`` and their union scored and ranked by every text
  measure: ``{target: {"scores", "ranks": {measure: [names, closest first]}}}``."""
  out = {}
  for target in targets:
    corpora = [source_corpus(s, protocol, max_texts) for s in sources if s != target]
    corpora.append(union(corpora, max_texts))
    scores = score_texts(target_corpus(target, max_texts), corpora)
    out[target] = {"scores": scores, "ranks": {m: rank(scores, m) for m in TEXT_MEASURES}}
  return out


# ------------------------------------------------------------------------------
# The report.

PROTOCOL_STYLE = {"A": ("o", "tab:blue"), "movie": ("s", "tab:orange"), "B": ("^", "tab:green"),
                  "multi": ("P", "tab:red"), "movie_full": ("X", "tab:purple")}


def plot_measure(pairs: Sequence[dict], scores: Mapping[str, Mapping[str, float]],
                 measure: str, path: str, stats: Mapping | None = None,
                 arms: Sequence[str] = TRANSFER_ARMS) -> str:
  """One panel per arm, one point per pair: ``measure`` (x) against the arm's realized
  target accuracy (y), one marker per record protocol; returns ``path``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(arms), figsize=(5.2 * len(arms), 4.6), squeeze=False)
  for ax, arm in zip(axes[0], arms):
    for protocol in dict.fromkeys(p["protocol"] for p in pairs):
      members = [p for p in pairs if p["protocol"] == protocol and arm in p["accuracy"]]
      if not members:
        continue
      x = [scores[f"{protocol}:{p['pair']}"][measure] for p in members]
      y = [100 * p["accuracy"][arm] for p in members]
      rho = (stats or {}).get(protocol, {}).get("measures", {}).get(measure, {}).get(arm)
      label = f"{protocol}, {len(members)} pairs" + (
          f": Spearman {rho['spearman']:+.2f} (p={rho['spearman_p']:.2g})" if rho else "")
      marker, color = PROTOCOL_STYLE.get(protocol, ("D", "tab:gray"))
      ax.scatter(x, y, s=34, marker=marker, color=color, label=label)
      for xi, yi, p in zip(x, y, members):
        ax.annotate(p["pair"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_title(arm, fontsize=10)
    ax.set_xlabel(f"{measure} ({MEASURES[measure].closer} = closer)")
    ax.set_ylabel("realized target accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
  fig.suptitle(f"{MEASURES[measure].about} against transfer accuracy, one point per pair",
               fontsize=10)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
          + ["| " + " | ".join(row) + " |" for row in rows])


def correlation_markdown(stats: Mapping, default: Mapping) -> list[str]:
  """Markdown tables of every group: Spearman / Kendall with p-values, the Spearman left
  once each target's mean is taken out, and the selection counts."""
  lines = []
  for group, body in stats.items():
    arms, table = body["arms"], body["measures"]
    name = lambda m: m + (" **(default)**" if m == default.get("measure") else "")
    lines += [f"### {group} ({len(body['pairs'])} pairs)", "",
              "Spearman rho (p) / Kendall tau (p) of closeness against target accuracy:", ""]
    lines += markdown_table(["measure", *arms], [
        [name(m)] + [f"{r['spearman']:+.2f} ({r['spearman_p']:.3f}) / {r['kendall']:+.2f} "
                     f"({r['kendall_p']:.3f})" for r in (table[m][a] for a in arms)]
        for m in table])
    lines += ["", "Within-target Spearman (closeness and accuracy minus their target's mean: "
              "the choice among a target's sources, without how hard the target is):", ""]
    lines += markdown_table(["measure", *arms], [
        [name(m)] + [f"{table[m][a]['within_target_spearman']:+.2f}" for a in arms]
        for m in table])
    lines += ["", "Top-ranked source per target: best / worst of its candidates (targets), "
              "mean regret against the best source in points:", ""]
    lines += markdown_table(["measure", *arms], [
        [name(m)] + [f"{s['top_is_best']}/{s['top_is_worst']} ({s['targets']}), "
                     f"{s['mean_regret']:.1f}" for s in (table[m][a]["selection"] for a in arms)]
        for m in table])
    lines.append("")
  return lines


def realized_ranks(pairs: Sequence[dict], target: str, names: Sequence[str],
                   arms: Sequence[str] = ("source_only", "vectors_ema")) -> dict[str, list]:
  """``{arm: names, most accurate first}`` for the candidates ``names`` of ``target`` (single
  domains from protocol A's pairs, the union from protocol ``multi``), for every arm that
  the record trained on all of them; empty when it did not."""
  accuracy = {p["source"]: p["accuracy"] for p in pairs
              if p["target"] == target and p["protocol"] in ("A", "multi")}
  return {arm: sorted(names, key=lambda n: -accuracy[n][arm]) for arm in arms
          if all(arm in accuracy.get(n, {}) for n in names)}


def multi_markdown(multi: Mapping) -> list[str]:
  """Markdown: the union's rank among each target's four candidates under every measure,
  and its realized rank by target accuracy where the record trained on it."""
  arms = list(dict.fromkeys(a for body in multi.values() for a in body.get("realized", {})))
  lines = ["## Multi-source: the union of the other three domains as a fourth candidate", "",
           "Rank of the union among the four candidates (1 = closest) under each measure, "
           "and its realized rank (1 = most accurate) where the record trains on the union "
           "(protocol `multi`, the same runs as the `A+multi` group above).", ""]
  rows = []
  for target, body in multi.items():
    name = next(n for n in body["scores"] if "+" in n)
    realized = body.get("realized", {})
    rows.append([target] + [str(body["ranks"][m].index(name) + 1) for m in TEXT_MEASURES]
                + [str(realized[a].index(name) + 1) if a in realized else "-" for a in arms])
  return lines + markdown_table(["target", *TEXT_MEASURES, *(f"realized: {a}" for a in arms)],
                                rows) + [""]


def scores_markdown(pairs: Sequence[dict], scores: Mapping, multi: Mapping) -> list[str]:
  """Markdown: every pair's measures and accuracies, then the multi-source ranks."""
  measures = [m for m in MEASURES if any(m in s for s in scores.values())]
  arms = [a for a in (*TRANSFER_ARMS, "vectors_dann", "tfidf_peer")
          if any(a in p["accuracy"] for p in pairs)]
  lines = ["## Measures per pair", "", "| pair | " + " | ".join(measures + arms) + " |",
           "|---|" + "---|" * (len(measures) + len(arms))]
  for p in pairs:
    s = scores[f"{p['protocol']}:{p['pair']}"]
    cells = [f"{s[m]:.3f}" if m in s else "-" for m in measures]
    cells += [f"{100 * p['accuracy'][a]:.1f}" if a in p["accuracy"] else "-" for a in arms]
    lines.append(f"| {p['protocol']} {p['pair']} | " + " | ".join(cells) + " |")
  return lines + [""] + multi_markdown(multi)


def rounded(tree, digits: int = 4):
  """``tree`` with every float rounded (a compact record); NaN becomes ``None``."""
  if isinstance(tree, float):
    return None if not math.isfinite(tree) else round(tree, digits)
  if isinstance(tree, Mapping):
    return {k: rounded(v, digits) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [rounded(v, digits) for v in tree]
  return tree


def compact_json(tree) -> str:
  """``tree`` as indented JSON whose innermost objects and lists each take one line."""
  import re
  text = json.dumps(tree, indent=1, ensure_ascii=False)
  return re.sub(r"[{\[][^{}\[\]]*[}\]]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)),
                text) + "\n"


def correlation_report(out_dir: str, records: Sequence[str] = RECORDS,
                       max_texts: int = MAX_TEXTS, command: str = "") -> dict:
  """Correlates every label-free text measure with the realized accuracies of ``records``
  (``record_pairs``), scores the multi-source union of protocol A's targets, and writes
  the report (``write_report``). Returns the results."""
  from xferlab.data.domains import AMAZON_DOMAINS
  pairs = [p for path in records for p in record_pairs(path)]
  scores = pair_scores(pairs, max_texts=max_texts)
  targets = sorted({p["target"] for p in pairs if p["protocol"] == "A"})
  multi = multi_source(targets, AMAZON_DOMAINS, "A", max_texts)
  return write_report(out_dir, pairs, scores, multi, command, records, max_texts)


def write_report(out_dir: str, pairs: Sequence[dict], scores: Mapping, multi: Mapping,
                 command: str = "", records: Sequence[str] = (),
                 max_texts: int = MAX_TEXTS) -> dict:
  """``out_dir/results.json`` and ``results.md`` (correlations, selection counts, the
  default measure by ``DEFAULT_RULE``, every pair's measures, the multi-source ranks) and
  ``selection.png`` (the default measure against accuracy). Returns the results."""
  stats = correlations(pairs, scores)
  multi = {target: dict(body, realized=realized_ranks(pairs, target, list(body["scores"])))
           for target, body in multi.items()}
  default = choose_default(stats) if "A" in stats else {"measure": None}
  os.makedirs(out_dir, exist_ok=True)
  plot_measure(pairs, scores, default["measure"] or DEFAULT_MEASURE,
               os.path.join(out_dir, "selection.png"), stats)
  results = {"command": command, "records": list(records), "max_texts": max_texts,
             "measures": {m: {"closer": MEASURES[m].closer, "about": MEASURES[m].about}
                          for m in MEASURES},
             "default": default, "correlations": stats, "scores": scores,
             "accuracy": {f"{p['protocol']}:{p['pair']}": p["accuracy"] for p in pairs},
             "multi_source": multi}
  with open(os.path.join(out_dir, "results.json"), "w") as f:
    f.write(compact_json(rounded(results)))
  with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write("\n".join(report_markdown(results, pairs)))
  return results


def report_markdown(results: Mapping, pairs: Sequence[dict]) -> list[str]:
  """The whole ``results.md``."""
  default = results["default"]
  lines = ["# Source selection by label-free similarity", "",
           f"Written by `{results['command'] or 'python -m xferlab.studies.select --report'}`; "
           "every number is in `results.json` beside this file. Closeness = the measure "
           "oriented so that higher means closer (distances negated), correlated with each "
           "arm's mean target accuracy over seeds; p-values two-sided (scipy.stats). Text "
           f"measures read {results['max_texts']} texts per side: the candidate's labeled "
           "source reviews (labels used only by source_confidence) against the target's "
           "unlabeled reviews (`amazon_unlabeled`). No target label is read.", "",
           f"**Default measure: `{default.get('measure')}`.** Rule: {DEFAULT_RULE}.", "",
           f"Read with care: the default was picked among {len(default.get('compared', {}))} "
           "text measures on the same protocol-A pairs it is reported on; the other records' "
           "pairs were not used to pick it. The p-values treat the pairs as independent, which "
           "they are not (each domain is in several pairs, and a symmetric measure gives S→T "
           "and T→S nearly one value), so they are optimistic.", ""]
  compared = default.get("compared", {})
  if compared:
    lines += ["| measure | mean Spearman over " + ", ".join(TRANSFER_ARMS) + " | eligible |",
              "|---|---|---|"]
    lines += [f"| {m} | {c['mean_spearman']:+.3f} | {'yes' if c['eligible'] else 'no'} |"
              for m, c in sorted(compared.items(), key=lambda kv: -kv[1]["mean_spearman"])]
    lines.append("")
  lines += ["![distance against accuracy](selection.png)", "", "## Rank correlations", ""]
  lines += correlation_markdown(results["correlations"], default)
  return lines + scores_markdown(pairs, results["scores"], results["multi_source"])


def summary_lines(results: Mapping) -> list[str]:
  """The default measure and its correlations in every group, for the terminal."""
  chosen = results["default"].get("measure") or DEFAULT_MEASURE
  lines = [f"default measure: {chosen} ({DEFAULT_RULE})"]
  if chosen != DEFAULT_MEASURE:
    lines.append(f"  NOTE: the rule now picks {chosen}, not DEFAULT_MEASURE = {DEFAULT_MEASURE}")
  for group, body in results["correlations"].items():
    for arm, r in body["measures"].get(chosen, {}).items():
      sel = r["selection"]
      lines.append(f"  {group} {arm}: Spearman {r['spearman']:+.3f} (p={r['spearman_p']:.3g}), "
                   f"Kendall {r['kendall']:+.3f} (p={r['kendall_p']:.3g}), n={r['n']}; top "
                   f"source best {sel['top_is_best']}/{sel['targets']}, worst "
                   f"{sel['top_is_worst']}/{sel['targets']}")
  return lines


def print_ranking(result: Mapping) -> None:
  print(f"Target {result['target']} (protocol {result['protocol']}); ranked by "
        f"{result['measure']} ({MEASURES[result['measure']].about}):")
  print(format_ranking(result["scores"], result["measure"]))
  for name, detail in result["details"].items():
    print(f"  {name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in detail.items()))
  if any("+" in name for name in result["scores"]):
    print(UNION_NOTE)


def split_list(text: str | None) -> list[str]:
  return [t for t in (text or "").split(",") if t]


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m xferlab.studies.select",
                              description=__doc__.split("\n")[0])
  p.add_argument("--target", help="the target Amazon domain (its unlabeled reviews are read)")
  p.add_argument("--candidates", default="", help="source domains, comma-separated: Amazon "
                 "domains, imdb_2k, rt_polarity, imdb_full")
  p.add_argument("--lms", default="", help="language-model run dirs, comma-separated")
  p.add_argument("--runs", default="", help="classifier run dirs, comma-separated "
                 "(model_pad on the candidate of each run's source)")
  p.add_argument("--measure", default=DEFAULT_MEASURE, choices=sorted(MEASURES),
                 help=f"the measure that ranks (default {DEFAULT_MEASURE}, see DEFAULT_RULE)")
  p.add_argument("--protocol", default="A", choices=sorted(PROTOCOL_DATA),
                 help="whose splits give the source texts")
  p.add_argument("--max-texts", type=int, default=MAX_TEXTS)
  p.add_argument("--no-union", action="store_true", help="leave out the multi-source union")
  p.add_argument("--out", help="the JSON to write (default selection_<target>.json)")
  p.add_argument("--report", metavar="OUT", help="write the correlation report to OUT "
                 "instead of ranking (results.json, results.md, selection.png)")
  p.add_argument("--record", action="append", help="benchmark results.json to correlate "
                 f"with (repeatable; default {', '.join(RECORDS)})")
  return p


def check_arguments(args: argparse.Namespace) -> None:
  """A wrong ranking invocation fails in one line (exit 2) before anything is read: an unknown
  target or candidate, a candidate named twice, a missing ``--lms`` / ``--runs`` folder,
  ``--max-texts`` below 1, or an ``--out`` whose folder does not exist."""
  from xferlab.data.domains import AMAZON_DOMAINS, MOVIE_SOURCES
  fail = parser().error
  if args.target not in AMAZON_DOMAINS:
    fail(f"--target {args.target!r} is not an Amazon domain; choose one of "
         f"{', '.join(AMAZON_DOMAINS)}")
  known, candidates = (*AMAZON_DOMAINS, *MOVIE_SOURCES), split_list(args.candidates)
  for candidate in candidates:
    if any(part not in known for part in candidate.split("+")):
      fail(f"--candidates: {candidate!r} is not a source; choose from {', '.join(known)}, "
           "or a union such as books+dvd")
  if len(set(candidates)) < len(candidates):
    fail(f"--candidates names a source twice: {args.candidates}")
  for flag, folders in (("--lms", args.lms), ("--runs", args.runs)):
    for folder in split_list(folders):
      if not os.path.isdir(folder):
        fail(f"{flag}: {folder} is not a directory")
  if args.max_texts < 1:
    fail(f"--max-texts {args.max_texts}: read at least 1 text per candidate")
  folder = os.path.dirname(os.path.abspath(args.out or "selection.json"))
  if not os.path.isdir(folder):
    fail(f"--out {args.out}: the folder {folder} does not exist")


def main(argv: Sequence[str] | None = None) -> int:
  import sys
  args = parser().parse_args(argv)
  command = "python -m xferlab.studies.select " + " ".join(
      argv if argv is not None else sys.argv[1:])
  if args.report:
    os.makedirs(args.report, exist_ok=True)
    results = correlation_report(args.report, args.record or RECORDS, args.max_texts, command)
    print("\n".join(summary_lines(results)))
    print(f"written: {args.report}/results.json, results.md, selection.png")
    return 0
  if not args.target or not (args.candidates or args.lms):
    parser().error("--target and --candidates (or --lms) are needed, or --report OUT")
  check_arguments(args)
  result = select(args.target, split_list(args.candidates), split_list(args.lms),
                  split_list(args.runs), args.measure, args.protocol, args.max_texts,
                  not args.no_union)
  print_ranking(result)
  out = args.out or f"selection_{args.target}.json"
  with open(out, "w") as f:
    json.dump(rounded(result), f, indent=1)
  print(f"written: {out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

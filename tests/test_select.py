"""Source selection (xferlab.studies.select): known answers on synthetic text, the
multi-source union, the rank correlations and the report, without any real corpus."""

import json
import math

import numpy as np
import pytest

from xferlab.studies import select


def _texts(seed, vocab, sentiment, n=160, length=40):
  """``n`` texts and labels: Zipf-distributed words of ``vocab`` plus three words of the
  label's half of ``sentiment`` (positive, negative)."""
  rng = np.random.default_rng(seed)
  p = 1.0 / np.arange(1, len(vocab) + 1)
  p /= p.sum()
  labels = rng.integers(0, 2, n)
  texts = []
  for y in labels:
    body = list(rng.choice(vocab, length, p=p)) + list(rng.choice(sentiment[y], 3))
    texts.append(" ".join(rng.permutation(body)))
  return texts, labels


def _domain(name, seed, offset):
  """A domain whose words are ``w{offset}..w{offset + 299}`` and whose sentiment words are
  its own (``{name}_good*`` / ``{name}_bad*``)."""
  vocab = [f"w{i}" for i in range(offset, offset + 300)]
  sentiment = ([f"{name}_bad{i}" for i in range(8)], [f"{name}_good{i}" for i in range(8)])
  return _texts(seed, vocab, sentiment)


@pytest.fixture(scope="module")
def synthetic_case():
  """Target text drawn from A's distribution (another seed); B's words shifted by 150."""
  a = select.Corpus("A", *_domain("a", 0, 0))
  b = select.Corpus("B", *_domain("b", 1, 150))
  target_texts, _ = _domain("a", 2, 0)
  return select.Corpus("target", target_texts, kind="target"), a, b


def test_every_text_measure_ranks_the_same_distribution_first_and_scores_the_union(
    synthetic_case):
  target, a, b = synthetic_case
  scores, details = select.score_candidates(target, [a, b])
  assert set(scores) == {"A", "B", "A+B"} and details == {}
  for measure in select.TEXT_MEASURES:
    ranking = select.rank(scores, measure)
    assert "A+B" in ranking, measure                       # the multi-source candidate
    assert ranking.index("A") < ranking.index("B"), (measure, scores)
    assert [n for n in ranking if n != "A+B"][0] == "A", measure
  for measure in ("jsd", "weighted_jaccard", "vocab_overlap", "tfidf_pad"):
    assert select.rank(scores, measure) == ["A", "A+B", "B"], (measure, scores)   # a mixture
  assert 0 <= scores["A"]["jsd"] < scores["B"]["jsd"] <= 1
  assert scores["A"]["coverage"] > 0.99 > scores["B"]["coverage"]


def test_union_is_sampled_to_the_size_of_one_candidate_and_keeps_labels(synthetic_case):
  _, a, b = synthetic_case
  both = select.union([a, b], max_texts=100)
  assert both.name == "A+B" and both.kind == "union"
  assert len(both.texts) == len(both.labels) == 100
  assert any(t in a.texts for t in both.texts) and any(t in b.texts for t in both.texts)
  assert select.union([a, b], max_texts=100).texts == both.texts          # fixed seed
  assert select.union([a, select.Corpus("C", ["x y"])]).labels is None    # one is unlabeled


def test_measures_on_identical_and_disjoint_text():
  one = select.Corpus("one", ["red green blue", "green blue"])
  same = select.Corpus("same", ["red green blue", "green blue"])
  other = select.Corpus("other", ["cat dog", "dog"])
  assert select.jsd(one, same) == pytest.approx(0.0, abs=1e-12)
  assert select.jsd(one, other) == pytest.approx(1.0)
  assert select.weighted_jaccard(one, same) == pytest.approx(1.0)
  assert select.vocab_overlap(one, other) == 0.0 and select.coverage(one, other) == 0.0
  assert select.coverage(one, same) == 1.0
  assert math.isnan(select.source_confidence(one, same))                 # no labels
  assert select.words("Don't STOP, it's fine!") == ["don", "t", "stop", "it", "s", "fine"]


def test_rank_correlation_is_plus_or_minus_one_on_monotone_input():
  x = [0.1, 0.4, 0.5, 0.9, 1.3]
  up = select.rank_correlation(x, [60, 61, 70, 80, 99])
  down = select.rank_correlation(x, [99, 80, 70, 61, 60])
  assert up["spearman"] == pytest.approx(1.0) and up["kendall"] == pytest.approx(1.0)
  assert down["spearman"] == pytest.approx(-1.0) and down["kendall"] == pytest.approx(-1.0)
  assert up["spearman_p"] < 0.05 and up["kendall_p"] < 0.05 and up["n"] == 5
  with pytest.raises(ValueError):
    select.rank_correlation([1, 2], [3, 4])


def test_closeness_orients_distances_so_that_higher_is_closer():
  scores = {"near": {"jsd": 0.1, "coverage": 0.9}, "far": {"jsd": 0.4, "coverage": 0.5},
            "unknown": {"jsd": float("nan")}}
  assert select.rank(scores, "jsd") == ["near", "far"]
  assert select.rank(scores, "coverage") == ["near", "far"]
  table = select.format_ranking(scores, "jsd")
  assert table.splitlines()[2].startswith("| 1 | near") and "| - | unknown" in table


def _record(tmp_path):
  """A results.json in the benchmark's layout: 3 targets x 2 sources; accuracy follows a
  made-up closeness exactly for source_only and against it for dann."""
  pairs, closeness = {}, {}
  domains = ["books", "dvd", "kitchen"]
  for i, s in enumerate(domains):
    for j, t in enumerate(domains):
      if s == t:
        continue
      c = 1.0 / (1 + abs(i - j)) + 0.01 * i            # dvd is near both others
      acc = 0.6 + 0.2 * c
      arms = {"source_only": {"target_accuracy": {"mean": acc}},
              "dann": {"target_accuracy": {"mean": 1.4 - acc}},
              "vectors_ema": {"target_accuracy": {"mean": acc + 0.05}},
              "in_domain": {"target_accuracy": {"mean": 0.9}}}
      name = f"{s[0].upper()}→{t[0].upper()}"
      pairs[name] = {"source": s, "target": t, "arms": arms,
                     "tfidf_peer": {"target_accuracy": acc}}
      closeness[f"A:{name}"] = c
  path = tmp_path / "results.json"
  path.write_text(json.dumps({"A": {"pairs": pairs, "seeds": [0]}}))
  return str(path), closeness


def test_correlations_selection_counts_and_the_default_rule(tmp_path):
  path, closeness = _record(tmp_path)
  pairs = select.record_pairs(path)
  assert len(pairs) == 6 and pairs[0]["accuracy"]["tfidf_peer"] > 0
  scores = {k: {"coverage": c, "jsd": 1 - c, "vocab_overlap": -c} for k, c in closeness.items()}
  stats = select.correlations(pairs, scores)
  body = stats["A"]
  assert body["arms"][:3] == ["source_only", "dann", "vectors_ema"]
  assert "in_domain" not in body["arms"]
  assert body["measures"]["coverage"]["source_only"]["spearman"] == pytest.approx(1.0)
  assert body["measures"]["jsd"]["source_only"]["spearman"] == pytest.approx(1.0)   # oriented
  assert body["measures"]["coverage"]["dann"]["spearman"] == pytest.approx(-1.0)
  sel = body["measures"]["coverage"]["source_only"]["selection"]
  assert (sel["targets"], sel["top_is_best"], sel["top_is_worst"]) == (3, 3, 0)
  assert sel["mean_regret"] == 0.0
  assert body["measures"]["coverage"]["dann"]["selection"]["top_is_worst"] == 3
  default = select.choose_default(stats)
  assert default["measure"] is None          # dann is anti-correlated under every measure
  assert set(default["compared"]) == {"coverage", "jsd", "vocab_overlap"}


def test_the_report_writes_json_markdown_and_one_picture(tmp_path):
  path, closeness = _record(tmp_path)
  pairs = select.record_pairs(path)
  for p in pairs:                                           # every arm now follows closeness
    p["accuracy"]["dann"] = p["accuracy"]["source_only"]
  scores = {k: {"coverage": c, "jsd": 1 - c + 0.001 * len(k)} for k, c in closeness.items()}
  union = {"protocol": "multi", "pair": "B+D→K", "source": "books+dvd", "target": "kitchen",
           "accuracy": {"source_only": 0.99, "vectors_ema": 0.5}}   # best / worst of kitchen's
  scores["multi:B+D→K"] = {"coverage": 0.5, "jsd": 0.4}
  multi = {"kitchen": {"scores": {"books": {}, "dvd": {}, "books+dvd": {}},
                       "ranks": {m: ["dvd", "books+dvd", "books"] for m in select.TEXT_MEASURES}}}
  out = tmp_path / "report"
  results = select.write_report(str(out), pairs + [union], scores, multi, command="test")
  assert results["default"]["measure"] in ("coverage", "jsd")
  written = json.loads((out / "results.json").read_text())
  assert written["correlations"]["A"]["measures"]["coverage"]["source_only"]["spearman"] == 1.0
  assert set(written["correlations"]) == {"A", "A+multi"}      # never multi alone
  assert len(written["correlations"]["A+multi"]["pairs"]) == 7
  realized = written["multi_source"]["kitchen"]["realized"]
  assert realized == {"source_only": ["books+dvd", "dvd", "books"],
                      "vectors_ema": ["dvd", "books", "books+dvd"]}
  text = (out / "results.md").read_text()
  assert "**(default)**" in text and "| kitchen | 2 |" in text and "| 1 | 3 |" in text
  assert (out / "selection.png").read_bytes()[:4] == b"\x89PNG"


def test_lm_perplexity_through_the_task_evaluation():
  """An untrained tiny LM (``launch.build``): finite perplexity near its vocabulary size,
  more unknown tokens on text it never saw, and a candidate of its own in the ranking."""
  from tests.test_language_model import tiny_lm_config
  from xferlab.launch import build
  lm = build(tiny_lm_config())
  known = [lm.tokenizer.decode(list(range(4, 40))) for _ in range(4)]
  unseen = ["zyxq qqqv wwwz " * 10 for _ in range(4)]
  a, b = select.lm_perplexity(lm, known), select.lm_perplexity(lm, unseen)
  assert 1 < a["perplexity"] < 3 * lm.tokenizer.vocab_size and a["tokens"] > 0
  assert a["unk_rate"] < 0.1 < b["unk_rate"]
  target = select.Corpus("target", known)
  scores, details = select.score_candidates(target, [], lms=[lm], lm_texts=4)
  assert list(scores) == [f"lm:{select.run_name(lm)}"]
  assert scores[list(scores)[0]]["lm_perplexity"] == pytest.approx(a["perplexity"], rel=1e-4)


def test_model_pad_reads_a_classifier_runs_features(tiny_config):
  """``model_pad`` on an (untrained) classifier from ``launch.build``: its corpus's source
  text against the target's, attached to the candidate named by the run's source."""
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.launch import build
  run = build(tiny_config)
  corpus = load_domain_adaptation(run.config.data)
  target = select.Corpus("target", list(corpus["target_unlabeled"]))
  source = select.Corpus(run.config.data.source, list(corpus["source_train"][0]),
                         corpus["source_train"][1])
  scores, details = select.score_candidates(target, [source], runs=[run])
  assert 0.0 <= scores[source.name]["model_pad"] <= 2.0
  assert details[f"model_pad:{source.name}"]["num_test"] > 0
  assert "jsd" in scores[source.name] and len(scores) == 1     # one candidate: no union


def test_the_ranking_warns_that_a_union_is_ranked_by_similarity_not_labels(capsys):
  scores = {"books": {"jsd": 0.1}, "dvd": {"jsd": 0.2}}
  result = {"target": "kitchen", "protocol": "A", "measure": "jsd", "scores": scores,
            "details": {}}
  select.print_ranking(result)
  assert select.UNION_NOTE not in capsys.readouterr().out
  select.print_ranking(dict(result, scores=dict(scores, **{"books+dvd": {"jsd": 0.15}})))
  out = capsys.readouterr().out
  assert select.UNION_NOTE in out and out.index("books+dvd") < out.index(select.UNION_NOTE)


@pytest.mark.parametrize("argv, fragment", [
    (["--target", "kitchn", "--candidates", "books"], "'kitchn' is not an Amazon domain"),
    (["--target", "kitchen", "--candidates", "bookz"], "'bookz' is not a source"),
    (["--target", "kitchen", "--candidates", "books,books"], "names a source twice"),
    (["--target", "kitchen", "--lms", "/nonexistent/lm"], "--lms: /nonexistent/lm is not a"),
    (["--target", "kitchen", "--candidates", "books", "--max-texts", "0"], "at least 1"),
    (["--target", "kitchen", "--candidates", "books", "--out", "/nonexistent/x.json"],
     "does not exist")])
def test_a_wrong_ranking_invocation_fails_in_one_line_before_reading_anything(argv, fragment,
                                                                              capsys):
  with pytest.raises(SystemExit) as exit_:
    select.main(argv)
  assert exit_.value.code == 2
  assert fragment in capsys.readouterr().err

"""The sentiment experiment files (protocols A, B, movie) and benchmarks/sentiment.py.

The fast tests need no corpus; the end-to-end smoke run (``-m slow``) needs the
real corpora and skips without them.
"""

import json
import os

import pytest

from benchmarks import records
from benchmarks import sentiment as bench
from xferlab.config import ConfigError, flatten, load_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["train.num_steps=2", "train.eval_every=2", "model.hidden_size=8", "model.embed_dim=8",
        "data.buckets=32", "data.batch_size=8", "transfer.discriminator_hidden=8",
        "data.vocab_size=2000"]


def experiment(name, arg=""):
  return load_experiment(os.path.join(ROOT, "experiments", "sentiment", name) + arg)


@pytest.mark.parametrize("name, data_name", [("amazon.py", "amazon"),
                                             ("amazon_hatn.py", "amazon_hatn"),
                                             ("movie_to_product.py", "movie")])
def test_experiment_files_have_every_arm_and_the_lambda_sweep(name, data_name):
  config, module = experiment(name)
  trained = set(bench.trained_arms(bench.ARMS))         # the ensembles' members, not themselves
  assert config.data.name == data_name and set(config.arms) == trained
  assert config.train.early_stopping_metric == "source_val_accuracy"
  assert module.__doc__.lstrip().startswith("Cross") or "Movie" in module.__doc__
  points = []
  module.sweep(lambda **p: points.append(p))
  assert [p["transfer.lam"] for p in points] == [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]


def test_argument_picks_the_pair_and_the_arms():
  config, _ = experiment("amazon.py", ":source=kitchen,target=electronics,arms=dann+lm_dann")
  assert (config.data.source, config.data.target) == ("kitchen", "electronics")
  assert set(config.arms) == {"dann", "lm_dann"}
  single, _ = experiment("amazon.py", ":arms=lm_dann,lm=/somewhere/lm")
  assert not single.arms and single.init_from.path == "/somewhere/lm"
  assert single.init_from.subtrees == ("classifier.encoder=encoder",)
  assert single.data.tokenizer_path == "/somewhere/lm/tokenizer"
  assert single.optimizer.schedule == "constant" and single.train.num_epochs == 8
  assert (single.model.num_layers, single.model.hidden_size, single.model.embed_dim) == (2, 300,
                                                                                       300)
  with pytest.raises(ValueError, match="valid: source, target"):
    experiment("amazon.py", ":sorce=books")
  with pytest.raises(ValueError, match="Unknown arms"):
    experiment("amazon.py", ":arms=dan")


def test_source_only_and_dann_differ_in_the_transfer_term_alone():
  only = flatten(bench.arm_config("A", "books", "dvd", "source_only", 1, []))
  dann = flatten(bench.arm_config("A", "books", "dvd", "dann", 1, []))
  assert {k for k in only if only[k] != dann[k]} == {"transfer.lam", "transfer.method"}
  assert only["transfer.method"] == "none" and dann["transfer.method"] == "dann"
  scheduled = bench.arm_config("A", "books", "dvd", "dann_scheduled", 1, ["transfer.lam=0.3"])
  assert scheduled.transfer.schedule == "dann" and scheduled.transfer.lam == 0.3


@pytest.mark.parametrize("protocol", ["A", "B"])
def test_vector_arms_differ_from_their_scratch_twins_in_the_embedding_and_epochs_alone(protocol):
  """Protocol A chose 12 epochs for the vector arms (frozen, they under-fit in 6); protocol B
  keeps its own number for every arm."""
  pair = ("books", "dvd")
  for scratch, with_vectors in (("source_only", "vectors"), ("dann", "vectors_dann"),
                                ("dann", "vectors_dann_im"), ("source_only", "vectors_ema")):
    a = flatten(bench.arm_config(protocol, *pair, scratch, 1, []))
    b = flatten(bench.arm_config(protocol, *pair, with_vectors, 1, [], vectors="/v"))
    expected = {"model.pretrained_vectors", "finetune.frozen"}
    expected |= {"train.num_epochs"} if protocol == "A" else set()
    expected |= {"transfer.target_entropy"} if with_vectors.endswith("_im") else set()
    expected |= {"train.ema_decay"} if with_vectors.endswith("_ema") else set()
    assert {k for k in a if a[k] != b[k]} == expected
    assert b["model.pretrained_vectors"] == "/v/vectors.txt"
    assert b["train.num_epochs"] == (12 if protocol == "A" else a["train.num_epochs"])


def test_missing_word_vectors_name_the_command_that_makes_them(tmp_path):
  missing = str(tmp_path / "no_vectors")
  with pytest.raises(ConfigError, match=f"python -m xferlab.studies.word2vec --out {missing}"):
    bench.check_prerequisites("A", ["dann", "vectors_dann"], ("books", "dvd"), [],
                              vectors=missing)


def test_in_domain_is_one_run_per_target_shared_by_its_pairs():
  configs = [bench.arm_config(p, s, "dvd", "in_domain", 0, []) for p, s in
             (("A", "books"), ("A", "kitchen"), ("movie", "imdb_2k"))]
  assert all(c.data.in_domain and c.data.name == "amazon" for c in configs)
  assert flatten(configs[0]) == flatten(configs[1]) == flatten(configs[2])
  dirs = {bench.run_dir("out", p, s, "dvd", "in_domain", 0) for p, s in
          (("A", "books"), ("A", "kitchen"), ("movie", "imdb_2k"))}
  assert dirs == {os.path.join("out", "A", "to_dvd", "in_domain", "seed_0")}
  assert bench.arm_config("B", "books", "dvd", "in_domain", 0, []).data.name == "amazon_hatn"
  assert bench.run_dir("out", "A", "books", "dvd", "dann", 2) == os.path.join(
      "out", "A", "books_dvd", "dann", "seed_2")


def test_pairs_and_a_missing_language_model_fail_clearly(tmp_path):
  assert len(bench.parse_pairs("all", "A")) == 12 and len(bench.parse_pairs("all", "movie")) == 8
  assert bench.parse_pairs("books:dvd,dvd:books", "B") == [("books", "dvd"), ("dvd", "books")]
  with pytest.raises(ConfigError, match="not a pair of protocol A"):
    bench.parse_pairs("books:books", "A")
  missing = str(tmp_path / "no_lm")
  with pytest.raises(ConfigError, match="experiments/lm/reviews.py:all --workdir"):
    bench.check_prerequisites("A", ["dann", "lm_dann"], ("books", "dvd"), [], missing)
  bench.check_prerequisites("A", ["source_only", "dann"], ("books", "dvd"), [])   # nothing needed
  assert bench.main(["--arms", "lm", "--pairs", "books:dvd", "--out", str(tmp_path),
                     "--lm", missing]) == 2


def test_a_run_whose_language_model_is_missing_names_the_command(tmp_path):
  """Through launch (not the benchmark): the lm arm stops before training."""
  from xferlab.launch import run_config
  from xferlab.transfer.model_based import check_prerequisites
  config = bench.arm_config("A", "books", "dvd", "lm", 0, [], lm=str(tmp_path / "lm"))
  with pytest.raises(FileNotFoundError, match="Make it first: python launch.py experiments/lm"):
    check_prerequisites(config)
  with pytest.raises(FileNotFoundError, match="init_from.path"):
    run_config(config, str(tmp_path / "run"))


def test_the_lm_arms_take_the_tokenizer_and_network_of_the_lm_they_start_from(tmp_path):
  """A word-level LM's resolved config (experiments/lm/all_reviews.py) sets the arms' tokenizer
  and encoder shape; without one, the sentencepiece review LM's are assumed."""
  lm_config, _ = load_experiment(os.path.join(ROOT, "experiments", "lm", "all_reviews.py"))
  lm = tmp_path / "lm_all_reviews"
  lm.mkdir()
  (lm / "config.json").write_text(lm_config.to_json())
  word = bench.arm_config("A", "books", "dvd", "lm_dann", 0, [], lm=str(lm))
  assert (word.data.tokenizer, word.data.word_split) == ("word", "words")
  assert (word.model.embed_dim, word.model.hidden_size, word.model.num_layers) == (400, 400, 2)
  assert word.data.tokenizer_path == str(lm / "tokenizer")
  assert "experiments/lm/all_reviews.py" in word.init_from.made_by
  assert lm_config.init_from.path == "runs/lm_imdb_resets" and lm_config.data.source == "all"
  for ema_arm, plain_arm in (("lm_ema", "lm"), ("lm_dann_ema", "lm_dann")):
    ema, plain = (flatten(bench.arm_config("A", "books", "dvd", a, 0, [], lm=str(lm)))
                  for a in (ema_arm, plain_arm))
    assert {k for k in ema if ema[k] != plain[k]} == {"train.ema_decay"} and ema[
        "train.ema_decay"] > 0
  pieces = bench.arm_config("A", "books", "dvd", "lm_dann", 0, [], lm=str(tmp_path / "absent"))
  assert (pieces.data.tokenizer, pieces.model.embed_dim) == ("sentencepiece", 300)
  assert "experiments/lm/reviews.py:all" in pieces.init_from.made_by


def test_report_has_the_average_and_the_anchors(tmp_path):
  stat = lambda v: {"mean": v, "std": 0.01, "values": [v, v]}
  pairs = {}
  for source, target in bench.all_pairs("A"):
    pairs[bench.pair_name(source, target)] = {
        "arms": {"source_only": {"target_accuracy": stat(0.70), "proxy_a_distance": stat(1.5)},
                 "dann": {"target_accuracy": stat(0.72), "discriminator_accuracy": stat(0.6)}},
        "runs": {"dann": [{"train_seconds": 40.0}, {"train_seconds": 50.0}],
                 "source_only": [{"train_seconds": 30.0}],
                 "in_domain": [{"train_seconds": 60.0, "workdir": f"to_{target}/in_domain/s0"}]},
        "tfidf_peer": {"target_accuracy": 0.78}}
  bench.write_reports(str(tmp_path), {"A": {"pairs": pairs, "seeds": [0, 1],
                                            "cpu_seconds": {"B→D": 120.0}}})
  text = (tmp_path / "results.md").read_text()
  assert "| **average (12 pairs)** | 70.0 | 72.0 | 78.0 | 76.3 | 81.3 | 78.2 | 77.9 |" in text
  assert ("- dann beats source_only on 12 of 12 pairs (mean gap +2.0 points; gap larger than "
          "both arms' std: 12 won, 0 lost; seed by seed 24 of 24 runs)") in text
  assert "| B→D | 70.0 ± 1.0 | 72.0 ± 1.0 | 78.0 | 78.4 | 82.9 | 80.7 | 81.1 |" in text
  # training minutes: each pair lists its target's in_domain run; the total counts it once
  assert "B→D 3.0, B→E 3.0," in text and "K→E 3.0; total 28.0 (a run shared" in text
  assert ": B→D 2.0; total 2.0." in text                                   # CPU minutes
  assert json.loads((tmp_path / "results.json").read_text())["A"]["seeds"] == [0, 1]
  # An arm run with fewer seeds than the others says so in its column header.
  for p in pairs.values():
    p["arms"]["lm"] = {"target_accuracy": {"mean": 0.7, "std": 0.0, "values": [0.7]}}
  bench.write_reports(str(tmp_path), {"A": {"pairs": pairs, "seeds": [0, 1], "cpu_seconds": {}}})
  assert "| pair | source_only | dann | lm (1 seed) | TF-IDF |" in (
      tmp_path / "results.md").read_text()


def test_twin_comparison_counts_pairs_clear_gaps_and_seed_matched_runs():
  stat = lambda *v: {"mean": sum(v) / len(v), "std": (max(v) - min(v)) / 2, "values": list(v)}
  pairs = {"B→D": {"arms": {"vectors": {"target_accuracy": stat(0.70, 0.72)},
                            "vectors_dann": {"target_accuracy": stat(0.75, 0.77)}}},
           "B→E": {"arms": {"vectors": {"target_accuracy": stat(0.70, 0.80)},
                            "vectors_dann": {"target_accuracy": stat(0.76, 0.72)}}},
           "B→K": {"arms": {"vectors": {"target_accuracy": stat(0.80, 0.80)}}}}
  c = bench.twin_comparison(pairs, "vectors_dann", "vectors")
  assert c["pairs"] == 2 and c["wins"] == 1 and c["clear_wins"] == 1 and c["clear_losses"] == 0
  assert c["runs"] == 4 and c["run_wins"] == 3
  assert abs(c["mean_gap"] - (0.05 - 0.01) / 2) < 1e-9
  assert bench.twin_comparison(pairs, "dann", "source_only") is None
  lines = bench.twin_lines(pairs)
  assert any(line.startswith("- vectors_dann beats vectors on 1 of 2 pairs") for line in lines)
  assert not any("dann beats source_only" in line for line in lines)
  pairs["B→D"]["arms"].update(source_only={"target_accuracy": stat(0.70, 0.70)},
                              lm_dann_ema={"target_accuracy": stat(0.80, 0.82)})
  lines = bench.twin_lines(pairs)
  assert "- lm_dann_ema beats source_only on 1 of 1 pairs (mean gap +11.0 points" in "\n".join(
      lines)
  assert any(line.startswith("Each arm that starts from pretrained weights") for line in lines)


def test_features_picture_takes_the_first_seed_it_can_encode_and_skips_record_runs(tmp_path):
  """Runs read back from a record keep no weights: the picture comes from a seed that has
  them (here: kept features), or is skipped with a reason instead of failing the pair."""
  pytest.importorskip("sklearn")
  import numpy as np
  rng = np.random.default_rng(0)
  runs = {"source_only": [], "dann": []}
  for arm in runs:
    for seed in range(2):
      workdir = tmp_path / arm / f"seed_{seed}"
      workdir.mkdir(parents=True)
      if seed == 1:                                   # seed 0 is as a record leaves it
        np.savez(workdir / "domain_features.npz", source=rng.normal(size=(20, 4)),
                 target=rng.normal(1.0, size=(20, 4)), num_texts=20)
      runs[arm].append({"workdir": str(workdir)})
  picture = tmp_path / "features.png"
  assert not bench.draw_features_picture({a: r[:1] for a, r in runs.items()}, str(picture), 20)
  assert not picture.exists()
  assert bench.draw_features_picture(runs, str(picture), 20) and picture.exists()
  assert (tmp_path / "dann" / "seed_1" / "domain_distance.json").exists()
  assert not (tmp_path / "dann" / "seed_0" / "domain_distance.json").exists()


def test_invocations_on_disjoint_pairs_share_one_results_file(tmp_path):
  """Two invocations write one --out (as if side by side): neither loses the other's pairs."""
  stat = lambda v: {"mean": v, "std": 0.0, "values": [v]}
  fresh = lambda v: {"arms": {"source_only": {"target_accuracy": stat(v)}},
                     "runs": {"source_only": [str(tmp_path)]}, "tfidf_peer": {"target_accuracy": v}}
  out = str(tmp_path)
  bench.record_pair(out, "A", "books", "dvd", fresh(0.70), 60.0, range(1), [])
  bench.record_pair(out, "A", "kitchen", "electronics", fresh(0.80), 30.0, range(1), [])
  total = bench.record_pair(out, "A", "books", "dvd", fresh(0.71), 6.0, range(1), [])
  block = json.loads((tmp_path / "results.json").read_text())["A"]
  assert sorted(block["pairs"]) == ["B→D", "K→E"]
  assert block["pairs"]["B→D"]["arms"]["source_only"]["target_accuracy"]["mean"] == 0.71
  assert block["cpu_seconds"] == {"B→D": 66.0, "K→E": 30.0} and total == 66.0
  assert "| K→E | 80.0 |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_smoke_run_of_one_pair_resumes(tmp_path):
  """``--pairs books:dvd --seeds 1`` with a tiny model; the second call trains nothing."""
  from xferlab.data import catalog
  if not catalog.data_root().is_dir():
    pytest.skip("real corpora not found")
  args = ["--pairs", "books:dvd", "--seeds", "1", "--arms", "source_only,dann,in_domain,vectors",
          "--out", str(tmp_path), "--vectors", str(tmp_path / "vectors"),
          "--distance-texts", "60"] + [
              a for item in TINY for a in ("--set", item)]
  assert bench.main(args) == 0
  results = json.loads((tmp_path / "results.json").read_text())["A"]["pairs"]["B→D"]
  assert set(results["arms"]) == {"source_only", "dann", "in_domain", "vectors"}
  coverage = json.loads((tmp_path / "A/books_dvd/vectors/seed_0/word_vectors.json").read_text())
  assert coverage["vocab"] > 0.5                 # 8-d vectors made here, on the reviews' words
  assert 0 <= results["arms"]["dann"]["proxy_a_distance"]["mean"] <= 2
  assert (tmp_path / "A" / "books_dvd" / "features.png").exists()
  stamp = os.path.getmtime(tmp_path / "A" / "books_dvd" / "dann" / "seed_0" / "results.json")
  assert bench.main(args) == 0
  assert os.path.getmtime(tmp_path / "A" / "books_dvd" / "dann" / "seed_0" / "results.json") == stamp
  # Its record (no weights), copied into a fresh --out, resumes without training either.
  records.save(str(tmp_path), str(tmp_path / "record"))
  assert not list((tmp_path / "record").rglob("checkpoints"))
  again = tmp_path / "again"
  records.unpack(str(tmp_path / "record"), str(again))
  assert bench.main(args[:args.index("--out") + 1] + [str(again)]
                    + args[args.index("--out") + 2:]) == 0
  assert not list(again.rglob("checkpoints"))
  assert json.loads((again / "results.json").read_text())["A"]["pairs"]["B→D"]["arms"] == \
      results["arms"]


def test_a_one_seed_pass_of_new_arms_keeps_the_protocols_seeds(tmp_path):
  """``--seeds 3`` for some arms, then ``--seeds 1`` for others: the record keeps 0, 1, 2."""
  fresh = lambda arm: {"arms": {arm: {}}, "runs": {arm: []},
                       "tfidf_peer": {"target_accuracy": 0.78}}
  bench.record_pair(str(tmp_path), "A", "books", "dvd", fresh("dann"), 60.0, range(3), [])
  bench.record_pair(str(tmp_path), "A", "books", "dvd", fresh("lm"), 30.0, range(1), [])
  block = json.loads((tmp_path / "results.json").read_text())["A"]
  assert block["seeds"] == [0, 1, 2] and set(block["pairs"]["B→D"]["arms"]) == {"dann", "lm"}
  assert block["cpu_seconds"]["B→D"] == 90.0


def test_a_target_free_run_is_trained_once_and_evaluated_on_each_target(tmp_path, tiny_config):
  """A run that never reads its target (a vocabulary of its own, no target batches), evaluated
  on another target's test set, gives the numbers a run trained for that target gets; a run
  whose training differs is refused, leaving nothing behind."""
  from xferlab.config import apply_overrides
  from xferlab.launch import restore, run_config
  from xferlab.train import finished_results
  run_config(apply_overrides(tiny_config, {"train.num_steps": 2}), str(tmp_path / "vocab"))
  free = apply_overrides(tiny_config, {"transfer.method": "none", "transfer.lam": 0.0,
                                       "data.tokenizer_path": str(tmp_path / "vocab/tokenizer")})
  assert bench.target_free(free) and not bench.target_free(tiny_config)
  # Another target test set, the same source (the synthetic corpus draws the target last).
  other = apply_overrides(free, {"data.synthetic.num_target_test": 48})
  trained = run_config(free, str(tmp_path / "trained"))
  separately = run_config(other, str(tmp_path / "separately"))
  shared = bench.share_target_free_run(str(tmp_path / "trained"), other, str(tmp_path / "shared"))
  assert (trained["target_count"], shared["target_count"]) == (32, 48)
  for key in separately:
    if key.startswith(("target_", "source_val_")):
      assert shared[key] == pytest.approx(separately[key], abs=1e-6), key
  assert shared["train_seconds"] == 0 and shared["trained_in"] == "../trained"
  assert os.path.islink(tmp_path / "shared" / "best")
  assert finished_results(other, str(tmp_path / "shared")) == shared     # resumes as finished
  assert restore(str(tmp_path / "shared")).predict(["a sturdy kettle"]).shape == (1,)
  fewer = apply_overrides(free, {"data.synthetic.num_source_val": 40})
  with pytest.raises(RuntimeError, match="source validation"):
    bench.share_target_free_run(str(tmp_path / "trained"), fewer, str(tmp_path / "refused"))
  assert not (tmp_path / "refused").exists()


def test_the_lm_arm_finds_its_sources_run_trained_for_another_target(tmp_path):
  """Only lm and lm_ema are target-free; the sibling is the same seed and config of another
  target."""
  from xferlab.config import apply_overrides, to_json
  out = str(tmp_path)
  config = lambda source, target, arm="lm", seed=1: bench.arm_config("A", source, target, arm,
                                                                    seed, [])
  assert bench.target_free(config("books", "dvd"))
  assert bench.target_free(config("books", "dvd", "lm_ema"))
  assert not any(bench.target_free(config("books", "dvd", arm))
                 for arm in bench.trained_arms(bench.ARMS) if arm not in ("lm", "lm_ema"))
  find = lambda source, target, seed=1, c=None: bench.trained_sibling(
      out, "A", source, target, "lm", seed, c or config(source, target, seed=seed))
  assert find("books", "electronics") is None
  trained = bench.run_dir(out, "A", "books", "dvd", "lm", 1)
  os.makedirs(os.path.join(trained, "best"))
  (tmp_path / "A/books_dvd/lm/seed_1/config.json").write_text(to_json(config("books", "dvd")))
  assert find("books", "electronics") is None                          # not finished yet
  (tmp_path / "A/books_dvd/lm/seed_1/results.json").write_text("{}")
  assert find("books", "electronics") == find("books", "kitchen") == trained
  assert find("books", "dvd") is None and find("dvd", "electronics") is None
  assert find("books", "electronics", seed=2) is None
  changed = apply_overrides(config("books", "electronics"), ["train.num_epochs=3"])
  assert find("books", "electronics", c=changed) is None


def test_glove_arms_are_the_vector_recipes_on_glove_in_a_50d_embedding():
  """glove / glove_ema differ from source_only only in the frozen GloVe embedding (50-d), the
  vector arms' 12 epochs, and (glove_ema) the weight averaging."""
  from xferlab.transfer.feature_based import GLOVE_6B_50D
  scratch = flatten(bench.arm_config("A", "books", "dvd", "source_only", 1, []))
  for arm in ("glove", "glove_ema"):
    glove = flatten(bench.arm_config("A", "books", "dvd", arm, 1, []))
    expected = {"model.pretrained_vectors", "model.embed_dim", "finetune.frozen",
                "train.num_epochs"} | ({"train.ema_decay"} if arm == "glove_ema" else set())
    assert {k for k in scratch if scratch[k] != glove[k]} == expected
    assert glove["model.pretrained_vectors"].endswith(GLOVE_6B_50D)
    assert glove["model.embed_dim"] == 50 and glove["train.num_epochs"] == 12
  assert ("glove_ema", "glove") in bench.TWINS and "glove" in bench.DISTANCE_ARMS


def test_missing_glove_vectors_name_the_corpus_folder(tmp_path, monkeypatch):
  monkeypatch.setenv("XFERLAB_DATA", str(tmp_path))
  with pytest.raises(ConfigError, match="glove_6b_50d"):
    bench.check_prerequisites("A", ["glove"], ("books", "dvd"), [])


def test_multi_source_pairs_train_on_the_other_three_domains():
  from xferlab.data.domains import corpora
  pairs = bench.all_pairs("multi")
  assert pairs[-1] == ("books+dvd+electronics", "kitchen") and len(pairs) == 4
  assert [bench.pair_name(*p) for p in pairs][0] == "D+E+K→B"
  assert bench.parse_pairs("books+dvd+electronics:kitchen", "multi") == [pairs[-1]]
  config = bench.arm_config("multi", *pairs[-1], "source_only", 0, [])
  single = bench.arm_config("A", "books", "kitchen", "source_only", 0, [])
  assert {k for k, v in flatten(config).items() if flatten(single)[k] != v} == {"data.source",
                                                                               "name"}
  assert corpora(config.data)[-3:] == [f"amazon_multi_domain/{d}"
                                      for d in ("books", "dvd", "electronics")]
  assert bench.run_dir("o", "multi", *pairs[-1], "dann", 0).endswith(
      os.path.join("multi", "books+dvd+electronics_kitchen", "dann", "seed_0"))
  config.data.source = "books+kitchen"
  with pytest.raises(ValueError, match="exclude the target"):
    corpora(config.data)


def test_the_multi_source_table_compares_with_the_best_single_source():
  stat = lambda m: {"target_accuracy": {"mean": m, "std": 0.0, "values": [m, m]}}
  single = {"pairs": {f"{s}→K": {"source": s, "target": "kitchen", "arms": {"dann": stat(a)}}
                      for s, a in (("books", 0.80), ("dvd", 0.82), ("electronics", 0.88))}}
  multi = {"pairs": {"B+D+E→K": {"source": "books+dvd+electronics", "target": "kitchen",
                                 "arms": {"dann": stat(0.86)}}}}
  lines = bench.multi_source_lines(multi, single)
  assert lines[-1] == "| K | dann | 86.0 ± 0.0 | 88.0 | 80.0 | -2.0 |"


def test_movie_full_reads_all_imdb_training_reviews_for_two_epochs():
  from xferlab.data.domains import corpora
  pairs = bench.all_pairs("movie_full")
  assert pairs == [("imdb_full", d) for d in bench.DOMAINS]
  assert bench.pair_name(*pairs[0]) == "IMDB25k→B"
  config = bench.arm_config("movie_full", "imdb_full", "kitchen", "vectors_ema", 0, [])
  assert config.data.name == "movie" and config.data.source == "imdb_full"
  assert config.train.num_epochs == 2 and "imdb_full" in corpora(config.data)
  small = bench.arm_config("movie", "imdb_2k", "kitchen", "vectors_ema", 0, [])
  assert small.train.num_epochs == 6
  lm = lambda protocol, source: bench.arm_config(protocol, source, "kitchen", "lm_ema", 0, [])
  assert lm("movie_full", "imdb_full").train.num_epochs == 2          # 1,400 steps, as the rest
  assert lm("movie", "imdb_2k").train.num_epochs == lm("A", "books").train.num_epochs == 8

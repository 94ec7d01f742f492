"""Prepares every real corpus and checks it against the numbers its SOURCE.md documents.

About a minute on two cores; part of the default suite, so CI checks the real
corpora wherever they are present.
Needs the real data root (``$XFERLAB_DATA``, else the checkout's sibling
``../shared/data``) and skips when it is absent.
"""

from __future__ import annotations

import collections
import gzip
import json

import pytest
import tensorflow_datasets as tfds

from xferlab.data import catalog
from xferlab.data.corpora import BUILDERS, files

ROOT = catalog.data_root()

pytestmark = [
    pytest.mark.skipif(not ROOT.is_dir(), reason=(
        f"real corpora not found at {ROOT}: set XFERLAB_DATA to the folder with one sub-folder "
        "per corpus (like ../shared/data) to run these tests")),
]

AMAZON = ("books", "dvd", "electronics", "kitchen")
MULTI30K_TESTS = {"test_2016_flickr": 1000, "test_2017_flickr": 1000, "test_2017_mscoco": 461,
                  "test_2018_flickr": 1071}

# Example counts per corpus, config and split, as given in each SOURCE.md.
EXPECTED = {
    "amazon_multi_domain": {d: {"train": 2000} for d in AMAZON},
    # amazon_hatn SOURCE.md, column "neither" (not dup, not in_blitzer_labeled), pos + neg.
    "amazon_unlabeled": {"books": {"train": 2968 + 2732}, "dvd": {"train": 2904 + 2487},
                         "electronics": {"train": 2888 + 2679}, "kitchen": {"train": 2944 + 2824}},
    "amazon_hatn": {d: {"train": 6000} for d in AMAZON},
    "imdb_2k": {"default": {"train": 2000}},
    "rt_polarity": {"default": {"train": 10662}},
    "sst2": {"kim": {"train": 6920, "validation": 872, "test": 1821},
             "glue": {"train": 67349, "validation": 872}},
    "multi30k": {
        "en-de": {"train": 29000, "validation": 1014, **MULTI30K_TESTS},
        "en-fr": {"train": 29000, "validation": 1014, **MULTI30K_TESTS},
        "en-cs": {"train": 29000, "validation": 1014, "test_2016_flickr": 1000,
                  "test_2018_flickr": 1071},
    },
    "bbc_news_summary": {"default": {"train": 1693, "validation": 204, "test": 195}},
    "scitldr": {"default": {"train": 1992, "validation": 619, "test": 618}},
    "ptb": {"default": {"train": 42068, "validation": 3370, "test": 3761}},
    "wiki_en": {"default": {"train": 8899, "validation": 229, "test": 205}},
}

# Corpora that take over ~20 s to prepare: only the slow tests at the end prepare them
# (pytest -m slow tests/data/test_real_corpora.py).
MULTI30K_TASK2 = {"train": 5 * 29000, "validation": 5 * 1014, "test_2016": 5 * 1000}
SLOW_EXPECTED = {
    "imdb_full": {"default": {"train": 25000, "test": 25000, "unsup": 50000}},
    "multi30k_task2": {"de": MULTI30K_TASK2, "en": MULTI30K_TASK2},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def counts(data_dir):
  tfds.disable_progress_bar()
  names = [n for n in catalog.corpus_names() if n not in SLOW_EXPECTED]
  return catalog.prepare(names, manual_dir=ROOT, data_dir=data_dir)


def load(name, split, data_dir):
  return list(catalog.load(name, split, manual_dir=ROOT, data_dir=data_dir))


def derived(path):
  with gzip.open(ROOT / path) as f:
    return [json.loads(line) for line in f]


def sorted_pairs(records):
  return sorted((r["text"], r["label"]) for r in records)


def test_counts_match_every_source_md(counts):
  assert counts == EXPECTED


def test_manual_files_match_their_documented_checksums():
  checked = 0
  for name, cls in BUILDERS.items():
    for config in cls.BUILDER_CONFIGS or [None]:
      builder = catalog.builder(name, config=config and config.name, manual_dir=ROOT,
                                data_dir="/nonexistent")
      for f in builder._source_files().values():  # pylint: disable=protected-access
        if f.md5 or f.git_blob:
          path = catalog.manual_dir_for(name, ROOT) / f.path
          assert files.checksum_matches(files.read_bytes(path), f), path
          checked += 1
  assert checked > 50


@pytest.mark.parametrize("domain", AMAZON)
def test_amazon_raw_parse_equals_the_derived_jsonl(counts, data_dir, domain):
  del counts
  records = {r["id"]: r for r in load(f"amazon_multi_domain/{domain}", "train", data_dir)}
  assert len(records) == 2000
  for polarity in ("positive", "negative"):
    rows = derived(f"amazon_multi_domain/{domain}/{polarity}.jsonl.gz")
    for row in rows:
      r = records[row["id"]]
      assert (r["title"], r["body"], r["label"], r["rating"], r["duplicate"]) == (
          row["title"], row["text"], row["label"], row["rating"], row["dup"])
  dups = collections.Counter((r["label"], r["duplicate"]) for r in records.values())
  expected = {"books": (7, 37), "dvd": (5, 41), "electronics": (13, 21), "kitchen": (4, 18)}[domain]
  assert (dups[(1, True)], dups[(0, True)]) == expected
  assert dups[(1, False)] + dups[(1, True)] == 1000


@pytest.mark.parametrize("domain", AMAZON)
def test_amazon_hatn_flags_match_source_md(counts, data_dir, domain):
  del counts
  records = load(f"amazon_hatn/{domain}", "train", data_dir)
  flags = {label: (sum(r["duplicate"] for r in records if r["label"] == label),
                   sum(r["in_blitzer_labeled"] for r in records if r["label"] == label))
           for label in (1, 0)}
  expected = {"books": {1: (16, 16), 0: (139, 153)}, "dvd": {1: (48, 50), 0: (235, 336)},
              "electronics": {1: (75, 44), 0: (217, 150)}, "kitchen": {1: (44, 12), 0: (132, 57)}}
  assert flags == expected[domain]
  unlabeled = load(f"amazon_unlabeled/{domain}", "train", data_dir)
  kept = {r["text"] for r in records if not r["duplicate"] and not r["in_blitzer_labeled"]}
  assert {r["text"] for r in unlabeled} == kept and set(unlabeled[0]) == {"text", "domain"}


def test_movie_sentiment_sets_match_their_derived_jsonl(counts, data_dir):
  del counts
  rt = load("rt_polarity", "train", data_dir)
  rt_derived = derived("rt_polarity/positive.jsonl.gz") + derived("rt_polarity/negative.jsonl.gz")
  assert sorted_pairs(rt) == sorted_pairs(rt_derived)
  assert not any("\x85" in r["text"] or r["text"] != r["text"].strip() for r in rt)
  assert any("\u2026" in r["text"] for r in rt)  # byte 0x85 of cp1252
  first = [r["label"] for r in rt[:50]]
  assert first != sorted(first)  # not grouped by label

  imdb = load("imdb_2k", "train", data_dir)
  rows = derived("imdb_2k/positive.jsonl.gz") + derived("imdb_2k/negative.jsonl.gz")
  by_row = {r["row"]: (r["text"], r["label"]) for r in rows}
  assert all((r["text"], r["label"]) == by_row[r["row"]] for r in imdb)
  assert sum(r["duplicate"] for r in imdb) == 1 and not any("<br />" in r["text"] for r in imdb)

  for config, split, file, labels in [("kim", "train", "kim_train", (3310, 3610)),
                                      ("kim", "validation", "kim_dev", (428, 444)),
                                      ("kim", "test", "kim_test", (912, 909)),
                                      ("glue", "train", "glue_train", (29780, 37569)),
                                      ("glue", "validation", "glue_dev", (428, 444))]:
    sst = load(f"sst2/{config}", split, data_dir)
    rows = derived(f"sst2/{file}.jsonl.gz")
    assert sst == [{"text": r["text"], "label": r["label"]} for r in rows]
    per_label = collections.Counter(r["label"] for r in sst)
    assert (per_label[0], per_label[1]) == labels


def test_multi30k_word_counts_match_source_md(counts, data_dir):
  del counts
  words = {"en": 345020, "de": 322383, "fr": 362021, "cs": 262313}
  for target in ("de", "fr", "cs"):
    train = load(f"multi30k/en-{target}", "train", data_dir)
    assert sum(len(r["source"].split()) for r in train) == words["en"]
    assert sum(len(r["target"].split()) for r in train) == words[target]
    assert all(r["target"] == r["target"].strip() and r["target"] for r in train)
  val = load("multi30k/en-de", "validation", data_dir)
  assert sum(len(r["target"].split()) for r in val) == 11568
  cs_2018 = load("multi30k/en-cs", "test_2018_flickr", data_dir)
  assert sum(len(r["target"].split()) for r in cs_2018) == 10263
  assert all(r["target_tok"] == r["target_tok"].lower() for r in cs_2018)


def test_scitldr_keeps_every_reference(counts, data_dir):
  del counts
  totals = {"train": (1992, 14283), "validation": (1453, 4489), "test": (1967, 4859)}
  for split, (references, sentences) in totals.items():
    records = load("scitldr", split, data_dir)
    assert sum(len(r["references"]) for r in records) == references
    assert sum(len(r["document_sentences"]) for r in records) == sentences
    assert all(len(r["source_labels"]) == len(r["document_sentences"]) for r in records)
    assert all(r["summary"] == r["references"][0] for r in records)
    assert all(t == t.strip() and t for r in records for t in r["references"])
  assert {len(r["references"]) for r in load("scitldr", "test", data_dir)} <= {2, 3, 4}


def test_bbc_categories_and_spaced_summaries(counts, data_dir):
  del counts
  expected = {"train": [412, 299, 305, 399, 278], "validation": [54, 33, 43, 43, 31],
              "test": [34, 34, 47, 52, 28]}
  categories = ["business", "entertainment", "politics", "sport", "tech"]
  for split, numbers in expected.items():
    records = load("bbc_news_summary", split, data_dir)
    per_category = collections.Counter(r["category"] for r in records)
    assert [per_category[c] for c in categories] == numbers
    assert all(r["summary"] and r["references"] == [r["summary"]] for r in records)
  everything = [r for split in expected for r in load("bbc_news_summary", split, data_dir)]
  assert sum(not r["summary_sentences"] for r in everything) == 7
  assert "$10.9bn. For" in next(r["summary"] for r in everything if r["id"] == "business/001")


def test_ptb_token_counts_match_source_md(counts, data_dir):
  del counts
  for split, tokens in {"train": 887521, "validation": 70390, "test": 78669}.items():
    records = load("ptb", split, data_dir)
    assert sum(len(r["text"].split(" ")) for r in records) == tokens  # single spaces, stripped
  vocabulary = {w for r in load("ptb", "train", data_dir) for w in r["text"].split()}
  assert len(vocabulary) == 9999 and "<unk>" in vocabulary


def test_amazon_protocol_a_splits(data_dir, monkeypatch):
  """Protocol A as the sentiment experiments read it: 1,600 / 400 source, 2,000 target test,
  unlabeled target text without any labeled benchmark review; few-label subsets balanced."""
  import numpy as np
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.defaults import base_config
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(data_dir))
  config = base_config().data
  config.name, config.source, config.target, config.manual_dir = "amazon", "books", "dvd", str(ROOT)
  corpus = load_domain_adaptation(config)
  assert len(corpus["source_train"][0]) == 1600 and len(corpus["source_val"][0]) == 400
  assert len(corpus["target_test"][0]) == 2000
  assert len(corpus["target_unlabeled"]) == EXPECTED["amazon_unlabeled"]["dvd"]["train"]
  assert not set(corpus["target_unlabeled"]) & set(corpus["target_test"][0])
  # Train and validation are disjoint rows; a text in both is one the corpus holds twice.
  everything = collections.Counter(corpus["source_train"][0] + corpus["source_val"][0])
  shared = set(corpus["source_train"][0]) & set(corpus["source_val"][0])
  assert all(everything[text] >= 2 for text in shared) and len(shared) < 20
  config.target, config.subset_size = "books", 100
  small = load_domain_adaptation(config, seed=1)
  other = load_domain_adaptation(config, seed=2)
  assert len(small["source_train"][0]) == 100 and np.sum(small["source_train"][1]) == 50
  assert set(small["source_train"][0]) <= set(corpus["source_train"][0])
  assert set(small["source_train"][0]) != set(other["source_train"][0])     # per seed
  assert small["target_test"][0] == corpus["source_val"][0]                 # in-domain test


def _domain_config(name, source, target):
  from xferlab.defaults import base_config
  config = base_config().data
  config.name, config.source, config.target, config.manual_dir = name, source, target, str(ROOT)
  return config


def test_amazon_hatn_protocol_b_splits(data_dir, monkeypatch):
  """Protocol B: class-balanced distinct source rows for training (2,800 per class at most,
  200 per class at least left for validation), all 6,000 target reviews for test."""
  import numpy as np
  from xferlab.data.domains import load_domain_adaptation
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(data_dir))
  corpus = load_domain_adaptation(_domain_config("amazon_hatn", "dvd", "books"))
  train_texts, train_labels = corpus["source_train"]
  val_texts, val_labels = corpus["source_val"]
  assert len(train_texts) == 2 * 2565 and np.sum(train_labels) == 2565      # dvd negatives: 2,765
  assert len(train_texts) + len(val_texts) == 6000 - 48 - 235               # distinct rows
  assert np.sum(val_labels == 0) == 200 and not set(train_texts) & set(val_texts)
  assert len(corpus["target_test"][0]) == 6000 and np.sum(corpus["target_test"][1]) == 3000
  assert len(corpus["target_unlabeled"]) == EXPECTED["amazon_unlabeled"]["books"]["train"]
  again = load_domain_adaptation(_domain_config("amazon_hatn", "dvd", "books"), seed=5)
  assert again["source_train"][0] == train_texts                            # fixed, not per seed
  config = _domain_config("amazon_hatn", "dvd", "books")
  config.in_domain = True
  inside = load_domain_adaptation(config)
  hatn = {_norm(t) for t in corpus["target_test"][0]}
  texts = inside["source_train"][0] + inside["source_val"][0]
  assert 1700 < len(texts) < 1900 and not {_norm(t) for t in texts} & hatn


def _norm(text):
  import re
  return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.mark.parametrize("source, size", [("imdb_2k", 1999), ("rt_polarity", None)])
def test_movie_to_product_splits(data_dir, monkeypatch, source, size):
  """Movie source split 90/10 (repeats dropped); target test = the Amazon domain's 2,000."""
  from xferlab.data.domains import load_domain_adaptation
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(data_dir))
  corpus = load_domain_adaptation(_domain_config("movie", source, "kitchen"))
  train, val = corpus["source_train"][0], corpus["source_val"][0]
  total = len(train) + len(val)
  assert total == size if size else 10500 < total <= 10662
  assert len(val) == round(0.1 * total) and not set(train) & set(val)
  assert len(corpus["target_test"][0]) == 2000
  assert len(corpus["target_unlabeled"]) == EXPECTED["amazon_unlabeled"]["kitchen"]["train"]


def test_in_domain_upper_bound_never_sees_the_test_reviews(data_dir, monkeypatch):
  """data.in_domain (protocol A): the target's HATN reviews that are not Blitzer-labeled."""
  from xferlab.data.domains import load_domain_adaptation
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(data_dir))
  config = _domain_config("amazon", "books", "dvd")
  config.in_domain = True
  corpus = load_domain_adaptation(config)
  texts = corpus["source_train"][0] + corpus["source_val"][0]
  unlabeled = EXPECTED["amazon_unlabeled"]["dvd"]["train"]
  assert unlabeled - 20 < len(texts) <= unlabeled        # minus a few the flag misses
  assert len(corpus["source_val"][0]) == round(0.1 * len(texts))
  test = {_norm(t) for t in corpus["target_test"][0]}
  assert len(corpus["target_test"][0]) == 2000 and not {_norm(t) for t in texts} & test


def test_wiki_en_word_counts_ids_and_order_match_source_md(counts, data_dir):
  del counts
  words = {"train": 21845928, "validation": 595914, "test": 478139}
  ids = {}
  for split, total in words.items():
    records = load("wiki_en", split, data_dir)
    assert sum(len(r["text"].split()) for r in records) == total
    assert all(r["title"] and r["text"] for r in records)
    ids[split] = [r["id"] for r in records]
  assert sum(map(len, ids.values())) == len(set().union(*ids.values()))   # disjoint, unique
  assert ids["train"] != sorted(ids["train"])                             # seeded article order
  assert ids["train"][:3] == [21288, 43001, 30906]    # the order must not change between runs


def test_imdb_full_builder_order_mixes_labels_from_the_first_rows():
  """Fast: the builder's reader and seeded order on the real files, without preparing."""
  from xferlab.data.corpora import imdb_full, text
  path = ROOT / "imdb_full" / "train.jsonl.gz"
  rows = imdb_full.read_rows(path, labeled=True)  # pylint: disable=protected-access
  assert len(rows) == 25000 and [r["label"] for r in rows[:3]] == [1, 1, 1]    # sorted by label
  order = text.seeded_order(len(rows), imdb_full.ImdbFull.SHUFFLE_SEED)
  first = [rows[i]["label"] for i in order[:200]]
  assert 70 < sum(first) < 130
  assert [(rows[i]["label"], rows[i]["id"]) for i in order[:3]] == [(0, 9772), (0, 7982), (0, 8099)]


@pytest.fixture(scope="module")
def slow_counts(data_dir):
  tfds.disable_progress_bar()
  return catalog.prepare(list(SLOW_EXPECTED), manual_dir=ROOT, data_dir=data_dir)


@pytest.mark.slow
def test_slow_corpora_counts_match_their_source_md(slow_counts):
  assert slow_counts == SLOW_EXPECTED


@pytest.mark.slow
def test_imdb_full_words_labels_ratings_and_flags(slow_counts, data_dir):
  del slow_counts
  # SOURCE.md's whitespace words; test's tags count as words there ("<br", "/>"), so check
  # the file itself, then what the builder keeps after turning them into newlines.
  assert sum(len(r["text"].split()) for r in derived("imdb_full/test.jsonl.gz")) == 5713167
  words = {"train": 5742489, "test": 5656265, "unsup": 11515319}
  flags = {"train": (99, 123), "test": (202, 0), "unsup": (497, 268)}   # (duplicate, in_test)
  for split, total in words.items():
    records = load("imdb_full", split, data_dir)
    assert sum(len(r["text"].split()) for r in records) == total
    assert not any("<br />" in r["text"] or r["text"] != r["text"].strip() for r in records)
    flagged = (sum(r["duplicate"] for r in records), sum(r["in_test"] for r in records))
    assert flagged == flags[split]
    exact = [r["text"] for r in records]
    assert len(exact) - len(set(exact)) == {"train": 97, "test": 199, "unsup": 493}[split]
    labels = collections.Counter(r["label"] for r in records)
    if split == "unsup":
      assert labels == {-1: 50000} and {r["rating"] for r in records} == {0}
      continue
    assert labels == {0: 12500, 1: 12500}
    assert 35 < sum(r["label"] for r in records[:100]) < 65                # shuffled, label-mixed
    assert all(r["label"] == (r["rating"] >= 7) for r in records)
  ratings = collections.Counter(r["rating"] for r in load("imdb_full", "test", data_dir))
  assert ratings == {1: 5022, 2: 2302, 3: 2541, 4: 2635, 7: 2307, 8: 2850, 9: 2344, 10: 4999}
  assert sum("<br />" in r["text"] for r in derived("imdb_full/test.jsonl.gz")) == 14535
  # 130 of them have their tags only at the start or end, which stripping removes.
  assert sum("\n" in r["text"] for r in load("imdb_full", "test", data_dir)) == 14405


@pytest.mark.slow
def test_multi30k_task2_word_counts_per_caption_file(slow_counts, data_dir):
  del slow_counts
  # Train: SOURCE.md's table. Validation / test_2016: SOURCE.md gives the first and the
  # extreme file ("8,144 ... 9,562"); the rest measured on the files with zcat | wc -w.
  words = {
      "de": {"train": [239845, 256404, 273527, 298057, 323178],
             "validation": [8144, 8867, 8603, 9562, 9494],
             "test_2016": [7531, 8647, 9569, 10408, 10617]},
      "en": {"train": [521356, 404067, 338213, 284863, 229698],
             "validation": [18551, 14222, 11969, 10193, 8192],
             "test_2016": [18136, 14009, 11773, 9852, 7917]},
  }
  for lang, per_split in words.items():
    for split, expected in per_split.items():
      records = load(f"multi30k_task2/{lang}", split, data_dir)
      counted = [0] * 5
      for r in records:
        counted[r["caption"] - 1] += len(r["text"].split())
      assert counted == expected, (lang, split)
      assert [(r["image"], r["caption"]) for r in records[:6]] == [
          (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 1)]
      assert len({r["image_file"] for r in records}) == len(records) // 5
  test_images = {r["image_file"] for r in load("multi30k_task2/en", "test", data_dir)}
  assert len(test_images) == 1000 and all(f.endswith(".jpg") for f in test_images)

"""``imdb_full``, ``wiki_en`` and ``multi30k_task2`` on tiny fixture files written here.

Like ``test_corpora.py``, these never read ../shared/data: each test writes the
files a builder needs under ``tmp_path/data/<corpus>/`` (same names and formats
as the real manual folders, with their quirks planted) and prepares into its
own ``tmp_path/tfds``. The real corpora are checked in ``test_real_corpora.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from xferlab.data import catalog
from xferlab.data.corpora import BUILDERS, CorruptFileError, ManualDataError, text
from xferlab.data.corpora.imdb_full import ImdbFull
from xferlab.data.corpora.wiki_en import WikiEn

tfds.disable_progress_bar()


def write(path: Path, content: str) -> Path:
  data = content.encode("utf-8")
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
  return path


def jsonl(records) -> str:
  return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


@pytest.fixture
def root(tmp_path) -> Path:
  return tmp_path / "data"


@pytest.fixture
def data_dir(tmp_path) -> Path:
  return tmp_path / "tfds"


def load(name, split, root, data_dir):
  return list(catalog.load(name, split, manual_dir=root, data_dir=data_dir))


# ---------------------------------------------------------------- imdb_full

PER_CLASS = 10


def make_imdb_full(root: Path) -> None:
  """Files sorted positive first, then by id, like the real ones."""
  def split_rows(split):
    rows = []
    for label, ratings in ((1, (7, 8, 9, 10)), (0, (1, 2, 3, 4))):
      for i in range(PER_CLASS):
        rows.append({"id": i, "rating": ratings[i % 4], "label": label,
                     "text": f"{split} {'good' if label else 'bad'} review {i}"})
    return rows
  train, test = split_rows("train"), split_rows("test")
  train[0]["text"] = "  Great film.<br /><br />Would watch again.<br />  "
  train[1]["text"] = "Great film.<br /><br />Would watch again."   # the same after the br rule
  test[5]["text"] = "Sad end.<br /><br />Then more."
  train[2]["text"] = "Sad end.Then more."    # a test review in train, its <br /> tags deleted
  unsup = [{"id": i, "text": f"unlabeled review {i}"} for i in range(6)]
  unsup[3]["text"] = test[12]["text"] + "<br />"                    # a test review in unsup
  for name, rows in (("train", train), ("test", test), ("unsup", unsup)):
    write(root / "imdb_full" / f"{name}.jsonl.gz", jsonl(rows))


def test_imdb_full_counts_br_and_unsup_rows(root, data_dir):
  make_imdb_full(root)
  counts = catalog.prepare(["imdb_full"], manual_dir=root, data_dir=data_dir)
  assert counts == {"imdb_full": {"default": {"train": 20, "test": 20, "unsup": 6}}}
  train = load("imdb_full", "train", root, data_dir)
  great = [r for r in train if r["text"].startswith("Great film.")]
  assert [r["text"] for r in great] == ["Great film.\n\nWould watch again."] * 2   # br, stripped
  assert sorted(r["duplicate"] for r in great) == [False, True]
  assert sum(r["duplicate"] for r in train) == 1
  assert [r["text"] for r in train if r["in_test"]] == ["Sad end.Then more."]
  assert all("<br />" not in r["text"] for r in train)
  assert {(r["label"], r["rating"] >= 7) for r in train} == {(0, False), (1, True)}
  assert set(train[0]) == {"text", "label", "rating", "id", "duplicate", "in_test"}
  unsup = load("imdb_full", "unsupervised", root, data_dir)     # alias of unsup
  assert {(r["label"], r["rating"]) for r in unsup} == {(-1, 0)}
  assert sorted(r["id"] for r in unsup) == list(range(6))
  assert [r["text"] for r in unsup if r["in_test"]] == ["test bad review 2"]
  test = load("imdb_full", "test", root, data_dir)
  assert not any(r["in_test"] or r["duplicate"] for r in test)
  assert "Sad end.\n\nThen more." in {r["text"] for r in test}
  assert sum(r["label"] for r in test) == PER_CLASS


def order(records):
  return [(r["label"], r["id"]) for r in records]


def test_imdb_full_rows_are_shuffled_by_a_fixed_seed(root, tmp_path, monkeypatch):
  make_imdb_full(root)
  first = load("imdb_full", "train", root, tmp_path / "a")
  again = load("imdb_full", "train", root, tmp_path / "b")
  assert order(first) == order(again)                                  # same seed, same order
  file_order = [(1, i) for i in range(PER_CLASS)] + [(0, i) for i in range(PER_CLASS)]
  assert order(first) == [file_order[i] for i in text.seeded_order(20, ImdbFull.SHUFFLE_SEED)]
  assert {label for label, _ in order(first)[:6]} == {0, 1}            # a prefix is label-mixed
  test = order(load("imdb_full", "test", root, tmp_path / "a"))
  assert {label for label, _ in test[:6]} == {0, 1}
  monkeypatch.setattr(ImdbFull, "SHUFFLE_SEED", ImdbFull.SHUFFLE_SEED + 1)
  other = load("imdb_full", "train", root, tmp_path / "c")
  assert order(other) != order(first) and sorted(order(other)) == sorted(order(first))


def test_imdb_full_missing_file_names_the_folder_and_the_archive(root, data_dir):
  make_imdb_full(root)
  (root / "imdb_full" / "unsup.jsonl.gz").unlink()
  with pytest.raises(ManualDataError) as info:
    catalog.prepare(["imdb_full"], manual_dir=root, data_dir=data_dir)
  message = str(info.value)
  assert f"looked in {root / 'imdb_full'}" in message
  assert "Missing: unsup.jsonl.gz" in message and "aclImdb_v1.tar.gz" in message


def test_imdb_full_label_that_contradicts_the_rating_names_the_file(root, data_dir):
  make_imdb_full(root)
  write(root / "imdb_full" / "test.jsonl.gz",
        jsonl([{"id": 0, "rating": 2, "label": 1, "text": "x"}]))
  with pytest.raises(CorruptFileError, match=r"test\.jsonl\.gz, row 1: label 1 does not fit"):
    catalog.prepare(["imdb_full"], manual_dir=root, data_dir=data_dir)


# ---------------------------------------------------------------- wiki_en


def article(page_id: int, words: int) -> dict:
  body = " ".join(f"w{page_id}_{k}" for k in range(words - 1))
  return {"id": page_id, "title": f"Title {page_id}", "text": f"Heading.\n{body}"}


def make_wiki(root: Path) -> dict[str, list[dict]]:
  rows = {"train": [article(i, 10 + i) for i in range(12, 20)],
          "valid": [article(i, 5) for i in (3, 7)], "test": [article(40, 50)]}
  for name, records in rows.items():
    write(root / "wiki_en" / f"{name}.jsonl.gz", jsonl(records))
  return rows


def test_wiki_en_counts_words_and_seeded_article_order(root, tmp_path):
  rows = make_wiki(root)
  counts = catalog.prepare(["wiki_en"], manual_dir=root, data_dir=tmp_path / "a")
  assert counts == {"wiki_en": {"default": {"train": 8, "validation": 2, "test": 1}}}
  train = load("wiki_en", "train", root, tmp_path / "a")
  expected = [rows["train"][i] for i in text.seeded_order(8, WikiEn.SHUFFLE_SEED)]
  assert train == expected                                # text kept as released, "\n" and all
  assert [r["id"] for r in train] != sorted(r["id"] for r in train)   # shuffled, not id order
  assert sum(len(r["text"].split()) for r in train) == sum(10 + i for i in range(12, 20))
  assert train == load("wiki_en", "train", root, tmp_path / "b")      # same seed, same order
  assert sorted(r["id"] for r in load("wiki_en", "valid", root, tmp_path / "a")) == [3, 7]


def test_wiki_en_missing_file_names_the_folder(root, data_dir):
  make_wiki(root)
  (root / "wiki_en" / "valid.jsonl.gz").unlink()
  with pytest.raises(ManualDataError) as info:
    catalog.prepare(["wiki_en"], manual_dir=root, data_dir=data_dir)
  message = str(info.value)
  assert f"looked in {root / 'wiki_en'}" in message and "Missing: valid.jsonl.gz" in message
  assert "jason-feng/wikiVisual" in message


def test_wiki_en_record_without_text_names_the_file_and_line(root, data_dir):
  make_wiki(root)
  write(root / "wiki_en" / "test.jsonl.gz", jsonl([article(40, 5), {"id": 41, "title": "T"}]))
  with pytest.raises(CorruptFileError, match=r"test\.jsonl\.gz, line 2: no \['text'\]"):
    catalog.prepare(["wiki_en"], manual_dir=root, data_dir=data_dir)


# ---------------------------------------------------------------- multi30k_task2

TASK2_STEMS = ("train", "val", "test_2016")


def make_task2(root: Path, images: int = 3) -> None:
  folder = root / "multi30k_task2"
  for stem in TASK2_STEMS:
    write(folder / f"image_splits_{stem}_images.txt",
          "".join(f"{stem}{i}.jpg\n" for i in range(images)))
    for lang in ("de", "en"):
      for n in range(1, 6):
        # Caption 1 of image 0 ends with a space, as some released lines do.
        lines = "".join(f"{stem} {lang} image {i} caption {n}" + (" \n" if i + n == 1 else "\n")
                        for i in range(images))
        write(folder / f"{stem}.{n}.{lang}.gz", lines)


def test_multi30k_task2_configs_counts_order_and_aliases(root, data_dir):
  make_task2(root)
  counts = catalog.prepare(["multi30k_task2"], manual_dir=root, data_dir=data_dir)
  per_split = {"train": 15, "validation": 15, "test_2016": 15}
  assert counts == {"multi30k_task2": {"de": per_split, "en": per_split}}
  train = load("multi30k_task2/de", "train", root, data_dir)
  assert train[0] == {"text": "train de image 0 caption 1", "image": 0, "caption": 1,
                      "image_file": "train0.jpg"}                          # stripped
  assert [(r["image"], r["caption"]) for r in train] == [
      (i, n) for i in range(3) for n in range(1, 6)]                       # image by image
  assert all(r["text"] == f"train de image {r['image']} caption {r['caption']}" for r in train)
  assert load("multi30k_task2", "train", root, data_dir) == train        # de is the default
  for alias in ("test", "test_2016_flickr"):
    assert load("multi30k_task2/en", alias, root, data_dir)[7]["text"] == (
        "test_2016 en image 1 caption 3")
  assert load("multi30k_task2/en", "val", root, data_dir)[14]["image_file"] == "val2.jpg"


def test_multi30k_task2_misaligned_files_name_them(root, data_dir):
  make_task2(root)
  write(root / "multi30k_task2" / "val.4.en.gz", "only one line\n")
  with pytest.raises(CorruptFileError, match=r"val\.4\.en\.gz"):
    catalog.prepare(["multi30k_task2/en"], manual_dir=root, data_dir=data_dir)


def test_multi30k_task2_missing_file_names_the_folder_and_its_address(root, data_dir):
  make_task2(root)
  (root / "multi30k_task2" / "test_2016.3.de.gz").unlink()
  with pytest.raises(ManualDataError) as info:
    catalog.prepare(["multi30k_task2/de"], manual_dir=root, data_dir=data_dir)
  message = str(info.value)
  assert f"looked in {root / 'multi30k_task2'}" in message
  assert "Missing: test_2016.3.de.gz" in message
  assert "multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task2/raw/" in message
  assert "download=True" in message


# ---------------------------------------------------------------- registry


def test_new_corpora_are_registered_with_instructions_for_every_file():
  assert {"imdb_full", "wiki_en", "multi30k_task2"} <= set(catalog.corpus_names())
  assert catalog.configs("multi30k_task2") == ["de", "en"]
  for name in ("imdb_full", "wiki_en", "multi30k_task2"):
    cls = BUILDERS[name]
    for config in cls.BUILDER_CONFIGS or [None]:
      b = cls(data_dir="/nonexistent", **({"config": config.name} if config else {}))
      for f in b._source_files().values():  # pylint: disable=protected-access
        assert f"{name}/{f.path}" in cls.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_without_whitespace_matches_copies_that_lost_their_line_breaks():
  assert text.without_whitespace("end.\n\nNext  one") == text.without_whitespace("end.Next one")


def test_seeded_order_is_a_fixed_permutation():
  assert text.seeded_order(10, 0) == text.seeded_order(10, 0)
  assert sorted(text.seeded_order(10, 0)) == list(range(10))
  assert text.seeded_order(10, 0) != text.seeded_order(10, 1)
  assert text.seeded_order(0, 0) == []

"""``imdb_full``: the complete Large Movie Review Dataset (IMDb, Maas et al. 2011)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files, text

_REPO, _COMMIT = "arvindsankar/Group-labels-to-individual-labels", (
    "5e499e525d155c94d35c6e414aed62ef6efc7fb4")
ARCHIVE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# md5 of the decompressed files, measured on the ../shared/data copy (its SOURCE.md gives none);
# a file that differs is reported with a WARNING, as for every corpus.
_MD5 = {
    "train": "9ff420bae7a242d5e2b5c284787e720f",
    "test": "008fd3ec88eadc9aadb1aa30b5f09b41",
    "unsup": "4b81c31b48f40ce707f0f4f2366c54a7",
}
_FILES = {name: files.SourceFile(f"{name}.jsonl.gz", md5=md5) for name, md5 in _MD5.items()}
_ORIGIN = (f"Large Movie Review Dataset v1.0 (Maas et al. 2011), {ARCHIVE_URL}; the aclImdb/ tree "
           f"copied from github.com/{_REPO} @ {_COMMIT} and converted to JSON lines")
_HOW_TO_MAKE = f"""
The .jsonl.gz files are derived from the original archive {ARCHIVE_URL}
(folder aclImdb/): one JSON object per line, gzipped,
  train.jsonl.gz, test.jsonl.gz  {{"id", "rating", "label", "text"}} from
      {{train,test}}/{{pos,neg}}/<id>_<rating>.txt; label 1 = pos, 0 = neg;
  unsup.jsonl.gz                 {{"id", "text"}} from train/unsup/<id>_0.txt;
text = the file's UTF-8 content unchanged (with its <br /> tags); any row order."""


class ImdbFull(base.CorpusBuilder):
  """The IMDb sentiment benchmark: 25,000 train + 25,000 test labeled reviews, 50,000 unlabeled.

  Features:
    text: str, the review with each ``<br />`` turned into a newline, stripped.
      Only ``test`` still has the tags (14,535 reviews); in this copy of
      ``train`` and ``unsup`` they were removed with nothing in their place,
      so sentences there can be glued (``"1931).So I was"``, about 13,600
      train reviews). ``split_words`` separates them anyway; whitespace
      splitting does not (test: 5,713,167 whitespace words with the tags,
      5,656,265 after this rule; train and unsup as in SOURCE.md).
    label: int, 0 = negative (rating 1-4), 1 = positive (rating 7-10);
      -1 in ``unsup`` (no label).
    rating: int32, the star rating 1-10 of the original file name; 0 in ``unsup``.
    id: int32, the ``<id>`` of the original file name; unique only within one
      (split, label) folder, so (label, id) names a train / test review.
    duplicate: bool, the same text up to whitespace (``text.without_whitespace``)
      occurs earlier in this split, in the order written here (99 train, 202
      test, 497 unsup rows; exact copies: 97, 199, 493 as in SOURCE.md).
    in_test: bool, a ``test`` review has the same text up to whitespace (train
      and unsup rows only; always False in ``test``): 123 train, 268 unsup
      rows. Exact equality finds only 52 and 112, since the test copy of a
      review keeps its line breaks where the train / unsup copy lost them.
      Drop these rows to keep test reviews out of pretraining or training.

  Splits: ``train`` (25,000), ``test`` (25,000), ``unsup`` (50,000; alias
  ``unsupervised``). No validation split: take one from ``train``.

  Order: the files are sorted by label, then id. Each split is written in a
  fixed pseudo-random order, ``text.seeded_order(rows, SHUFFLE_SEED)`` over the
  file's rows (``random.Random(0).shuffle``), so any prefix of a split mixes
  both classes, and every preparation gives the same order.
  """

  name = "imdb_full"
  MANUAL_FOLDER = "imdb_full"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://ai.stanford.edu/~amaas/data/sentiment/"
  CITATION = "Maas et al. Learning Word Vectors for Sentiment Analysis. ACL 2011."
  SHUFFLE_SEED = 0
  SPLIT_ALIASES = {**base.COMMON_SPLIT_ALIASES, "unsupervised": "unsup"}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (files.instructions("imdb_full", _FILES.values(), _ORIGIN)
                                  + "\n" + _HOW_TO_MAKE)

  def _features(self):
    return tfds.features.FeaturesDict({
        "text": tfds.features.Text(),
        "label": base.sentiment_label(),
        "rating": tfds.features.Scalar(dtype=np.int32),
        "id": tfds.features.Scalar(dtype=np.int32),
        "duplicate": tfds.features.Scalar(dtype=np.bool_),
        "in_test": tfds.features.Scalar(dtype=np.bool_),
    })

  def _source_files(self):
    return _FILES

  def _splits(self, paths):
    test_keys = _TestKeys(paths["test"])
    return {split: self._generate_examples(paths[split], split, test_keys)
            for split in ("train", "test", "unsup")}

  def _generate_examples(self, path, split, test_keys: "_TestKeys"):
    rows = read_rows(path, labeled=split != "unsup")
    rows = [rows[i] for i in text.seeded_order(len(rows), self.SHUFFLE_SEED)]
    text.log_replacement_chars([r["text"] for r in rows], str(path))
    keys = [text.without_whitespace(r["text"]) for r in rows]
    in_test = [False] * len(rows) if split == "test" else [k in test_keys.get() for k in keys]
    for i, (row, dup, leak) in enumerate(zip(rows, text.duplicate_flags(keys), in_test)):
      yield i, {**row, "duplicate": dup, "in_test": leak}


class _TestKeys:
  """The test texts without whitespace (``text.without_whitespace``), read once when needed."""

  def __init__(self, path):
    self._path, self._texts = path, None

  def get(self) -> set[str]:
    if self._texts is None:
      self._texts = {text.without_whitespace(r["text"]) for r in read_rows(self._path, labeled=True)}
    return self._texts


def read_rows(path, labeled: bool) -> list[dict]:
  """The rows of one file as examples (without the flags), in file order."""
  required = ("id", "rating", "label", "text") if labeled else ("id", "text")
  rows = []
  for number, r in enumerate(files.read_jsonl(path, required), start=1):
    if labeled and (r["label"] not in (0, 1) or r["label"] != (r["rating"] >= 7)):
      raise files.CorruptFileError(
          f"{path}, row {number}: label {r['label']!r} does not fit rating {r['rating']!r} "
          "(1 = rating 7-10, 0 = rating 1-4).")
    rows.append({"text": text.br_to_newline(r["text"]).strip(), "id": int(r["id"]),
                 "label": r["label"] if labeled else -1,
                 "rating": int(r["rating"]) if labeled else 0})
  return rows

"""``wiki_en``: 22 M words of English Wikipedia (2015), article level, for LM pretraining."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files, text

_REPO, _COMMIT = "jason-feng/wikiVisual", "1c0fac92f29f17c1603bfffbe864e0dfdff66897"
# md5 of the decompressed files, measured on the ../shared/data copy (its SOURCE.md gives none).
_MD5 = {
    "train": "0909ef7bde77ccbc1b90187c680930a3",
    "valid": "f298659f00cb18c9f7a7ee4d3ecc22a7",
    "test": "8aafd3037392aa1b421fc5488536f851",
}
_FILES = {name: files.SourceFile(f"{name}.jsonl.gz", md5=md5) for name, md5 in _MD5.items()}
_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
_ORIGIN = (f"WikiExtractor output of a 2015 English Wikipedia dump, github.com/{_REPO} @ {_COMMIT} "
           "text/{AA,AB,AC,AD}/wiki_00..wiki_99 (deleted in later commits), split by page id")
_HOW_TO_MAKE = f"""
The .jsonl.gz files are derived from https://github.com/{_REPO}/tree/{_COMMIT}/text
(400 files of <doc id url title> blocks): for each article, h = int(sha1(page id as a
decimal string)) mod 1000; articles under 50 words dropped; h < 8 -> valid, 8 <= h < 16
-> test, 16 <= h < 356 -> train, the rest unused. The first line (the repeated title) is
removed. One JSON object per line {{"id": page id, "title", "text"}}, ascending page id."""


class WikiEn(base.FilePerSplitBuilder):
  """English Wikipedia articles (2015), a WikiText-103-like general-domain LM corpus.

  Features:
    id: int32, the Wikipedia page id.
    title: str, the article title.
    text: str, the article as released: paragraphs and section-heading lines
      (short lines ending in ".") separated by ``\\n``; not tokenized, not
      lowercased, no ``<unk>``. Whitespace words: 21,845,928 train.

  Splits: train (8,899 articles, 21,845,928 words), validation (229 / 595,914;
  the file ``valid``), test (205 / 478,139). Articles were assigned to splits
  by a hash of their page id.

  Order: each split is written in a fixed pseudo-random article order,
  ``text.seeded_order(articles, SHUFFLE_SEED)`` over the file's rows (which
  are by ascending page id), so any prefix of train is a random sample of
  articles; the text inside an article is never reordered. Concatenate the
  articles in this order for an LM stream.
  """

  name = "wiki_en"
  MANUAL_FOLDER = "wiki_en"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://dumps.wikimedia.org/"
  CITATION = ("Wikipedia (CC BY-SA 3.0 / GFDL); protocol after Merity et al. 2017, "
              "Pointer Sentinel Mixture Models (WikiText).")
  SHUFFLE_SEED = 0
  FILES, SPLITS = _FILES, _SPLITS
  MANUAL_DOWNLOAD_INSTRUCTIONS = (files.instructions("wiki_en", _FILES.values(), _ORIGIN)
                                  + "\n" + _HOW_TO_MAKE)

  def _features(self):
    return tfds.features.FeaturesDict({
        "id": tfds.features.Scalar(dtype=np.int32),
        "title": tfds.features.Text(),
        "text": tfds.features.Text(),
    })

  def _generate_examples(self, path):
    rows = files.read_jsonl(path, required=("id", "title", "text"))
    for i, j in enumerate(text.seeded_order(len(rows), self.SHUFFLE_SEED)):
      r = rows[j]
      yield i, {"id": int(r["id"]), "title": r["title"], "text": r["text"]}

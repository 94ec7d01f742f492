"""``imdb_2k``: 2,000 IMDB movie reviews (the movie domain of bert-AAD)."""

from __future__ import annotations

import csv
import io

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files, text

_REPO, _COMMIT = "bzantium/bert-AAD", "cbe2e0cac6564dfbc6234882a73ca78020ac0d22"
_FILES = {
    "csv": files.SourceFile("raw/imdb.csv.gz",
                            files.github_raw(_REPO, _COMMIT, "data/imdb/imdb.csv"),
                            git_blob="ec754293676b1304a3139b455254c85688c5b887"),
}
_ORIGIN = (f"A 2,000-review sample of the Large Movie Review Dataset (Maas et al. 2011), as "
           f"github.com/{_REPO} @ {_COMMIT} data/imdb/imdb.csv (Ryu & Lee 2020)")


class Imdb2k(base.CorpusBuilder):
  """1,000 positive + 1,000 negative IMDB reviews, document level.

  Features:
    text: str, the review with each ``<br />`` turned into a newline, stripped.
    label: int, 0 = negative, 1 = positive.
    row: int32, the 0-based data row of ``imdb.csv``.
    duplicate: bool, the same text occurred in an earlier row (1 review).

  Splits: ``train`` only (2,000), in the CSV's (already shuffled) row order.
  """

  name = "imdb_2k"
  MANUAL_FOLDER = "imdb_2k"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://ai.stanford.edu/~amaas/data/sentiment/"
  CITATION = ("Maas et al. Learning Word Vectors for Sentiment Analysis. ACL 2011. "
              "Ryu & Lee. Knowledge Distillation for BERT Unsupervised Domain Adaptation. 2020.")
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("imdb_2k", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        "text": tfds.features.Text(),
        "label": base.sentiment_label(),
        "row": tfds.features.Scalar(dtype=np.int32),
        "duplicate": tfds.features.Scalar(dtype=np.bool_),
    })

  def _source_files(self):
    return _FILES

  def _splits(self, paths):
    return {"train": self._generate_examples(paths["csv"])}

  def _generate_examples(self, path):
    reader = csv.reader(io.StringIO(files.read_text(path), newline=""))
    header = next(reader, None)
    if header != ["reviews", "labels"]:
      raise files.CorruptFileError(f"{path}: expected the header 'reviews,labels', got {header}.")
    rows = list(reader)
    texts = [text.br_to_newline(row[0]).strip() for row in rows]
    for i, (row, review, dup) in enumerate(zip(rows, texts, text.duplicate_flags(texts))):
      if len(row) != 2 or row[1] not in ("0", "1"):
        raise files.CorruptFileError(f"{path}, data row {i}: expected 'review,0|1', got {row[:2]}.")
      yield i, {"text": review, "label": int(row[1]), "row": i, "duplicate": dup}

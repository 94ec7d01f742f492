"""``bbc_news_summary``: BBC news article -> extractive summary (and title)."""

from __future__ import annotations

import logging

import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files, text

log = logging.getLogger(__name__)

_MD5 = {  # of the decompressed files (SOURCE.md)
    "train": "df88da0972bd935d17418e700ba2f77d",
    "val": "b5c649e55b1568c5f987ffee7ed353e8",
    "test": "0e23c222c0d22cead9aadf8f038f040d",
}
_SPLITS = {"train": "train", "validation": "val", "test": "test"}
_KEYS = ("id", "category", "title", "article", "summary")  # of every jsonl record
_FILES = {name: files.SourceFile(f"{name}.jsonl.gz", md5=md5) for name, md5 in _MD5.items()}
_ORIGIN = ("Kaggle 'BBC News Summary' (Pariza Sharif 2018; articles from Greene & Cunningham "
           "2006), "
           "via github.com/Miguel-G-Soares/PRI_proj1 @ 04750a1fb35aa0e2111e85416e8f54c088cf366a; "
           "deduplicated and split by md5(article) mod 10 in ../shared/data/bbc_news_summary "
           "(see its SOURCE.md). No public copy of that split exists: manual folder only.")


class BbcNewsSummary(base.FilePerSplitBuilder):
  """BBC News Summary: 2,092 de-duplicated articles with an extractive summary and a title.

  Features:
    id: str, ``<category>/<file number>`` of the Kaggle files.
    category: str, business / entertainment / politics / sport / tech.
    title: str, the headline (about 5 words; an abstractive target).
    document: str, the article, paragraphs separated by blank lines.
    summary: str, the reference summary with a space between its sentences.
      (The Kaggle summaries glue sentences together, "...$10.9bn.For the...";
      they are re-joined from ``summary_sentences``, or, for the 7 summaries
      that could not be cut into article sentences, spaced by a rule.)
    summary_sentences: list[str], the summary cut into article sentences;
      empty for those 7.
    references: list[str], ``[summary]`` (same shape as SciTLDR's).

  Splits: train (1,693), validation (204; the file ``val``), test (195).
  """

  name = "bbc_news_summary"
  MANUAL_FOLDER = "bbc_news_summary"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://www.kaggle.com/datasets/pariza/bbc-news-summary"
  CITATION = "Sharif 2018, BBC News Summary (Kaggle); Greene & Cunningham, ICML 2006."
  FILES, SPLITS = _FILES, _SPLITS
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("bbc_news_summary", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "category": tfds.features.Text(),
        "title": tfds.features.Text(),
        "document": tfds.features.Text(),
        "summary": tfds.features.Text(),
        "summary_sentences": base.text_list(),
        "references": base.text_list(),
    })

  def _generate_examples(self, path):
    respaced = 0
    for record in files.read_jsonl(path, required=_KEYS):
      sentences = [s.strip() for s in record.get("summary_sentences") or []]
      if sentences:
        summary = " ".join(sentences)
      else:
        summary = text.space_glued_sentences(record["summary"].strip())
        respaced += 1
      yield record["id"], {
          "id": record["id"],
          "category": record["category"],
          "title": record["title"].strip(),
          "document": record["article"].strip(),
          "summary": summary,
          "summary_sentences": sentences,
          "references": [summary],
      }
    if respaced:
      log.info("%s: %d summaries had no sentence split; spaced glued sentences by rule.",
               path, respaced)

"""``scitldr``: SciTLDR-A, paper abstract -> one-sentence TLDR (every reference kept)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_REPO, _COMMIT = "allenai/scitldr", "5ccad9c00a60ad75c9e04abf7f27d0f53f983b20"
_MD5 = {  # of the decompressed files (SOURCE.md)
    "train": "a73103de10a30941947972e707481a89",
    "dev": "4f4986b13431148fa303c65ad110a4af",
    "test": "fdb1e3a7b4afc69a2cee14b9e96fcdeb",
}
_SPLITS = {"train": "train", "validation": "dev", "test": "test"}
_KEYS = ("paper_id", "title", "source", "source_labels", "target")  # of every jsonl record
_FILES = {
    name: files.SourceFile(f"{name}.jsonl.gz",
                           files.github_raw(_REPO, _COMMIT, f"SciTLDR-Data/SciTLDR-A/{name}.jsonl"),
                           md5=md5)
    for name, md5 in _MD5.items()
}
_ORIGIN = (f"SciTLDR-A (Cachola et al., Findings of EMNLP 2020), github.com/{_REPO} @ {_COMMIT}, "
           "SciTLDR-Data/SciTLDR-A/{train,dev,test}.jsonl")


class Scitldr(base.FilePerSplitBuilder):
  """SciTLDR-A: abstract -> TLDR, with every reference of dev and test.

  Features:
    id: str, the OpenReview paper id.
    title: str, the paper title (an abstract -> title task is also possible).
    document: str, the abstract, its sentences joined by single spaces.
    document_sentences: list[str] of the abstract's sentences.
    source_labels: int32[num_sentences], 1 for the oracle extractive sentence(s).
    summary: str, the author-written TLDR (``target[0]``): the training target.
    references: list[str], every TLDR of the paper, author TLDR first, then
      the ones derived from peer reviews (dev: 1-4, test: 2-4, train: 1).
      Score multi-reference ROUGE against this list.
  All strings are stripped (some peer-review TLDRs end with a space).

  Splits: train (1,992), validation (619; the file ``dev``), test (618).
  """

  name = "scitldr"
  MANUAL_FOLDER = "scitldr"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://github.com/allenai/scitldr"
  CITATION = ("Cachola, Lo, Cohan, Weld. TLDR: Extreme Summarization of Scientific Documents. "
              "Findings of EMNLP 2020.")
  FILES, SPLITS = _FILES, _SPLITS
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("scitldr", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "title": tfds.features.Text(),
        "document": tfds.features.Text(),
        "document_sentences": base.text_list(),
        "source_labels": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        "summary": tfds.features.Text(),
        "references": base.text_list(),
    })

  def _generate_examples(self, path):
    for i, record in enumerate(files.read_jsonl(path, required=_KEYS)):
      sentences = [s.strip() for s in record["source"]]
      references = [t.strip() for t in record["target"]]
      labels = record["source_labels"]
      if len(labels) != len(sentences) or not references:
        raise files.CorruptFileError(
            f"{path}, record {i + 1} ({record.get('paper_id')}): {len(sentences)} sentences but "
            f"{len(labels)} source_labels, {len(references)} targets.")
      yield i, {
          "id": record["paper_id"],
          "title": record["title"].strip(),
          "document": " ".join(sentences),
          "document_sentences": sentences,
          "source_labels": np.asarray(labels, np.int32),
          "summary": references[0],
          "references": references,
      }

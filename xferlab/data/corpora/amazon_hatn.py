"""``amazon_hatn`` and ``amazon_unlabeled``: the HATN/AMN Amazon reviews (Li et al. 2017/2018).

Both read the derived ``<domain>/{positive,negative}.jsonl.gz`` files of the
manual folder ``amazon_hatn/``: their text already has its HTML entities
decoded, and they carry the ``dup`` and ``in_blitzer_labeled`` flags that
``amazon_unlabeled`` filters on (``in_blitzer_labeled`` needs the Blitzer
reviews to compute, so it is taken from the release rather than recomputed).
For that reason these two builders read a manual folder only.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files
from xferlab.data.corpora.amazon_multi_domain import DOMAINS, POLARITIES, domain_config

log = logging.getLogger(__name__)

_ORIGIN = ("HATN (Li et al. AAAI 2018) raw_data/<domain>/review_{positive,negative} from "
           "github.com/hsqmlzno1/HATN @ 23facdb09a5ec0f29e9f69c5733e7ac7977b2211, converted to "
           "jsonl with dup / in_blitzer_labeled flags in ../shared/data/amazon_hatn "
           "(see its SOURCE.md)")
_FILES = {(d, p): files.SourceFile(f"{d}/{p}.jsonl.gz") for d in DOMAINS for p in POLARITIES}
_INSTRUCTIONS = files.instructions("amazon_hatn", _FILES.values(), _ORIGIN)
_KEYS = ("text", "label", "line", "dup", "in_blitzer_labeled")  # of every jsonl record


class _HatnReviews(base.CorpusBuilder, skip_registration=True):
  """Shared reading of the HATN review files of one domain (abstract)."""

  MANUAL_FOLDER = "amazon_hatn"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://github.com/hsqmlzno1/HATN"
  CITATION = ("Li, Wei, Zhang, Yang. Hierarchical Attention Transfer Network for Cross-Domain "
              "Sentiment Classification. AAAI 2018. Li et al. End-to-end adversarial memory "
              "network for cross-domain sentiment classification. IJCAI 2017.")
  BUILDER_CONFIGS = [domain_config(d) for d in DOMAINS]
  SHUFFLE = True
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def _source_files(self):
    domain = self.builder_config.name
    return {polarity: _FILES[(domain, polarity)] for polarity in POLARITIES}

  def _splits(self, paths):
    return {"train": self._generate_examples(paths)}

  def _reviews(self, paths):
    """Yields ``(key, record, label)`` for every line of both files of the domain."""
    for polarity, label in POLARITIES.items():
      for i, record in enumerate(files.read_jsonl(paths[polarity], required=_KEYS)):
        yield f"{polarity}/{record.get('line', i):05d}", record, label


class AmazonHatn(_HatnReviews, skip_registration=True):
  """HATN/AMN: 3,000 positive + 3,000 negative reviews per domain, labeled.

  Configs: ``books``, ``dvd``, ``electronics``, ``kitchen``.

  Features:
    text: str, ``"<title>. <body>"`` as released (HTML entities decoded).
    label: int, 0 = negative, 1 = positive.
    domain: str, the config name.
    line: int32, 0-based line of the review in its raw file.
    duplicate: bool, an identical line occurred earlier in the same file.
    in_blitzer_labeled: bool, the review is also one of the domain's
      ``amazon_multi_domain`` reviews (after lowercasing and keeping only
      alphanumerics): test leakage if both are used.

  Splits: ``train`` only (6,000; all rows, flags included). The HATN protocol
  trains on 2,800 + 2,800 of the source domain and tests on all 6,000 of the
  target: experiments split deterministically themselves.
  """

  name = "amazon_hatn"

  def _features(self):
    return tfds.features.FeaturesDict({
        "text": tfds.features.Text(),
        "label": base.sentiment_label(),
        "domain": tfds.features.Text(),
        "line": tfds.features.Scalar(dtype=np.int32),
        "duplicate": tfds.features.Scalar(dtype=np.bool_),
        "in_blitzer_labeled": tfds.features.Scalar(dtype=np.bool_),
    })

  def _generate_examples(self, paths):
    for key, record, label in self._reviews(paths):
      if record["label"] != label:
        raise files.CorruptFileError(f"{paths['positive' if label else 'negative']}: line "
                                     f"{record.get('line')} has label {record['label']}.")
      yield key, {
          "text": record["text"],
          "label": label,
          "domain": self.builder_config.name,
          "line": record["line"],
          "duplicate": record["dup"],
          "in_blitzer_labeled": record["in_blitzer_labeled"],
      }


class AmazonUnlabeled(_HatnReviews, skip_registration=True):
  """Unlabeled target-domain reviews: HATN reviews minus duplicates and Blitzer overlap.

  The Blitzer release's own unlabeled reviews are not available, so this is
  the documented substitute: every ``amazon_hatn`` review of the domain except
  the rows flagged ``dup`` or ``in_blitzer_labeled``, labels dropped.

  Configs: ``books`` (5,700), ``dvd`` (5,391), ``electronics`` (5,567), ``kitchen`` (5,768).

  Features:
    text: str, ``"<title>. <body>"``.
    domain: str, the config name.

  Splits: ``train`` only, in a fixed hash order (positive and negative
  reviews mixed).
  """

  name = "amazon_unlabeled"

  def _features(self):
    return tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                       "domain": tfds.features.Text()})

  def _generate_examples(self, paths):
    dropped = {"dup": 0, "in_blitzer_labeled": 0}
    for key, record, _ in self._reviews(paths):
      if record["dup"] or record["in_blitzer_labeled"]:
        dropped["dup" if record["dup"] else "in_blitzer_labeled"] += 1
        continue
      yield key, {"text": record["text"], "domain": self.builder_config.name}
    log.info("amazon_unlabeled/%s: dropped %d duplicate and %d Blitzer-labeled reviews.",
             self.builder_config.name, dropped["dup"], dropped["in_blitzer_labeled"])

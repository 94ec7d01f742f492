"""``amazon_multi_domain``: the Blitzer et al. (2007) cross-domain sentiment benchmark.

Read from the original ``sorted_data_acl`` review files (``raw/``), which are
pseudo-XML with bare ``&`` and ``<`` in the text and Amazon's HTML entities:
the values are cut out with a regular expression, stripped, and their
entities decoded once.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files, text

log = logging.getLogger(__name__)

DOMAINS = ("books", "dvd", "electronics", "kitchen")
POLARITIES = {"negative": 0, "positive": 1}

_REPO, _COMMIT = "bzantium/bert-AAD", "cbe2e0cac6564dfbc6234882a73ca78020ac0d22"
_BLOBS = {  # git blob ids of the decompressed raw files (SOURCE.md)
    ("books", "positive"): "069b231abc2469f44d2dd03b2ef4e5130e2c58fb",
    ("books", "negative"): "78e3b7361301e4f6aadb6e83f4640377ddb99f8b",
    ("dvd", "positive"): "fb5993de5fec0a7adf107a424855a82da299fa18",
    ("dvd", "negative"): "71bbe76018f029e419a1a42bcafdd08a1f73a000",
    ("electronics", "positive"): "76162c9be5a81f57ad69839e58d1a6b09d8eca5b",
    ("electronics", "negative"): "87972a6af37d948ac470fb9d83e1bf847293815f",
    ("kitchen", "positive"): "2579d6d482db4a1b69e024be59dfe34335f6d97c",
    ("kitchen", "negative"): "05d051ba4e45b71bd8a052cb7b829f7e86bdb010",
}
_FILES = {
    key: files.SourceFile(f"raw/{key[0]}/{key[1]}.review.gz",
                          files.github_raw(_REPO, _COMMIT, f"data/{key[0]}/{key[1]}.review"),
                          git_blob=blob)
    for key, blob in _BLOBS.items()
}
_ORIGIN = ("Blitzer, Dredze, Pereira (ACL 2007) "
           "sorted_data_acl/<domain>/{positive,negative}.review "
           "(cs.jhu.edu/~mdredze/datasets/sentiment/, kitchen there is kitchen_&_housewares), "
           f"copied from github.com/{_REPO} @ {_COMMIT} (data/<domain>/*.review)")

_REVIEW = re.compile(r"<review>\n(.*?)</review>", re.S)
_FIELD = re.compile(r"<(\w+)>\n(.*?)\n</\1>", re.S)


def domain_config(domain: str) -> tfds.core.BuilderConfig:
  """The config of one Amazon product domain."""
  return tfds.core.BuilderConfig(name=domain, description=f"The {domain} domain")


def join_title(title: str, body: str) -> str:
  """``"<title>. <body>"``: the review as the HATN release writes it (title first)."""
  return f"{title}. {body}" if title else body


def parse_reviews(raw: str, path) -> list[dict[str, str]]:
  """Cuts a ``*.review`` file into ``{tag: value}`` dicts, values as in the file."""
  reviews = [dict(_FIELD.findall(block)) for block in _REVIEW.findall(raw)]
  for i, review in enumerate(reviews):
    missing = {"unique_id", "rating", "title", "review_text"} - set(review)
    if missing:
      raise files.CorruptFileError(f"{path}: review {i + 1} has no {sorted(missing)}.")
  if not reviews:
    raise files.CorruptFileError(f"{path}: no <review> blocks found.")
  return reviews


class AmazonMultiDomain(base.CorpusBuilder):
  """Blitzer et al. 2007: 1,000 positive + 1,000 negative reviews per domain.

  Configs: ``books``, ``dvd``, ``electronics``, ``kitchen``.

  Features:
    text: str, ``"<title>. <body>"`` (the review with its title, as in
      ``amazon_hatn`` / ``amazon_unlabeled``, so source and target text look alike).
    title, body: str, the two parts (stripped, HTML entities decoded once;
      paragraph breaks in the body kept as newlines).
    label: int, 0 = negative (1-2 stars), 1 = positive (4-5 stars).
    domain: str, the config name.
    id: str, the review's ``unique_id``; rating: float32, the stars.
    duplicate: bool, True if the same (title, body) occurred earlier in the
      same file (4-41 per file: exact duplicates under different ids). They are
      kept so the domain has its documented 2,000 reviews; drop them from a
      training part if you want.

  Splits: ``train`` only (2,000): the benchmark has no official split (its
  2,000 reviews are the target test set; PBLM holds out 400 for dev). The
  examples are in a fixed hash order, not grouped by label, so experiments
  split them deterministically themselves.
  """

  name = "amazon_multi_domain"
  MANUAL_FOLDER = "amazon_multi_domain"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://www.cs.jhu.edu/~mdredze/datasets/sentiment/"
  CITATION = ("Blitzer, Dredze, Pereira. Biographies, Bollywood, Boom-boxes and Blenders: Domain "
              "Adaptation for Sentiment Classification. ACL 2007.")
  BUILDER_CONFIGS = [domain_config(d) for d in DOMAINS]
  SHUFFLE = True
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("amazon_multi_domain", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        "text": tfds.features.Text(),
        "title": tfds.features.Text(),
        "body": tfds.features.Text(),
        "label": base.sentiment_label(),
        "domain": tfds.features.Text(),
        "id": tfds.features.Text(),
        "rating": tfds.features.Scalar(dtype=np.float32),
        "duplicate": tfds.features.Scalar(dtype=np.bool_),
    })

  def _source_files(self):
    domain = self.builder_config.name
    return {polarity: _FILES[(domain, polarity)] for polarity in POLARITIES}

  def _splits(self, paths):
    return {"train": self._generate_examples(paths)}

  def _generate_examples(self, paths):
    domain = self.builder_config.name
    for polarity, label in POLARITIES.items():
      path = paths[polarity]
      reviews = parse_reviews(files.read_text(path), path)
      titles = [text.unescape_html(r["title"].strip()) for r in reviews]
      bodies = [text.unescape_html(r["review_text"].strip()) for r in reviews]
      duplicates = text.duplicate_flags(zip(titles, bodies))
      text.log_replacement_chars((t + b for t, b in zip(titles, bodies)), str(path))
      for i, (review, title, body, dup) in enumerate(zip(reviews, titles, bodies, duplicates)):
        rating = float(review["rating"].strip())
        if (rating > 3) != bool(label):
          log.warning("%s: review %d has rating %s in the %s file.", path, i, rating, polarity)
        yield f"{polarity}/{i:05d}", {
            "text": join_title(title, body),
            "title": title,
            "body": body,
            "label": label,
            "domain": domain,
            "id": review["unique_id"].strip(),
            "rating": rating,
            "duplicate": dup,
        }

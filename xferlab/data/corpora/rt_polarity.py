"""``rt_polarity``: Pang & Lee sentence polarity v1.0 ("MR"), Rotten Tomatoes snippets.

Read from the original files, which are Windows-1252: they are decoded as
cp1252 and split on ``\\n`` only (read as latin-1, byte 0x85 would become
U+0085, on which ``str.splitlines`` splits a snippet in two).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_REPO, _COMMIT = "yoonkim/CNN_sentence", "23e0e1f7355705bb083043fda05c031b15acb38c"
_BLOBS = {"pos": "a77b54b4241a09f048b24a983ad0ed944c421f72",
          "neg": "4fac473004fd2748a0a6595068fa83001954c06c"}
_FILES = {
    polarity: files.SourceFile(f"raw/rt-polarity.{ext}",
                               files.github_raw(_REPO, _COMMIT, f"rt-polarity.{ext}"),
                               git_blob=_BLOBS[ext])
    for polarity, ext in (("positive", "pos"), ("negative", "neg"))
}
_LABELS = {"negative": 0, "positive": 1}
_ORIGIN = ("Pang & Lee (ACL 2005) sentence polarity dataset v1.0 (cs.cornell.edu/people/pabo/"
           "movie-review-data/ rt-polaritydata.tar.gz), copied from "
           f"github.com/{_REPO} @ {_COMMIT}")


class RtPolarity(base.CorpusBuilder):
  """5,331 positive + 5,331 negative movie-review snippets.

  Features:
    text: str, the snippet (lowercased and tokenized as released), decoded
      from Windows-1252 and stripped of its trailing space.
    label: int, 0 = negative, 1 = positive.

  Splits: ``train`` only (10,662): there is no official split (10-fold
  cross-validation is customary). Examples are in a fixed hash order, not
  grouped by label.
  """

  name = "rt_polarity"
  MANUAL_FOLDER = "rt_polarity"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://www.cs.cornell.edu/people/pabo/movie-review-data/"
  CITATION = ("Pang & Lee. Seeing stars: Exploiting class relationships for sentiment "
              "categorization with respect to rating scales. ACL 2005.")
  SHUFFLE = True
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("rt_polarity", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                       "label": base.sentiment_label()})

  def _source_files(self):
    return _FILES

  def _splits(self, paths):
    return {"train": self._generate_examples(paths)}

  def _generate_examples(self, paths):
    for polarity, label in _LABELS.items():
      for i, line in enumerate(files.read_lines(paths[polarity], encoding="cp1252")):
        yield f"{polarity}/{i:05d}", {"text": line.strip(), "label": label}

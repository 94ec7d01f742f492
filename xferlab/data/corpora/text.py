"""Text clean-up shared by the corpus builders: each function undoes one documented quirk."""

from __future__ import annotations

import html
import logging
import random
import re
from typing import Hashable, Iterable

log = logging.getLogger(__name__)

REPLACEMENT_CHAR = "\ufffd"
_WHITESPACE = re.compile(r"\s+")
_GLUED_SENTENCE = re.compile(r'(?P<end>(?<=[a-z0-9%)"])[.!?])(?P<quote>"?)(?=[A-Z])')


def unescape_html(text: str) -> str:
  """Decodes HTML entities exactly once (``&quot;`` -> ``"``, ``&amp;lt;`` -> ``&lt;``)."""
  return html.unescape(text)


def br_to_newline(text: str) -> str:
  """Replaces the ``<br />`` markup of IMDB reviews with newlines."""
  return text.replace("<br />", "\n")


def space_glued_sentences(text: str) -> str:
  """Puts a space between sentences concatenated without one.

  A boundary is a lower-case letter, digit, ``%`` or ``)`` followed by
  ``.``, ``!`` or ``?`` and then directly by an upper-case letter
  (``"$10.9bn.For"``), optionally with a double quote on either side of the
  join (``'"threat".The'``, ``'ago."It's'``): the space goes after a closing
  quote and before an opening one, told apart by the number of quotes so far.
  ``U.S.A``, ``3.5`` and ``e.g.`` are left alone.
  """
  def fix(match: re.Match) -> str:
    if match.group("quote") and text[:match.start("quote")].count('"') % 2 == 0:
      return match.group("end") + " " + match.group("quote")  # an opening quote
    return match.group(0) + " "
  return _GLUED_SENTENCE.sub(fix, text)


def duplicate_flags(keys: Iterable[Hashable]) -> list[bool]:
  """For each key, whether it occurs earlier in the sequence (True = duplicate)."""
  seen, flags = set(), []
  for key in keys:
    flags.append(key in seen)
    seen.add(key)
  return flags


def without_whitespace(text: str) -> str:
  """``text`` with all whitespace removed: a key under which two copies of one review
  match even when one had its line-break markup turned into newlines and the
  other had it deleted (``"end.\n\nNext"`` vs ``"end.Next"``)."""
  return _WHITESPACE.sub("", text)


def log_replacement_chars(texts: Iterable[str], where: str) -> int:
  """Logs how many texts carry U+FFFD, characters already lost in the original release."""
  n = sum(REPLACEMENT_CHAR in t for t in texts)
  if n:
    log.info("%s: %d text(s) contain U+FFFD (characters lost upstream, kept as they are).",
             where, n)
  return n


def seeded_order(n: int, seed: int) -> list[int]:
  """A fixed permutation of ``range(n)``: ``random.Random(seed).shuffle(list(range(n)))``.

  Builders write rows in this order when their files are sorted (by label, by
  id) so that any prefix of a split is a random sample. Python's seeded
  ``random.Random`` gives the same permutation on every platform and Python 3
  version, and needs no NumPy.
  """
  order = list(range(n))
  random.Random(seed).shuffle(order)
  return order

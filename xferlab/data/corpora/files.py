"""Reading a corpus's files: locate them, check them, decode them.

Every builder in ``xferlab.data.corpora`` reads its input through this module,
so the failure modes are the same everywhere:

* a missing file raises ``ManualDataError`` naming the folder looked at, the
  files it should hold and where they come from;
* a corrupt or truncated file (bad gzip stream, bad JSON line) raises
  ``CorruptFileError`` naming the file (and line);
* bytes that are not valid in the file's documented encoding are decoded
  with a fallback (cp1252, then latin-1) and counted in a WARNING log line
  naming the file: text is never dropped silently;
* a file whose content differs from the checksum its SOURCE.md documents is
  reported with a WARNING (the counts may then differ from the documented
  ones); a *downloaded* file with a wrong checksum is an error.

Files are small (at most a few MiB decompressed), so they are read whole.
Gzip is recognised by its magic bytes, not by the file name, so the original
(uncompressed) files from a public address and the gzipped copies of a
manual directory read the same way.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import socket
import urllib.parse
import zlib
from pathlib import Path
from typing import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"


class ManualDataError(FileNotFoundError):
  """The files a builder needs are neither in the manual directory nor downloadable."""


class CorruptFileError(OSError):
  """A file exists but cannot be read as what it should be (names the file)."""


@dataclasses.dataclass(frozen=True)
class SourceFile:
  """One input file of a corpus.

  Attributes:
    path: where it lies relative to the corpus's manual directory, e.g.
      ``"raw/books/positive.review.gz"``.
    url: the original public address of the same content (a GitHub raw URL
      pinned to the commit that SOURCE.md names), or None when the file only
      exists as a manual copy.
    md5: md5 of the decompressed content, when SOURCE.md gives it.
    git_blob: ``git hash-object`` of the decompressed content, when SOURCE.md
      gives the git blob id instead.
  """

  path: str
  url: str | None = None
  md5: str | None = None
  git_blob: str | None = None


def github_raw(repo: str, commit: str, path: str) -> str:
  """The raw.githubusercontent.com address of ``path`` at a pinned commit."""
  return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def instructions(folder: str, files: Iterable[SourceFile], origin: str) -> str:
  """Text for ``MANUAL_DOWNLOAD_INSTRUCTIONS``: exactly what to put where."""
  lines = [
      f"Put these files in a folder named `{folder}/` inside the data root",
      "(the folder that holds one sub-folder per corpus: pass it as",
      "`manual_dir=` / `--manual-dir`, or set XFERLAB_DATA; the default is the",
      "checkout's sibling `../shared/data`). Files may be gzipped or not.",
      "",
  ]
  for f in files:
    where = f"  <- {f.url}" if f.url else "  (manual copy only)"
    lines.append(f"  {folder}/{f.path}{where}")
  lines += ["", f"Origin: {origin}"]
  return "\n".join(lines)


def locate(
    corpus: str,
    manual_dir: Path | None,
    files: Mapping[str, SourceFile],
    origin: str,
    download: Callable[[str], os.PathLike | str] | None = None,
) -> dict[str, Path]:
  """Finds every file of ``files`` (keyed by a name the builder chooses).

  Args:
    corpus: the builder name, for messages.
    manual_dir: the corpus's manual folder (``<data root>/<folder>``), or None.
    files: what the builder needs, ``{key: SourceFile}``.
    origin: one line saying where the corpus comes from (its SOURCE.md).
    download: if given, called with a file's ``url`` for files that are not in
      the manual folder; the result must be a local path. Downloaded content
      must match the documented checksum.

  Returns:
    ``{key: local path}``.

  Raises:
    ManualDataError: some files are neither present nor downloadable.
  """
  found, missing = {}, []
  for key, f in files.items():
    path = manual_dir / f.path if manual_dir is not None else None
    if path is not None and path.is_file():
      found[key] = path
      _warn_if_checksum_differs(path, f)
    elif download is not None and f.url:
      path = Path(download(f.url))
      if not checksum_matches(read_bytes(path), f):
        raise CorruptFileError(
            f"{path} (downloaded from {f.url}) does not match the checksum "
            f"documented for {corpus}/{f.path} (md5={f.md5}, git blob={f.git_blob}).")
      found[key] = path
    else:
      missing.append(f)
  if missing:
    raise ManualDataError(_missing_message(corpus, manual_dir, files.values(), missing, origin,
                                           download is not None))
  return found


def _missing_message(corpus, manual_dir, files, missing, origin, tried_download) -> str:
  if manual_dir is None:
    where = "no manual directory was given"
  elif not manual_dir.is_dir():
    where = f"looked in {manual_dir}, which does not exist"
    if (manual_dir.parent / missing[0].path).is_file():
      where += (f"; {manual_dir.parent} looks like the corpus folder itself: pass the folder "
                "above it, which holds one sub-folder per corpus")
  else:
    where = f"looked in {manual_dir}"
  needed = "\n".join(
      f"  {f.path}" + (f"  <- {f.url}" if f.url else "  (manual copy only)") for f in files)
  absent = ", ".join(f.path for f in missing)
  hint = ("" if tried_download or not any(f.url for f in missing) else
          "\nFiles with an address can also be fetched: prepare(..., download=True) or "
          "`python -m xferlab.data prepare --download`.")
  return (
      f"Corpus {corpus!r}: input files missing ({where}).\n"
      f"Missing: {absent}\n"
      f"The folder should contain:\n{needed}\n"
      f"Origin: {origin}\n"
      "Point xferlab at the data root (one sub-folder per corpus, like ../shared/data) with "
      "manual_dir=..., `--manual-dir DIR` or the XFERLAB_DATA environment variable." + hint)


def check_reachable(url: str, timeout: float = 10.0) -> None:
  """Fails fast (``ConnectionError`` naming the host) when ``url``'s server cannot be reached.

  TFDS's downloader retries with back-off for minutes on an offline machine;
  one short connection attempt first turns that into an immediate, clear error.
  """
  parts = urllib.parse.urlsplit(url)
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    socket.create_connection((parts.hostname, port), timeout=timeout).close()
  except OSError as e:
    raise ConnectionError(
        f"Cannot reach {parts.hostname}:{port} to download {url} ({e}). Offline? Put the file in "
        "the manual folder instead (see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS).") from e


def read_bytes(path: os.PathLike | str) -> bytes:
  """The file's content, gunzipped if it starts with the gzip magic bytes."""
  path = Path(path)
  with open(path, "rb") as f:
    data = f.read()
  if data[:2] == _GZIP_MAGIC:
    try:
      return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
      raise CorruptFileError(f"{path}: corrupt or truncated gzip file ({e}).") from e
  if path.suffix == ".gz":
    raise CorruptFileError(f"{path}: named .gz but is not a gzip file.")
  return data


def git_blob_id(data: bytes) -> str:
  """What ``git hash-object`` prints for a file with this content."""
  return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def checksum_matches(data: bytes, f: SourceFile) -> bool:
  """True if ``data`` matches every checksum ``f`` documents (or it has none)."""
  if f.md5 and hashlib.md5(data).hexdigest() != f.md5:
    return False
  if f.git_blob and git_blob_id(data) != f.git_blob:
    return False
  return True


def _warn_if_checksum_differs(path: Path, f: SourceFile) -> None:
  if (f.md5 or f.git_blob) and not checksum_matches(read_bytes(path), f):
    log.warning("%s differs from the release its SOURCE.md documents (md5=%s, git blob=%s); "
                "example counts may differ from the documented ones.", path, f.md5, f.git_blob)


def decode(data: bytes, path: os.PathLike | str, encoding: str = "utf-8") -> str:
  """Decodes ``data`` as ``encoding``, line by line falling back to cp1252 / latin-1.

  Lines that are not valid in ``encoding`` are decoded as cp1252 (the usual
  cause: Windows text in a UTF-8 corpus), or latin-1 for bytes cp1252 leaves
  undefined. They are kept, and their number is logged with the file name.
  """
  try:
    return data.decode(encoding)
  except UnicodeDecodeError:
    pass
  lines, bad = [], []
  for number, line in enumerate(data.split(b"\n")):
    try:
      lines.append(line.decode(encoding))
    except UnicodeDecodeError:
      bad.append(number)
      try:
        lines.append(line.decode("cp1252"))
      except UnicodeDecodeError:
        lines.append(line.decode("latin-1"))
  log.warning("%s: %d line(s) are not valid %s and were decoded as cp1252/latin-1 "
              "(0-based line numbers, first ones: %s).", path, len(bad), encoding, bad[:10])
  return "\n".join(lines)


def read_text(path: os.PathLike | str, encoding: str = "utf-8") -> str:
  """The whole file as text (see ``decode`` for invalid bytes)."""
  return decode(read_bytes(path), path, encoding)


def read_lines(path: os.PathLike | str, encoding: str = "utf-8") -> list[str]:
  """The file's lines, split on ``\\n`` only, without the final newline.

  Only ``\\n`` ends a line: ``str.splitlines`` would also split on U+0085,
  U+2028 and friends, which occur inside the text of some corpora. Lines are
  otherwise returned as they are (callers strip what their SOURCE.md says).
  """
  text = read_text(path, encoding)
  if not text:
    return []
  lines = text.split("\n")
  if lines[-1] == "":
    lines.pop()
  return lines


def read_jsonl(path: os.PathLike | str, required: Iterable[str] = ()) -> list[dict]:
  """One JSON object per non-empty line (the last line may lack its newline).

  Raises:
    CorruptFileError: naming the file and line, for a line that is not a JSON
      object or lacks one of the ``required`` keys.
  """
  records = []
  for number, line in enumerate(read_lines(path), start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise CorruptFileError(f"{path}, line {number}: not a JSON object ({e}).") from e
    missing = [k for k in required if not isinstance(record, dict) or k not in record]
    if missing:
      raise CorruptFileError(f"{path}, line {number}: no {missing} in the record.")
    records.append(record)
  return records

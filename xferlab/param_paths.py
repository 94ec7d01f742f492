"""Paths of the leaves of a pure parameter dict, and subtree prefixes over them.

The trainer holds parameters as nested dicts (``nnx.to_pure_dict``) whose keys
are attribute names and, for ``nnx.List`` entries, ints::

  {"classifier": {"encoder": {"embed": {"embedding": float[vocab, dim]},
                              "rnn": {"layers": {0: {"cell": {...}}, 1: ...}}},
                  "head": {...}},
   "transfer": {...}}

A leaf's *path* is the tuple of its keys as strings,
``("classifier", "encoder", "rnn", "layers", "0", "cell", "input_proj", "kernel")``.
A *prefix* names a subtree, written with ``/`` or ``.`` between components
(``"classifier/encoder/rnn/layers/0"`` == ``"classifier.encoder.rnn.layers.0"``)
and matched by whole components, so ``layers/1`` never matches ``layers/10``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Sequence

import jax

Path = tuple[str, ...]


def split_prefix(prefix: str | Sequence[str]) -> Path:
  """``"a/b.0"`` -> ``("a", "b", "0")``; a tuple of components is returned as strings."""
  if not isinstance(prefix, str):
    return tuple(str(p) for p in prefix)
  return tuple(p for p in re.split(r"[/.]", prefix) if p)


def path_str(path: Sequence[str]) -> str:
  """``("a", "b", "0")`` -> ``"a/b/0"``."""
  return "/".join(path)


def _key_str(entry) -> str:
  for attr in ("key", "idx", "name"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def to_path(key_path) -> Path:
  """A JAX key path (``DictKey``/``SequenceKey`` entries) as a tuple of strings."""
  return tuple(_key_str(e) for e in key_path)


def leaf_paths(tree: Any) -> list[Path]:
  """The path of every leaf, in ``jax.tree.leaves`` order."""
  return [to_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def map_with_paths(fn: Callable[[Path, Any], Any], tree: Any) -> Any:
  """``tree`` with every leaf replaced by ``fn(path, leaf)``."""
  return jax.tree_util.tree_map_with_path(lambda p, x: fn(to_path(p), x), tree)


def has_prefix(path: Sequence[str], prefix: Sequence[str]) -> bool:
  """Whether the leaf ``path`` lies in the subtree ``prefix`` (whole components)."""
  return len(path) >= len(prefix) and tuple(path[:len(prefix)]) == tuple(prefix)


def check_prefixes(tree: Any, prefixes: Iterable[str | Sequence[str]], what: str) -> None:
  """Raises ``ValueError`` naming every prefix that matches no leaf of ``tree``."""
  paths = leaf_paths(tree)
  missing = [p for p in prefixes if not any(has_prefix(q, split_prefix(p)) for q in paths)]
  if missing:
    subtrees = sorted({path_str(q[:3]) for q in paths})
    raise ValueError(f"{what} {missing} name no parameter; subtrees of the model: "
                     f"{', '.join(subtrees)}")


def get_leaf(tree: Any, path: Sequence[str]) -> Any:
  """The leaf at ``path`` (keys compared as strings, so ``"0"`` finds the int key ``0``)."""
  node = tree
  for part in path:
    node = node[{str(k): k for k in node}[part]]
  return node


def set_leaf(tree: dict, path: Sequence[str], value: Any) -> dict:
  """A copy of ``tree`` with the leaf at ``path`` replaced; other leaves are shared, not copied."""
  if not path:
    return value
  key = {str(k): k for k in tree}[path[0]]
  out = dict(tree)
  out[key] = set_leaf(tree[key], path[1:], value)
  return out


def embedding_paths(params: Any) -> list[Path]:
  """The path of every encoder embedding matrix (``.../encoder/embed/embedding``)."""
  return [p for p in leaf_paths(params) if p[-3:] == ("encoder", "embed", "embedding")]

"""Model-based transfer: a pretrained network's parameters, restored and fine-tuned.

**Restoring** (``config.init_from``). ``restore_subtrees`` takes named
parameter subtrees of an orbax checkpoint (``xferlab.checkpoint.load_state``)
into a new model's pure parameter dict; ``"new=old"`` renames
(``"classifier.encoder=encoder"`` takes a language model's encoder into a
classifier). ``restore_init_from`` applies every source of ``config.init_from``
(``init_sources``: ``init_from.path``, then the optional ``init_from.extra``
entries, so that two runs can seed one model). A vocabulary map
(``vocab_mapping``, ``init_from_vocab_map``) carries vocabulary-indexed rows
across tokenizers; ``check_prerequisites`` fails before a run writes anything
when a model (or corpus) it starts from is missing.

**Fine-tuning** (``config.finetune``, ULMFiT's controls).
``build_optimizer(config, params, total_steps)`` is what the trainer calls. With
no fine-tuning control switched on it returns the plain optax chain of
``config.optimizer`` (optional global-norm clipping, then ``adam`` / ``adamw`` /
``sgd`` with a ``constant`` / ``cosine`` / ``warmup_cosine`` /
``slanted_triangular`` schedule). Otherwise every parameter gets a label derived
from its path in the pure parameter dict (``xferlab.param_paths``) and the
update runs through ``optax.multi_transform``:

* **freezing** (``finetune.frozen``, path prefixes; the entry ``"embedding"`` stands
  for every encoder embedding, whatever the model): frozen leaves get ``optax.set_to_zero`` -- no
  gradient step, no weight decay, no momentum, no optimizer state;
* **discriminative learning rates** (``finetune.discriminative_factor``, ULMFiT's
  2.6; 0 or 1 = off): the layer groups of ``ulmfit_groups`` (embedding, each
  RNN layer, then everything else as the *top* group) are ordered bottom to
  top; the top group gets the schedule's rate, the group ``k`` below it the
  rate divided by ``factor ** k``;
* **gradual unfreezing** (``finetune.unfreeze_every`` steps per stage; 0 = off):
  stage ``s`` (steps ``[(s-1)·E, s·E)``) trains the top ``s`` groups, so the
  top group trains from step 0, the group ``k`` below it from step ``k·E``. The
  stage is computed from optax step counters inside the jitted update, so
  changing stage never recompiles.

Optimizer state across gradual unfreezing (the design decision): a group's
optimizer (Adam moments *and* Adam's bias-correction count, SGD momentum) is
wrapped in ``optax.transforms.conditionally_mask``, which, while the group is
frozen, returns zero updates and passes the inner state through *unchanged*.
So when a group unfreezes at step ``k·E`` its optimizer starts exactly as a
fresh one: zero moments and a count of 0, hence the usual bias correction and
an ordinary first Adam step. (Had the group's Adam merely seen zero gradients
while frozen, its moments would be zero but its count would be ``k·E``, so bias
correction would be skipped and its first few hundred steps would be up to
several times too large.) The learning-rate *schedule* is not restarted: it is
read from a counter that runs from step 0 for every group, so a group that
unfreezes late starts at the schedule's current rate times its discriminative
factor. Gradients of frozen and not yet unfrozen groups are zeroed before
global-norm clipping, so they never shrink the steps of the trainable groups.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import optax

from xferlab import checkpoint, optim
from xferlab.defaults import FROZEN_EMBEDDING
from xferlab.data import load_tokenizer   # the package import registers every tokenizer kind
from xferlab.data.tokenizer import vocabulary
from xferlab.param_paths import embedding_paths
from xferlab.param_paths import (check_prefixes, has_prefix, leaf_paths, map_with_paths,
                                 split_prefix)

TOP = "top"          # the label of the top layer group (everything no other group claims)
FROZEN = "frozen"    # the label of frozen parameters


# ------------------------------------------------------------------------------
# Restoring parameter subtrees across vocabularies.

def _flatten_paths(tree: Any, prefix: tuple = ()) -> dict[tuple, Any]:
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      out.update(_flatten_paths(v, prefix + (str(k),)))
    return out
  return {prefix: tree}


def _get_subtree(tree: Mapping, dotted: str) -> Any:
  node = tree
  for part in dotted.split("."):
    lookup = {str(k): k for k in node} if isinstance(node, Mapping) else {}
    if part not in lookup:
      raise KeyError(dotted)
    node = node[lookup[part]]
  return node


def restore_subtrees(params: dict, path: str, subtrees: Sequence[str],
                     vocab_map: np.ndarray | None = None) -> dict:
  """Copies named parameter subtrees (``"encoder"``, ``"encoder.embed"``) from a checkpoint.

  ``params`` is the new model's pure parameter dict; the result is a copy with
  each named subtree replaced by the checkpoint's values. ``"new=old"`` takes
  the checkpoint's ``old`` subtree into the model's ``new`` one (a language
  model's ``encoder`` into a classifier: ``"classifier.encoder=encoder"``).
  Structure and shapes must match; otherwise a ``ValueError`` lists every
  offending path.

  ``vocab_map int[new_vocab]`` (``vocab_mapping``) carries vocabulary-indexed
  parameters across vocabularies: row ``i`` of the new model is row
  ``vocab_map[i]`` of the checkpoint, and rows with ``vocab_map[i] == -1``
  (tokens the checkpoint's vocabulary lacks) get the mean of the checkpoint's
  rows. Vocabulary-indexed are every leaf named ``embedding`` (axis 0) and, as
  an output projection, every ``kernel`` / ``bias`` whose last axis has the
  checkpoint's vocabulary size (the rows of its embedding) there and
  ``len(vocab_map)`` in the new model, all other axes equal. (A hidden layer
  exactly as wide as both vocabularies would be taken for one: give the
  vocabularies sizes no layer has.)
  """
  source = checkpoint.load_state(path)
  source_params = source.get("params", source)
  out = jax.tree.map(lambda x: x, params)
  problems = []
  old_vocab = _embedding_rows(source_params) if vocab_map is not None else None
  if vocab_map is not None:
    vocab_map = np.asarray(vocab_map)
    if vocab_map.ndim != 1 or not np.issubdtype(vocab_map.dtype, np.integer):
      raise ValueError(f"vocab_map must be a 1-D integer array, got {vocab_map.dtype}"
                       f"{list(vocab_map.shape)}")
  for spec in subtrees:
    name, _, old_name = spec.partition("=")
    name, old_name = name.strip(), (old_name or name).strip()
    if not _has(out, name):
      problems.append(f"{name}: missing in the new model")
      continue
    if not _has(source_params, old_name):
      problems.append(f"{old_name}: missing in the checkpoint")
      continue
    new_sub, old_sub = _get_subtree(out, name), _get_subtree(source_params, old_name)
    old_leaves = _flatten_paths(old_sub)
    axes = _vocab_axes(name, new_sub, old_sub, vocab_map, old_vocab, problems)
    if not problems:
      _set_subtree(out, name, map_with_paths(
          lambda p, new: _carry(old_leaves[p], new, axes.get(p), vocab_map), new_sub))
  if problems:
    raise ValueError(f"Cannot restore {list(subtrees)} from {path}; mismatched parameters:\n  "
                     + "\n  ".join(problems))
  return out


def _vocab_axes(name: str, new_sub, old_sub, vocab_map, old_vocab, problems: list) -> dict:
  """Compares one subtree leaf by leaf; appends every mismatch to ``problems`` and returns
  ``{leaf path: vocabulary axis}`` for the leaves the vocabulary map reindexes."""
  new_leaves, old_leaves = _flatten_paths(new_sub), _flatten_paths(old_sub)
  axes = {}
  for p in sorted(set(new_leaves) | set(old_leaves)):
    where = ".".join((name,) + p)
    if p not in old_leaves:
      problems.append(f"{where}: missing in the checkpoint")
      continue
    if p not in new_leaves:
      problems.append(f"{where}: missing in the new model")
      continue
    old_shape, new_shape = np.shape(old_leaves[p]), np.shape(new_leaves[p])
    axis = (None if vocab_map is None else
            _vocab_axis(where.split(".")[-1], old_shape, new_shape, old_vocab, len(vocab_map)))
    if axis is None:
      if new_shape != old_shape:
        problems.append(f"{where}: checkpoint {old_shape} vs model {new_shape}")
      continue
    axes[p] = axis
    if not _fits(old_shape, new_shape, axis, len(vocab_map)):
      problems.append(f"{where}: checkpoint {old_shape} vs model {new_shape} "
                      f"with a vocab map of {len(vocab_map)} entries")
    elif np.any(vocab_map >= old_shape[axis]) or np.any(vocab_map < -1):
      problems.append(f"{where}: the vocab map points outside the checkpoint's "
                      f"{old_shape[axis]} rows")
  return axes


def _carry(old: Any, new: Any, axis: int | None, vocab_map: np.ndarray | None) -> np.ndarray:
  """The checkpoint's value in the new leaf's dtype, remapped along ``axis`` if given."""
  old = np.asarray(old)
  if axis is not None:
    mean = np.mean(old, axis=axis, keepdims=True)
    taken = np.take(old, np.maximum(vocab_map, 0), axis=axis)
    missing = (vocab_map < 0).reshape([-1 if a == axis else 1 for a in range(old.ndim)])
    old = np.where(missing, mean, taken)
  return np.asarray(old, dtype=np.asarray(new).dtype)


def _embedding_rows(tree: Any) -> int | None:
  """The vocabulary size of a parameter tree: the rows of its ``embedding`` leaves, if one size."""
  rows = {np.shape(v)[0] for p, v in _flatten_paths(tree).items()
          if p and p[-1] == "embedding" and np.ndim(v) == 2}
  return rows.pop() if len(rows) == 1 else None


def _vocab_axis(leaf_name: str, old_shape: tuple, new_shape: tuple, old_vocab: int | None,
                new_vocab: int) -> int | None:
  """The vocabulary axis of a leaf, or ``None`` if it is not vocabulary-indexed.

  An ``embedding`` always is (axis 0; ``_fits`` then checks its shapes); a
  ``kernel`` / ``bias`` (or ``*_bias``, e.g. a tied softmax's ``softmax_bias``) only where
  its last axis fits both vocabularies.
  """
  if leaf_name == "embedding" and len(old_shape) >= 1:
    return 0
  weight = leaf_name in ("kernel", "bias") or leaf_name.endswith("_bias")
  if weight and old_vocab is not None and len(old_shape) >= 1:
    axis = len(old_shape) - 1
    if old_shape[axis] == old_vocab and _fits(old_shape, new_shape, axis, new_vocab):
      return axis
  return None


def _fits(old_shape: tuple, new_shape: tuple, axis: int, new_vocab: int) -> bool:
  """Whether ``new_shape`` is ``old_shape`` with ``new_vocab`` entries on ``axis``."""
  rest = lambda shape: shape[:axis] + shape[axis + 1:]
  return (len(old_shape) == len(new_shape) and new_shape[axis] == new_vocab
          and rest(old_shape) == rest(new_shape))


def vocab_mapping(old_tokenizer, new_tokenizer) -> np.ndarray:
  """``int32[new_vocab]``: the checkpoint's id of each new token (by string), -1 where absent.

  A token without an exact match takes the id of the first checkpoint token
  with the same lowercased, ``▁``-stripped form (``_loose``).

  Either argument may be a tokenizer or a list of token strings in id order.
  The special tokens (``<pad>``, ``<unk>``, ``<s>``, ``</s>``) have the same
  strings in every xferlab tokenizer, so they always map to each other.
  """
  listed = lambda t: list(t) if isinstance(t, (list, tuple)) else vocabulary(t)
  old_ids, loose_ids = {}, {}
  for i, token in enumerate(listed(old_tokenizer)):
    old_ids.setdefault(token, i)
    loose_ids.setdefault(_loose(token), i)
  return np.array([old_ids.get(t, loose_ids.get(_loose(t), -1)) for t in listed(new_tokenizer)],
                  dtype=np.int32)


def _loose(token: str) -> str:
  """The fallback key of a token: lowercased, sentencepiece's word-start mark ``▁`` removed
  (so the piece ``▁Great`` finds the word ``great`` of a word-level vocabulary)."""
  return token.replace("\u2581", "").lower() or token


def tokenizer_dir(path: str) -> str:
  """The ``tokenizer/`` folder of the run a checkpoint belongs to.

  ``path`` is what ``init_from.path`` accepts: a workdir, its ``best/`` or
  ``checkpoints/``, or a step directory below them.
  """
  here = os.path.abspath(path)
  looked = []
  for _ in range(4):
    candidate = os.path.join(here, "tokenizer")
    looked.append(candidate)
    if os.path.exists(os.path.join(candidate, "tokenizer.json")):
      return candidate
    here = os.path.dirname(here)
  raise FileNotFoundError(f"No tokenizer for the checkpoint {path}; looked in: {', '.join(looked)}."
                          " Set init_from.vocab to the source run's tokenizer directory.")


def init_sources(init_config) -> list[tuple[str, tuple[str, ...], str]]:
  """``(path, subtrees, vocab)`` of every checkpoint ``config.init_from`` restores from, in
  the order they are applied (a later one wins where subtrees overlap).

  First ``init_from.path`` with ``init_from.subtrees`` and ``init_from.vocab`` (if a path is
  set), then each entry of ``init_from.extra`` (optional key): ``(path, subtrees)`` or
  ``(path, subtrees, vocab)``, ``subtrees`` a tuple of names (``"new=old"`` renames) or one
  name, ``vocab`` as ``init_from.vocab`` (default ``''``). E.g. a decoder language model's
  decoder side in ``path`` and a translation parent's encoder in ``extra``::

    init_from.extra = (("runs/translation/en-fr", ("seq2seq.encoder.rnn", "seq2seq.bridge")),)
  """
  sources = []
  if init_config.path:
    sources.append((init_config.path, tuple(init_config.subtrees), init_config.vocab))
  for i, entry in enumerate(init_config.get("extra", ()) or ()):
    if (not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3)
        or not isinstance(entry[0], str) or not entry[0]):
      raise ValueError(f"init_from.extra[{i}] = {entry!r}: expected (path, subtrees) or "
                       "(path, subtrees, vocab), e.g. ('runs/parent', ('seq2seq.encoder',))")
    subtrees = (entry[1],) if isinstance(entry[1], str) else tuple(entry[1])
    sources.append((entry[0], subtrees, entry[2] if len(entry) == 3 else ""))
  return sources


def restore_init_from(params: dict, init_config, tokenizer) -> dict:
  """``params`` with the subtrees of every ``init_sources`` checkpoint restored, in order
  (each across vocabularies as its ``vocab`` asks, ``source_vocab_map``)."""
  for path, subtrees, vocab in init_sources(init_config):
    params = restore_subtrees(params, path, subtrees, source_vocab_map(path, vocab, tokenizer))
  return params


def check_prerequisites(config) -> None:
  """Fails before any work when a model, tokenizer or corpus a run starts from does not exist.

  Checks every ``init_from`` checkpoint (``init_sources``), ``data.tokenizer_path`` and (if
  the configuration has it) ``translation.synthetic_pairs`` (for every task: the trainer calls it
  before it writes anything). The error names ``init_from.made_by``, the commands that make
  what is missing.
  """
  paths = [("init_from.path" if i == 0 and config.init_from.path else "init_from.extra", path)
           for i, (path, _, _) in enumerate(init_sources(config.init_from))]
  paths += [("data.tokenizer_path", config.data.tokenizer_path),
            ("translation.synthetic_pairs",
             config.get("translation", {}).get("synthetic_pairs", ""))]
  missing = [(key, path) for key, path in paths if path and not os.path.exists(path)]
  if missing:
    made_by = config.init_from.get("made_by", "")
    raise FileNotFoundError(
        " and ".join(f"{key} = {path!r}" for key, path in missing) + " not found (relative to "
        f"{os.getcwd()}). " + (f"Make it first: {made_by}" if made_by else
                               "Train that model first, or point the key at it."))


def init_from_vocab_map(init_config, tokenizer) -> np.ndarray | None:
  """The ``vocab_map`` for ``restore_subtrees`` that ``config.init_from`` asks for.

  ``init_config.vocab``: ``''`` -> ``None`` (the checkpoint has this run's
  vocabulary); ``'auto'`` -> the tokenizer saved in the checkpoint's workdir
  (``tokenizer_dir(init_config.path)``); else a tokenizer directory. The map
  is ``vocab_mapping(that tokenizer, tokenizer)``.
  """
  return source_vocab_map(init_config.path, init_config.vocab, tokenizer)


def source_vocab_map(path: str, vocab: str, tokenizer) -> np.ndarray | None:
  """``init_from_vocab_map`` of one checkpoint ``path`` with its ``vocab`` setting."""
  if not vocab:
    return None
  directory = tokenizer_dir(path) if vocab == "auto" else vocab
  return vocab_mapping(load_tokenizer(directory), tokenizer)


def _has(tree, dotted):
  try:
    _get_subtree(tree, dotted)
    return True
  except KeyError:
    return False


def _rekey(source: Any, like: Any) -> Any:
  """``source`` with its dict keys converted to the key types of ``like`` (orbax stores str)."""
  if isinstance(like, Mapping):
    lookup = {str(k): k for k in source}
    return {k: _rekey(source[lookup[str(k)]], v) for k, v in like.items()}
  return source


def _set_subtree(tree: dict, dotted: str, value: Any) -> None:
  parts = dotted.split(".")
  node = _get_subtree(tree, ".".join(parts[:-1])) if len(parts) > 1 else tree
  key = {str(k): k for k in node}[parts[-1]]
  node[key] = value


# ------------------------------------------------------------------------------
# ULMFiT's fine-tuning controls.

def ulmfit_groups(params: Any) -> list[tuple[str, str]]:
  """ULMFiT's layer groups of our encoder, bottom to top, as ``(name, prefix)`` pairs.

  ``embed`` (every ``.../encoder/embed``), then ``layer0``, ``layer1``, ...
  (every ``.../encoder/rnn/layers/<i>``; both directions of a bidirectional
  layer). Everything else (the classifier head, the transfer module, a
  decoder) is the top group, ``TOP``, which ``param_labels`` assigns by default.
  A name may carry several prefixes (a model with two encoders).
  """
  embed, layers = [], {}
  for path in leaf_paths(params):
    for j in range(len(path) - 1):
      if path[j] != "encoder":
        continue
      if path[j + 1] == "embed":
        embed.append(path[:j + 2])
      elif path[j + 1:j + 3] == ("rnn", "layers") and len(path) > j + 3:
        layers.setdefault(int(path[j + 3]), []).append(path[:j + 4])
  unique = lambda paths: list(dict.fromkeys("/".join(p) for p in paths))
  groups = [("embed", p) for p in unique(embed)]
  for i in sorted(layers):
    groups += [(f"layer{i}", p) for p in unique(layers[i])]
  return groups


def group_names(groups: Sequence[tuple[str, str]], default: str = TOP) -> list[str]:
  """The group names bottom to top: in order of first appearance, then ``default``."""
  names = list(dict.fromkeys(name for name, _ in groups))
  return [n for n in names if n != default] + [default]


def param_labels(params: Any, groups: Sequence[tuple[str, str]], frozen: Sequence[str] = (),
                 default: str = TOP) -> Any:
  """A pytree like ``params`` holding each leaf's label (a ``str``).

  A leaf under any ``frozen`` prefix is labeled ``FROZEN``; otherwise it takes
  the name of the first group whose prefix it lies under, else ``default``.
  Raises ``ValueError`` if a frozen or group prefix names no parameter.
  """
  if FROZEN in {name for name, _ in groups} | {default}:
    raise ValueError(f"{FROZEN!r} is reserved for frozen parameters; rename that group")
  check_prefixes(params, frozen, "finetune.frozen prefixes")
  check_prefixes(params, [p for _, p in groups], "Layer-group prefixes")
  frozen = [split_prefix(p) for p in frozen]
  groups = [(name, split_prefix(p)) for name, p in groups]

  def label(path, _):
    if any(has_prefix(path, f) for f in frozen):
      return FROZEN
    return next((name for name, prefix in groups if has_prefix(path, prefix)), default)

  return map_with_paths(label, params)


def learning_rate_multipliers(names: Sequence[str], factor: float) -> dict[str, float]:
  """``{name: factor ** -k}`` for groups ``names`` (bottom to top), ``k`` counted from the top.

  ``factor`` 0 or 1 switches discriminative rates off (every multiplier 1).
  """
  if factor < 0:
    raise ValueError(f"discriminative_factor must be >= 0, got {factor}")
  top = len(names) - 1
  return {n: (1.0 / factor ** (top - i) if factor else 1.0) for i, n in enumerate(names)}


def unfreeze_steps(names: Sequence[str], every: int) -> dict[str, int]:
  """``{name: first step it trains}``: ``k · every`` for the group ``k`` below the top.

  ``every`` 0 switches gradual unfreezing off (every group trains from step 0).
  """
  if every < 0:
    raise ValueError(f"unfreeze_every must be >= 0, got {every}")
  top = len(names) - 1
  return {n: (top - i) * every for i, n in enumerate(names)}


def _from_step(inner: optax.GradientTransformation, start: int) -> optax.GradientTransformation:
  """``inner`` from step ``start`` on; before it, zero updates and ``inner``'s state untouched."""
  if start <= 0:
    return inner
  return optax.transforms.conditionally_mask(inner, lambda step: step >= start)


def make_finetune_optimizer(
    direction_fn: Callable[[], optax.GradientTransformation], params: Any, *,
    learning_rate: float | optax.Schedule, groups: Sequence[tuple[str, str]] | None = None,
    frozen: Sequence[str] = (), discriminative_factor: float = 2.6, unfreeze_every: int = 0,
    grad_clip: float = 0.0) -> optax.GradientTransformation:
  """An optax transformation with per-group rates, frozen subtrees and gradual unfreezing.

  Args:
    direction_fn: builds the learning-rate-free optimizer of one group
      (``lambda: optax.scale_by_adam()``; see ``direction``). Called once per group.
    params: the pure parameter dict (only its structure and paths are read).
    learning_rate: the top group's rate, a float or an optax schedule of the
      global step.
    groups: ``(name, prefix)`` pairs bottom to top (default ``ulmfit_groups``);
      leaves under no prefix form the top group ``TOP``.
    frozen: prefixes of subtrees that never change.
    discriminative_factor: group ``k`` below the top trains at
      ``learning_rate / factor ** k``; 0 or 1 = the same rate everywhere.
    unfreeze_every: steps per gradual-unfreezing stage; group ``k`` below the top
      trains from step ``k · unfreeze_every``. 0 = everything trains from step 0.
    grad_clip: global-norm clipping of the trainable gradients; 0 = none.

  See the module docstring for how the optimizer state of a group that
  unfreezes is handled.
  """
  groups = ulmfit_groups(params) if groups is None else list(groups)
  labels = param_labels(params, groups, frozen)
  names = group_names(groups)
  rates = learning_rate_multipliers(names, discriminative_factor)
  starts = unfreeze_steps(names, unfreeze_every)

  def group_rate(name):
    mult = rates[name]
    if callable(learning_rate):
      return lambda count: learning_rate(count) * mult
    return learning_rate * mult

  transforms = {FROZEN: optax.set_to_zero()}
  for name in names:
    transforms[name] = optax.chain(_from_step(direction_fn(), starts[name]),
                                   optax.scale_by_learning_rate(group_rate(name)))
  tx = optax.multi_transform(transforms, labels)
  if grad_clip:
    # Zero what does not train yet, so that only trainable gradients enter the norm.
    gates = {FROZEN: optax.set_to_zero()}
    gates.update({name: _from_step(optax.identity(), starts[name]) for name in names})
    tx = optax.chain(optax.multi_transform(gates, labels), optax.clip_by_global_norm(grad_clip),
                     tx)
  return tx


def frozen_prefixes(config, params: Any) -> tuple[str, ...]:
  """``finetune.frozen``, its entry ``"embedding"`` (``defaults.FROZEN_EMBEDDING``) replaced by
  the path of every encoder embedding of ``params`` (``embedding_paths``: the classifier's,
  the language model's and the seq2seq model's alike)."""
  frozen = tuple(p for p in config.finetune.frozen if p != FROZEN_EMBEDDING)
  if FROZEN_EMBEDDING in tuple(config.finetune.frozen):
    frozen += tuple("/".join(p) for p in embedding_paths(params))
  return frozen


def build_optimizer(config, params: Any, total_steps: int) -> optax.GradientTransformation:
  """The optimizer of a run: ``config.optimizer`` plus the ``config.finetune`` controls.

  ``params`` is the pure parameter dict the trainer optimizes (its paths give
  the labels). Without frozen parameters, discriminative rates or gradual
  unfreezing this is ``optim.make_optimizer(config.optimizer, total_steps)``.
  """
  o, f = config.optimizer, config.finetune
  frozen = frozen_prefixes(config, params)
  factor = f.discriminative_factor if f.discriminative_factor != 1 else 0
  if not frozen and not factor and not f.unfreeze_every:
    return optim.make_optimizer(o, total_steps)
  optim.direction(o)  # fail early on an unknown optimizer name
  groups = ulmfit_groups(params)
  if config.task == "language_model" and config.model.tie_embeddings:
    # The tied embedding is also the softmax layer: it trains with the top group, as in
    # ULMFiT's language-model fine-tuning (fastai's awd_lstm_lm_split), not at the lowest rate.
    groups = [(name, prefix) for name, prefix in groups if name != "embed"]
  return make_finetune_optimizer(
      lambda: optim.direction(o), params, learning_rate=optim.make_schedule(o, total_steps),
      groups=groups, frozen=frozen, discriminative_factor=factor,
      unfreeze_every=f.unfreeze_every, grad_clip=o.grad_clip)

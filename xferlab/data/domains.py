"""Domain-adaptation corpora as texts: the four parts every transfer experiment reads.

``load_domain_adaptation(data_config)`` returns::

  {"source_train": (texts, labels), "source_val": (texts, labels),
   "target_unlabeled": texts, "target_test": (texts, labels)}

Labels are ints (1 positive, 0 negative). The target test labels are only
ever used for evaluation. ``data.name`` picks the corpus and protocol:

* ``synthetic``: the generated two-domain corpus (``xferlab.data.synthetic``);
* ``amazon``: protocol A, the Blitzer et al. 2007 benchmark (``_amazon``);
* ``amazon_hatn``: protocol B, the HATN benchmark (``_amazon_hatn``);
* ``movie``: movie reviews (``imdb_2k`` or ``rt_polarity``) to an Amazon
  domain (``_movie``);
* ``imdb``: the IMDb benchmark itself (``imdb_full``; ``_imdb``): a labeled
  budget of its 25,000 training reviews, tested on its 25,000 test reviews.

Every split that depends on a random choice uses a fixed seed (0), never the
run's seed, so every arm and seed of an experiment sees the same data.
``data.in_domain`` (the real corpora) replaces the source parts by labeled
reviews of the *target* domain that are not in its test set: the in-domain
upper bound, tested on the same target test set.
"""

from __future__ import annotations

import re

import numpy as np

from xferlab.config import ConfigError
from xferlab.data import synthetic


def _synthetic(data_config, seed: int = 0) -> dict:
  del seed
  fields = {f for f in synthetic.SyntheticSpec.__dataclass_fields__}
  options = dict(data_config.synthetic)
  unknown = set(options) - fields
  if unknown:
    raise ValueError(f"Unknown data.synthetic options {sorted(unknown)}; valid: {sorted(fields)}")
  spec = synthetic.SyntheticSpec(source=data_config.source, target=data_config.target, **options)
  return synthetic.generate(spec)


AMAZON_DOMAINS = ("books", "dvd", "electronics", "kitchen")
MOVIE_SOURCES = ("imdb_2k", "rt_polarity", "imdb_full")
AMAZON_VALIDATION = 400   # of each domain's 2,000 labeled reviews, held out (protocol A)
HATN_TRAIN_PER_CLASS = 2800   # protocol B: at most 2,800 + 2,800 source training reviews
HATN_VALIDATION_PER_CLASS = 200   # protocol B: at least 200 + 200 held out for validation
MOVIE_VALIDATION_FRACTION = 0.1   # movie sources: 90 % train, 10 % validation
IN_DOMAIN_VALIDATION_FRACTION = 0.1   # data.in_domain: 90 % train, 10 % validation


def _in_domain(data_config) -> bool:
  return bool(data_config.get("in_domain", False))   # configs saved before the option lack it


def _rows(name: str, data_config) -> list[dict]:
  from xferlab.data import load
  return list(load(name, "train", manual_dir=data_config.manual_dir or None))


def _check_domain(domain: str, role: str) -> None:
  if domain not in AMAZON_DOMAINS:   # a wrong configuration value: launch.py exits with 2
    raise ConfigError(f"data.{role} = {domain!r} is not an Amazon domain; choose one of "
                      f"{AMAZON_DOMAINS}")


def source_domains(source: str) -> list[str]:
  """``"books+dvd+electronics"`` -> ``["books", "dvd", "electronics"]``: protocol A's source may
  be several Amazon domains joined by '+' (multi-source training on their union)."""
  return source.split("+")


def _check_sources(data_config) -> None:
  """Each of ``data.source``'s domains is an Amazon domain, none repeated, and a source of
  several domains does not include the target."""
  parts = source_domains(data_config.source)
  for part in parts:
    _check_domain(part, "source")
  if len(parts) > 1 and (len(set(parts)) < len(parts) or data_config.target in parts):
    raise ValueError(f"data.source = {data_config.source!r}: several source domains must be "
                     f"distinct and exclude the target ({data_config.target!r})")


def _texts_labels(rows) -> tuple[list[str], np.ndarray]:
  return [r["text"] for r in rows], np.array([r["label"] for r in rows], np.int64)


def _shuffled_split(texts, labels, num_val: int):
  """``(train, val)`` of ``(texts, labels)``: a fixed (seed 0) permutation, the last
  ``num_val`` examples held out."""
  order = np.random.default_rng(0).permutation(len(texts))
  texts = [texts[i] for i in order]
  labels = np.asarray(labels)[order]
  cut = len(texts) - num_val
  return (texts[:cut], labels[:cut]), (texts[cut:], labels[cut:])


def _concatenated(splits) -> tuple[list[str], np.ndarray]:
  """Several ``(texts, labels)`` as one, in order."""
  return ([t for texts, _ in splits for t in texts],
          np.concatenate([labels for _, labels in splits]))


def _distinct(rows, flag: str | None = None) -> list[dict]:
  """``rows`` without repeats: those flagged ``flag`` dropped, else later copies of a text."""
  if flag is not None:
    return [r for r in rows if not r[flag]]
  seen, out = set(), []
  for r in rows:
    if r["text"] not in seen:
      seen.add(r["text"])
      out.append(r)
  return out


def _normalized(text: str) -> str:
  """Lowercase alphanumerics only: how ``amazon_hatn`` flags ``in_blitzer_labeled``."""
  return re.sub(r"[^a-z0-9]", "", text.lower())


def _fraction_split(rows, fraction: float):
  texts, labels = _texts_labels(rows)
  return _shuffled_split(texts, labels, int(round(fraction * len(texts))))


def _blitzer_test(data_config) -> tuple[list[str], np.ndarray]:
  """The target domain's 2,000 labeled ``amazon_multi_domain`` reviews."""
  return _texts_labels(_rows(f"amazon_multi_domain/{data_config.target}", data_config))


def _unlabeled(data_config) -> list[str]:
  """``amazon_unlabeled`` of the target domain: HATN reviews minus duplicates and minus every
  Blitzer-labeled one, so no protocol-A test review leaks in."""
  return [r["text"] for r in _rows(f"amazon_unlabeled/{data_config.target}", data_config)]


def _in_domain_for_blitzer_test(data_config):
  """Labeled target reviews disjoint from the target's Blitzer test reviews: its
  ``amazon_hatn`` rows that are neither duplicates nor ``in_blitzer_labeled`` nor equal to a
  test review after normalization (the flag misses a few: 9 in dvd), split 90/10."""
  test = {_normalized(t) for t in _blitzer_test(data_config)[0]}
  rows = [r for r in _rows(f"amazon_hatn/{data_config.target}", data_config)
          if not r["duplicate"] and not r["in_blitzer_labeled"]
          and _normalized(r["text"]) not in test]
  return _fraction_split(rows, IN_DOMAIN_VALIDATION_FRACTION)


def _in_domain_for_hatn_test(data_config):
  """Labeled target reviews disjoint from all 6,000 ``amazon_hatn`` target reviews: its
  Blitzer (``amazon_multi_domain``) reviews whose normalized text is no HATN review's
  (nor a repeat), split 90/10."""
  hatn = {_normalized(r["text"]) for r in _rows(f"amazon_hatn/{data_config.target}", data_config)}
  rows = [r for r in _rows(f"amazon_multi_domain/{data_config.target}", data_config)
          if not r["duplicate"] and _normalized(r["text"]) not in hatn]
  return _fraction_split(rows, IN_DOMAIN_VALIDATION_FRACTION)


def subset_count(subset_size: float, available: int) -> int:
  """How many of ``available`` examples ``data.subset_size`` keeps: 0 = all, a share in
  (0, 1) (at least one), or a whole count (at most ``available``)."""
  if subset_size < 0 or (subset_size >= 1 and subset_size != int(subset_size)):
    raise ValueError(f"data.subset_size must be 0 (all), a share in (0, 1) or a whole count, "
                     f"got {subset_size}")
  if subset_size == 0:
    return available
  if subset_size < 1:
    return max(1, round(available * subset_size))
  if subset_size > available:
    raise ValueError(f"data.subset_size = {int(subset_size)}, but there are {available} "
                     "training examples")
  return int(subset_size)


def subset_seed(data_config, seed: int) -> int:
  """``data.subset_seed``, or the run's ``seed`` when it is -1."""
  return seed if data_config.subset_seed < 0 else data_config.subset_seed


def _with_subset(train, data_config, seed: int):
  """``data.subset_size`` (> 0): that many (or that share of the) training reviews,
  class-balanced, chosen with ``data.subset_seed`` (-1 = the run's seed)."""
  if not data_config.subset_size:
    return train
  return balanced_subset(train[0], train[1], subset_count(data_config.subset_size, len(train[0])),
                         subset_seed(data_config, seed))


def _amazon(data_config, seed: int = 0) -> dict:
  """Protocol A on ``amazon_multi_domain`` (Blitzer et al. 2007).

  Source: its 2,000 labeled reviews, split once (fixed seed 0, never the run's
  seed) into 1,600 training and 400 validation reviews; ``data.subset_size``
  (> 0) keeps only that many training reviews, class-balanced, chosen with
  ``data.subset_seed`` (-1 = the run's seed). Target unlabeled text: ``amazon_unlabeled`` of the
  target domain (HATN reviews minus every Blitzer-labeled one, so no test
  review leaks in). Target test: the target domain's 2,000 labeled reviews or,
  when source == target (in-domain), the source's 400 held-out reviews.

  Several source domains (``data.source = "books+dvd+electronics"``, distinct, without the
  target): each split as above, their 1,600s trained on together and their 400s validated
  on together (multi-source training on the union).

  ``data.in_domain``: train and validate (90/10) on the target domain's
  ``amazon_hatn`` reviews that are not in its test set (neither duplicates nor
  ``in_blitzer_labeled``: 5,391 to 5,768 per domain); the test set stays the
  target's 2,000 Blitzer reviews.
  """
  _check_sources(data_config)
  _check_domain(data_config.target, "target")
  unlabeled = _unlabeled(data_config)
  if _in_domain(data_config):
    train, source_val = _in_domain_for_blitzer_test(data_config)
    return {"source_train": _with_subset(train, data_config, seed), "source_val": source_val,
            "target_unlabeled": unlabeled, "target_test": _blitzer_test(data_config)}
  parts = [_shuffled_split(*_texts_labels(_rows(f"amazon_multi_domain/{domain}", data_config)),
                           AMAZON_VALIDATION) for domain in source_domains(data_config.source)]
  train, source_val = (_concatenated([part[k] for part in parts]) for k in (0, 1))
  target_test = source_val if data_config.target == data_config.source else _blitzer_test(
      data_config)
  return {"source_train": _with_subset(train, data_config, seed), "source_val": source_val,
          "target_unlabeled": unlabeled, "target_test": target_test}


def _amazon_hatn(data_config, seed: int = 0) -> dict:
  """Protocol B on ``amazon_hatn`` (the HATN benchmark, Li et al. 2018).

  Source: the source domain's ``amazon_hatn`` reviews without the rows flagged
  ``duplicate``; of each class, ``n`` are chosen for training with a fixed seed
  (0), class balanced, ``n = min(2,800, size of the smaller class - 200)`` --
  HATN trains on 2,800 + 2,800 of 3,000 + 3,000 rows, but once duplicates are
  dropped the dvd and electronics negatives number fewer than 2,800, so at least
  200 + 200 are kept for validation: n is 2,661 (books), 2,565 (dvd), 2,583
  (electronics), 2,668 (kitchen). Every other distinct source row is
  ``source_val``. Target unlabeled text: ``amazon_unlabeled`` of the target
  domain (the HATN release's own unlabeled files are not available, so it is the
  test reviews' text, labels dropped: the transductive setting). Target test:
  all 6,000 ``amazon_hatn`` reviews of the target domain, as HATN reports.

  ``data.in_domain``: train and validate (90/10) on the target's Blitzer reviews
  that are not among its HATN reviews (see ``_in_domain_for_hatn_test``).
  """
  _check_domain(data_config.source, "source")
  _check_domain(data_config.target, "target")
  target_test = _texts_labels(_rows(f"amazon_hatn/{data_config.target}", data_config))
  unlabeled = _unlabeled(data_config)
  if _in_domain(data_config):
    train, source_val = _in_domain_for_hatn_test(data_config)
  else:
    texts, labels = _texts_labels(_distinct(
        _rows(f"amazon_hatn/{data_config.source}", data_config), "duplicate"))
    per_class = {c: int(np.sum(labels == c)) for c in (0, 1)}
    n = min(HATN_TRAIN_PER_CLASS, min(per_class.values()) - HATN_VALIDATION_PER_CLASS)
    rng = np.random.default_rng(0)
    picked = np.zeros(len(texts), bool)
    for c in (0, 1):
      picked[rng.choice(np.flatnonzero(labels == c), size=n, replace=False)] = True
    train = ([t for t, p in zip(texts, picked) if p], labels[picked])
    source_val = ([t for t, p in zip(texts, picked) if not p], labels[~picked])
  return {"source_train": _with_subset(train, data_config, seed), "source_val": source_val,
          "target_unlabeled": unlabeled, "target_test": target_test}


def _movie(data_config, seed: int = 0) -> dict:
  """Movie reviews to an Amazon product domain.

  Source (``data.source``): ``imdb_2k`` (2,000 document-level IMDB reviews),
  ``rt_polarity`` (10,662 Rotten Tomatoes snippets) or ``imdb_full`` (the 25,000
  labeled IMDb training reviews, 24,901 without the rows flagged ``duplicate``),
  repeated texts dropped, split once (fixed seed 0) into 90 % training and 10 % validation. Target
  (``data.target``, an Amazon domain): unlabeled text from ``amazon_unlabeled``,
  test on its 2,000 ``amazon_multi_domain`` reviews, as in protocol A.
  ``data.in_domain`` trains on the target's reviews as ``_amazon`` does.
  """
  if data_config.source not in MOVIE_SOURCES and not _in_domain(data_config):
    raise ValueError(f"data.source = {data_config.source!r}: the movie protocol reads "
                     f"one of {MOVIE_SOURCES}")
  _check_domain(data_config.target, "target")
  if _in_domain(data_config):
    train, source_val = _in_domain_for_blitzer_test(data_config)
  else:
    flag = None if data_config.source == "rt_polarity" else "duplicate"
    train, source_val = _fraction_split(_distinct(_rows(data_config.source, data_config), flag),
                                        MOVIE_VALIDATION_FRACTION)
  return {"source_train": _with_subset(train, data_config, seed), "source_val": source_val,
          "target_unlabeled": _unlabeled(data_config), "target_test": _blitzer_test(data_config)}


IMDB_VALIDATION_FRACTION = 0.1   # imdb: of the labeled budget, held out for model choice


def _imdb(data_config, seed: int = 0) -> dict:
  """The IMDb benchmark (Maas et al. 2011) on ``imdb_full``.

  The labeled budget: ``data.subset_size`` training reviews (0 = all 25,000),
  class-balanced, chosen with ``data.subset_seed`` (-1 = the run's seed), so each
  seed reads a different subset. Validation is carved from that budget and only
  from it (10 %, at least 2 reviews, class-balanced, with the same seed); the
  rest trains. Target unlabeled text: the 50,000 ``unsup`` reviews. Test: the
  25,000 test reviews, as published results use them (not deduplicated).
  ``data.source`` and ``data.target`` are not read.
  """
  from xferlab.data import load
  manual_dir = data_config.manual_dir or None
  train = _texts_labels(load("imdb_full", "train", manual_dir=manual_dir))
  chosen = subset_seed(data_config, seed)
  if data_config.subset_size:
    train = balanced_subset(train[0], train[1],
                            subset_count(data_config.subset_size, len(train[0])), chosen)
  num_val = max(2, int(round(IMDB_VALIDATION_FRACTION * len(train[0]))))
  val_texts, val_labels = balanced_subset(train[0], train[1], num_val, chosen + 1_000_003)
  held = set(val_texts)
  keep = [i for i, t in enumerate(train[0]) if t not in held]
  source_train = ([train[0][i] for i in keep], train[1][keep])
  unlabeled = [r["text"] for r in load("imdb_full", "unsup", manual_dir=manual_dir)]
  return {"source_train": source_train, "source_val": (val_texts, val_labels),
          "target_unlabeled": unlabeled,
          "target_test": _texts_labels(load("imdb_full", "test", manual_dir=manual_dir))}


def balanced_subset(texts, labels, n: int, seed: int):
  """``n`` examples chosen with ``seed``, half of each class as near as the data allow.

  A class with fewer examples than its half gives all of them and the other
  class fills the rest; ``n`` equal to the split's size keeps every example.
  """
  if n > len(texts):
    raise ValueError(f"data.subset_size = {n}, but the training split has {len(texts)} reviews")
  rng = np.random.default_rng(seed)
  classes = sorted(set(labels.tolist()))
  pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
  share = {c: min(len(pools[c]), n // len(classes) + (k < n % len(classes)))
           for k, c in enumerate(classes)}
  rest = np.concatenate([pools[c][share[c]:] for c in classes])
  picked = [i for c in classes for i in pools[c][:share[c]].tolist()]
  picked += rng.permutation(rest)[:n - len(picked)].tolist()
  picked = sorted(picked)
  return [texts[i] for i in picked], labels[picked]


def corpora(data_config) -> list[str]:
  """The catalog corpora ``load_domain_adaptation(data_config)`` reads, for
  ``catalog.check_available`` to find every missing one before a run writes anything;
  a bad ``data.source`` / ``data.target`` fails here, in one line."""
  name, source, target = data_config.name, data_config.source, data_config.target
  in_domain = _in_domain(data_config)
  if name == "imdb":
    return ["imdb_full"]
  if name == "synthetic":                      # generated: no corpus, but the same check
    for role, domain in (("source", source), ("target", target)):
      if domain not in synthetic.DOMAINS:
        raise ConfigError(f"data.{role} = {domain!r} is not a synthetic domain; choose one of "
                          f"{tuple(sorted(synthetic.DOMAINS))}")
    return []
  if name not in ("amazon", "amazon_hatn", "movie"):
    return []                                  # an unknown name fails in the loader
  if name == "movie" and not in_domain:
    if source not in MOVIE_SOURCES:
      raise ConfigError(f"data.source = {source!r}: the movie protocol reads one of "
                        f"{MOVIE_SOURCES}")
  elif name == "amazon" and not in_domain:
    _check_sources(data_config)
  elif name != "movie" or not in_domain:
    _check_domain(source, "source")
  _check_domain(target, "target")
  names = [f"amazon_unlabeled/{target}"]
  if name == "amazon_hatn":
    names.append(f"amazon_hatn/{target}")
    names.append(f"amazon_multi_domain/{target}" if in_domain else f"amazon_hatn/{source}")
  else:
    names.append(f"amazon_multi_domain/{target}")
    if in_domain or name == "movie":
      names.append(f"amazon_hatn/{target}" if in_domain else source)
    else:
      names += [f"amazon_multi_domain/{part}" for part in source_domains(source)]
  return names


LOADERS = {"synthetic": _synthetic, "amazon": _amazon, "amazon_hatn": _amazon_hatn,
           "movie": _movie, "imdb": _imdb}


def load_domain_adaptation(data_config, seed: int = 0) -> dict:
  """Loads the corpus named by ``data.name`` for the ``data.source -> data.target`` pair.

  ``seed`` (the run's) chooses the labeled subset when ``data.subset_size`` is
  set and ``data.subset_seed`` is -1.
  """
  if data_config.name not in LOADERS:
    raise ValueError(f"Unknown data.name {data_config.name!r}; choose one of {sorted(LOADERS)}")
  if _in_domain(data_config) and data_config.name == "synthetic":
    raise ValueError("data.in_domain needs a real corpus (amazon, amazon_hatn, movie)")
  return LOADERS[data_config.name](data_config, seed)

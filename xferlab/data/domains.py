"""Domain-adaptation corpora as texts: the four parts every transfer experiment reads.

``load_domain_adaptation(data_config)`` returns::

  {"source_train": (texts, labels), "source_val": (texts, labels),
   "target_unlabeled": texts, "target_test": (texts, labels)}

Labels are ints (1 positive, 0 negative). The target test labels are only
ever used for evaluation.
"""

from __future__ import annotations

from xferlab.data import synthetic


def _synthetic(data_config) -> dict:
  fields = {f for f in synthetic.SyntheticSpec.__dataclass_fields__}
  options = dict(data_config.synthetic)
  unknown = set(options) - fields
  if unknown:
    raise ValueError(f"Unknown data.synthetic options {sorted(unknown)}; valid: {sorted(fields)}")
  spec = synthetic.SyntheticSpec(source=data_config.source, target=data_config.target, **options)
  return synthetic.generate(spec)


AMAZON_VALIDATION = 400   # of each domain's 2,000 labeled reviews, held out (protocol A)


def _amazon(data_config, seed: int = 0) -> dict:
  """Protocol A on ``amazon_multi_domain`` (Blitzer et al. 2007).

  Source: its 2,000 labeled reviews, split once (fixed seed 0, never the run's
  seed) into 1,600 training and 400 validation reviews; ``data.num_labels``
  (> 0) keeps only that many training reviews, class-balanced, chosen with
  ``data.label_seed`` (-1 = the run's seed). Target unlabeled text: ``amazon_unlabeled`` of the
  target domain (HATN reviews minus every Blitzer-labeled one, so no test
  review leaks in). Target test: the target domain's 2,000 labeled reviews or,
  when source == target (in-domain), the source's 400 held-out reviews.
  """
  import numpy as np
  from xferlab.data import load
  manual = data_config.manual_dir or None
  rows = list(load(f"amazon_multi_domain/{data_config.source}", "train", manual_dir=manual))
  order = np.random.default_rng(0).permutation(len(rows))
  texts = [rows[i]["text"] for i in order]
  labels = np.array([rows[i]["label"] for i in order])
  cut = len(rows) - AMAZON_VALIDATION
  train_texts, train_labels = texts[:cut], labels[:cut]
  if data_config.num_labels:
    train_texts, train_labels = _balanced_subset(train_texts, train_labels,
                                                 data_config.num_labels,
                                                 seed if data_config.label_seed < 0
                                                 else data_config.label_seed)
  source_val = (texts[cut:], labels[cut:])
  if data_config.target == data_config.source:
    target_test = source_val
  else:
    target_rows = list(load(f"amazon_multi_domain/{data_config.target}", "train",
                            manual_dir=manual))
    target_test = ([r["text"] for r in target_rows], np.array([r["label"] for r in target_rows]))
  unlabeled = [r["text"] for r in load(f"amazon_unlabeled/{data_config.target}", "train",
                                       manual_dir=manual)]
  return {"source_train": (train_texts, train_labels), "source_val": source_val,
          "target_unlabeled": unlabeled, "target_test": target_test}


def _balanced_subset(texts, labels, n: int, seed: int):
  """``n`` examples, half of each class (as near as possible), chosen with ``seed``."""
  import numpy as np
  if n > len(texts):
    raise ValueError(f"data.num_labels = {n}, but the training split has {len(texts)} reviews")
  rng = np.random.default_rng(seed)
  picked = []
  classes = sorted(set(labels.tolist()))
  for k, c in enumerate(classes):
    pool = np.flatnonzero(labels == c)
    take = n // len(classes) + (k < n % len(classes))
    picked.extend(rng.choice(pool, size=take, replace=False).tolist())
  picked = sorted(picked)
  return [texts[i] for i in picked], labels[picked]


LOADERS = {"synthetic": _synthetic, "amazon": _amazon}


def load_domain_adaptation(data_config, seed: int = 0) -> dict:
  """Loads the corpus named by ``data.name`` for the ``data.source -> data.target`` pair.

  ``seed`` (the run's) chooses the labeled subset when ``data.num_labels`` is
  set and ``data.label_seed`` is -1.
  """
  if data_config.name not in LOADERS:
    raise ValueError(f"Unknown data.name {data_config.name!r}; choose one of {sorted(LOADERS)}")
  if data_config.name == "amazon":
    return _amazon(data_config, seed)
  return LOADERS[data_config.name](data_config)

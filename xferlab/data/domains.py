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


LOADERS = {"synthetic": _synthetic}


def load_domain_adaptation(data_config) -> dict:
  """Loads the corpus named by ``data.name`` for the ``data.source -> data.target`` pair."""
  if data_config.name not in LOADERS:
    raise ValueError(f"Unknown data.name {data_config.name!r}; choose one of {sorted(LOADERS)}")
  return LOADERS[data_config.name](data_config)

"""What a task hands the shared trainer."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator


@dataclasses.dataclass
class TaskData:
  """Everything the trainer reads.

  Attributes:
    tokenizer: the tokenizer (already saved into the workdir).
    train: an endless batch iterator with ``state()``, ``restore(state)`` and
      ``batches_per_epoch``.
    eval_sets: name -> list of batches; metric names are ``f"{name}_{metric}"``.
    tokens_per_batch: counts the real tokens of a training batch (throughput).
  """
  tokenizer: Any
  train: Iterator
  eval_sets: dict[str, list]
  tokens_per_batch: Any

"""Length-bucketed, padded, deterministic and resumable batches.

A batch is a dict of numpy arrays:

* ``tokens: int32[batch, time]`` -- ids, 0-padded; ``time`` is one of the
  bucket lengths, so a jitted step compiles at most ``len(buckets)`` times;
* ``lengths: int32[batch]`` -- valid steps per row (0 for batch-padding rows);
* ``weights: float32[batch]`` -- 1 for real rows, 0 for rows that only fill
  the last batch of an evaluation set (or a training epoch) to the fixed size;
* ``labels: int32[batch]`` when the examples carry labels;
* ``target_in, target_out: int32[batch, time]`` and ``target_lengths:
  int32[batch]`` when they carry target sequences (translation, summarization):
  ``target_in = BOS y_1 ... y_n`` and ``target_out = y_1 ... y_n EOS``, both
  of length ``n + 1``; examples are bucketed by the longer of source and
  target, and the targets padded to the same length (or, with
  ``target_buckets``, to their own: a summary is much shorter than its article).

Sequences longer than the largest bucket are truncated to it (their first
``max(buckets)`` tokens are kept).

``BatchStream`` is an endless training stream: each epoch is a permutation
drawn from ``(seed, epoch)``, examples are grouped into buckets, cut into
batches, and the batch order is shuffled. Its position is ``{"epoch", "index"}``
(``state()`` / ``restore(state)``), saved with every checkpoint, so a resumed
run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from xferlab.data.tokenizer import BOS_ID, EOS_ID


def shuffle_seed(config) -> int:
  """The seed of the training data order: ``data.shuffle_seed``, or ``seed`` when it is -1."""
  return config.seed if config.data.shuffle_seed < 0 else config.data.shuffle_seed


def bucket_length(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket that holds ``length`` (the largest bucket if none does)."""
  for b in buckets:
    if length <= b:
      return b
  return buckets[-1]


def example_lengths(sequences: Sequence[Sequence[int]],
                    targets: Sequence[Sequence[int]] | None = None) -> np.ndarray:
  """The length each example needs: its own, or with targets ``max(len(x), len(y) + 1)``."""
  lengths = np.asarray([len(s) for s in sequences])
  if targets is not None:
    lengths = np.maximum(lengths, np.asarray([len(t) + 1 for t in targets]))
  return lengths


def make_batch(sequences: Sequence[Sequence[int]], indices: Sequence[int], batch_size: int,
               time: int, labels: np.ndarray | None = None,
               targets: Sequence[Sequence[int]] | None = None,
               target_buckets: Sequence[int] = ()) -> dict[str, np.ndarray]:
  """Pads ``sequences[i] for i in indices`` into one batch of ``batch_size`` rows.

  ``targets[i]`` are padded to ``time`` too, or with ``target_buckets`` to the
  smallest of them that holds the batch's longest target plus one (and
  truncated to it).
  """
  tokens = np.zeros((batch_size, time), np.int32)
  lengths = np.zeros((batch_size,), np.int32)
  weights = np.zeros((batch_size,), np.float32)
  for row, i in enumerate(indices):
    seq = sequences[i][:time]
    tokens[row, :len(seq)] = seq
    lengths[row] = len(seq)
    weights[row] = 1.0
  batch = {"tokens": tokens, "lengths": lengths, "weights": weights}
  if labels is not None:
    batch["labels"] = np.zeros((batch_size,), np.int32)
    batch["labels"][:len(indices)] = labels[np.asarray(indices, np.int64)]
  if targets is not None:
    # With target_buckets, targets get their own (a summary is much shorter than its article).
    longest = max((len(targets[i]) + 1 for i in indices), default=1)
    target_time = bucket_length(longest, target_buckets) if target_buckets else time
    target_in = np.zeros((batch_size, target_time), np.int32)
    target_out = np.zeros((batch_size, target_time), np.int32)
    target_lengths = np.zeros((batch_size,), np.int32)
    for row, i in enumerate(indices):
      seq = list(targets[i][:target_time - 1])
      target_in[row, :len(seq) + 1] = [BOS_ID] + seq
      target_out[row, :len(seq) + 1] = seq + [EOS_ID]
      target_lengths[row] = len(seq) + 1
    batch.update(target_in=target_in, target_out=target_out, target_lengths=target_lengths)
  return batch


def _bucketed_index_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int,
                            buckets: Sequence[int]) -> list[tuple[int, np.ndarray]]:
  """Groups ``order`` by bucket (keeping its order) and cuts each group into batches."""
  groups: dict[int, list[int]] = {b: [] for b in buckets}
  for i in order:
    groups[bucket_length(int(lengths[i]), buckets)].append(int(i))
  out = []
  for b in buckets:
    idx = np.asarray(groups[b], np.int64)
    for start in range(0, len(idx), batch_size):
      out.append((b, idx[start:start + batch_size]))
  return out


def eval_batches(sequences: Sequence[Sequence[int]], batch_size: int, buckets: Sequence[int],
                 labels: Sequence[int] | None = None,
                 targets: Sequence[Sequence[int]] | None = None,
                 target_buckets: Sequence[int] = ()) -> list[dict[str, np.ndarray]]:
  """All examples once, in bucketed batches of a fixed size (padding rows weigh 0)."""
  lengths = example_lengths(sequences, targets)
  labels = None if labels is None else np.asarray(labels, np.int32)
  plan = _bucketed_index_batches(np.arange(len(sequences)), lengths, batch_size, buckets)
  return [make_batch(sequences, idx, batch_size, b, labels, targets, target_buckets)
          for b, idx in plan]


class BatchStream:
  """An endless, shuffled, bucketed stream of training batches with a saveable position.

  Args:
    sequences: token-id lists, one per example.
    labels: one int per example, or None for unlabeled text.
    batch_size: rows per batch; the last batch of a bucket is padded with
      weight-0 rows rather than dropped, so no example is skipped.
    buckets: increasing sequence lengths.
    seed: the shuffling seed; epoch ``e`` uses ``np.random.default_rng([seed, e])``.
    targets: one target sequence per example (encoder-decoder tasks), or None.
    target_buckets: lengths the targets are padded to on their own (``make_batch``).
  """

  def __init__(self, sequences: Sequence[Sequence[int]], labels: Sequence[int] | None,
               batch_size: int, buckets: Sequence[int], seed: int,
               targets: Sequence[Sequence[int]] | None = None,
               target_buckets: Sequence[int] = ()):
    if len(sequences) == 0:
      raise ValueError("BatchStream needs at least one example")
    self.sequences = sequences
    self.labels = None if labels is None else np.asarray(labels, np.int32)
    self.targets = targets
    self.target_buckets = tuple(target_buckets)
    self.lengths = example_lengths(sequences, targets)
    self.batch_size = batch_size
    self.buckets = tuple(sorted(buckets))
    self.seed = seed
    self.epoch, self.index = 0, 0
    self._plan_epoch = None
    self._plan: list[tuple[int, np.ndarray]] = []

  def _epoch_plan(self) -> list[tuple[int, np.ndarray]]:
    if self._plan_epoch != self.epoch:
      rng = np.random.default_rng([self.seed, self.epoch])
      plan = _bucketed_index_batches(rng.permutation(len(self.sequences)), self.lengths,
                                     self.batch_size, self.buckets)
      self._plan = [plan[i] for i in rng.permutation(len(plan))]
      self._plan_epoch = self.epoch
    return self._plan

  @property
  def batches_per_epoch(self) -> int:
    return len(self._epoch_plan())

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    plan = self._epoch_plan()
    time, idx = plan[self.index]
    self.index += 1
    if self.index == len(plan):
      self.epoch, self.index = self.epoch + 1, 0
    return make_batch(self.sequences, idx, self.batch_size, time, self.labels, self.targets,
                      self.target_buckets)

  def state(self) -> dict[str, int]:
    return {"epoch": self.epoch, "index": self.index}

  def restore(self, state: dict[str, int]) -> None:
    self.epoch, self.index = int(state["epoch"]), int(state["index"])


def pad_time(batch: dict[str, np.ndarray], time: int) -> dict[str, np.ndarray]:
  """Right-pads ``batch["tokens"]`` with zeros to ``time`` steps."""
  extra = time - batch["tokens"].shape[1]
  if extra == 0:
    return batch
  return {**batch, "tokens": np.pad(batch["tokens"], ((0, 0), (0, extra)))}


class PairedStream:
  """Labeled source batches paired with unlabeled target batches, for domain adaptation.

  Each item is ``{"source": batch, "target": batch}`` with both padded to the
  same (bucket) length, so the number of distinct shapes stays ``len(buckets)``.
  Epochs follow the source stream; the target stream cycles on its own.
  """

  def __init__(self, source: BatchStream, target: BatchStream):
    self.source, self.target = source, target

  @property
  def batches_per_epoch(self) -> int:
    return self.source.batches_per_epoch

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, dict[str, np.ndarray]]:
    src, tgt = next(self.source), next(self.target)
    time = max(src["tokens"].shape[1], tgt["tokens"].shape[1])
    return {"source": pad_time(src, time), "target": pad_time(tgt, time)}

  def state(self) -> dict[str, dict[str, int]]:
    return {"source": self.source.state(), "target": self.target.state()}

  def restore(self, state) -> None:
    self.source.restore(state["source"])
    self.target.restore(state["target"])

"""Bucketed batches: shapes, padding, determinism, resumable position, pairing."""

import numpy as np

from xferlab.data import batching


def _seqs(n=50, seed=0):
  rng = np.random.default_rng(seed)
  return [list(rng.integers(4, 30, rng.integers(1, 40))) for _ in range(n)]


def test_batches_use_only_bucket_shapes_and_truncate():
  seqs = _seqs()
  stream = batching.BatchStream(seqs, np.arange(50) % 2, 8, (10, 20, 30), seed=0)
  shapes = {next(stream)["tokens"].shape for _ in range(40)}
  assert shapes <= {(8, 10), (8, 20), (8, 30)}
  b = batching.eval_batches(seqs, 8, (10, 20, 30), np.arange(50) % 2)
  assert sum(int(x["weights"].sum()) for x in b) == 50       # every example exactly once
  assert max(int(x["lengths"].max()) for x in b) == 30       # truncated to the last bucket


def test_padding_rows_weigh_zero_and_lengths_match_tokens():
  seqs = _seqs(13)
  for b in batching.eval_batches(seqs, 8, (64,), [0] * 13):
    for row in range(8):
      n = b["lengths"][row]
      assert np.all(b["tokens"][row, n:] == 0)
      assert b["weights"][row] == (1.0 if n > 0 else 0.0)


def test_epoch_covers_every_example_once():
  seqs = _seqs(37)
  stream = batching.BatchStream(seqs, list(range(37)), 8, (16, 64), seed=3)
  labels = []
  for _ in range(stream.batches_per_epoch):
    b = next(stream)
    labels += list(b["labels"][b["weights"] > 0])
  assert sorted(labels) == list(range(37))
  assert stream.state() == {"epoch": 1, "index": 0}


def test_same_seed_same_batches_and_resume_continues_the_sequence():
  seqs = _seqs()
  a = batching.BatchStream(seqs, None, 8, (16, 64), seed=5)
  full = [next(a)["tokens"] for _ in range(20)]
  b = batching.BatchStream(seqs, None, 8, (16, 64), seed=5)
  for _ in range(7):
    next(b)
  c = batching.BatchStream(seqs, None, 8, (16, 64), seed=5)
  c.restore(b.state())
  rest = [next(c)["tokens"] for _ in range(13)]
  for x, y in zip(full[7:], rest):
    np.testing.assert_array_equal(x, y)
  other = batching.BatchStream(seqs, None, 8, (16, 64), seed=6)
  assert any(not np.array_equal(x, next(other)["tokens"]) for x in full[:5])


def test_paired_stream_pads_both_halves_to_one_length():
  src = batching.BatchStream(_seqs(20, 0), [1] * 20, 4, (8, 16, 64), seed=0)
  tgt = batching.BatchStream(_seqs(30, 1), None, 4, (8, 16, 64), seed=1)
  paired = batching.PairedStream(src, tgt)
  for _ in range(12):
    b = next(paired)
    assert b["source"]["tokens"].shape == b["target"]["tokens"].shape
    assert "labels" in b["source"] and "labels" not in b["target"]
  state = paired.state()
  nxt = next(paired)
  fresh = batching.PairedStream(
      batching.BatchStream(_seqs(20, 0), [1] * 20, 4, (8, 16, 64), seed=0),
      batching.BatchStream(_seqs(30, 1), None, 4, (8, 16, 64), seed=1))
  fresh.restore(state)
  np.testing.assert_array_equal(next(fresh)["target"]["tokens"], nxt["target"]["tokens"])


def test_balanced_label_subset_is_balanced_and_takes_everything_when_asked():
  import numpy as np
  from xferlab.data.domains import balanced_subset
  labels = np.array([1] * 7 + [0] * 3)                       # 7 positive, 3 negative
  texts = [f"t{i}" for i in range(10)]
  t, l = balanced_subset(texts, labels, 4, seed=0)
  assert len(t) == 4 and l.sum() == 2                        # two of each
  t, l = balanced_subset(texts, labels, 8, seed=0)
  assert len(t) == 8 and (l == 0).sum() == 3                 # every negative, positives fill up
  t, l = balanced_subset(texts, labels, 10, seed=1)
  assert sorted(t) == sorted(texts)                          # all of them
  assert balanced_subset(texts, labels, 4, seed=1)[0] != balanced_subset(texts, labels, 4, seed=2)[0]

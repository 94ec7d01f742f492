"""benchmarks/records.py: a benchmark's --out packed into one compact record and back.

No corpus is needed: the --out trees are written here.
"""

import gzip
import json
import os

import pytest

from benchmarks import records
from benchmarks import sentiment as bench

RUN = "A/books_dvd/dann/seed_0"
PNG = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"
METRICS = ('{"split": "train", "step": 1, "domain_accuracy": 0.5}\n'
           '{"split": "eval", "step": 2, "source_val_accuracy": 0.75}\n'
           '{"split": "train", "step": 2, "domain_accuracy": 0.625}\n')
KEPT = {                                        # what a record keeps, byte for byte
    "results.md": "# table λ → ±\n".encode(),
    "results.json": b'{"A": {}}',
    "back_translation.json": b'{"bt:deen_10_transfer": {"size": 30000}}',
    "A/books_dvd/features.png": PNG,
    "A/books_dvd/tfidf_peer.json": b'{"target_accuracy": 0.8}\r\n',
    f"{RUN}/config.json": b"{}",
    f"{RUN}/results.json": b'{"target_accuracy": 0.7}',
    f"{RUN}/metrics.jsonl": METRICS.encode(),
    f"{RUN}/domain_distance.json": b'{"pad": 1.2, "num_texts": 1000}',
    f"{RUN}/word_vectors.json": b"",
}
DROPPED = {                                      # weights, caches and a run cut short
    f"{RUN}/domain_features.npz": b"npz",
    f"{RUN}/checkpoints/3/state/results.json": b"{}",
    f"{RUN}/best/config.json": b"{}",
    f"{RUN}/tokenizer/vocab.txt": b"a\nb\n",
    ".results.lock": b"",
    "A/books_dvd/source_only/seed_0/config.json": b"{}",
    "A/books_dvd/source_only/seed_0/metrics.jsonl": b"{}\n",
}


def write_tree(root, files):
  for relative, content in files.items():
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def tree(root):
  return {str(p.relative_to(root)).replace(os.sep, "/"): p.read_bytes()
          for p in root.rglob("*") if p.is_file()}


def test_a_record_is_one_file_of_runs_beside_the_reports_and_unpacks_byte_for_byte(tmp_path):
  write_tree(tmp_path / "out", {**KEPT, **DROPPED})
  assert records.save(str(tmp_path / "out"), str(tmp_path / "record")) == sorted(KEPT)
  assert sorted(os.listdir(tmp_path / "record")) == ["back_translation.json", "records.jsonl.gz",
                                                     "results.json", "results.md"]
  with gzip.open(tmp_path / "record" / "records.jsonl.gz", "rt", encoding="utf-8") as f:
    lines = [json.loads(line) for line in f]
  assert [line["path"] for line in lines] == ["A/books_dvd", RUN]   # one line per folder
  assert lines[1]["files"]["metrics.jsonl"] == METRICS
  assert set(lines[0]["base64"]) == {"features.png"}
  assert records.read_record(str(tmp_path / "record")) == KEPT
  written, kept = records.unpack(str(tmp_path / "record"), str(tmp_path / "again"))
  assert sorted(written) == sorted(KEPT) and kept == []
  assert tree(tmp_path / "again") == KEPT
  # The same runs packed again give the same bytes (no time or name in the gzip header).
  records.save(str(tmp_path / "again"), str(tmp_path / "record2"))
  assert ((tmp_path / "record" / "records.jsonl.gz").read_bytes()
          == (tmp_path / "record2" / "records.jsonl.gz").read_bytes())
  with pytest.raises(FileNotFoundError, match="No benchmark output"):
    records.save(str(tmp_path / "missing"), str(tmp_path / "record"))
  with pytest.raises(FileNotFoundError, match="No benchmark record"):
    records.unpack(str(tmp_path / "missing"), str(tmp_path / "again"))


def test_an_unpacked_run_is_finished_and_trains_nothing(tmp_path, tiny_config, monkeypatch):
  from xferlab import launch, train
  from xferlab.config import to_json
  run = tmp_path / "out" / RUN
  results = {"target_accuracy": 0.7, "source_val_accuracy": 0.75}
  write_tree(tmp_path / "out", {f"{RUN}/config.json": to_json(tiny_config).encode(),
                                f"{RUN}/results.json": json.dumps(results).encode(),
                                f"{RUN}/metrics.jsonl": METRICS.encode(),
                                f"{RUN}/checkpoints/6/weights": b"weights"})
  records.save(str(tmp_path / "out"), str(tmp_path / "record"))
  records.unpack(str(tmp_path / "record"), str(tmp_path / "again"))
  workdir = str(tmp_path / "again" / RUN)
  assert not os.path.exists(os.path.join(workdir, "checkpoints"))
  assert train.finished_results(tiny_config, workdir) == results

  def no_training(*args, **kwargs):
    raise AssertionError("a run unpacked from a record was trained again")
  monkeypatch.setattr(train, "train_and_evaluate", no_training)
  assert launch.run_config(tiny_config, workdir, verbose=False) == results
  assert bench.discriminator_accuracy(workdir) == 0.625     # the last quarter of train rows
  assert bench.discriminator_accuracy(str(run)) == 0.625


def test_a_student_cut_short_keeps_its_pseudo_labels_and_nothing_it_wrote(tmp_path):
  # Its teacher's weights are in no record: the labels they gave are what lets the student
  # train again on another machine.
  student = "A/books_dvd/self_train_lm_dann/seed_0"
  given = {f"{student}/pseudo_labels.npz": b"npz", f"{student}/pseudo_labels.json": b"{}"}
  written = {f"{student}/config.json": b"{}", f"{student}/metrics.jsonl": b"{}\n"}
  write_tree(tmp_path / "out", {**given, **written})
  assert records.save(str(tmp_path / "out"), str(tmp_path / "record")) == sorted(given)
  records.unpack(str(tmp_path / "record"), str(tmp_path / "again"))
  assert tree(tmp_path / "again") == given


def test_packing_adds_to_a_record_and_unpacking_keeps_what_differs(tmp_path):
  write_tree(tmp_path / "first", {f"{RUN}/config.json": b"{}", f"{RUN}/results.json": b"1"})
  other = "A/books_dvd/dann/seed_1"
  write_tree(tmp_path / "second", {f"{other}/config.json": b"{}", f"{other}/results.json": b"2",
                                   "results.md": b"table"})
  records.save(str(tmp_path / "first"), str(tmp_path / "record"))
  records.save(str(tmp_path / "second"), str(tmp_path / "record"))
  assert sorted(records.read_record(str(tmp_path / "record"))) == [
      f"{RUN}/config.json", f"{RUN}/results.json", f"{other}/config.json",
      f"{other}/results.json", "results.md"]
  write_tree(tmp_path / "out", {"results.md": b"a newer table"})
  written, kept = records.unpack(str(tmp_path / "record"), str(tmp_path / "out"))
  assert kept == ["results.md"] and (tmp_path / "out" / "results.md").read_bytes() == \
      b"a newer table"
  assert (tmp_path / "out" / other / "results.json").read_bytes() == b"2"
  records.unpack(str(tmp_path / "record"), str(tmp_path / "out"), force=True)
  assert (tmp_path / "out" / "results.md").read_bytes() == b"table"


def test_the_command_packs_lists_and_unpacks(tmp_path, capsys):
  write_tree(tmp_path / "out", KEPT)
  assert records.main([str(tmp_path / "out"), str(tmp_path / "record")]) == 0
  assert records.main(["--list", str(tmp_path / "record")]) == 0
  assert f"{RUN}/metrics.jsonl" in capsys.readouterr().out
  assert records.main(["--unpack", str(tmp_path / "record"), str(tmp_path / "again")]) == 0
  assert f"{len(KEPT)} files" in capsys.readouterr().out
  assert tree(tmp_path / "again") == KEPT
  assert records.main(["--unpack", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
  with pytest.raises(SystemExit):
    records.main(["--unpack", str(tmp_path / "record")])


_RESULTS = os.path.join(bench.ROOT, "benchmarks", "results")


# Benchmarks of runs keep a record; reports made without runs (selection, an LM in progress)
# keep only their own small files.
@pytest.mark.parametrize("name", sorted(d for d in os.listdir(_RESULTS)
                                        if os.path.exists(os.path.join(_RESULTS, d,
                                                                       "records.jsonl.gz"))))
def test_the_committed_records_are_compact_and_hold_finished_runs(name):
  record = os.path.join(bench.ROOT, "benchmarks", "results", name)
  assert "records.jsonl.gz" in os.listdir(record)
  assert all(os.path.isfile(os.path.join(record, f)) for f in os.listdir(record))
  files = records.read_record(record)
  configs = {k.rsplit("/", 1)[0] for k in files if k.endswith("/config.json")}
  assert configs and all(f"{run}/results.json" in files for run in configs)

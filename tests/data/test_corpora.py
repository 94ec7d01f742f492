"""Corpus builders on tiny fixture files written here, in the manual-folder layout.

These tests never read ../shared/data: each writes the few files a builder
needs under ``tmp_path/data/<corpus>/`` (the same layout and formats, with
the documented quirks planted) and prepares into its own ``tmp_path/tfds``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import sys
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import xferlab
from xferlab.data import catalog
from xferlab.data import __main__ as cli
from xferlab.data.corpora import BUILDERS, CorruptFileError, ManualDataError, files, text

tfds.disable_progress_bar()


# ---------------------------------------------------------------- fixture files


def write(path: Path, content: str | bytes, *, gz: bool | None = None) -> Path:
  """Writes ``content`` (UTF-8 if str), gzipped when the name ends in .gz."""
  data = content.encode("utf-8") if isinstance(content, str) else content
  path.parent.mkdir(parents=True, exist_ok=True)
  if gz if gz is not None else path.suffix == ".gz":
    data = gzip.compress(data)
  path.write_bytes(data)
  return path


def jsonl(records, final_newline: bool = True) -> str:
  body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
  return body + ("\n" if final_newline else "")


def review(uid: str, rating: float, title: str, body: str) -> str:
  """One ``<review>`` block of Blitzer's pseudo-XML (values padded with whitespace)."""
  fields = {"unique_id": uid, "asin": "B000TEST", "product_name": "Thing: Books: Someone",
            "rating": f"{rating}", "title": title, "review_text": body}
  return "<review>\n" + "".join(f"<{k}>\n{v}\n</{k}>\n" for k, v in fields.items()) + "</review>\n"


def make_ptb(root: Path, lines=(" the cat sat ", " a <unk> of N dogs ")) -> None:
  for name in ("train", "valid", "test"):
    write(root / "ptb" / f"{name}.txt.gz", "".join(line + "\n" for line in lines))


def make_amazon(root: Path, domain: str = "books") -> None:
  body = " I said &quot;wow&quot; &#8217;twas fine\n\nReally. "
  positive = ("<reviews>\n" + review("p1", 5.0, "Great &amp; cheap ", body)
              + review("p2", 4.0, "Good", "Compare: 3 < 4 & more")
              + review("p3", 5.0, "Great &amp; cheap ", body) + "</reviews>\n")
  negative = ("<reviews>\n" + review("n1", 1.0, "Bad", "&amp;lt;b&amp;gt; is not bold")
              + review("n2", 2.0, "", "No title") + "</reviews>\n")
  write(root / "amazon_multi_domain" / "raw" / domain / "positive.review.gz", positive)
  write(root / "amazon_multi_domain" / "raw" / domain / "negative.review.gz", negative)


def make_hatn(root: Path, domain: str = "books") -> None:
  def rows(label):
    lines = [(f"T{label}. keep me", False, False), (f"T{label}. keep me", True, False),
             (f"B{label}. in blitzer", False, True), (f'U{label}. also "keep" & me', False, False)]
    return [{"text": t, "label": label, "line": i, "dup": dup, "in_blitzer_labeled": blitzer}
            for i, (t, dup, blitzer) in enumerate(lines)]
  write(root / "amazon_hatn" / domain / "positive.jsonl.gz", jsonl(rows(1)))
  write(root / "amazon_hatn" / domain / "negative.jsonl.gz", jsonl(rows(0)))


def make_imdb(root: Path) -> None:
  csv_text = ('reviews,labels\n'
              '"Loved it.<br /><br />Would watch ""again"", twice",1\n'
              'Boring film,0\n'
              '"Two\nlines",0\n'
              'Boring film,0\n')
  write(root / "imdb_2k" / "raw" / "imdb.csv.gz", csv_text)


def make_rt(root: Path) -> None:
  # Windows-1252: 0x85 is an ellipsis (U+0085 NEL if read as latin-1), 0xe9 is é, 0x96 an en dash.
  write(root / "rt_polarity" / "raw" / "rt-polarity.pos",
        b"a caf\xe9 movie \x85 simply great . \nwarm \x96 and funny . \n")
  write(root / "rt_polarity" / "raw" / "rt-polarity.neg", b"dull and long . \n")


def make_sst2(root: Path) -> None:
  kim = root / "sst2" / "raw" / "kim2014"
  write(kim / "stsa.binary.train", "1 a -lrb- fine -rrb- film \\/ show\n0 bad one\n")
  write(kim / "stsa.binary.dev", "1 good\n")
  write(kim / "stsa.binary.test", "0 awful\n1 nice\n0 meh\n")
  glue = root / "sst2" / "raw" / "glue_SST-2"
  write(glue / "train_full.tsv.gz", "sentence\tlabel\nhide new secretions \t0\ngood \t1\n")
  write(glue / "dev.tsv", "sentence\tlabel\nit 's a charming journey . \t1\n")


MULTI30K_STEMS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco",
                  "test_2018_flickr")


def make_multi30k(root: Path, lines: int = 3) -> None:
  for stem in MULTI30K_STEMS:
    for lang in ("en", "de", "fr", "cs"):
      if lang == "cs" and stem.startswith("test_2017"):
        continue
      # The first caption of each file ends with a space, as 645 lines of test_2018_flickr.cs do.
      raw = "".join(f"{stem} {lang.upper()} caption {i}" + (" \n" if i == 0 else "\n")
                    for i in range(lines))
      write(root / "multi30k" / f"{stem}.{lang}.gz", raw)
      write(root / "multi30k" / "tok" / f"{stem}.lc.norm.tok.{lang}.gz", raw.lower())


def make_bbc(root: Path) -> None:
  ok = {"id": "business/001", "category": "business", "title": "Profits up ",
        "article": "Profits rose to $10.9bn.\n\nFor the full-year it was good.",
        "summary": "Profits rose to $10.9bn.For the full-year it was good.",
        "summary_sentences": ["Profits rose to $10.9bn.", "For the full-year it was good."]}
  null = {"id": "sport/042", "category": "sport", "title": "Win",
          "article": "It was won. Then over.", "summary": "It was won.Then over.",
          "summary_sentences": None}
  for name in ("train", "val", "test"):
    write(root / "bbc_news_summary" / f"{name}.jsonl.gz", jsonl([ok, null]))


def make_scitldr(root: Path) -> None:
  def paper(pid, targets):
    return {"source": ["We study X. ", "It works."], "source_labels": [0, 1],
            "rouge_scores": [0.1, 0.2], "paper_id": pid, "target": targets, "title": "A Title "}
  train = [paper("a", ["Author tldr."])]
  write(root / "scitldr" / "train.jsonl.gz", jsonl(train, final_newline=False))
  dev = [paper("b", ["Author.", "Reviewer one. ", "Reviewer two."]), paper("c", ["Only author."])]
  write(root / "scitldr" / "dev.jsonl.gz", jsonl(dev, final_newline=False))
  write(root / "scitldr" / "test.jsonl.gz", jsonl([paper("d", ["A.", "B. "])], final_newline=False))


@pytest.fixture
def root(tmp_path) -> Path:
  return tmp_path / "data"


@pytest.fixture
def data_dir(tmp_path) -> Path:
  return tmp_path / "tfds"


def load(name, split, root, data_dir, **kwargs):
  return catalog.load(name, split, manual_dir=root, data_dir=data_dir, **kwargs)


def all_of(source):
  return [source[i] for i in range(len(source))]


# ---------------------------------------------------------------- per corpus


def test_ptb_strips_the_leading_and_trailing_space_of_each_line(root, data_dir):
  make_ptb(root)
  counts = catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir)
  assert counts == {"ptb": {"default": {"train": 2, "validation": 2, "test": 2}}}
  train = load("ptb", "train", root, data_dir)
  assert all_of(train) == [{"text": "the cat sat"}, {"text": "a <unk> of N dogs"}]  # source order
  assert len(load("ptb", "valid", root, data_dir)) == 2  # alias of validation


def test_scitldr_keeps_every_reference_stripped_and_the_last_line_without_newline(root, data_dir):
  make_scitldr(root)
  dev = load("scitldr", "dev", root, data_dir)
  assert len(dev) == 2
  first = dev[0]
  assert first["summary"] == "Author."
  assert first["references"] == ["Author.", "Reviewer one.", "Reviewer two."]
  assert first["document"] == "We study X. It works."
  assert first["document_sentences"] == ["We study X.", "It works."]
  assert first["source_labels"] == [0, 1]
  assert first["title"] == "A Title" and first["id"] == "b"
  assert dev[1]["references"] == ["Only author."]
  assert load("scitldr", "test", root, data_dir)[0]["references"] == ["A.", "B."]


def test_bbc_summary_sentences_are_spaced_and_null_ones_respaced_by_rule(root, data_dir):
  make_bbc(root)
  records = all_of(load("bbc_news_summary", "validation", root, data_dir))
  ok, null = records
  assert ok["summary"] == "Profits rose to $10.9bn. For the full-year it was good."
  assert ok["references"] == [ok["summary"]]
  assert ok["document"].startswith("Profits rose") and ok["title"] == "Profits up"
  assert null["summary"] == "It was won. Then over." and null["summary_sentences"] == []


def test_multi30k_pairs_splits_alignment_and_trailing_spaces(root, data_dir):
  make_multi30k(root)
  counts = catalog.prepare(["multi30k"], manual_dir=root, data_dir=data_dir)["multi30k"]
  assert set(counts) == {"en-de", "en-fr", "en-cs"}
  assert list(counts["en-de"]) == ["train", "validation", "test_2016_flickr", "test_2017_flickr",
                                   "test_2017_mscoco", "test_2018_flickr"]
  assert list(counts["en-cs"]) == ["train", "validation", "test_2016_flickr", "test_2018_flickr"]
  assert all(n == 3 for n in counts["en-fr"].values())
  test = load("multi30k/en-fr", "test", root, data_dir)  # test = test_2016_flickr
  assert test[0] == {"source": "test_2016_flickr EN caption 0",
                     "target": "test_2016_flickr FR caption 0",
                     "source_tok": "test_2016_flickr en caption 0",
                     "target_tok": "test_2016_flickr fr caption 0"}
  assert load("multi30k", "val", root, data_dir, config="en-cs")[2]["target"] == "val CS caption 2"


def test_multi30k_misaligned_files_are_an_error_naming_them(root, data_dir):
  make_multi30k(root)
  write(root / "multi30k" / "val.de.gz", "only one line\n")
  with pytest.raises(CorruptFileError, match=r"val\.de\.gz"):
    catalog.prepare(["multi30k/en-de"], manual_dir=root, data_dir=data_dir)


def test_amazon_reads_pseudo_xml_and_decodes_html_entities_once(root, data_dir):
  make_amazon(root)
  records = {r["id"]: r for r in all_of(load("amazon_multi_domain/books", "train", root, data_dir))}
  assert records["p1"]["title"] == "Great & cheap"
  assert records["p1"]["body"] == "I said \"wow\" \u2019twas fine\n\nReally."
  assert records["p1"]["text"] == "Great & cheap. I said \"wow\" \u2019twas fine\n\nReally."
  assert records["p2"]["body"] == "Compare: 3 < 4 & more"  # bare < and & are text, not markup
  assert records["n1"]["body"] == "&lt;b&gt; is not bold"  # &amp;lt; decodes to &lt;, not to <
  assert records["n2"]["text"] == "No title"
  assert {r["label"] for r in records.values() if r["id"].startswith("p")} == {1}
  assert records["n2"]["label"] == 0 and records["n2"]["rating"] == 2.0
  assert {r["domain"] for r in records.values()} == {"books"}


def test_amazon_duplicate_reviews_are_flagged_and_kept(root, data_dir):
  make_amazon(root)
  records = {r["id"]: r for r in all_of(load("amazon_multi_domain", "train", root, data_dir,
                                             config="books"))}
  assert len(records) == 5
  assert [records[i]["duplicate"] for i in ("p1", "p2", "p3", "n1", "n2")] == [
      False, False, True, False, False]


def test_amazon_unlabeled_drops_dup_and_blitzer_rows_and_the_labels(root, data_dir):
  make_hatn(root)
  records = all_of(load("amazon_unlabeled/books", "train", root, data_dir))
  assert sorted(r["text"] for r in records) == [
      "T0. keep me", "T1. keep me", 'U0. also "keep" & me', 'U1. also "keep" & me']
  assert all(set(r) == {"text", "domain"} for r in records)


def test_amazon_hatn_keeps_every_row_with_its_flags(root, data_dir):
  make_hatn(root)
  records = all_of(load("amazon_hatn/books", "train", root, data_dir))
  assert len(records) == 8
  assert sum(r["duplicate"] for r in records) == 2
  assert sum(r["in_blitzer_labeled"] for r in records) == 2
  assert sorted(r["label"] for r in records) == [0] * 4 + [1] * 4


def test_imdb_br_tags_become_newlines_and_csv_quoting_is_honoured(root, data_dir):
  make_imdb(root)
  records = all_of(load("imdb_2k", "train", root, data_dir))
  assert records[0] == {"text": 'Loved it.\n\nWould watch "again", twice', "label": 1, "row": 0,
                        "duplicate": False}
  assert records[2]["text"] == "Two\nlines"
  assert [r["duplicate"] for r in records] == [False, False, False, True]


def test_rt_polarity_is_decoded_as_cp1252_and_split_on_newlines_only(root, data_dir):
  make_rt(root)
  records = all_of(load("rt_polarity", "train", root, data_dir))
  texts = {r["text"]: r["label"] for r in records}
  assert texts == {"a caf\u00e9 movie \u2026 simply great .": 1, "warm \u2013 and funny .": 1,
                   "dull and long .": 0}


def test_sst2_kim_split_and_glue_tsv(root, data_dir):
  make_sst2(root)
  counts = catalog.prepare(["sst2"], manual_dir=root, data_dir=data_dir)
  assert counts == {"sst2": {"kim": {"train": 2, "validation": 1, "test": 3},
                             "glue": {"train": 2, "validation": 1}}}
  kim = load("sst2", "train", root, data_dir)  # kim is the default config
  assert kim[0] == {"text": "a -lrb- fine -rrb- film \\/ show", "label": 1}
  glue = load("sst2/glue", "train", root, data_dir)
  assert all_of(glue) == [{"text": "hide new secretions", "label": 0}, {"text": "good", "label": 1}]


# ---------------------------------------------------------------- errors and encodings


def test_invalid_utf8_is_decoded_as_cp1252_and_counted_in_the_log(root, data_dir, caplog):
  write(root / "ptb" / "train.txt.gz", b" fine line \n caf\xe9 line \n")
  for name in ("valid", "test"):
    write(root / "ptb" / f"{name}.txt.gz", " x \n")
  with caplog.at_level(logging.WARNING, logger="xferlab"):
    train = load("ptb", "train", root, data_dir)
  assert [r["text"] for r in all_of(train)] == ["fine line", "caf\u00e9 line"]  # kept, not dropped
  assert any("train.txt.gz: 1 line(s) are not valid ascii" in m for m in caplog.messages)


def test_missing_manual_folder_names_the_path_the_files_and_their_origin(root, data_dir):
  with pytest.raises(ManualDataError) as info:
    catalog.prepare(["scitldr"], manual_dir=root, data_dir=data_dir)
  message = str(info.value)
  assert str(root / "scitldr") in message and "does not exist" in message
  for name in ("train.jsonl.gz", "dev.jsonl.gz", "test.jsonl.gz"):
    assert name in message
  assert "allenai/scitldr" in message and "download=True" in message


def test_truncated_gzip_names_the_file(root, data_dir):
  make_ptb(root)
  path = root / "ptb" / "valid.txt.gz"
  path.write_bytes(path.read_bytes()[:-12])
  with pytest.raises(CorruptFileError, match=r"valid\.txt\.gz.*truncated"):
    catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir)


def test_bad_json_line_names_the_file_and_line(root, data_dir):
  make_scitldr(root)
  good = (root / "scitldr" / "test.jsonl.gz")
  write(root / "scitldr" / "dev.jsonl.gz", gzip.decompress(good.read_bytes()) + b"\n{not json\n")
  with pytest.raises(CorruptFileError, match=r"dev\.jsonl\.gz, line 2: not a JSON object"):
    catalog.prepare(["scitldr"], manual_dir=root, data_dir=data_dir)


def test_a_record_without_a_needed_field_names_the_file_line_and_field(root, data_dir):
  make_hatn(root)
  write(root / "amazon_hatn" / "books" / "negative.jsonl.gz", '{"text": "x", "label": 0}\n')
  with pytest.raises(CorruptFileError, match=r"negative\.jsonl\.gz, line 1: no \['line', 'dup'"):
    catalog.prepare(["amazon_hatn/books"], manual_dir=root, data_dir=data_dir)


def test_passing_a_corpus_folder_instead_of_the_root_is_explained(root, data_dir):
  make_ptb(root)
  with pytest.raises(ManualDataError, match="looks like the corpus folder itself"):
    catalog.prepare(["ptb"], manual_dir=root / "ptb", data_dir=data_dir)


def test_a_file_that_differs_from_the_documented_checksum_is_reported(root, data_dir, caplog):
  make_ptb(root)
  with caplog.at_level(logging.WARNING, logger="xferlab"):
    catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir)
  assert any("train.txt.gz differs from the release" in m for m in caplog.messages)


def test_downloads_only_when_asked_and_verifies_the_checksum(tmp_path):
  remote = write(tmp_path / "remote" / "train.txt", " a b \n")
  good = files.SourceFile("train.txt.gz", url="https://example.org/train.txt",
                          md5=hashlib.md5(b" a b \n").hexdigest())
  fetched = []

  def download(url):
    fetched.append(url)
    return remote

  with pytest.raises(ManualDataError):
    files.locate("toy", tmp_path / "absent", {"train": good}, "somewhere")
  paths = files.locate("toy", tmp_path / "absent", {"train": good}, "somewhere", download=download)
  assert paths == {"train": remote} and fetched == [good.url]
  bad = files.SourceFile("train.txt.gz", url=good.url, md5="0" * 32)
  with pytest.raises(CorruptFileError, match="does not match the checksum"):
    files.locate("toy", tmp_path / "absent", {"train": bad}, "somewhere", download=download)


def test_builder_download_goes_through_tfds_and_rejects_wrong_content(root, data_dir, monkeypatch):
  remote = write(root.parent / "remote.txt", " not the real ptb \n")
  urls = []

  def fake_download(self, url):
    urls.append(url)
    return remote

  monkeypatch.setattr(tfds.download.DownloadManager, "download", fake_download)
  monkeypatch.setattr(files, "check_reachable", lambda url: None)
  with pytest.raises(CorruptFileError, match="does not match the checksum"):
    catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir, download=True)
  assert urls[0].startswith("https://raw.githubusercontent.com/fiskio/char-rnn/")


def test_an_unreachable_server_fails_fast_naming_the_host():
  with pytest.raises(ConnectionError, match="Cannot reach 127.0.0.1:9"):
    files.check_reachable("http://127.0.0.1:9/corpus.txt", timeout=2)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_manual_download_instructions_list_every_file(name):
  cls = BUILDERS[name]
  configs = cls.BUILDER_CONFIGS or [None]
  for config in configs:
    builder = cls(data_dir="/nonexistent", **({"config": config.name} if config else {}))
    for f in builder._source_files().values():  # pylint: disable=protected-access
      assert f"{cls.MANUAL_FOLDER}/{f.path}" in cls.MANUAL_DOWNLOAD_INSTRUCTIONS


# ---------------------------------------------------------------- catalog


def test_prepared_data_is_reused_without_the_manual_folder(root, data_dir, monkeypatch):
  make_ptb(root)
  catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir)
  monkeypatch.setattr(files, "locate", lambda *a, **k: pytest.fail("regenerated a prepared set"))
  empty = root.parent / "empty"
  counts = catalog.prepare(["ptb"], manual_dir=empty, data_dir=data_dir)
  assert counts["ptb"]["default"]["train"] == 2
  assert load("ptb", "test", empty, data_dir)[1] == {"text": "a <unk> of N dogs"}


def test_a_builder_made_before_another_prepared_the_corpus_reads_its_splits(root, data_dir):
  # Two runs started together: the second made its builder, then waited while the first
  # prepared the corpus. Its builder's info was read when nothing was there.
  make_ptb(root)
  waiting = catalog.builder("ptb", manual_dir=root, data_dir=data_dir)
  assert not waiting.info.splits
  catalog.prepare(["ptb"], manual_dir=root, data_dir=data_dir)
  assert catalog.ensure_prepared(waiting).info.splits["train"].num_examples == 2


def test_manual_dir_resolution_argument_then_env_then_sibling(tmp_path, monkeypatch):
  monkeypatch.delenv(catalog.DATA_ENV, raising=False)
  sibling = Path(xferlab.__file__).resolve().parents[2] / "shared" / "data"
  assert catalog.sibling_data_root() == sibling
  assert catalog.manual_dir_for("ptb") == sibling / "ptb"
  monkeypatch.setenv(catalog.DATA_ENV, str(tmp_path / "env"))
  assert catalog.manual_dir_for("ptb") == tmp_path / "env" / "ptb"
  assert catalog.manual_dir_for("ptb", tmp_path / "arg") == tmp_path / "arg" / "ptb"
  assert catalog.manual_dir_for("amazon_unlabeled", tmp_path) == tmp_path / "amazon_hatn"


def test_data_dir_resolution_argument_then_env_then_home_cache(tmp_path, monkeypatch):
  monkeypatch.delenv(catalog.DATA_DIR_ENV, raising=False)
  assert catalog.data_dir_for() == Path("~/.cache/xferlab/tfds").expanduser()
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(tmp_path / "env"))
  assert catalog.data_dir_for() == tmp_path / "env"
  assert catalog.data_dir_for(tmp_path / "arg") == tmp_path / "arg"


def test_env_vars_drive_load(root, data_dir, monkeypatch):
  make_ptb(root)
  monkeypatch.setenv(catalog.DATA_ENV, str(root))
  monkeypatch.setenv(catalog.DATA_DIR_ENV, str(data_dir))
  assert len(catalog.load("ptb", "train")) == 2
  assert (data_dir / "ptb").is_dir()


def test_source_gives_plain_python_values_and_supports_slices(root, data_dir):
  make_scitldr(root)
  dev = load("scitldr", "validation", root, data_dir)
  record = dev[-2]
  assert isinstance(record["summary"], str) and isinstance(record["references"][0], str)
  assert [type(x) for x in record["source_labels"]] == [int, int]
  assert dev[0:2] == all_of(dev) == list(dev) and dev.__getitems__([1, 0]) == [dev[1], dev[0]]
  with pytest.raises(IndexError):
    dev[2]  # pylint: disable=pointless-statement


def test_unknown_names_configs_and_splits_are_explained(root, data_dir):
  make_ptb(root)
  with pytest.raises(ValueError, match="known: amazon_multi_domain"):
    catalog.load("imdb", "train")
  with pytest.raises(ValueError, match=r"configs: \['en-de', 'en-fr', 'en-cs'\]"):
    catalog.load("multi30k/en-es", "train")
  with pytest.raises(KeyError, match="splits: "):
    load("ptb", "test_2016_flickr", root, data_dir)


def test_cli_prints_json_counts_and_reports_errors(root, data_dir, capsys):
  make_ptb(root)
  make_rt(root)
  args = ["prepare", "ptb", "rt_polarity", "--manual-dir", str(root), "--data-dir",
          str(data_dir), "--quiet"]
  assert cli.main(args) == 0
  out = capsys.readouterr().out
  assert json.loads(out) == {"ptb": {"default": {"train": 2, "validation": 2, "test": 2}},
                             "rt_polarity": {"default": {"train": 3}}}
  assert cli.main(["prepare", "bbc_news_summary", "--manual-dir", str(root), "--data-dir",
                   str(data_dir), "--quiet"]) == 1
  assert "bbc_news_summary" in capsys.readouterr().err
  assert cli.main(["prepare", "amazn", "--manual-dir", str(root), "--data-dir",
                   str(data_dir), "--quiet"]) == 2      # a wrong name: before any work
  assert "did you mean 'amazon_hatn'?" in capsys.readouterr().err


def test_reading_needs_no_tensorflow(root, data_dir):
  make_ptb(root)
  load("ptb", "train", root, data_dir)[0]  # pylint: disable=expression-not-assigned
  assert "tensorflow" not in sys.modules


def test_text_rules():
  assert text.duplicate_flags(["a", "b", "a", "a"]) == [False, False, True, True]
  assert text.space_glued_sentences('the "threat".The end. U.S.A and 3.5.') == (
      'the "threat". The end. U.S.A and 3.5.')
  assert text.space_glued_sentences('ago."It\'s fine," he said.') == 'ago. "It\'s fine," he said.'
  assert text.unescape_html("&amp;quot;") == "&quot;"

"""The README and docs/ do not drift from the repository.

* every relative link in README.md and docs/*.md points to a file or folder of the checkout
  (and a ``#section`` to a heading of that page);
* README.md stays a front door: at most 250 lines, no machine-local paths, no file the
  repository does not hold, and the install / test commands CI runs;
* every sentiment table marked ``<!-- checked: ... -->`` holds the numbers of the committed
  benchmark record it names, formatted as the benchmark's report formats them.

Markers (an HTML comment on the line right above a markdown table)::

  <!-- checked: BENCH PROTOCOL -->                    rows = pairs, columns = arms / TF-IDF
  <!-- checked: averages BENCH:PROTOCOL ... -->       rows = arms, one column per record
  <!-- checked: sweep BENCH -->                       rows = λ, columns "ARM: target" / "ARM: source val."
  <!-- checked: imdb BENCH -->                        rows = arms, columns "N labels" (benchmarks.imdb)
  <!-- checked: selection GROUP -->                   rows = measures, columns = arms (select.py)
  <!-- checked: translation BENCH -->                 rows = arms, columns of benchmarks.translation's table

BENCH is a folder of ``benchmarks/results/``. Columns and rows that are published numbers
(not measured here) are named as such and skipped.
"""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")
PAGES = [README] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
# Column or row names of published numbers (docs/references.md): shown, not measured here.
PUBLISHED = ("published", "DANN mSDA", "DANN bow", "CORAL bow", "P-net", "HATN_h")
QUICKSTART = ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
              "python launch.py experiments/quickstart.py --workdir runs/quickstart")
TEST_COMMAND = "python -m pytest -q -n 2 --dist loadfile"


def _read(path: str) -> str:
  with open(path, encoding="utf-8") as f:
    return f.read()


def _rel(path: str) -> str:
  return os.path.relpath(path, ROOT)


def _without_code(text: str) -> str:
  """The text with fenced code blocks and inline code blanked (links there are not links)."""
  text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
  """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
  text = re.sub(r"[`*]", "", heading.strip().lower())
  text = re.sub(r"[^\w\- ]", "", text)
  return text.replace(" ", "-")


def _anchors(path: str) -> set[str]:
  return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", _without_code(_read(path)), re.M)}


def _links(path: str) -> list[str]:
  return re.findall(r"\]\(([^)\s]+)\)", _without_code(_read(path)))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page):
  broken = []
  for link in _links(page):
    if re.match(r"^[a-z][a-z0-9+.-]*:", link):          # http:, https:, mailto:
      continue
    target, _, anchor = link.partition("#")
    path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
    if not path.startswith(ROOT + os.sep) and path != ROOT:
      broken.append(f"{link} (outside the repository)")
    elif not os.path.exists(path):
      broken.append(f"{link} (no such file)")
    elif anchor and path.endswith(".md") and anchor not in _anchors(path):
      broken.append(f"{link} (no heading #{anchor} in {_rel(path)})")
  assert not broken, f"{_rel(page)}: broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_named_files_and_modules_exist(page):
  """Inline paths of the repository (`xferlab/...`, `experiments/x.py:arg`) and the modules of
  `python -m xferlab...` / `python -m benchmarks...` commands exist."""
  text = _read(page)
  prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  missing = [m.group(1) for m in re.finditer(
      r"`((?:xferlab|experiments|benchmarks|tests|docs)/[\w./-]*)(?::[^`]*)?`", prose)
             if not os.path.exists(os.path.join(ROOT, m.group(1)))]
  for module in set(re.findall(r"python -m ((?:xferlab|benchmarks)[\w.]*)", text)):
    base = os.path.join(ROOT, *module.split("."))
    if not (os.path.exists(base + ".py") or os.path.exists(os.path.join(base, "__main__.py"))):
      missing.append(f"python -m {module}")
  assert not missing, f"{_rel(page)} names what the repository does not hold: {missing}"


def test_readme_is_a_front_door():
  text = _read(README)
  assert len(text.splitlines()) <= 250, "README.md grew past 250 lines; move detail to docs/"
  for page in PAGES:
    for bad in ("/work/", "/tmp/", "REFERENCES.md"):
      assert bad not in _read(page), f"{_rel(page)} names {bad!r}"
  lines = [line.strip() for line in text.splitlines()]
  assert QUICKSTART in lines, "README.md lost the install + quick start command"
  assert TEST_COMMAND in lines, "README.md lost the test command"
  ci = os.path.join(ROOT, ".ci", "run")
  if os.path.exists(ci):
    assert TEST_COMMAND in [line.strip() for line in _read(ci).splitlines()], \
        ".ci/run no longer runs the README's test command"


# --- the sentiment tables -------------------------------------------------------------------


def _record(bench: str, protocol: str | None = None) -> dict:
  """``benchmarks/results/BENCH/results.json``, or its ``protocol`` entry."""
  with open(os.path.join(RESULTS, bench, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  return results if protocol is None else results[protocol]


def _cells(line: str) -> list[str]:
  return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables() -> list[tuple[str, list[str], list[str], list[list[str]]]]:
  """``(page, marker words, header cells, body rows)`` of every marked table."""
  found = []
  for page in PAGES:
    lines = _read(page).splitlines()
    for i, line in enumerate(lines):
      m = re.match(r"^<!--\s*checked:\s*(.*?)\s*-->\s*$", line)
      if not m:
        continue
      table = []
      for row in lines[i + 1:]:
        if not row.startswith("|"):
          break
        table.append(_cells(row))
      assert len(table) > 2, f"{_rel(page)}: no table right below <!-- checked: {m.group(1)} -->"
      found.append((_rel(page), m.group(1).split(), table[0], table[2:]))
  return found


TABLES = _tables()


def _plain(cell: str) -> str:
  return cell.replace("**", "").replace("`", "").strip()


def _cell(stat: dict | None) -> str:
  """As ``benchmarks.report.cell(stat, scale=100)`` writes it."""
  if not stat:
    return "-"
  if stat.get("std") is None or len(stat.get("values", ())) < 2:
    return f"{100 * stat['mean']:.1f}"
  return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def _published(name: str) -> bool:
  return any(p in name for p in PUBLISHED)


def _column(name: str, arms: set[str]) -> str | None:
  """The arm a column shows, ``"TF-IDF"`` for the peer, None for published numbers."""
  name = _plain(name)
  if name in arms:
    return name
  if name.startswith("TF-IDF") and "REFERENCES" not in name:
    return "TF-IDF"
  assert _published(name), f"column {name!r} is neither an arm of the record nor published"
  return None


def _arm_averages(record: dict) -> dict[str, str]:
  """Each arm's (and the peer's) mean over the pairs, as the report's average row writes it;
  ``-`` for an arm missing from some pair."""
  pairs = list(record["pairs"].values())
  arms = {a for p in pairs for a in p["arms"]}
  out = {}
  for arm in arms:
    means = [p["arms"][arm]["target_accuracy"]["mean"] for p in pairs if arm in p["arms"]]
    out[arm] = f"{100 * np.mean(means):.1f}" if len(means) == len(pairs) else "-"
  out["TF-IDF"] = f"{100 * np.mean([p['tfidf_peer']['target_accuracy'] for p in pairs]):.1f}"
  return out


def _check_pairs(words, header, rows):
  bench, protocol = words
  record = _record(bench, protocol)
  pairs = record["pairs"]
  arms = {a for p in pairs.values() for a in p["arms"]}
  columns = [_column(h, arms) for h in header[1:]]
  assert any(columns), "no measured column"
  averages = _arm_averages(record)
  seen, wrong = set(), []
  for row in rows:
    label = _plain(row[0])
    for name, cell in zip(columns, row[1:]):
      if name is None:
        continue
      if label.startswith("average"):
        expected = averages[name]
      else:
        assert label in pairs, f"row {label!r} is not a pair of {bench}"
        pair = pairs[label]
        expected = (f"{100 * pair['tfidf_peer']['target_accuracy']:.1f}" if name == "TF-IDF"
                    else _cell(pair["arms"].get(name, {}).get("target_accuracy")))
      if _plain(cell) != expected:
        wrong.append(f"{label} / {name}: {cell!r}, the record says {expected!r}")
    seen.add(label)
  assert not wrong, wrong
  missing = set(pairs) - seen
  assert not missing, f"pairs of {bench} missing from the table: {sorted(missing)}"
  assert any(label.startswith("average") for label in seen), "no average row"


def _check_averages(words, header, rows):
  records = [_record(*spec.split(":")) for spec in words]
  assert len(header) - 1 == len(records), "one column per record named in the marker"
  averages = [_arm_averages(r) for r in records]
  wrong, checked = [], 0
  for row in rows:
    arm = re.match(r"^`([^`]+)`", row[0])
    if arm:
      name = arm.group(1)
    elif row[0].startswith("TF-IDF"):
      name = "TF-IDF"
    else:
      assert _published(row[0]), f"row {row[0]!r} is neither an arm, the peer nor published"
      continue
    for spec, avg, cell in zip(words, averages, row[1:]):
      expected = avg.get(name, "-")
      checked += expected != "-"
      if _plain(cell) != expected:
        wrong.append(f"{name} / {spec}: {cell!r}, the record says {expected!r}")
  assert not wrong, wrong
  assert checked, "no number checked"


def _check_sweep(words, header, rows):
  (bench,) = words
  points = json.load(open(os.path.join(RESULTS, bench, "sweep.json"), encoding="utf-8"))
  metric = {"target": "target_accuracy", "source val.": "source_val_accuracy"}
  by_lam = {float(p["point"]["transfer.lam"]): p["results"] for p in points}
  wrong = []
  for row in rows:
    results = by_lam[float(_plain(row[0]))]
    for name, cell in zip(header[1:], row[1:]):
      arm, _, what = _plain(name).partition(": ")
      expected = f"{100 * results[arm][metric[what]]['mean']:.1f}"
      if _plain(cell) != expected:
        wrong.append(f"λ={row[0]} / {name}: {cell!r}, the record says {expected!r}")
  assert not wrong, wrong
  assert {float(_plain(r[0])) for r in rows} == set(by_lam), "every point of the sweep"


def _check_generated(bench: str, generated: list[str], header, rows, what: str) -> None:
  """Each cell of a table whose rows are arms against the same cell of ``generated`` (a
  benchmark's own markdown table of the record); ``what`` names its columns in errors."""
  columns = _cells(generated[0])
  expected = {_cells(line)[0]: dict(zip(columns[1:], _cells(line)[1:])) for line in generated[2:]}
  wrong, checked = [], 0
  for row in rows:
    arm = _plain(row[0])
    if _published(arm):
      continue
    assert arm in expected, f"row {arm!r} is not an arm of {bench}"
    for name, cell in zip(header[1:], row[1:]):
      if _published(name):
        continue
      assert name in columns, f"column {name!r} is not {what} of {bench}"
      checked += 1
      if _plain(cell) != expected[arm][name]:
        wrong.append(f"{arm} / {name}: {cell!r}, the record says {expected[arm][name]!r}")
  assert not wrong, wrong
  assert checked, "no number checked"


def _check_imdb(words, header, rows):
  """Each cell as ``benchmarks.imdb``'s own report writes it from the record's results.json."""
  from benchmarks import imdb
  (bench,) = words
  summary = _record(bench)
  _check_generated(bench, imdb.markdown(summary).splitlines(), header, rows, "a label budget")


def _check_translation(words, header, rows):
  """Each cell as ``benchmarks.translation``'s own table writes it from the record's
  results.json (rows = arms, columns = that table's columns)."""
  from benchmarks import translation
  (bench,) = words
  results = _record(bench)
  _check_generated(bench, translation.table(results), header, rows, "a column")


def _check_selection(words, header, rows, path=None):
  """Each cell ``+0.65 (p 0.022), 4/0``: the Spearman rho of the measure's closeness against
  the arm's accuracy over the pairs of GROUP in ``benchmarks/results/selection``, its
  p-value, and how many targets' top-ranked source is their best / their worst."""
  (group,) = words
  path = path or os.path.join(RESULTS, "selection", "results.json")
  table = json.load(open(path, encoding="utf-8"))["correlations"][group]["measures"]
  wrong, checked = [], 0
  for row in rows:
    measure = _plain(row[0]).replace(" (default)", "")
    assert measure in table, f"row {measure!r} is not a measure of group {group}"
    for arm, cell in zip(header[1:], row[1:]):
      r = table[measure][_plain(arm)]
      s = r["selection"]
      expected = (f"{r['spearman']:+.2f} (p {r['spearman_p']:.3f}), "
                  f"{s['top_is_best']}/{s['top_is_worst']}")
      checked += 1
      if _plain(cell) != expected:
        wrong.append(f"{measure} / {arm}: {cell!r}, the record says {expected!r}")
  assert not wrong, wrong
  assert checked, "no number checked"


@pytest.mark.parametrize("page, words, header, rows", TABLES,
                         ids=[f"{t[0]}:{' '.join(t[1])}" for t in TABLES])
def test_sentiment_tables_match_the_records(page, words, header, rows):
  kind = words[0]
  if kind == "averages":
    _check_averages(words[1:], header, rows)
  elif kind == "sweep":
    _check_sweep(words[1:], header, rows)
  elif kind == "imdb":
    _check_imdb(words[1:], header, rows)
  elif kind == "selection":
    _check_selection(words[1:], header, rows)
  elif kind == "translation":
    _check_translation(words[1:], header, rows)
  else:
    _check_pairs(words, header, rows)


def test_every_sentiment_record_is_checked_somewhere():
  marked = {" ".join(t[1]) for t in TABLES if t[0] == "docs/sentiment.md"}
  assert {"sentiment_A A", "sentiment_B B", "sentiment_movie movie"} <= marked
  assert any(t[0] == "README.md" and t[1][0] == "averages" for t in TABLES)


def test_a_translation_table_that_drifts_from_its_record_fails(tmp_path, monkeypatch):
  stat = lambda *v: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": list(v)}
  (tmp_path / "bench").mkdir()
  (tmp_path / "bench" / "results.json").write_text(json.dumps(
      {"de_10_declm": {"test_bleu": stat(20.0, 21.0), "valid_perplexity": stat(9.5)}}))
  monkeypatch.setitem(globals(), "RESULTS", str(tmp_path))
  header = ["arm", "n", "BLEU", "val ppl"]
  _check_translation(["bench"], header, [["`de_10_declm`", "2", "20.5 ± 0.5", "9.50"]])
  with pytest.raises(AssertionError, match="the record says"):
    _check_translation(["bench"], header, [["`de_10_declm`", "2", "20.4 ± 0.5", "9.50"]])
  with pytest.raises(AssertionError, match="not an arm"):
    _check_translation(["bench"], header, [["de_10_bt", "2", "20.5 ± 0.5", "9.50"]])


def test_an_imdb_table_that_drifts_from_its_record_fails(tmp_path, monkeypatch):
  stat = {"mean": 0.8, "std": 0.01, "values": [0.79, 0.81]}
  (tmp_path / "bench").mkdir()
  (tmp_path / "bench" / "results.json").write_text(json.dumps(
      {"1000": {"scratch": {"test_accuracy": stat, "seeds": 2}}}))
  monkeypatch.setitem(globals(), "RESULTS", str(tmp_path))
  header = ["arm", "1,000 labels", "published LSTM"]
  _check_imdb(["bench"], header, [["`scratch`", "80.00 ± 1.00 (2)", "86.5"]])
  with pytest.raises(AssertionError, match="the record says"):
    _check_imdb(["bench"], header, [["`scratch`", "81.00 ± 1.00 (2)", "86.5"]])


def test_a_selection_table_that_drifts_from_its_record_fails(tmp_path):
  record = {"correlations": {"A": {"measures": {"jsd": {"dann": {
      "spearman": 0.6512, "spearman_p": 0.0221,
      "selection": {"top_is_best": 4, "top_is_worst": 0}}}}}}}
  path = tmp_path / "results.json"
  path.write_text(json.dumps(record))
  _check_selection(["A"], ["measure", "`dann`"], [["`jsd` (default)", "+0.65 (p 0.022), 4/0"]],
                   path=str(path))
  with pytest.raises(AssertionError, match="the record says"):
    _check_selection(["A"], ["measure", "`dann`"], [["`jsd`", "+0.66 (p 0.022), 4/0"]],
                     path=str(path))

"""The command line fails in one clear line, never a traceback (``xferlab.launch.main``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from xferlab.launch import main
from tests.conftest import QUICKSTART, ROOT, TINY

MULTI30K = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
TINY_SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]


def _fails(capsys, argv, status, *fragments):
  """Runs ``main(argv)``; checks the status and one line of stderr holding every fragment."""
  code = main(argv)
  err = capsys.readouterr().err.strip()
  assert code == status, err
  assert "Traceback" not in err and err.count("error: ") == 1, err
  err = err.splitlines()[-1]   # (preparing a corpus may log a line before it)
  assert err.startswith(("error: ", "launch.py: error: ")), err
  for fragment in fragments:
    assert fragment in err, err
  return err


def test_wrong_invocations_exit_in_one_line(capsys, tmp_path):
  _fails(capsys, [], 2, "required: experiment")
  _fails(capsys, ["experiments/missing.py"], 2, "not found", "experiments/missing.py")
  _fails(capsys, [QUICKSTART + ":bogus"], 2, "does not accept the argument 'bogus'")
  _fails(capsys, [QUICKSTART, "--set", "train.num_epochs=abc"], 2, "train.num_epochs", "'abc'")
  _fails(capsys, [QUICKSTART, "--set", "trainer.no_such_key=1"], 2,
         "no section 'trainer'", "'train'")
  _fails(capsys, [QUICKSTART, "--set", "transfer.lamda=0.1"], 2, "transfer.lam")
  _fails(capsys, [QUICKSTART, "--set", "novalue"], 2, "key=value")
  _fails(capsys, [QUICKSTART, "--sweep", "transfer.lam"], 2, "KEY=V1,V2")
  _fails(capsys, [QUICKSTART, "--vectorize", "sometimes"], 2, "'sometimes': use on, auto or off")
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  _fails(capsys, [QUICKSTART, "--workdir", str(a_file)], 2, "is a file")
  _fails(capsys, [QUICKSTART, "--workdir", str(a_file / "below")], 2, "which is a file")
  assert os.listdir(tmp_path) == ["a_file"]          # nothing was written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_workdir(capsys, tmp_path):
  tmp_path.chmod(0o500)
  try:
    _fails(capsys, [QUICKSTART, "--workdir", str(tmp_path / "run")], 2, "not writable")
  finally:
    tmp_path.chmod(0o700)


def test_an_experiments_help_is_its_docstring(capsys):
  import ast
  with open(QUICKSTART) as f:
    doc = ast.get_docstring(ast.parse(f.read()))
  assert main([QUICKSTART + ":dann", "--help"]) == 0
  out = capsys.readouterr().out
  assert out.startswith(doc) and "python launch.py --help" in out


def test_help_lists_the_experiments(capsys):
  assert main(["--help"]) == 0
  out = capsys.readouterr().out
  for name in ("quickstart.py", "translation/multi30k.py", "summarization/news_to_science.py",
               "--manual-dir"):
    assert name in out


def test_missing_corpora_are_all_named_before_anything_is_written(capsys, tmp_path,
                                                                    monkeypatch):
  monkeypatch.setenv("XFERLAB_DATA_DIR", str(tmp_path / "tfds"))   # nothing prepared
  empty = tmp_path / "corpora"
  empty.mkdir()
  workdir = tmp_path / "run"
  err = _fails(capsys, [MULTI30K + ":smoke", "--manual-dir", str(empty),
                        "--workdir", str(workdir)], 1, "2 corpora", "multi30k/en-de",
               "multi30k/en-fr", "--manual-dir")   # the pair and the vocabulary's French
  assert str(empty) in err
  assert not workdir.exists() or not any(workdir.iterdir())   # nothing written: nothing to refuse


def test_a_run_that_failed_on_a_missing_corpus_reruns_in_the_same_workdir(capsys, tmp_path,
                                                                          monkeypatch):
  from tests.data.test_new_corpora import make_imdb_full
  monkeypatch.setenv("XFERLAB_DATA_DIR", str(tmp_path / "tfds"))
  corpora, workdir = tmp_path / "corpora", tmp_path / "run"
  corpora.mkdir()
  argv = [os.path.join(ROOT, "experiments", "sentiment", "imdb.py") + ":scratch",
          "--manual-dir", str(corpora), "--workdir", str(workdir),
          "--set", "data.tokenizer_path=", "--set", "data.subset_size=0",
          "--set", "data.buckets=(16,)", "--set", "data.batch_size=8",
          "--set", "model.embed_dim=8", "--set", "model.hidden_size=8",
          "--set", "classification.head_hidden=(4,)", "--set", "model.num_layers=1",
          "--set", "train.num_steps=2", "--set", "train.eval_every=1"]
  _fails(capsys, argv, 1, "imdb_full", str(corpora / "imdb_full"))
  make_imdb_full(corpora)                                  # the user fetches the corpus
  assert main(argv) == 0, capsys.readouterr().err
  assert (workdir / "results.json").is_file()


def test_finished_workdir_with_another_config_is_refused_in_one_line(capsys, tmp_path):
  workdir = str(tmp_path / "run")
  assert main([QUICKSTART + ":dann", *TINY_SETS, "--workdir", workdir]) == 0
  capsys.readouterr()
  _fails(capsys, [QUICKSTART + ":dann", *TINY_SETS, "--set", "transfer.lam=0.5",
                  "--workdir", workdir], 1, "transfer.lam")
  # ... and so are the experiment's arms and seeds, and a sweep, in that run's workdir: the
  # run's config.json stays its own.
  written = (tmp_path / "run" / "config.json").read_text()
  _fails(capsys, [QUICKSTART, *TINY_SETS, "--workdir", workdir], 1, "different configuration")
  _fails(capsys, [QUICKSTART + ":dann", *TINY_SETS, "--sweep", "transfer.lam=0.3",
                  "--workdir", workdir], 1, "holds a run", "workdir of its own")
  assert (tmp_path / "run" / "config.json").read_text() == written
  assert not {"dann", "source_only", "sweep.json", "transfer.lam=0.3"} & set(os.listdir(workdir))


def test_a_bad_arm_fails_before_anything_is_written(capsys, tmp_path):
  workdir = tmp_path / "run"
  _fails(capsys, [QUICKSTART, *TINY_SETS, "--set", "model.cell=lstmm", "--workdir",
                  str(workdir)], 2, "model.cell")
  _fails(capsys, [os.path.join(ROOT, "experiments", "sentiment", "amazon.py")
                  + ":source=nope,target=dvd", "--workdir", str(workdir)], 2, "'nope'")
  _fails(capsys, [QUICKSTART + ":smoke", "--set", "data.source=kitchn", "--workdir",
                  str(workdir)], 2, "'kitchn' is not a synthetic domain")
  assert not workdir.exists()


def test_seeds_without_arms_are_reported_under_the_experiments_name(capsys, tmp_path):
  workdir = tmp_path / "run"
  assert main([QUICKSTART + ":dann", *TINY_SETS, "--set", "seeds=0,1", "--workdir",
               str(workdir)]) == 0, capsys.readouterr().err
  results = json.loads((workdir / "results.json").read_text())
  config = json.loads((workdir / "config.json").read_text())
  assert list(results) == [config["name"]]          # not a placeholder such as "default"
  assert config["name"] in (workdir / "results.md").read_text()
  assert len(results[config["name"]]["target_accuracy"]["values"]) == 2


def test_a_seed_the_experiments_seeds_would_ignore_and_a_repeated_seed_are_refused(capsys,
                                                                                   tmp_path):
  workdir = tmp_path / "run"
  # quickstart.py:smoke runs seeds=(0,): `seed` alone would silently train seed 0
  _fails(capsys, [QUICKSTART + ":smoke", "--set", "seed=5", "--workdir", str(workdir)], 2,
         "seed = 5", "seeds=(5,)")
  _fails(capsys, [QUICKSTART + ":smoke", "--set", "seeds=(0,0)", "--workdir", str(workdir)], 2,
         "seeds = (0, 0)", "seeds=(0,)")
  assert not workdir.exists()


def test_a_sweep_checks_every_point_before_training_any(capsys, tmp_path):
  workdir = tmp_path / "sweep"
  _fails(capsys, [QUICKSTART + ":dann", *TINY_SETS, "--sweep", "transfer.lam=0,abc",
                  "--workdir", str(workdir)], 2, "transfer.lam", "'abc'")
  _fails(capsys, [QUICKSTART + ":dann", *TINY_SETS, "--sweep", "model.cell=lstm,lstmm",
                  "--workdir", str(workdir)], 2, "model.cell", "'lstmm'")
  assert not workdir.exists() or not os.listdir(workdir)     # no point trained
  _fails(capsys, [QUICKSTART + ":dann", "--sweep", "transfer.lam=0,1",
                  "--use-experiment-sweep"], 2, "use one")


def test_the_script_prints_no_traceback():
  bad = subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"), QUICKSTART + ":bogus"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert bad.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "bogus" in bad.stderr


@pytest.mark.parametrize("experiment, expected", [
    ("sentiment/amazon.py:source=books,target=dvd", {"amazon_unlabeled/dvd", "amazon_multi_domain/dvd",
                                  "amazon_multi_domain/books"}),
    ("sentiment/movie_to_product.py", {"imdb_2k", "amazon_unlabeled/kitchen",
                                       "amazon_multi_domain/kitchen"}),
    ("sentiment/imdb.py:lm_wiki_imdb", {"imdb_full"}),
    ("lm/wiki.py", {"wiki_en"}),
    ("translation/multi30k.py", {"multi30k/en-de", "multi30k/en-fr"}),
    ("summarization/news_to_science.py", {"bbc_news_summary", "scitldr"}),
    ("quickstart.py", set()),
])
def test_each_task_names_the_corpora_its_run_reads(experiment, expected):
  from xferlab.config import load_experiment
  from xferlab.tasks import get_task
  config, _ = load_experiment(os.path.join(ROOT, "experiments", experiment))
  assert set(get_task(config.task).corpora(config)) == expected
  config.data.tokenizer_path = "a/tokenizer"      # a given vocabulary reads no extra corpus
  if config.task == "translation":
    assert get_task(config.task).corpora(config) == ("multi30k/en-de",)


def test_a_boolean_written_another_way_is_refused_naming_true_and_false(capsys):
  _fails(capsys, [QUICKSTART + ":smoke", "--set", "train.progress_bar=yes"], 2,
         "train.progress_bar", "write True or False")


def test_an_experiment_path_relative_to_another_directory_names_the_file_it_meant(
    capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)                  # a user outside the checkout
  _fails(capsys, ["experiments/quickstart.py:smoke"], 2, "not found",
         f"did you mean {QUICKSTART}?", str(tmp_path))


def test_a_terminated_run_says_how_to_resume_as_an_interrupted_one_does(tmp_path):
  workdir = tmp_path / "run"
  long = [a if a != "train.num_steps=6" else "train.num_steps=1000000" for a in TINY_SETS]
  run = subprocess.Popen([sys.executable, os.path.join(ROOT, "launch.py"), QUICKSTART + ":dann",
                          *long, "--workdir", str(workdir)], cwd=ROOT, text=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 240
  while not (workdir / "metrics.jsonl").exists() or not (workdir / "metrics.jsonl").stat().st_size:
    assert run.poll() is None and time.time() < deadline, "the run did not start training"
    time.sleep(0.5)
  run.send_signal(signal.SIGTERM)            # as a scheduler or `kill` stops it
  _, err = run.communicate(timeout=120)
  assert run.returncode == 128 + signal.SIGTERM and "Traceback" not in err
  assert err.strip().splitlines()[-1] == "error: interrupted; rerun the same command to resume"

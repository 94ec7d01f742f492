r"""The IMDb classification benchmark: pretrained RNNs against scratch and classical peers.

  python -m benchmarks.imdb --out runs/bench_imdb [--budgets 100,1000,0] [--seeds 3]
      [--arms scratch,lm_imdb,...] [--lms runs] [--vectors runs/vectors_imdb] [--peers]

For every label budget (``data.subset_size``; 0 = all 25,000), arm of
``experiments/sentiment/imdb.py`` and seed, one run in
``OUT/<budget>/<arm>/seed_<s>``; a finished run is read, not trained again, so
the benchmark resumes where it stopped (and from a record unpacked with
``python -m benchmarks.records --unpack``). An arm whose language model or
vectors are missing is skipped with the command that makes them. The 25,000-
label budget runs seed 0 only unless ``--full-seeds`` says otherwise.
``--peers`` adds TF-IDF + logistic regression and NB-SVM (bigrams; Wang &
Manning 2012) on the same labels (``xferlab.studies.peers``).

Writes ``OUT/results.json`` (budget -> arm -> metric -> ``{mean, std, values}``,
e.g. ``"1000": {"lm_imdb": {"test_accuracy": {...}}}``) and ``OUT/results.md``.
Published test errors on the same 25,000 test reviews (25k labels): LSTM from
random weights 13.5 and LM-LSTM 7.64 (Dai & Le 2015), ULMFiT 4.6 (Howard &
Ruder 2018), NB-SVM bigrams 8.78 (Wang & Manning 2012); see docs/references.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from benchmarks import report

EXPERIMENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments", "sentiment", "imdb.py")
METRICS = {"target_accuracy": "test_accuracy", "target_macro_f1": "test_macro_f1",
           "source_val_accuracy": "val_accuracy"}
PEERS = ("tfidf_logreg", "nbsvm")


def budget_name(budget: int) -> str:
  return str(budget or 25000)


def arm_config(arm: str, budget: int, seed: int, lms: str, vectors: str, out: str = "runs"):
  """The configuration of one run: the experiment's arm at this budget and seed. The
  language models, tokenizer and vectors are named as ``--lms`` / ``--vectors`` give them
  (relative to the working directory by default, ``runs/...``), so that a record unpacked on
  another machine resumes from the same command there; an arm that starts from a probe head
  reads it from ``probe_head_dir(out, ...)``."""
  from xferlab.config import apply_overrides, load_experiment
  config, module = load_experiment(f"{EXPERIMENT}:{arm}")
  steps, eval_every = module.steps_for(budget)
  overrides = {"data.subset_size": budget, "seed": seed, "train.num_steps": steps,
               "train.eval_every": eval_every}
  if arm in module.LM_DIRS:
    lm_dir = os.path.join(lms, os.path.basename(module.LM_DIRS[arm]))
    overrides.update({"init_from.path": lm_dir,
                      "data.tokenizer_path": os.path.join(lm_dir, "tokenizer"),
                      "finetune.unfreeze_every": module.unfreeze_every(arm, steps)})
    if module.starts_from_probe(arm):
      overrides["init_from.extra"] = ((probe_head_dir(out, arm, budget, seed),
                                       ("classifier.head",)),)
  else:
    overrides["data.tokenizer_path"] = imdb_tokenizer(lms, module)
  if arm == "vectors":
    overrides["model.pretrained_vectors"] = os.path.join(vectors, "vectors.txt")
  return apply_overrides(config, overrides), module


def probe_head_dir(out: str, arm: str, budget: int, seed: int) -> str:
  """Where the probe head of a ``_probe`` arm's run is kept (beside the run's workdir)."""
  return os.path.join(out, budget_name(budget), arm, f"probe_head_seed_{seed}")


def imdb_tokenizer(lms: str, module) -> str:
  """The IMDb vocabulary that the arms without a language model read: the tokenizer of
  the IMDb LM from Wikipedia, or else of one from scratch. They are the same file: every
  IMDb LM trains its 32k-word tokenizer on the same IMDb text with the same settings (and
  a later run finds the first one's in the tokenizer cache)."""
  candidates = [os.path.join(lms, os.path.basename(module.LM_ARMS[arm]), "tokenizer")
                for arm in ("lm_wiki_imdb", "lm_imdb", "lm_imdb_resets")]
  return next((path for path in candidates if os.path.exists(path)), candidates[0])


def missing(config, module) -> str | None:
  """Why a run cannot start (a missing or unfinished language model, a missing tokenizer or
  vectors), or None."""
  for path in (config.init_from.path, config.data.tokenizer_path,
               config.model.pretrained_vectors):
    if path and not os.path.exists(path):
      origin = os.path.dirname(path) if path.endswith(("tokenizer", ".txt")) else path
      made_by = module.LM_COMMANDS.get(f"runs/{os.path.basename(origin)}",
                                       "python -m xferlab.studies.word2vec --domains imdb "
                                       "--dim 128 --out " + origin)
      return f"{path} not found; make it first: {made_by}"
  lm = config.init_from.path
  if lm and not os.path.exists(os.path.join(lm, "results.json")):
    return (f"{lm} has not finished training (no results.json); finish it first with the "
            "command that started it: "
            + module.LM_COMMANDS.get(f"runs/{os.path.basename(lm)}", "its launch command"))
  return None


def run_arm(arm: str, budget: int, seed: int, args) -> dict | None:
  """Trains (or reads) one run; None when it cannot start."""
  from xferlab import launch
  config, module = arm_config(arm, budget, seed, args.lms, args.vectors, args.out)
  workdir = os.path.join(args.out, budget_name(budget), arm, f"seed_{seed}")
  if args.report_only:        # a finished run (or one unpacked from a record) needs no LM
    from xferlab.workdir import finished_results, written_config
    recorded = written_config(workdir)
    if recorded is not None and arm not in module.LM_DIRS:
      # The arms without an LM read whichever IMDb LM's tokenizer existed when they ran
      # (``imdb_tokenizer``: the same file under another folder), so the folder is theirs.
      config.data.tokenizer_path = recorded.data.tokenizer_path
    return finished_results(config, workdir)
  why = missing(config, module)
  if why:
    print(f"[imdb] {budget_name(budget)} labels, {arm}, seed {seed}: skipped, {why}", flush=True)
    return None
  print(f"[imdb] {budget_name(budget)} labels, {arm}, seed {seed} -> {workdir}", flush=True)
  head_dir = config.init_from.extra[0][0] if module.starts_from_probe(arm) else ""
  # probe_head.json is written last; a record keeps it without the weights, so look for both
  if head_dir and not all(os.path.exists(os.path.join(head_dir, f))
                          for f in ("0", "probe_head.json")):
    from xferlab.config import apply_overrides
    from xferlab.studies import probe
    info = probe.save_probe_head(apply_overrides(config, {"init_from.extra": ()}), head_dir)
    print(f"[imdb] probe head -> {head_dir}: {json.dumps(info)}", flush=True)
  return launch.run_config(config, workdir, verbose=False)


def run_peer(peer: str, budget: int, seed: int, out: str, report_only: bool = False) -> dict | None:
  """One peer's scores on a budget and seed, kept in ``OUT/<budget>/peers/`` (None when
  ``report_only`` and not computed yet)."""
  from xferlab.config import load_experiment
  from xferlab.studies import peers
  path = os.path.join(out, budget_name(budget), "peers", f"{peer}_seed_{seed}.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  if report_only:
    return None
  config, _ = load_experiment(f"{EXPERIMENT}:scratch")
  config.data.subset_size = budget
  scores = peers.peer_scores(config.data, peer, seed)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(scores, f, indent=2)
  print(f"[imdb] {budget_name(budget)} labels, {peer}, seed {seed}: test accuracy "
        f"{100 * scores['target_accuracy']:.2f}", flush=True)
  return scores


def summarize(runs: dict) -> dict:
  """``{budget: {arm: [results, ...]}}`` -> ``{budget: {arm: {metric: {mean, std, values}}}}``
  with the benchmark's metric names (``test_accuracy``, ``test_macro_f1``, ``val_accuracy``)."""
  out = {}
  for budget, arms in runs.items():
    for arm, results in arms.items():
      if not results:
        continue
      present = [key for key in METRICS if all(key in r for r in results)]
      out.setdefault(budget, {})[arm] = {METRICS[k]: v for k, v in
                                         report.stats(results, present).items()}
      out[budget][arm]["seeds"] = len(results)
  return out


def markdown(summary: dict) -> str:
  """One table: arms as rows, budgets as columns, test accuracy mean ± std (seeds)."""
  budgets = sorted(summary, key=int)
  arms = list(dict.fromkeys(arm for b in budgets for arm in summary[b]))
  lines = report.header(["arm"] + [f"{int(b):,} labels" for b in budgets])
  for arm in arms:
    cells = [arm]
    for b in budgets:
      stat = summary[b].get(arm, {}).get("test_accuracy")
      cells.append("–" if stat is None else
                   f"{report.cell(stat, digits=2, scale=100)} ({summary[b][arm]['seeds']})")
    lines.append(report.row(cells))
  return "\n".join(lines)


def write_reports(out: str, summary: dict) -> None:
  report.write_results(out, "# IMDb benchmark\n\nTest accuracy % on the 25,000 IMDb test "
                       "reviews, mean ± std (number of seeds); the model of each run chosen on "
                       "a validation split carved from its labeled budget.\n\n"
                       + markdown(summary) + "\n", summary)


def parse_args(argv: Sequence[str] | None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.imdb",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="where the runs and reports go")
  parser.add_argument("--budgets", default="100,1000,0", help="label budgets (0 = all 25,000)")
  parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for small budgets")
  parser.add_argument("--first-seed", type=int, default=0,
                      help="start at this seed (to split the seeds between invocations, e.g. "
                      "one per core; a --report-only invocation then reports them all)")
  parser.add_argument("--full-seeds", type=int, default=1, help="seeds of the 25,000 budget")
  parser.add_argument("--arms",
                      default="scratch,lm_imdb,lm_imdb_resets,lm_wiki_imdb,lm_wiki,glove,vectors")
  parser.add_argument("--lms", default="runs", help="folder holding wiki/, lm_imdb/, "
                      "lm_imdb_scratch/ (the language models)")
  parser.add_argument("--vectors", default="runs/vectors_imdb", help="the word2vec folder")
  parser.add_argument("--peers", action="store_true", help="also the TF-IDF and NB-SVM peers")
  parser.add_argument("--report-only", action="store_true",
                      help="train nothing: report the finished runs under --out (several "
                      "invocations can fill one --out, each with its own arms or budgets; "
                      "this one then writes the whole report)")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  runs: dict = {}
  for budget in (int(b) for b in args.budgets.split(",")):
    seeds = range(args.first_seed, args.seeds if budget else args.full_seeds)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for arm in arms:
      results = [run_arm(arm, budget, seed, args) for seed in seeds]
      runs.setdefault(budget_name(budget), {})[arm] = [r for r in results if r]
    for peer in PEERS if args.peers else ():
      scores = [run_peer(peer, budget, s, args.out, args.report_only) for s in seeds]
      runs.setdefault(budget_name(budget), {})[peer] = [r for r in scores if r]
  summary = summarize(runs)
  write_reports(args.out, summary)
  print(markdown(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())

r"""Sentiment transfer benchmark: every arm x pair x seed, the TF-IDF peer, domain distances.

  python -m benchmarks.sentiment [--protocol A|B|movie|movie_full|multi]
      [--pairs all|books:dvd,...]
      [--seeds N] [--arms all|source_only,dann,...] [--out DIR] [--lm DIR] [--set KEY=VALUE ...]
      [--vectorize] [--distance-texts N]

Protocols (the experiment files say what each one trains and tests on):
  A      ``experiments/sentiment/amazon.py``: the 12 pairs of the 4 Amazon domains;
  B      ``experiments/sentiment/amazon_hatn.py``: the same 12 pairs, HATN's splits;
  movie  ``experiments/sentiment/movie_to_product.py``: imdb_2k and rt_polarity to each
         Amazon domain (8 pairs);
  movie_full  the same experiment with imdb_full (the 25,000 labeled IMDb training
         reviews) as the source, to each Amazon domain (4 pairs);
  multi  ``experiments/sentiment/amazon.py`` with several sources: the union of the other
         three domains to each Amazon domain (4 pairs, ``dvd+electronics+kitchen:books``...);
         beside protocol A in one ``--out``, the report compares each with the best single
         source.

Arms (``--arms``): ``source_only`` and ``dann`` by default, the comparison the
12-pair table counts (one pair and seed of them: 9.5 wall minutes on 2 CPU
cores); ``--arms all`` adds ``dann_scheduled``, ``in_domain``, ``lm``,
``lm_dann`` (these two need the review language model, below), ``vectors``,
``vectors_dann``, ``vectors_dann_im``, ``vectors_ema``, and ``glove`` / ``glove_ema``
(the vector recipes on GloVe 6B 50-d from the data root's ``glove_6b_50d``), and the
ensembles ``ensemble_lm_dann`` (``vectors_ema`` + ``lm_dann_ema``) and ``ensemble_lm``
(``vectors_ema`` + ``lm_ema``): the mean of the members' class probabilities, seed by
seed (``xferlab.studies.ensemble``; the members train first, each in its own workdir, and
keep their probabilities in ``predictions.npz``, so a record computes the ensemble again
without weights); and the self-trained students ``self_train_lm_dann`` and ``self_train_lm``:
``vectors_ema`` trained on the source labels plus the most confident half of each class
the matching ensemble predicts on the target's unlabeled text (``xferlab.transfer.
self_training``; the teacher's members need their weights, ``best/``, to label it); and
``ensemble_lm_dann_student`` / ``ensemble_lm_student``: each LM member averaged with the
student that replaced its vector partner.

Each run trains through ``xferlab.launch.run_config`` in
``OUT/<protocol>/<source>_<target>/<arm>/seed_<s>`` (its config is the
experiment's arm exactly as ``launch.py`` would run it, plus ``--set``
overrides). A run whose ``results.json`` exists is not trained again, so the
benchmark resumes where it stopped: run it again with the same ``--out`` (and
the same ``--set``) until it is complete. Invocations may also share one
``--out`` at the same time when their ``--pairs`` are disjoint (and, with the
``in_domain`` arm, their targets): each merges its pairs into ``results.json``
under a file lock. ``--vectorize`` trains a pair's runs that differ only in
λ (source_only and dann) as one vmapped program.

Shared work, trained once and reused:
  * the review language model of the ``lm`` / ``lm_dann`` arms: one for every
    pair and protocol (``runs/lm_reviews_all``, a prerequisite; the benchmark
    stops before training anything if it is missing, naming the command);
  * the review word vectors of the ``vectors*`` arms
    (``--vectors``, default ``runs/vectors_reviews``; 2.5 minutes, made by the
    benchmark before any pair when missing);
  * ``in_domain``: it never reads the source domain, so it trains once per
    target domain and seed, in ``OUT/<protocol>/to_<target>/in_domain/seed_<s>``,
    and serves the 3 pairs with that target (A, B) -- movie pairs use protocol
    A's, which trains and tests on the same data;
  * ``lm``: its training never reads the target domain (the language model's own
    vocabulary, no target batches at λ = 0), so the 3 pairs of one source train the
    same model, bit for bit. The first pair of a source to reach a seed trains it;
    the others evaluate that run's selected weights on their own target
    (``share_target_free_run``: a run whose ``results.json`` says ``trained_in``,
    ``train_seconds`` 0, its ``best/`` a link to the trained run's). The source
    validation numbers are measured again on the pair's own source split and must
    match the trained run's, or the benchmark stops. Any arm with the same property
    shares the same way (``target_free``);
  * the corpora (prepared once, cached by ``xferlab.data``).
Not shared: ``source_only`` trains per pair. It is the twin of ``dann`` without the
transfer term (same network and initial weights, same source batches, its
vocabulary built with the target's text; no target batches, whose gradient at
λ = 0 is zero), so that the transfer term is the only difference between the two;
``lm`` is ``lm_dann``'s twin in the same sense.

Besides the runs: the TF-IDF + logistic regression peer (``xferlab.studies.peers``)
per pair; the proxy A-distance of the source and target encoder features
(``xferlab.studies.domain_distance``) for the source_only, dann, lm, lm_dann and vectors*
runs, with a PCA picture of source-only beside DANN for each pair's first seed
(``OUT/<protocol>/<pair>/features.png``); the discriminator's accuracy over
the last quarter of training (from ``metrics.jsonl``; arms with λ > 0 only:
the discriminator's gradient is scaled by λ too, so at λ = 0 it never trains).

Writes ``OUT/results.md`` (target accuracy mean ± std over seeds per pair and
arm, the pair average, the published anchors of docs/references.md beside; macro F1;
domain distances) and ``OUT/results.json`` with every number, for every
protocol run into ``OUT`` so far; prints the CPU minutes each pair used
(``resource.getrusage``, this process and its children, including runs
skipped as finished: those cost ~0).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import os
import resource
import sys
import time
from typing import Sequence

import numpy as np

from benchmarks import report as rep
from xferlab import launch
from xferlab.config import ConfigError, apply_overrides, flatten, load_experiment, parse_override

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = {"A": "experiments/sentiment/amazon.py",
               "B": "experiments/sentiment/amazon_hatn.py",
               "movie": "experiments/sentiment/movie_to_product.py",
               "movie_full": "experiments/sentiment/movie_to_product.py",
               "multi": "experiments/sentiment/amazon.py"}
DOMAINS = ("books", "dvd", "electronics", "kitchen")
MOVIES = ("imdb_2k", "rt_polarity")
# Ensembles: the mean of their members' class probabilities, seed by seed
# (xferlab.studies.ensemble); nothing trained beyond the members.
# The ``*_student`` ensembles put each self-trained student (below) in the place of the vector
# member it was trained from; added after the students' first results, before their own.
ENSEMBLES = {"ensemble_lm_dann": ("vectors_ema", "lm_dann_ema"),
             "ensemble_lm": ("vectors_ema", "lm_ema"),
             "ensemble_lm_dann_student": ("lm_dann_ema", "self_train_lm_dann"),
             "ensemble_lm_student": ("lm_ema", "self_train_lm")}
# Self-training: (teacher, student recipe). The teacher, an ensemble arm of the same seed,
# labels the target's unlabeled text; the most confident half of each predicted class joins
# the source labels of a student trained with the recipe's configuration
# (xferlab.transfer.self_training). Fraction and recipe fixed before any target result.
SELF_TRAINED = {"self_train_lm_dann": ("ensemble_lm_dann", "vectors_ema"),
                "self_train_lm": ("ensemble_lm", "vectors_ema")}
ARMS = ("source_only", "dann", "dann_scheduled", "in_domain", "lm", "lm_dann", "lm_ema",
        "lm_dann_ema", "vectors", "vectors_dann", "vectors_dann_im", "vectors_ema", "glove",
        "glove_ema", *ENSEMBLES, *SELF_TRAINED)
DEFAULT_ARMS = ("source_only", "dann")   # a one-pair, one-seed run fits in 10 minutes
PER_TARGET_ARMS = ("in_domain",)          # trained once per target domain
DISTANCE_ARMS = ("source_only", "dann", "lm", "lm_dann", "lm_ema", "lm_dann_ema", "vectors",
                 "vectors_dann", "vectors_dann_im", "vectors_ema", "glove", "glove_ema")
LM_ARMS = ("lm", "lm_dann", "lm_ema", "lm_dann_ema")
VECTOR_ARMS = ("vectors", "vectors_dann", "vectors_dann_im", "vectors_ema")
GLOVE_ARMS = ("glove", "glove_ema")
# (arm, its twin without the transfer term): the comparisons the report counts pair by pair.
TWINS = (("dann", "source_only"), ("dann_scheduled", "source_only"), ("lm_dann", "lm"),
         ("lm_dann_ema", "lm_ema"), ("lm_ema", "lm"), ("vectors_dann", "vectors"),
         ("vectors_dann_im", "vectors"), ("vectors_ema", "vectors"), ("glove_ema", "glove"))
# (pretrained arm, source_only): what pretraining is worth against the scratch network.
FROM_SCRATCH = tuple((arm, "source_only") for arm in ("lm_dann_ema", "lm_ema", "lm_dann", "lm",
                                                      "vectors_ema", "glove_ema"))
# (ensemble, member): what averaging adds to each model it averages.
ENSEMBLE_MEMBERS = tuple((arm, m) for arm, members in ENSEMBLES.items() for m in members)
# (student, its teacher) and (student, its recipe without the teacher's labels).
STUDENTS = tuple(pair for arm, (teacher, recipe) in SELF_TRAINED.items()
                 for pair in ((arm, teacher), (arm, recipe)))
METRICS = ("target_accuracy", "target_precision", "target_recall", "target_macro_f1",
           "source_val_accuracy")
LM_DIR = "runs/lm_reviews_all"            # experiments/sentiment/amazon.py's defaults
VECTORS_DIR = "runs/vectors_reviews"
LETTER = {"books": "B", "dvd": "D", "electronics": "E", "kitchen": "K", "imdb_2k": "IMDB",
          "rt_polarity": "RT", "imdb_full": "IMDB25k"}

# Published anchors (docs/references.md), accuracy %.
ANCHORS = {
    "A": {
        "columns": ("DANN bow", "DANN mSDA", "CORAL bow", "TF-IDF (REFERENCES)"),
        "B→D": (78.4, 82.9, 80.7, 81.1), "B→E": (73.3, 80.4, 76.3, 75.1),
        "B→K": (77.9, 84.3, 82.5, 78.5), "D→B": (72.3, 82.5, 78.3, 78.0),
        "D→E": (75.4, 80.9, 77.0, 76.6), "D→K": (78.3, 84.9, 82.5, 79.3),
        "E→B": (71.3, 77.4, 73.2, 72.2), "E→D": (73.8, 78.1, 72.9, 75.1),
        "E→K": (85.4, 88.1, 83.6, 87.8), "K→B": (70.9, 71.8, 72.5, 72.5),
        "K→D": (74.0, 78.9, 73.9, 74.2), "K→E": (84.3, 85.6, 84.6, 84.7),
        "average": (76.3, 81.3, 78.2, 77.9),
    },
    "B": {
        "columns": ("P-net", "HATN_h"),
        "B→D": (87.22, 87.70), "B→E": (83.88, 86.20), "B→K": (85.18, 87.08),
        "D→B": (87.83, 88.02), "D→E": (83.93, 86.78), "D→K": (84.67, 87.00),
        "E→B": (83.28, 83.62), "E→D": (83.40, 83.87), "E→K": (90.10, 90.12),
        "K→B": (83.98, 84.83), "K→D": (83.57, 84.73), "K→E": (88.07, 89.08),
        "average": (85.4, 86.6),
    },
    "movie": {"columns": ()},
    "movie_full": {"columns": ()},
    "multi": {"columns": ()},
}


def all_pairs(protocol: str) -> list[tuple[str, str]]:
  if protocol == "movie":
    return [(s, t) for s in MOVIES for t in DOMAINS]
  if protocol == "movie_full":
    return [("imdb_full", t) for t in DOMAINS]
  if protocol == "multi":   # the other three domains together -> each target
    return [("+".join(d for d in DOMAINS if d != t), t) for t in DOMAINS]
  return list(itertools.permutations(DOMAINS, 2))


def parse_pairs(text: str, protocol: str) -> list[tuple[str, str]]:
  """``"all"`` or ``"books:dvd,dvd:books"`` -> ``[("books", "dvd"), ...]`` (checked)."""
  valid = all_pairs(protocol)
  if text == "all":
    return valid
  pairs = []
  for item in text.split(","):
    source, sep, target = item.strip().partition(":")
    if not sep or (source, target) not in valid:
      raise ConfigError(f"--pairs: {item!r} is not a pair of protocol {protocol}; valid: "
                        + ", ".join(f"{s}:{t}" for s, t in valid))
    pairs.append((source, target))
  return pairs


def pair_name(source: str, target: str) -> str:
  return "+".join(LETTER[s] for s in source.split("+")) + f"→{LETTER[target]}"


def cpu_seconds() -> float:
  """User + system CPU time of this process and its finished children."""
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def arm_config(protocol: str, source: str, target: str, arm: str, seed: int,
               overrides: Sequence[str], lm: str = LM_DIR, vectors: str = VECTORS_DIR):
  """One run's resolved configuration: the experiment's arm, this seed, ``--set`` overrides.

  Same as ``launch.py`` resolves an arm (``xferlab.launch``): the arm's
  overrides on the experiment's config, then ``seed``; ``--set`` last; ``lm``
  is the review language model of the lm arms (the experiment's ``lm=``),
  ``vectors`` the directory of the vector arms' word vectors (``vectors=``). A
  per-target arm (``in_domain``) is built source-free: the source set to the
  target, and the movie protocol's in_domain is protocol A's (the same data).
  """
  if arm in PER_TARGET_ARMS:
    protocol, source = shared_protocol(protocol), target
  config, _ = load_experiment(os.path.join(ROOT, EXPERIMENTS[protocol])
                              + f":source={source},target={target},lm={lm},vectors={vectors}")
  config = apply_overrides(config, flatten(config.arms[arm]))
  config.seed, config.seeds = seed, ()
  config.arms = type(config.arms)()
  return apply_overrides(config, list(overrides))


def shared_protocol(protocol: str) -> str:
  """The protocol whose per-target runs serve ``protocol``'s: the movie ones, multi and A test
  alike."""
  return "B" if protocol == "B" else "A"


def run_dir(out: str, protocol: str, source: str, target: str, arm: str, seed: int) -> str:
  if arm in PER_TARGET_ARMS:
    return os.path.join(out, shared_protocol(protocol), f"to_{target}", arm, f"seed_{seed}")
  return os.path.join(out, protocol, f"{source}_{target}", arm, f"seed_{seed}")


def target_free(config) -> bool:
  """Whether a run's training never reads its target domain: no target batches (no transfer
  term, no L_im) and a vocabulary of its own (``data.tokenizer_path``: the language model's),
  not one built with the target's text, and no pseudo-labeled target rows. Such a run trains
  the same model for every target of its source; the benchmark trains it once
  (``share_target_free_run``)."""
  from xferlab.tasks.classification import uses_target_batches
  return (bool(config.data.tokenizer_path) and not uses_target_batches(config)
          and not config.data.pseudo_labels)


def trained_sibling(out: str, protocol: str, source: str, target: str, arm: str, seed: int,
                    config) -> str | None:
  """The workdir of a finished run of ``arm`` and ``seed`` from ``source`` to another target
  that trained (its own weights in ``best/``) with this configuration but for the target;
  None while there is none."""
  from xferlab.config import from_json
  from xferlab.workdir import config_differences
  others = [t for s, t in all_pairs(protocol) if s == source and t != target]
  for other_target in others:
    workdir = run_dir(out, protocol, source, other_target, arm, seed)
    best = os.path.join(workdir, "best")
    trained_here = os.path.isdir(best) and not os.path.islink(best)   # not itself a shared run
    if not (trained_here and os.path.exists(os.path.join(workdir, "results.json"))):
      continue
    with open(os.path.join(workdir, "config.json")) as f:
      theirs = from_json(f.read())
    theirs.data.target, theirs.name = config.data.target, config.name
    if not config_differences(theirs, config):
      return workdir
  return None


def share_target_free_run(trained: str, config, workdir: str) -> dict:
  """Evaluates a trained run's selected weights on ``config``'s target test set, in ``workdir``.

  ``trained`` is the same ``target_free`` run (source, seed, configuration) trained for
  another target. Writes ``workdir/config.json`` (``config``), its tokenizer, ``best`` (a
  link to the trained run's) and ``results.json``: the trained run's, with the metrics of
  both evaluation sets measured here, ``train_seconds`` 0 and ``trained_in`` naming the run
  that trained. Raises RuntimeError when the source validation metrics measured here (this
  pair's source split, through this pair's tokenizer) differ from the trained run's: then the
  two pairs do not share their source data and the run must not be shared. (That the
  training itself ignores the target is ``target_free``'s condition; measured: the training
  logs of B→D, B→E and B→K are identical.)
  """
  import shutil

  import jax
  from flax import nnx

  from xferlab.config import to_json
  from xferlab.tasks import get_task
  from xferlab.train import evaluate
  restored = launch.restore(trained)
  task = get_task(config.task)
  if os.path.isdir(workdir):                   # a run of this pair cut short: not needed now
    shutil.rmtree(workdir)
  os.makedirs(workdir)
  data = task.prepare(config, workdir)         # this pair's evaluation sets, as training's
  graphdef, params, rest = nnx.split(restored.model, nnx.Param, ...)
  eval_step = jax.jit(lambda p, r, batch: task.eval_sums(nnx.merge(graphdef, p, r), batch))
  measured = evaluate(task, eval_step, params, rest, data.eval_sets)[0]
  results = dict(restored.results)
  differ = {k: (v, results.get(k)) for k, v in measured.items() if k.startswith("source_val_")
            and (results.get(k) is None or abs(v - results[k]) > 1e-6)}
  if differ:
    shutil.rmtree(workdir)
    raise RuntimeError(f"{trained} cannot serve {workdir}: its source validation metrics "
                       f"measured again differ (measured, recorded): {differ}")
  results.update(measured, train_seconds=0.0, trained_in=os.path.relpath(trained, workdir))
  os.symlink(os.path.relpath(os.path.join(trained, "best"), workdir),
             os.path.join(workdir, "best"))
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(to_json(config))
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results


def check_prerequisites(protocol: str, arms: Sequence[str], pair, overrides,
                        lm: str = LM_DIR, vectors: str = VECTORS_DIR) -> None:
  """Stops before any training when an arm's pretrained model is missing, naming its command."""
  for arm in arms:
    config = arm_config(protocol, *pair, arm, 0, overrides, lm, vectors)
    made_by = config.init_from.made_by or "(the command that trains it)"
    vectors_dir = os.path.dirname(config.model.pretrained_vectors)
    same_start = next((g for g in (LM_ARMS, VECTOR_ARMS, GLOVE_ARMS) if arm in g), (arm,))
    vectors_made_by = (f"python -m xferlab.studies.word2vec --out {vectors_dir}"
                       if arm in VECTOR_ARMS else
                       "(the glove_6b_50d folder of the data root: xferlab.data.catalog)")
    for path, command in ((config.init_from.path, made_by), (config.data.tokenizer_path, made_by),
                          (config.model.pretrained_vectors, vectors_made_by)):
      if path and not os.path.exists(path):
        raise ConfigError(
            f"arm {arm} starts from {path!r}, which does not exist (relative to {os.getcwd()}). "
            f"Make it first:\n  {command}\n"
            "or leave the arm out "
            f"(--arms {','.join(a for a in arms if a not in same_start)}).")


def discriminator_accuracy(workdir: str) -> float | None:
  """Mean ``domain_accuracy`` over the last quarter of the logged training steps."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    values = [r["domain_accuracy"] for r in map(json.loads, f)
              if r.get("split") == "train" and "domain_accuracy" in r]
  return float(np.mean(values[-max(1, len(values) // 4):])) if values else None


def draw_features_picture(runs: dict, picture: str, num_texts: int) -> bool:
  """The PCA picture of source-only beside DANN, from the first seed whose two runs can both
  be encoded; False (and a line saying why) when none can, as when every seed of one arm was
  read back from a benchmark record, which keeps no weights: remove one such seed of each
  arm from ``OUT`` and run the benchmark again to retrain them and draw it."""
  from xferlab.studies import domain_distance as analysis
  for source_only, dann in zip(runs["source_only"], runs["dann"]):
    workdirs = {"source_only": source_only["workdir"], "dann": dann["workdir"]}
    if all(analysis.can_encode(w, num_texts) for w in workdirs.values()):
      analysis.compare_runs(workdirs, picture, num_texts=num_texts)
      return True
  print(f"[benchmark] no {picture}: no seed has both a source_only and a dann run with weights "
        "(runs read from a record keep none); remove one seed of each and run again to draw it",
        flush=True)
  return False


def trained_arms(arms: Sequence[str]) -> list[str]:
  """``arms`` with each ensemble replaced by its members and each self-trained arm by its
  teacher and its student's recipe, recursively (once each): the arms that train first."""
  out: list[str] = []

  def add(arm: str) -> None:
    if arm in SELF_TRAINED:    # the student trains after its teacher, in run_self_trained
      for a in SELF_TRAINED[arm]:
        add(a)
    elif arm in ENSEMBLES:
      for a in ENSEMBLES[arm]:
        add(a)
    elif arm not in out:
      out.append(arm)

  for arm in arms:
    add(arm)
  return out


def run_ensemble(args, protocol: str, source: str, target: str, arm: str, seed: int) -> dict:
  """One seed of an ensemble arm: its members' runs of that seed (trained or read first), then
  the mean of their class probabilities (``xferlab.studies.ensemble``), in its own workdir."""
  from xferlab.studies import ensemble
  members = [run_arm(args, protocol, source, target, m, seed) for m in ENSEMBLES[arm]]
  workdir = run_dir(args.out, protocol, source, target, arm, seed)
  print(f"[benchmark] {protocol} {pair_name(source, target)} {arm} seed {seed} -> {workdir}",
        flush=True)
  results = ensemble.write_ensemble([m["workdir"] for m in members], workdir, ENSEMBLES[arm])
  return dict(results, workdir=workdir)


def run_self_trained(args, protocol: str, source: str, target: str, arm: str, seed: int
                     ) -> dict:
  """One seed of a self-trained arm: its teacher's runs of that seed (trained or read first)
  label the target's unlabeled text (``pseudo_labels.npz`` in the student's workdir, made
  once), then the student trains its recipe's configuration with them
  (``data.pseudo_labels``). Its results add ``pseudo_label_accuracy``: the accuracy of the
  share the teacher would keep of the target *test* set, a diagnostic of how clean its labels
  are (the unlabeled text has none; nothing is chosen with it)."""
  from xferlab.studies import ensemble, pseudo_labels
  from xferlab.transfer import self_training
  teacher, recipe = SELF_TRAINED[arm]
  members = [run_arm(args, protocol, source, target, m, seed)["workdir"]
             for m in ENSEMBLES.get(teacher, (teacher,))]
  workdir = run_dir(args.out, protocol, source, target, arm, seed)
  pseudo = os.path.join(workdir, self_training.RUN_OWN_FILE)
  if not os.path.exists(os.path.join(workdir, "results.json")) and not os.path.exists(pseudo):
    print(f"[benchmark] {protocol} {pair_name(source, target)} {arm} seed {seed}: {teacher} "
          "labels the target's unlabeled text", flush=True)
    os.makedirs(workdir, exist_ok=True)
    probabilities, texts = pseudo_labels.unlabeled_probabilities(members)
    summary = self_training.write_pseudo_labels(pseudo, probabilities, texts)
    rep.write_json(os.path.join(workdir, "pseudo_labels.json"), summary)
  config = arm_config(protocol, source, target, recipe, seed, args.overrides, args.lm,
                      args.vectors)
  config.data.pseudo_labels = self_training.RUN_OWN_FILE   # the file in its own workdir
  print(f"[benchmark] {protocol} {pair_name(source, target)} {arm} seed {seed} -> {workdir}",
        flush=True)
  results = dict(launch.run_config(config, workdir, verbose=False), workdir=workdir)
  keep_predictions(arm, workdir)
  predictions = [ensemble.run_predictions(m) for m in members]
  results["pseudo_label_accuracy"] = self_training.kept_accuracy(
      ensemble.mean_probabilities(predictions, "target"), predictions[0]["target_labels"])
  return results


def keep_predictions(arm: str, workdir: str) -> None:
  """Writes a just-trained ensemble member's ``predictions.npz`` (``xferlab.studies.ensemble``:
  its evaluation sets and the target's unlabeled text) while its weights are there, so that
  the record keeps them and its ensembles and students need no weights later, elsewhere."""
  from xferlab.studies import ensemble
  if (any(arm in members for members in ENSEMBLES.values())
      and os.path.isdir(os.path.join(workdir, "best"))):
    ensemble.keep_predictions(workdir)


def run_arm(args, protocol: str, source: str, target: str, arm: str, seed: int) -> dict:
  """Trains (or reads, or shares: ``share_target_free_run``) one run of a pair; its results,
  with its workdir, the discriminator's accuracy and the proxy A-distance where they apply."""
  from xferlab.studies import domain_distance as analysis
  if arm in ENSEMBLES:
    return run_ensemble(args, protocol, source, target, arm, seed)
  if arm in SELF_TRAINED:
    return run_self_trained(args, protocol, source, target, arm, seed)
  config = arm_config(protocol, source, target, arm, seed, args.overrides, args.lm, args.vectors)
  workdir = run_dir(args.out, protocol, source, target, arm, seed)
  print(f"[benchmark] {protocol} {pair_name(source, target)} {arm} seed {seed} -> {workdir}",
        flush=True)
  trained = (target_free(config) and arm not in PER_TARGET_ARMS
             and not os.path.exists(os.path.join(workdir, "results.json"))
             and trained_sibling(args.out, protocol, source, target, arm, seed, config))
  if trained:
    print(f"[benchmark]   trained once for {source}: evaluating {trained}", flush=True)
    results = dict(share_target_free_run(trained, config, workdir), workdir=workdir)
  else:
    results = dict(launch.run_config(config, workdir, verbose=False), workdir=workdir)
  if config.transfer.method == "dann" and config.transfer.lam > 0:   # a trained discriminator
    results["discriminator_accuracy"] = discriminator_accuracy(workdir)
  keep_predictions(arm, workdir)
  if arm in DISTANCE_ARMS and args.distance_texts:
    results["proxy_a_distance"] = analysis.run_domain_distance(
        workdir, args.distance_texts)["pad"]
  return results


def tfidf_peer(args, protocol: str, source: str, target: str, pair_dir: str) -> dict:
  """The TF-IDF + logistic regression peer of a pair (``tfidf_peer.json``, computed once)."""
  from xferlab.studies import peers
  peer_path = os.path.join(pair_dir, "tfidf_peer.json")
  if os.path.exists(peer_path):
    with open(peer_path) as f:
      return json.load(f)
  peer = peers.tfidf_logreg(arm_config(protocol, source, target, "source_only", 0,
                                       args.overrides).data)
  with open(peer_path, "w") as f:
    json.dump(peer, f, indent=2)
  return peer


def summarize_arms(runs: dict[str, list[dict]]) -> dict:
  """Each arm's metrics over its seeds (``mean_std``), for the metrics every seed has."""
  summary = {}
  for arm, seed_results in runs.items():
    keys = [k for k in (*METRICS, "discriminator_accuracy", "proxy_a_distance",
                        "pseudo_label_accuracy")
            if all(r.get(k) is not None for r in seed_results)]
    summary[arm] = rep.stats(seed_results, keys)
  return summary


def run_pair(args, protocol: str, source: str, target: str, seeds: Sequence[int]) -> dict:
  """Trains (or reads) every arm and seed of one pair; returns its numbers."""
  pair_dir = os.path.join(args.out, protocol, f"{source}_{target}")
  os.makedirs(pair_dir, exist_ok=True)
  if args.vectorize:
    jobs = [(arm_config(protocol, source, target, arm, seed, args.overrides, args.lm,
                           args.vectors),
             run_dir(args.out, protocol, source, target, arm, seed))
            for arm in trained_arms(args.arms) for seed in seeds]
    launch.train_vectorized(jobs)
  runs: dict[str, list[dict]] = {}
  for arm in args.arms:
    for seed in seeds:
      runs.setdefault(arm, []).append(run_arm(args, protocol, source, target, arm, seed))
  picture = os.path.join(pair_dir, "features.png")
  if args.distance_texts and {"source_only", "dann"} <= set(runs) and not os.path.exists(picture):
    draw_features_picture(runs, picture, args.distance_texts)
  peer = tfidf_peer(args, protocol, source, target, pair_dir)
  return {"arms": summarize_arms(runs), "runs": runs, "tfidf_peer": peer}


def twin_comparison(pairs: dict, arm: str, twin: str) -> dict | None:
  """``arm`` against ``twin`` over the pairs that have both (mean target accuracy per pair).

  Returns ``{"pairs", "wins", "clear_wins", "clear_losses", "mean_gap", "runs", "run_wins"}``:
  wins counts the pairs where ``arm``'s mean over seeds is higher; a clear win or loss is a
  gap larger than both arms' standard deviation over seeds; ``run_wins`` of ``runs`` compares
  seed by seed (the twins share a seed's initial weights and source batches). None when no
  pair has both arms.
  """
  both = [p["arms"] for p in pairs.values() if arm in p["arms"] and twin in p["arms"]]
  both = [(a[arm]["target_accuracy"], a[twin]["target_accuracy"]) for a in both
          if "target_accuracy" in a[arm] and "target_accuracy" in a[twin]]
  if not both:
    return None
  gaps = [x["mean"] - y["mean"] for x, y in both]
  spread = [max(x.get("std") or 0.0, y.get("std") or 0.0) for x, y in both]
  seed_gaps = [u - v for x, y in both
               for u, v in zip(x.get("values", ()), y.get("values", ()))]
  return {"pairs": len(both), "wins": sum(g > 0 for g in gaps),
          "clear_wins": sum(g > s for g, s in zip(gaps, spread)),
          "clear_losses": sum(-g > s for g, s in zip(gaps, spread)),
          "mean_gap": float(np.mean(gaps)), "runs": len(seed_gaps),
          "run_wins": sum(g > 0 for g in seed_gaps)}


def comparison_lines(pairs: dict, comparisons: Sequence[tuple[str, str]], intro: str
                     ) -> list[str]:
  """One report line per ``(arm, other)`` of ``comparisons`` that some pair has both of."""
  lines = []
  for arm, other in comparisons:
    c = twin_comparison(pairs, arm, other)
    if c is None:
      continue
    lines.append(f"- {arm} beats {other} on {c['wins']} of {c['pairs']} pairs "
                 f"(mean gap {100 * c['mean_gap']:+.1f} points; gap larger than both arms' std: "
                 f"{c['clear_wins']} won, {c['clear_losses']} lost; seed by seed "
                 f"{c['run_wins']} of {c['runs']} runs)")
  return ["", intro, "", *lines] if lines else []


def twin_lines(pairs: dict) -> list[str]:
  """The report's lines that set each transfer arm against its twin without the transfer term,
  each pretrained arm against the network trained from scratch (``source_only``), each
  ensemble against its members, and each self-trained student against its teacher and its
  recipe."""
  return (comparison_lines(pairs, TWINS, "Each transfer arm against its twin without the "
                           "transfer term (same network, initial weights and source batches), "
                           "by mean target accuracy per pair:")
          + comparison_lines(pairs, FROM_SCRATCH, "Each arm that starts from pretrained "
                             "weights against source_only (the scratch network, same source "
                             "labels), by mean target accuracy per pair:")
          + comparison_lines(pairs, ENSEMBLE_MEMBERS, "Each ensemble against each of its "
                             "members (the same seeds' runs), by mean target accuracy per "
                             "pair:")
          + comparison_lines(pairs, STUDENTS, "Each self-trained student against its teacher "
                             "and against its recipe trained without the teacher's labels "
                             "(the same seeds), by mean target accuracy per pair:")
          + pseudo_label_lines(pairs))


def pseudo_label_lines(pairs: dict) -> list[str]:
  """Per self-trained arm, how clean its teacher's kept labels are, pair by pair (the kept
  share's accuracy on the target test set; ``run_self_trained``)."""
  lines = []
  for arm in SELF_TRAINED:
    stats = {name: _stat(p, arm, "pseudo_label_accuracy") for name, p in pairs.items()}
    stats = {name: s for name, s in stats.items() if s}
    if stats:
      lines.append(f"- {arm}: " + ", ".join(f"{name} {rep.cell(s, scale=100)}"
                                             for name, s in stats.items()))
  intro = ("Accuracy of the pseudo-labels' selection rule (the most confident half of each "
           "class the teacher predicts) applied to the target test set, % (a diagnostic of "
           "the labels the student got; the unlabeled text has no labels to check them "
           "against, and no choice reads this):")
  return ["", intro, "", *lines] if lines else []


def _pair_runs(pair: dict) -> list[dict]:
  """Every run recorded for one pair, over its arms (``pair["runs"][arm]`` lists)."""
  return [r for arm_runs in pair.get("runs", {}).values() for r in arm_runs
          if isinstance(r, dict)]


def seed_note(pairs: dict, arm: str, seeds: int) -> str:
  """``" (1 seed)"`` for a column whose pairs have fewer seeds than the protocol's
  ``seeds`` (e.g. an arm run with ``--seeds 1`` so far); ``""`` when it has them all."""
  counts = {len(p["arms"][arm]["target_accuracy"].get("values", ()))
            for p in pairs.values() if "target_accuracy" in p["arms"].get(arm, {})}
  if not counts or min(counts) >= seeds:
    return ""
  low, high = min(counts), max(counts)
  return f" ({low} seed{'s' * (low > 1)})" if low == high else f" ({low}-{high} seeds)"


def _stat(pair: dict, arm: str, metric: str) -> dict | None:
  return pair["arms"].get(arm, {}).get(metric)


def accuracy_table(protocol: str, pairs: dict, arms: Sequence[str], seeds: int) -> list[str]:
  """Target accuracy per pair and arm, the TF-IDF peer and the published anchors; the average
  over the pairs (an arm's only when every pair has it; the anchors' only for every pair)."""
  anchors = ANCHORS[protocol]
  lines = rep.header(["pair", *(arm + seed_note(pairs, arm, seeds) for arm in arms),
                      "TF-IDF", *anchors["columns"]])
  per_arm: dict[str, list[float]] = {a: [] for a in [*arms, "TF-IDF"]}
  for name, p in pairs.items():
    stats = [_stat(p, arm, "target_accuracy") for arm in arms]
    for arm, stat in zip(arms, stats):
      if stat:
        per_arm[arm].append(stat["mean"])
    peer = p["tfidf_peer"]["target_accuracy"]
    per_arm["TF-IDF"].append(peer)
    anchor = anchors.get(name, ("-",) * len(anchors["columns"]))
    lines.append(rep.row([name, *(rep.cell(s, scale=100) for s in stats), f"{100 * peer:.1f}",
                          *(str(a) for a in anchor)]))
  n = len(pairs)
  averages = [f"{100 * np.mean(v):.1f}" if len(v) == n else "-" for v in per_arm.values()]
  anchor_avg = ([str(a) for a in anchors.get("average", ())] if n == len(all_pairs(protocol))
                else ["-"] * len(anchors["columns"]))
  return lines + [rep.row([f"**average ({n} pairs)**", *averages, *anchor_avg])]


def f1_table(pairs: dict, arms: Sequence[str]) -> list[str]:
  return ["", "Target macro F1 (%):", "", *rep.header(["pair", *arms])] + [
      rep.row([name, *(rep.cell(_stat(p, a, "target_macro_f1"), scale=100) for a in arms)])
      for name, p in pairs.items()]


def distance_table(pairs: dict, arms: Sequence[str]) -> list[str]:
  """The proxy A-distance and the discriminator's accuracy per pair, for the arms that have
  encoder features (none: no table)."""
  distance_arms = [a for a in arms if a in DISTANCE_ARMS]
  if not distance_arms:
    return []
  lines = ["", "Proxy A-distance of source vs target encoder features (0 = same "
           "distribution, 2 = separable) and the discriminator's training accuracy over the "
           "last quarter of training (%):", "",
           *rep.header(["pair", *(f"PAD {a}" for a in distance_arms),
                        *(f"disc. acc. {a}" for a in distance_arms)])]
  for name, p in pairs.items():
    pads = [rep.cell(_stat(p, a, "proxy_a_distance"), 2) for a in distance_arms]
    accs = [rep.cell(_stat(p, a, "discriminator_accuracy"), scale=100) for a in distance_arms]
    lines.append(rep.row([name, *pads, *accs]))
  return lines


def time_lines(pairs: dict, cpu_seconds: dict) -> list[str]:
  """CPU minutes per pair (every invocation's) and training wall minutes per pair."""
  cpu = {name: cpu_seconds[name] for name in pairs if name in cpu_seconds}
  trained = {name: sum(r.get("train_seconds", 0.0) for r in _pair_runs(p))
             for name, p in pairs.items()}
  # A per-target run (in_domain) is listed under each pair of its target: count it once.
  trained_once = {r.get("workdir", id(r)): r.get("train_seconds", 0.0)
                  for p in pairs.values() for r in _pair_runs(p)}
  return ["", "CPU minutes per pair (this process and its children; runs already finished "
          "cost ~0; an invocation cut short mid-pair records none of that pair's): "
          + ", ".join(f"{k} {v / 60:.1f}" for k, v in cpu.items())
          + f"; total {sum(cpu.values()) / 60:.1f}.", "",
          "Training wall minutes per pair, summed over its runs (each run's own "
          "`train_seconds`: kept in records and whatever invocation trained it; without the "
          "peer, distances and pictures): " + ", ".join(
              f"{k} {v / 60:.1f}" for k, v in trained.items())
          + f"; total {sum(trained_once.values()) / 60:.1f} (a run shared by several pairs "
          "counted once).", ""]


def protocol_tables(protocol: str, block: dict) -> str:
  """The markdown of one protocol: accuracy (with anchors), macro F1, domain distances."""
  order = [pair_name(s, t) for s, t in all_pairs(protocol)]   # the canonical order, not the
  pairs = dict(sorted(block["pairs"].items(),                   # order the runs finished in
                      key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
  arms = [a for a in ARMS if any(a in p["arms"] for p in pairs.values())]
  lines = [f"## Protocol {protocol}", "",
           f"Seeds {block['seeds']}; target accuracy in %, mean ± std over seeds; TF-IDF = "
           "TF-IDF uni+bigrams + logistic regression, source only (measured here). Published "
           "anchors on the right (not measured here).", "",
           *accuracy_table(protocol, pairs, arms, len(block["seeds"])), *twin_lines(pairs),
           *f1_table(pairs, arms), *distance_table(pairs, arms),
           *time_lines(pairs, block["cpu_seconds"])]
  return "\n".join(lines)


def write_reports(out: str, all_results: dict) -> None:
  """``OUT/results.json`` (every protocol's numbers), then ``OUT/results.md`` (their tables):
  the numbers are written even if a table cannot be."""
  rep.write_json(os.path.join(out, "results.json"), all_results)
  parts = ["# Sentiment transfer benchmark", "",
           "Written by `python -m benchmarks.sentiment`; every number below is in "
           "`results.json` beside this file, each run's own files under its workdir.", ""]
  parts += [protocol_tables(p, block) for p, block in all_results.items()]
  if "multi" in all_results and "A" in all_results:
    parts += ["", *multi_source_lines(all_results["multi"], all_results["A"])]
  rep.write_markdown(out, "\n".join(parts))


def multi_source_lines(multi: dict, single: dict) -> list[str]:
  """Each target's multi-source accuracy beside its best and worst single source (protocol A,
  the same arm), per arm that both protocols ran: does the union beat choosing one source?"""
  lines = ["## Multi-source against the best single source", "",
           "Target accuracy %, mean over seeds. Multi: trained on the union of the other three "
           "domains' 1,600 + 400 labeled reviews (4,800 + 1,200); best / worst single: protocol "
           "A's best and worst of the three sources for that target (chosen with target labels: "
           "an oracle the multi-source run does not have).", ""]
  lines += rep.header(["target", "arm", "multi", "best single", "worst single", "multi - best"])
  for pair in multi["pairs"].values():
    target = pair["target"]
    singles = [p for p in single["pairs"].values()
               if p["target"] == target and "+" not in p["source"]]
    for arm, stats in pair["arms"].items():
      ours = stats.get("target_accuracy")
      theirs = [p["arms"][arm]["target_accuracy"]["mean"] for p in singles if arm in p["arms"]]
      if not ours or len(theirs) < 3:
        continue
      best, worst = max(theirs), min(theirs)
      lines.append(rep.row([LETTER[target], arm, rep.cell(ours, scale=100), f"{100 * best:.1f}",
                            f"{100 * worst:.1f}", f"{100 * (ours['mean'] - best):+.1f}"]))
  return lines


@contextlib.contextmanager
def locked_results(out: str):
  """The results of every invocation so far, read under an exclusive lock on ``OUT``.

  Yields the dict of ``OUT/results.json`` (``{}`` when absent); the caller
  updates it in place and it is written back, with ``results.md``, before the
  lock is released. Invocations that run disjoint ``--pairs`` into one ``--out``
  at the same time (one per CPU core, or per machine on a shared disk) so never
  overwrite each other's pairs or CPU accounting.
  """
  with open(os.path.join(out, ".results.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    path = os.path.join(out, "results.json")
    all_results = {}
    if os.path.exists(path):
      with open(path) as f:
        all_results = json.load(f)
    yield all_results
    write_reports(out, all_results)


def record_pair(out: str, protocol: str, source: str, target: str, fresh: dict,
                cpu_spent: float, seeds: Sequence[int], overrides: Sequence[str]) -> float:
  """Merges one pair's results (``run_pair``'s) into ``OUT/results.json``.

  Returns the CPU seconds the pair has cost over every invocation.
  """
  name = pair_name(source, target)
  with locked_results(out) as all_results:
    block = all_results.setdefault(protocol, {"pairs": {}, "cpu_seconds": {}})
    # Every seed any invocation ran (a --seeds 1 pass of new arms keeps the others' 3).
    block["seeds"] = sorted(set(block.get("seeds", [])) | set(seeds))
    block["overrides"] = list(overrides)
    pair = block["pairs"].setdefault(name, {"arms": {}, "runs": {}})
    pair["arms"].update(fresh["arms"])         # arms run by earlier invocations stay
    pair["runs"].update(fresh["runs"])
    pair.update(tfidf_peer=fresh["tfidf_peer"], source=source, target=target)
    block["cpu_seconds"][name] = block["cpu_seconds"].get(name, 0.0) + cpu_spent
    return block["cpu_seconds"][name]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.sentiment",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("--protocol", choices=sorted(EXPERIMENTS), default="A")
  parser.add_argument("--pairs", default="all", help="all, or source:target,... (books:dvd)")
  parser.add_argument("--seeds", type=_at_least_one, default=3, help="seeds 0 .. N-1")
  parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                      help="comma-separated, of " + ", ".join(ARMS) + "; or all (default: "
                      + ",".join(DEFAULT_ARMS) + ", the comparison the 12-pair table counts)")
  parser.add_argument("--out", default="runs/benchmark_sentiment")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override every run's config (repeatable); "
                      "changes the runs, so use a fresh --out")
  parser.add_argument("--lm", default=LM_DIR,
                      help="the review language model of the lm arms (made by: "
                      "python launch.py experiments/lm/reviews.py:all --workdir DIR)")
  parser.add_argument("--vectors", default=VECTORS_DIR,
                      help="the review word vectors of the vector arms (made here when missing, "
                      "or by: python -m xferlab.studies.word2vec --out DIR)")
  parser.add_argument("--distance-texts", type=int, default=1000,
                      help="texts per domain for the proxy A-distance (0 = skip it)")
  parser.add_argument("--vectorize", action="store_true",
                      help="train a pair's runs that differ only in λ as one vmapped program")
  return parser.parse_args(argv)


def prepare(args) -> list[tuple[str, str]]:
  """Checks ``--arms`` (made a list), ``--set`` and ``--pairs``; makes the word vectors every
  pair shares when missing; checks the arms' pretrained models. Returns the pairs; raises
  ``ConfigError`` before anything trains."""
  args.arms = list(ARMS) if args.arms == "all" else [
      a.strip() for a in args.arms.split(",") if a.strip()]
  unknown = [a for a in args.arms if a not in ARMS]
  if unknown:
    raise ConfigError(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
  for item in args.overrides:
    parse_override(item)
  pairs = parse_pairs(args.pairs, args.protocol)
  vector_arms = [a for a in trained_arms(args.arms) if a in VECTOR_ARMS]
  if vector_arms:                             # shared by every pair: trained once, here
    from xferlab.studies.word2vec import ensure_vectors
    dim = arm_config(args.protocol, *pairs[0], vector_arms[0], 0, args.overrides, args.lm,
                     args.vectors).model.embed_dim
    ensure_vectors(args.vectors, dim=dim)
  check_prerequisites(args.protocol, trained_arms(args.arms), pairs[0], args.overrides, args.lm,
                      args.vectors)
  return pairs


def run_pairs(args, pairs: Sequence[tuple[str, str]]) -> None:
  """Every pair in turn, each recorded (and the reports rewritten) as soon as it is done."""
  start_wall = time.time()
  for source, target in pairs:
    name = pair_name(source, target)
    before, before_wall = cpu_seconds(), time.time()
    fresh = run_pair(args, args.protocol, source, target, range(args.seeds))
    spent = cpu_seconds() - before
    total = record_pair(args.out, args.protocol, source, target, fresh, spent,
                        range(args.seeds), args.overrides)  # a partial table survives
    print(f"[benchmark] {args.protocol} {name}: {spent / 60:.1f} CPU minutes, "
          f"{(time.time() - before_wall) / 60:.1f} wall minutes (this invocation; "
          f"{total / 60:.1f} CPU minutes in all)", flush=True)
  print(f"[benchmark] done in {(time.time() - start_wall) / 60:.1f} wall minutes; "
        f"{os.path.join(args.out, 'results.md')}", flush=True)


def _at_least_one(text: str) -> int:
  """``--seeds``'s value: a whole number of seeds, at least 1 (0 would train nothing)."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"{value}: at least one seed")
  return value


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  try:
    pairs = prepare(args)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  os.makedirs(args.out, exist_ok=True)
  run_pairs(args, pairs)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

r"""Linear probe: what a classifier's encoder knows about the labels before any fine-tuning.

  python -m xferlab.studies.probe experiments/sentiment/few_labels.py:books --arm ulmfit \
      [--set arms.ulmfit.init_from.path=runs/lm_reviews_books] [--labels 100,500,1600] [--seeds 3]
  python -m xferlab.studies.probe experiments/sentiment/imdb.py:lm_imdb_resets_probe \
      --set data.subset_size=100 --save-head runs/head      # LP-FT's head for one run

The experiment's classifier (its ``--arm``, if given) is built as its run would start -- random
initialization, then the ``init_from`` subtrees (e.g. a language model's
encoder) -- and kept frozen. Its pooled features (``model.classifier.features``,
``xferlab.studies.domain_distance.encode_features``) of ``n`` class-balanced source training
reviews train a logistic regression (standardized features; its ``C`` chosen by
cross-validation on those ``n`` reviews only), which is scored on the target
test reviews. The same network with random weights (``init_from.path = ""``)
is the baseline: a pretrained encoder is worth fine-tuning from few labels only
if its features beat random ones.

Prints a table and writes it with every number to ``--out`` (JSON). With ``--save-head``
it fits one probe on the run's own training reviews instead and writes it as the
classifier's linear head (``save_probe_head``), for LP-FT: a run restores it with
``--set 'init_from.extra=(("runs/head", ("classifier.head",)),)'``. Needs scikit-learn
(``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Sequence

import numpy as np

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def initialized_classifier(config):
  """``(restored, corpus)``: ``config``'s classifier as its run would start (random
  initialization, then the ``init_from`` subtrees; ``xferlab.launch.build``) and the run's
  own corpus splits (``load_domain_adaptation`` with the run's seed)."""
  from xferlab import launch
  from xferlab.data.domains import load_domain_adaptation
  restored = launch.build(config, tempfile.mkdtemp(prefix="probe-"))
  return restored, load_domain_adaptation(config.data, config.seed)


def encoder_features(config, test_size: int = 0
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
  """``((x_train float[n, d], y_train int[n]), (x_test, y_test))``: the frozen, freshly
  initialized (``init_from`` applied) classifier's features of the source training and the
  target test reviews of ``config``'s corpus (``test_size`` > 0: a class-balanced sample of
  that many test reviews, the same for every encoder)."""
  from xferlab.studies.domain_distance import encode_features
  restored, corpus = initialized_classifier(config)
  (train_texts, train_labels), (test_texts, test_labels) = (corpus["source_train"],
                                                            corpus["target_test"])
  if test_size:
    keep = balanced_subset(np.asarray(test_labels), test_size, seed=0)
    test_texts, test_labels = [test_texts[i] for i in keep], np.asarray(test_labels)[keep]
  return ((encode_features(restored, list(train_texts)), np.asarray(train_labels)),
          (encode_features(restored, list(test_texts)), np.asarray(test_labels)))


def balanced_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
  """Indices of ``size`` rows, as many of each class as possible, chosen with ``seed``
  (all rows when ``size`` is at least their number)."""
  if size >= len(labels):
    return np.arange(len(labels))
  rng = np.random.default_rng(seed)
  classes = np.unique(labels)
  per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
  take = [size // len(classes) + (i < size % len(classes)) for i in range(len(classes))]
  if any(t > len(rows) for t, rows in zip(take, per_class)):
    raise ValueError(f"Cannot take {size} class-balanced rows from {len(labels)}")
  return np.sort(np.concatenate([rows[:t] for t, rows in zip(take, per_class)]))


def fit_probe(x_train: np.ndarray, y_train: np.ndarray):
  """A fitted sklearn pipeline: standardization, then a logistic regression whose ``C`` is
  chosen from ``C_GRID`` by (up to 5-fold) cross-validation on the training rows only."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.model_selection import GridSearchCV
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  from xferlab.studies.domain_distance import one_thread
  folds = int(min(5, np.bincount(y_train).min()))
  search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                        {"logisticregression__C": list(C_GRID)}, cv=folds)
  with one_thread():
    search.fit(x_train, y_train)
  return search


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray) -> dict[str, float]:
  """Test accuracy of ``fit_probe`` on the training rows, and its ``C``."""
  search = fit_probe(x_train, y_train)
  accuracy = float(np.mean(search.predict(x_test) == y_test))
  return {"accuracy": accuracy, "C": float(search.best_params_["logisticregression__C"])}


def probe_as_linear_head(search, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """``(kernel float[features, classes], bias float[classes])``: the linear layer on raw
  (unstandardized) features whose softmax equals the fitted probe's class probabilities.

  The standardization is folded in (``w / σ``, ``b - Σ w μ / σ``); a binary probe's one
  decision value ``z`` becomes the logits ``(-z/2, z/2)``."""
  pipeline = search.best_estimator_
  scaler, logreg = pipeline.named_steps["standardscaler"], pipeline.named_steps["logisticregression"]
  w = logreg.coef_ / scaler.scale_                                  # [classes or 1, features]
  b = logreg.intercept_ - w @ scaler.mean_
  if w.shape[0] == 1:
    if num_classes != 2:
      raise ValueError(f"A binary probe cannot be a {num_classes}-class head")
    w, b = np.concatenate([-w / 2, w / 2]), np.concatenate([-b / 2, b / 2])
  return w.T.astype(np.float32), b.astype(np.float32)


def save_probe_head(config, out_dir: str) -> dict:
  """Fits the probe on ``config``'s own training reviews (the frozen, freshly initialized
  classifier's features, ``initialized_classifier``) and writes it to ``out_dir`` as an orbax
  checkpoint of the subtree ``classifier.head``, which a run restores with
  ``init_from.extra = ((out_dir, ("classifier.head",)),)``: linear probing, then
  fine-tuning (LP-FT, Kumar et al. 2022) from a head fitted to convergence. Needs a linear
  head (``classification.head_hidden = ()``). Returns what was fitted (``C``, the
  cross-validated and training accuracies, the number of reviews), also in the checkpoint's
  metadata and ``out_dir/probe_head.json``."""
  from xferlab import checkpoint
  from xferlab.studies.domain_distance import encode_features
  if tuple(config.classification.head_hidden):
    raise ValueError("A probe head needs a linear head: set classification.head_hidden=() "
                     f"(it is {tuple(config.classification.head_hidden)})")
  restored, corpus = initialized_classifier(config)
  texts, labels = corpus["source_train"]
  x, y = encode_features(restored, list(texts)), np.asarray(labels)
  search = fit_probe(x, y)
  kernel, bias = probe_as_linear_head(search, config.classification.num_classes)
  info = {"C": float(search.best_params_["logisticregression__C"]),
          "cv_accuracy": float(search.best_score_),
          "train_accuracy": float(np.mean(search.predict(x) == y)), "reviews": int(len(y))}
  head = {"layers": {0: {"kernel": kernel, "bias": bias}}}
  saver = checkpoint.Checkpointer(out_dir, max_to_keep=1)
  saver.save(0, {"params": {"classifier": {"head": head}}}, {"probe": info})
  saver.close()
  with open(os.path.join(out_dir, "probe_head.json"), "w") as f:
    json.dump(info, f, indent=2)
  return info


def main(argv: Sequence[str] | None = None) -> int:
  from xferlab.config import apply_overrides, flatten, load_experiment
  from xferlab.metrics import mean_std
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.probe",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("experiment", help="experiment file[:argument] of a classifier")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="config override (repeatable)")
  parser.add_argument("--arm", default="", help="apply this arm of the experiment (config.arms)")
  parser.add_argument("--labels", default="100,500,1600", help="training-set sizes")
  parser.add_argument("--seeds", type=int, default=3, help="subsets per size")
  parser.add_argument("--test-size", type=int, default=0,
                      help="score on a class-balanced sample of this many target test reviews "
                           "(0 = all)")
  parser.add_argument("--out", default="probe.json", help="JSON results file")
  parser.add_argument("--save-head", default="", metavar="DIR",
                      help="instead: fit the probe on the run's own training reviews and write "
                      "it to DIR as the classifier's head (save_probe_head)")
  args = parser.parse_args(argv)
  config, _ = load_experiment(args.experiment)
  config = apply_overrides(config, args.overrides)
  if args.arm:
    if args.arm not in config.arms:
      parser.error(f"unknown arm {args.arm!r}; the experiment has {sorted(config.arms)}")
    config = apply_overrides(config, flatten(config.arms[args.arm]))
  if args.save_head:
    print(json.dumps(save_probe_head(config, args.save_head)))
    return 0
  sizes = [int(n) for n in args.labels.split(",") if n]
  encoders = {"init_from": config, "random": apply_overrides(config, {"init_from.path": ""})}
  if not config.init_from.path:
    encoders.pop("init_from")
  results = {"experiment": args.experiment, "init_from": config.init_from.path, "sizes": {}}
  features = {name: encoder_features(c, args.test_size) for name, c in encoders.items()}
  print(f"| labels | {' | '.join(encoders)} |")
  print("|---|" + "---|" * len(encoders))
  for n in sizes:
    row = {}
    for name, ((x_train, y_train), (x_test, y_test)) in features.items():
      runs = []
      for seed in range(args.seeds):
        idx = balanced_subset(y_train, n, seed)
        runs.append(linear_probe(x_train[idx], y_train[idx], x_test, y_test))
      row[name] = {"accuracy": mean_std([100 * r["accuracy"] for r in runs]), "runs": runs}
    results["sizes"][n] = row
    cells = [f"{row[name]['accuracy']['mean']:.1f} ± {row[name]['accuracy']['std']:.1f}"
             for name in encoders]
    print(f"| {n} | {' | '.join(cells)} |", flush=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2)
  print(f"target test accuracy (%) of a logistic regression on frozen features, mean ± std "
        f"over {args.seeds} subsets; results in {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

r"""Linear probe: what a classifier's encoder knows about the labels before any fine-tuning.

  python -m xferlab.studies.probe experiments/sentiment/few_labels.py:books --arm ulmfit \
      [--set arms.ulmfit.init_from.path=runs/lm_reviews_books] [--labels 100,500,1600] [--seeds 3]

The experiment's classifier (its ``--arm``, if given) is built as its run would start -- random
initialization, then the ``init_from`` subtrees (e.g. a language model's
encoder) -- and kept frozen. Its pooled features (``model.classifier.features``,
``xferlab.studies.domain_distance.encode_features``) of ``n`` class-balanced source training
reviews train a logistic regression (standardized features; its ``C`` chosen by
cross-validation on those ``n`` reviews only), which is scored on the target
test reviews. The same network with random weights (``init_from.path = ""``)
is the baseline: a pretrained encoder is worth fine-tuning from few labels only
if its features beat random ones.

Prints a table and writes it with every number to ``--out`` (JSON). Needs
scikit-learn (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Sequence

import numpy as np

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def encoder_features(config, test_size: int = 0
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
  """``((x_train float[n, d], y_train int[n]), (x_test, y_test))``: the frozen, freshly
  initialized (``init_from`` applied) classifier's features of the source training and the
  target test reviews of ``config``'s corpus (``test_size`` > 0: a class-balanced sample of
  that many test reviews, the same for every encoder)."""
  from xferlab import launch
  from xferlab.data.domains import load_domain_adaptation
  from xferlab.studies.domain_distance import encode_features
  restored = launch.build(config, tempfile.mkdtemp(prefix="probe-"))
  corpus = load_domain_adaptation(config.data, config.seed)
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


def linear_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray) -> dict[str, float]:
  """Test accuracy of a logistic regression on standardized features, ``C`` chosen from
  ``C_GRID`` by (up to 5-fold) cross-validation on the training rows."""
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
    accuracy = float(np.mean(search.predict(x_test) == y_test))
  return {"accuracy": accuracy, "C": float(search.best_params_["logisticregression__C"])}


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
  args = parser.parse_args(argv)
  config, _ = load_experiment(args.experiment)
  config = apply_overrides(config, args.overrides)
  if args.arm:
    if args.arm not in config.arms:
      parser.error(f"unknown arm {args.arm!r}; the experiment has {sorted(config.arms)}")
    config = apply_overrides(config, flatten(config.arms[args.arm]))
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

"""Classical peers: what a user would pick instead of an RNN, measured on the same splits.

``tfidf_logreg(data_config)``: TF-IDF over word uni- and bigrams
(scikit-learn ``TfidfVectorizer(ngram_range=(1, 2))``) and a logistic
regression (``C = 10``), trained on the source domain's labeled reviews only
(training and validation parts: there is nothing to select) and evaluated on
the target test set with the metrics the RNN runs report
(``xferlab.metrics.classification_metrics``). It reads the same
``xferlab.data.domains`` splits as the experiments. ``nbsvm_fit_predict``: NB-SVM over
binarized uni- and bigrams (Wang & Manning 2012), the classical reference on IMDb. The TF-IDF peer
measured 77.9 % on average over protocol A's 12 pairs, about 20 s for all of them (docs/references.md).

  python -m xferlab.studies.peers --name amazon --pairs books:dvd,dvd:books

Needs scikit-learn (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np

from xferlab.metrics import classification_metrics

TFIDF_C = 10.0


def tfidf_logreg_fit_predict(train_texts: Sequence[str], train_labels: Sequence[int],
                             test_texts: Sequence[str]) -> np.ndarray:
  """``int[len(test_texts)]`` predictions of TF-IDF (uni+bigrams) + logistic regression."""
  from sklearn.feature_extraction.text import TfidfVectorizer
  from sklearn.linear_model import LogisticRegression
  from threadpoolctl import threadpool_limits
  vectorizer = TfidfVectorizer(ngram_range=(1, 2))
  x_train = vectorizer.fit_transform(list(train_texts))
  with threadpool_limits(limits=1):
    classifier = LogisticRegression(C=TFIDF_C, max_iter=2000)
    classifier.fit(x_train, np.asarray(train_labels))
    return classifier.predict(vectorizer.transform(list(test_texts)))


NBSVM_BETA, NBSVM_C, NBSVM_ALPHA = 0.25, 1.0, 1.0   # Wang & Manning 2012, section 2.3


def nbsvm_fit_predict(train_texts: Sequence[str], train_labels: Sequence[int],
                      test_texts: Sequence[str]) -> np.ndarray:
  """``int[len(test_texts)]`` predictions of NB-SVM with uni- and bigrams (Wang & Manning 2012).

  Words as the RNN runs read them (``split_words``: lowercased, punctuation apart; chosen
  for that reason, not on any test set). Binarized n-gram counts ``x``; the log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))``
  with ``p = α + Σ_{y=1} x``, ``q = α + Σ_{y=0} x``; a linear SVM (squared hinge, L2, ``C``)
  on ``x ⊙ r``; its weights interpolated with their mean, ``w' = (1 - β) w̄ + β w``.
  """
  from sklearn.feature_extraction.text import CountVectorizer
  from sklearn.svm import LinearSVC
  from threadpoolctl import threadpool_limits

  from xferlab.data.tokenizer import split_words
  vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True, tokenizer=split_words,
                               lowercase=False, token_pattern=None)
  x = vectorizer.fit_transform(list(train_texts)).tocsr().astype(np.float64)
  y = np.asarray(train_labels)
  p = NBSVM_ALPHA + np.asarray(x[y == 1].sum(axis=0)).ravel()
  q = NBSVM_ALPHA + np.asarray(x[y == 0].sum(axis=0)).ravel()
  r = np.log((p / p.sum()) / (q / q.sum()))
  with threadpool_limits(limits=1):
    svm = LinearSVC(C=NBSVM_C, max_iter=10000).fit(x.multiply(r).tocsr(), y)
  w = svm.coef_.ravel()
  w = (1 - NBSVM_BETA) * np.abs(w).mean() + NBSVM_BETA * w
  scores = vectorizer.transform(list(test_texts)).multiply(r).tocsr() @ w + svm.intercept_[0]
  return (np.asarray(scores).ravel() > 0).astype(np.int64)


PEERS = {"tfidf_logreg": tfidf_logreg_fit_predict, "nbsvm": nbsvm_fit_predict}


def confusion(labels: Sequence[int], predictions: Sequence[int], num_classes: int = 2):
  """``int[classes, classes]``, rows = true class, columns = predicted."""
  out = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(out, (np.asarray(labels), np.asarray(predictions)), 1)
  return out


def tfidf_logreg(data_config) -> dict[str, float]:
  """``{"target_accuracy", "target_macro_f1", ..., "cpu_seconds"}`` of the TF-IDF peer on the
  pair ``data_config`` names (``data.name``, ``data.source``, ``data.target``)."""
  return peer_scores(data_config, "tfidf_logreg")


def peer_scores(data_config, peer: str, seed: int = 0) -> dict[str, float]:
  """``{"target_accuracy", "target_macro_f1", ..., "cpu_seconds"}`` of ``PEERS[peer]``
  trained on every labeled source review of the corpus ``data_config`` names (training and
  validation parts: a peer selects nothing), with ``seed`` choosing a labeled budget
  (``data.subset_size``) as the RNN runs do, and tested on the target test set."""
  from xferlab.data.domains import load_domain_adaptation
  if peer not in PEERS:
    raise ValueError(f"Unknown peer {peer!r}; choose one of {sorted(PEERS)}")
  start = time.process_time()
  corpus = load_domain_adaptation(data_config, seed)
  texts = list(corpus["source_train"][0]) + list(corpus["source_val"][0])
  labels = np.concatenate([corpus["source_train"][1], corpus["source_val"][1]])
  test_texts, test_labels = corpus["target_test"]
  predictions = PEERS[peer](texts, labels, test_texts)
  metrics = classification_metrics(confusion(test_labels, predictions))
  out = {f"target_{k}": v for k, v in metrics.items()}
  out["cpu_seconds"] = time.process_time() - start
  return out


def main(argv: Sequence[str] | None = None) -> int:
  from xferlab.defaults import base_config
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.peers",
                                   description="TF-IDF + logistic regression, source only.")
  parser.add_argument("--name", default="amazon", help="data.name: amazon | amazon_hatn | movie")
  parser.add_argument("--pairs", default="books:dvd", help="source:target,...")
  parser.add_argument("--manual-dir", default="", help="the corpora folder (data.manual_dir)")
  args = parser.parse_args(argv)
  accuracies = []
  for pair in args.pairs.split(","):
    config = base_config().data
    config.name, config.manual_dir = args.name, args.manual_dir
    config.source, config.target = pair.split(":")
    result = tfidf_logreg(config)
    accuracies.append(result["target_accuracy"])
    print(f"{pair}: accuracy {100 * result['target_accuracy']:.1f}, macro F1 "
          f"{100 * result['target_macro_f1']:.1f} ({result['cpu_seconds']:.1f} s CPU)", flush=True)
  print(f"average over {len(accuracies)}: {100 * np.mean(accuracies):.1f}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

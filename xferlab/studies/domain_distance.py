"""Domain distance of learned features: encoder features, the proxy A-distance, pictures.

For a trained classifier (a run's workdir, ``xferlab.launch.restore``):

* ``encode_features(restored, texts)`` -> ``float[len(texts), feature_size]``,
  the pooled encoder states the classifier head and the domain discriminator
  read (``model.classifier.features``);
* ``proxy_a_distance(source, target)``: ``d_A = 2 (1 - 2 ε)``, ε the test error
  of a linear classifier (logistic regression on standardized features)
  trained to tell source from target features on one half of them and tested
  on the other half (Ben-David et al. 2007; Ganin et al. 2016). 2 = the
  domains are perfectly separable, 0 = indistinguishable;
* ``plot_domains({name: (source, target)}, path)``: a PCA (or t-SNE) scatter of
  source against target features, one panel per run (source-only beside DANN).

``run_domain_distance(workdir)`` does the three for one run and caches the
number in ``workdir/domain_distance.json``.

  python -m xferlab.studies.domain_distance RUN_DIR [RUN_DIR ...] --out features.png [--tsne]

Needs scikit-learn (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Mapping, Sequence

import numpy as np

NUM_TEXTS = 1000   # texts per domain for the distance (half train, half test)


def one_thread():
  """scikit-learn's BLAS / OpenMP pools limited to one thread: these problems are small, and
  on a machine whose cores are busy (training runs) more threads make t-SNE 100x slower."""
  from threadpoolctl import threadpool_limits
  return threadpool_limits(limits=1)


def encode_features(restored, texts: Sequence[str]) -> np.ndarray:
  """``float[len(texts), feature_size]``: the classifier's pooled encoder features.

  ``restored`` is a ``xferlab.launch.Restored`` classification run; texts are
  tokenized with its tokenizer, bucketed and padded as in evaluation.
  """
  import jax
  from flax import nnx

  from xferlab.data import batching
  config, tokenizer = restored.config, restored.tokenizer
  sequences = [tokenizer.encode(t) or [0] for t in texts]
  lengths = np.array([len(s) for s in sequences])
  order = np.argsort(lengths, kind="stable")
  graphdef, state = nnx.split(restored.model.classifier)

  @jax.jit
  def features(state, tokens, lengths):
    return nnx.merge(graphdef, state).features(tokens, lengths)

  out = None
  bs = config.data.eval_batch_size
  for start in range(0, len(texts), bs):
    idx = order[start:start + bs]
    time = batching.bucket_length(int(lengths[idx].max()), tuple(config.data.buckets))
    batch = batching.make_batch(sequences, idx, bs, time)
    f = np.asarray(features(state, batch["tokens"], batch["lengths"]))[:len(idx)]
    if out is None:
      out = np.zeros((len(texts), f.shape[-1]), np.float32)
    out[idx] = f
  return out if out is not None else np.zeros((0, 0), np.float32)


def proxy_a_distance(source: np.ndarray, target: np.ndarray, seed: int = 0) -> dict[str, float]:
  """The proxy A-distance between ``source float[n, d]`` and ``target float[m, d]``.

  Each domain is split in half (shuffled with ``seed``); a logistic regression
  on standardized features learns source (0) against target (1) on the first
  halves and is tested on the second. Returns ``{"pad": 2 (1 - 2 ε), "error":
  ε, "num_test": ...}``; pad is clipped at 0 (a worse-than-chance classifier
  says the domains are indistinguishable).
  """
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  rng = np.random.default_rng(seed)
  halves = []
  for label, x in ((0, np.asarray(source)), (1, np.asarray(target))):
    if len(x) < 2:
      raise ValueError("proxy_a_distance needs at least 2 feature rows per domain")
    order = rng.permutation(len(x))
    cut = len(x) // 2
    halves.append(((x[order[:cut]], np.full(cut, label)),
                   (x[order[cut:]], np.full(len(x) - cut, label))))
  x_train = np.concatenate([h[0][0] for h in halves])
  y_train = np.concatenate([h[0][1] for h in halves])
  x_test = np.concatenate([h[1][0] for h in halves])
  y_test = np.concatenate([h[1][1] for h in halves])
  classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
  with one_thread():
    classifier.fit(x_train, y_train)
    error = float(np.mean(classifier.predict(x_test) != y_test))
  return {"pad": max(0.0, 2.0 * (1.0 - 2.0 * error)), "error": error,
          "num_test": int(len(y_test))}


def domain_texts(config, num_texts: int = NUM_TEXTS) -> tuple[list[str], list[str]]:
  """Up to ``num_texts`` source texts (training and validation reviews) and as many target
  texts (its test reviews, labels unused) of the run's corpus, chosen with a fixed seed."""
  from xferlab.data.domains import load_domain_adaptation
  corpus = load_domain_adaptation(config.data, config.seed)
  source = list(corpus["source_train"][0]) + list(corpus["source_val"][0])
  target = list(corpus["target_test"][0])
  rng = np.random.default_rng(0)
  pick = lambda texts: [texts[i] for i in sorted(
      rng.choice(len(texts), size=min(num_texts, len(texts)), replace=False))]
  return pick(source), pick(target)


def can_encode(workdir: str, num_texts: int = NUM_TEXTS) -> bool:
  """Whether ``run_features`` can give this run's features: its weights (``best/``) are there,
  or its features for ``num_texts`` texts were kept. A run read back from a benchmark record
  (``benchmarks.records``: no weights, no features) cannot."""
  path = os.path.join(workdir, "domain_features.npz")
  if os.path.exists(path):
    with np.load(path) as cached:
      if int(cached["num_texts"]) == num_texts:
        return True
  return os.path.isdir(os.path.join(workdir, "best"))


def run_features(workdir: str, num_texts: int = NUM_TEXTS) -> tuple[np.ndarray, np.ndarray]:
  """``(source float[n, d], target float[m, d])`` features of a finished run's model, kept in
  ``workdir/domain_features.npz`` so that a distance and a picture encode the texts once."""
  path = os.path.join(workdir, "domain_features.npz")
  if os.path.exists(path):
    with np.load(path) as cached:
      if int(cached["num_texts"]) == num_texts:
        return cached["source"], cached["target"]
  from xferlab.launch import restore
  restored = restore(workdir)
  source, target = domain_texts(restored.config, num_texts)
  features = encode_features(restored, source), encode_features(restored, target)
  np.savez(path, source=features[0], target=features[1], num_texts=num_texts)
  return features


def run_domain_distance(workdir: str, num_texts: int = NUM_TEXTS) -> dict[str, float]:
  """The proxy A-distance of a run's features (``workdir/domain_distance.json``, reused)."""
  path = os.path.join(workdir, "domain_distance.json")
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if cached.get("num_texts") == num_texts:
      return cached
  result = dict(proxy_a_distance(*run_features(workdir, num_texts)), num_texts=num_texts)
  with open(path, "w") as f:
    json.dump(result, f, indent=2)
  return result


def project(source: np.ndarray, target: np.ndarray, method: str = "pca",
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """2-D coordinates ``(float[n, 2], float[m, 2])`` of both domains, fitted on both together."""
  from sklearn.decomposition import PCA
  from sklearn.manifold import TSNE
  from sklearn.preprocessing import StandardScaler
  both = StandardScaler().fit_transform(np.concatenate([source, target]))
  if method == "pca":
    xy = PCA(n_components=2, random_state=seed).fit_transform(both)
  elif method == "tsne":
    with one_thread():
      xy = TSNE(n_components=2, init="pca", random_state=seed,
                perplexity=min(30.0, max(2.0, (len(both) - 1) / 3))).fit_transform(both)
  else:
    raise ValueError(f"Unknown projection {method!r}; use pca or tsne")
  return xy[:len(source)], xy[len(source):]


def plot_domains(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str,
                 method: str = "pca", labels: tuple[str, str] = ("source", "target"),
                 distances: Mapping[str, float] | None = None) -> str:
  """A PNG with one scatter per panel ``{name: (source float[n, d], target float[m, d])}``
  (e.g. source-only beside DANN); returns ``path``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
  for ax, (name, (source, target)) in zip(axes[0], panels.items()):
    s, t = project(source, target, method)
    ax.scatter(s[:, 0], s[:, 1], s=6, alpha=0.5, label=labels[0], color="tab:blue")
    ax.scatter(t[:, 0], t[:, 1], s=6, alpha=0.5, label=labels[1], color="tab:orange")
    title = name if not distances or name not in distances else (
        f"{name} (proxy A-distance {distances[name]:.2f})")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=2)
  fig.suptitle(f"{method.upper()} of encoder features", fontsize=10)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def compare_runs(workdirs: Mapping[str, str], path: str, method: str = "pca",
                 num_texts: int = NUM_TEXTS) -> dict[str, dict[str, float]]:
  """Features, proxy A-distance and one picture for several runs of one pair
  (``{"source_only": dir, "dann": dir}``); returns ``{name: distance}``."""
  panels = {name: run_features(workdir, num_texts) for name, workdir in workdirs.items()}
  distances = {name: run_domain_distance(workdir, num_texts)
               for name, workdir in workdirs.items()}
  plot_domains(panels, path, method, distances={k: v["pad"] for k, v in distances.items()})
  return distances


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.domain_distance", description=__doc__.split(
      "\n")[0])
  parser.add_argument("runs", nargs="+", help="run workdirs (each with best/ and config.json)")
  parser.add_argument("--out", default="features.png", help="the PNG to write")
  parser.add_argument("--tsne", action="store_true", help="t-SNE instead of PCA")
  parser.add_argument("--num-texts", type=int, default=NUM_TEXTS)
  args = parser.parse_args(argv)
  names = {os.path.relpath(r): r for r in args.runs}
  distances = compare_runs(names, args.out, "tsne" if args.tsne else "pca", args.num_texts)
  for name, d in distances.items():
    print(f"{name}: proxy A-distance {d['pad']:.3f} (domain classifier error {d['error']:.3f})")
  print(f"picture: {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

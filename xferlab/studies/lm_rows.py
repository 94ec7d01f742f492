r"""Where a language model's perplexity comes from: each evaluation row on its own.

  python -m xferlab.studies.lm_rows RUN_DIR [--out FILE.json]

A language model's validation and test splits are each scored as one batch of
``data.eval_batch_size`` rows, every row a contiguous stretch of the split read
from a zero state with the state carried to its end (``xferlab.tasks.language_model``).
The split's perplexity pools all rows, so one row whose state goes wrong can
dominate it. This study restores a finished LM run and reports, per split, the
pooled perplexity (what ``results.json`` says), each row's perplexity, and the
pooled perplexity without rows above ``--outlier`` times the median row.

Found with it: the IMDb LM trained from scratch (``experiments/lm/imdb.py:scratch``)
reports validation perplexity 228 against test 85; 15 of its 16 validation rows
are at 75-96 and one at 6e8, whose first tokens ("strength of the american
family ...") drive the zero state into a saturated one that lasts about 10k
tokens. Started 100 tokens later, the same row scores like the others
(``benchmarks/results/lm_imdb_scratch``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Sequence

import numpy as np


def row_nll(model, batch: dict) -> tuple[np.ndarray, np.ndarray]:
  """Summed NLL and token count per row (``float64[rows]`` each) of one evaluation batch
  (``inputs`` / ``targets`` / ``weights``: ``[rows, length]``): the task's own evaluation
  (``LanguageModelTask.row_sums``), before it pools the rows."""
  from flax import nnx
  from xferlab.tasks.language_model import LanguageModelTask
  sums = nnx.jit(LanguageModelTask().row_sums)(model, batch)
  return np.asarray(sums["nll"], np.float64), np.asarray(sums["count"], np.float64)


def split_report(nll: np.ndarray, count: np.ndarray, outlier: float) -> dict:
  """Pooled perplexity, per-row perplexities, and the pooled perplexity of the rows at most
  ``outlier`` times the median row."""
  row_ppl = np.exp(nll / np.maximum(count, 1))
  kept = row_ppl <= outlier * np.median(row_ppl)
  return {"perplexity": float(np.exp(nll.sum() / count.sum())),
          "row_perplexity": [float(p) for p in row_ppl],
          "outlier_rows": [int(i) for i in np.flatnonzero(~kept)],
          "perplexity_without_outliers": float(np.exp(nll[kept].sum() / count[kept].sum()))}


def study(run_dir: str, outlier: float = 10.0) -> dict:
  """``{split: split_report}`` for the validation and test splits of a finished LM run."""
  from xferlab import launch
  from xferlab.tasks import get_task
  restored = launch.restore(run_dir)
  data = get_task(restored.config.task).prepare(restored.config, tempfile.mkdtemp())
  return {name: split_report(*row_nll(restored.model, batch), outlier)
          for name, (batch,) in data.eval_sets.items()}


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.lm_rows",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("run_dir", help="a finished language-model run")
  parser.add_argument("--outlier", type=float, default=10.0,
                      help="a row above this many times the median row's perplexity is an outlier")
  parser.add_argument("--out", default="", help="also write the report here (JSON)")
  args = parser.parse_args(argv)
  report = study(args.run_dir, args.outlier)
  for name, r in report.items():
    rows = ", ".join(f"{p:.1f}" for p in r["row_perplexity"])
    print(f"{name}: perplexity {r['perplexity']:.2f}; without outlier rows {r['outlier_rows']}: "
          f"{r['perplexity_without_outliers']:.2f}\n  rows: {rows}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(report, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())

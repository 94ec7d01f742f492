"""Batching overhead per epoch against train-step time, and compilations per epoch.

  python -m benchmarks.batching [--buckets 40] [--buckets 16,24,32,40]

For the quick-start model (``experiments/quickstart.py:dann``), one epoch: the
time spent producing batches on the host (``next(stream)``) against the time of
the jitted train steps (blocked until ready), after a warm-up epoch that
compiles; and how many times the train step compiled (one per bucket shape).
Both are measured in the same process, alternating, so the ratio is meaningful
on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks import report as rep
from xferlab import train
from xferlab.config import apply_overrides, load_experiment
from xferlab.tasks import get_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(buckets: tuple[int, ...], epochs: int = 3) -> dict:
  config, _ = load_experiment(os.path.join(ROOT, "experiments", "quickstart.py:dann"))
  config = apply_overrides(config, {"data.buckets": buckets})
  task = get_task(config.task)
  with tempfile.TemporaryDirectory() as workdir:
    data = task.prepare(config, workdir)
  model = task.build_model(config, data.tokenizer.vocab_size)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = nnx.to_pure_dict(params)
  steps_per_epoch = data.train.batches_per_epoch
  tx = train.make_optimizer(config.optimizer, steps_per_epoch * (epochs + 1))
  train.STEP_CACHE.clear()
  train_step, _ = train.compiled_steps(task, config, graphdef, tx, steps_per_epoch * (epochs + 1))
  state = train.TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                           rng=jax.random.PRNGKey(0))
  hparams = train.lambda_hparams(config)
  batch_seconds, step_seconds = 0.0, 0.0
  for epoch in range(epochs + 1):       # epoch 0 compiles and warms up
    for _ in range(steps_per_epoch):
      t0 = time.perf_counter()
      batch = next(data.train)
      t1 = time.perf_counter()
      state, out = train_step(state, rest, batch, hparams)
      jax.block_until_ready(out["loss"])
      t2 = time.perf_counter()
      if epoch > 0:
        batch_seconds += t1 - t0
        step_seconds += t2 - t1
    if epoch == 0:
      compilations_first_epoch = train_step._cache_size()
  return {"buckets": buckets, "steps_per_epoch": steps_per_epoch,
          "batching_ms_per_epoch": 1000 * batch_seconds / epochs,
          "train_step_ms_per_epoch": 1000 * step_seconds / epochs,
          "overhead_fraction": batch_seconds / step_seconds,
          "compilations_in_first_epoch": compilations_first_epoch,
          "compilations_total": train_step._cache_size()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--buckets", action="append", default=None,
                      help="comma-separated bucket lengths (repeatable)")
  args = parser.parse_args()
  configs = [tuple(int(x) for x in b.split(",")) for b in (args.buckets or ["40", "16,24,32,40"])]
  print("\n".join(rep.header(["buckets", "steps/epoch", "batching ms/epoch",
                               "train steps ms/epoch", "overhead",
                               "compilations (epoch 1 / all)"])))
  for buckets in configs:
    r = measure(buckets)
    print(rep.row([str(buckets), str(r["steps_per_epoch"]), f"{r['batching_ms_per_epoch']:.1f}",
                   f"{r['train_step_ms_per_epoch']:.1f}", f"{100 * r['overhead_fraction']:.2f}%",
                   f"{r['compilations_in_first_epoch']} / {r['compilations_total']}"]), flush=True)


if __name__ == "__main__":
  main()

r"""One short script for a lent GPU: cuDNN LSTM against the scan, and bf16 against f32.

  python -m benchmarks.gpu_check [--out gpu_check.json]

1. One LSTM layer (batch 64, length 128, input 256, hidden 512), forward +
   backward: ``scan_implementation`` fused, autodiff and cudnn give the same
   gradients (max abs difference printed), and their tokens/s, beside
   PyTorch's cuDNN ``nn.LSTM`` at the same configuration when torch sees CUDA.
2. The classifier train step (2-layer LSTM + DANN) in float32 and in bfloat16
   mixed precision (``train.precision``): tokens/s of each, same batches.

Prints a table and writes JSON. Runs on the CPU too (then cuDNN is skipped),
so the script itself is tested here before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xferlab.models.cells import make_cell
from xferlab.models.rnn import RecurrentLayer, on_gpu


def _time(fn, repeats: int = 10) -> float:
  jax.block_until_ready(fn())
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def layer_check(batch=64, length=128, size=256, hidden=512) -> dict:
  x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, length, size)), jnp.float32)
  lengths = jnp.full((batch,), length, jnp.int32)
  implementations = ["fused", "autodiff"] + (["cudnn"] if on_gpu() else [])
  results, reference = {}, None
  for implementation in implementations:
    layer = RecurrentLayer(make_cell("lstm", size, hidden, rngs=nnx.Rngs(0)),
                           implementation=implementation)
    graphdef, params = nnx.split(layer)

    def loss(params, x):
      return nnx.merge(graphdef, params)(x, lengths)[0].sum()

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    value, grads = step(params, x)
    flat = np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)])
    reference = flat if reference is None else reference
    seconds = _time(lambda: step(params, x))
    results[implementation] = {"tokens_per_second": batch * length / seconds,
                               "max_abs_grad_diff_vs_fused": float(np.abs(flat - reference).max()),
                               "max_abs_grad": float(np.abs(flat).max())}
  torch_seconds = torch_layer_seconds(batch, length, size, hidden)
  if torch_seconds is not None:
    results["torch_cudnn"] = {"tokens_per_second": batch * length / torch_seconds}
  return results


def torch_layer_seconds(batch, length, size, hidden, repeats: int = 10) -> float | None:
  """PyTorch's ``nn.LSTM`` (cuDNN) at the same configuration, forward + backward; None without CUDA."""
  try:
    import torch
  except ImportError:
    return None
  if not torch.cuda.is_available():
    return None
  lstm = torch.nn.LSTM(size, hidden, batch_first=True).cuda()
  x = torch.randn(batch, length, size, device="cuda", requires_grad=True)

  def step():
    lstm.zero_grad(set_to_none=True)
    lstm(x)[0].sum().backward()
    torch.cuda.synchronize()

  step(), step()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def precision_check(steps: int = 20) -> dict:
  from xferlab.config import apply_overrides
  from xferlab.defaults import base_config
  from xferlab.tasks.classification import ClassificationTask
  from xferlab.train import TrainState, compiled_steps, lambda_hparams
  from xferlab.transfer import model_based as finetune
  results = {}
  for precision in ("float32", "bfloat16"):
    config = apply_overrides(base_config(), {
        "model.embed_dim": 256, "model.hidden_size": 512, "model.num_layers": 2,
        "transfer.method": "dann", "train.precision": precision, "data.batch_size": 64})
    task = ClassificationTask()
    model = task.build_model(config, 20000)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(params)
    tx = finetune.build_optimizer(config, params, 1000)
    train_step, _ = compiled_steps(task, config, graphdef, tx, 1000)
    state = TrainState(step=jnp.int32(0), params=params, opt_state=tx.init(params),
                       rng=jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    half = lambda labels: {"tokens": jnp.asarray(rng.integers(4, 20000, (64, 128)), jnp.int32),
                           "lengths": jnp.full((64,), 128, jnp.int32),
                           "weights": jnp.ones((64,)), **labels}
    batch = {"source": half({"labels": jnp.asarray(rng.integers(0, 2, 64), jnp.int32)}),
             "target": half({})}
    hparams = lambda_hparams(config)
    state, out = train_step(state, rest, batch, hparams)
    jax.block_until_ready(out)
    start = time.perf_counter()
    for _ in range(steps):
      state, out = train_step(state, rest, batch, hparams)
    jax.block_until_ready(out)
    seconds = (time.perf_counter() - start) / steps
    results[precision] = {"tokens_per_second": 2 * 64 * 128 / seconds,
                          "loss": float(out["loss"])}
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="gpu_check.json")
  parser.add_argument("--steps", type=int, default=20)
  args = parser.parse_args(argv)
  report = {"devices": [str(d) for d in jax.devices()]}
  print(f"devices: {report['devices']}", flush=True)
  for section, check in (("layer", layer_check), ("precision", lambda: precision_check(args.steps))):
    try:   # one failing section must not lose the other's figures on a short lease
      report[section] = check()
    except Exception as error:  # noqa: BLE001 - reported, and the exit status says so
      report[section] = {}
      report.setdefault("errors", {})[section] = f"{type(error).__name__}: {str(error)[:2000]}"
      print(f"{section} check failed: {report['errors'][section]}", flush=True)
  for name, row in report["layer"].items():
    diff = row.get("max_abs_grad_diff_vs_fused")
    print(f"LSTM layer {name:11s} {row['tokens_per_second']:>12,.0f} tok/s"
          + (f"   max |grad - fused| {diff:.2e} (max |grad| {row['max_abs_grad']:.2e})"
             if diff is not None else ""))
  for name, row in report["precision"].items():
    print(f"train step {name:9s} {row['tokens_per_second']:>12,.0f} tok/s   loss {row['loss']:.4f}")
  with open(args.out, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.out}")
  return 1 if "errors" in report else 0


if __name__ == "__main__":
  raise SystemExit(main())

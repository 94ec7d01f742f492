r"""Where the classifier train step's time goes, in xferlab and in PyTorch, op by op.

  python -m benchmarks.profile_step [--batch 32 --length 64 --hidden 256] [--steps 10] \
      [--out profile_step.json]

The step is ``benchmarks.rnn_throughput``'s classifier point (embedding 256, 2-layer LSTM,
mean + max pooling, DANN discriminator behind gradient reversal, Adam with global-norm
clipping; source + target rows). Both sides run ``--steps`` steps after warm-up:

* **xferlab** under ``jax.profiler.trace``: XLA's CPU runtime records every executed HLO
  instruction (thunk) with its duration. Each instruction's *self* time (its duration less
  the instructions nested in it, e.g. a ``while`` loop less its body) is charged to a
  component through the instruction's source location in the compiled HLO's metadata
  (``source_file``; ``COMPONENTS``) and to the forward or backward pass (``transpose`` /
  the fused scan's hand-written backward in the ``op_name``);
* **PyTorch** under ``torch.profiler``: the self CPU time of every ATen op, charged to the
  same components by op name (``TORCH_COMPONENTS``).

Prints one table per side (component, ms per step, share) and the top instructions / ops,
and writes all of it to ``--out``. The totals are the profiled steps' wall time per step;
"unattributed" in xferlab is time inside the executable outside any instruction (thread
hand-off, buffer management). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile
import time

from benchmarks import report as rep
from benchmarks import rnn_throughput as rt
from benchmarks import torch_reference

# Source file (suffix match on the HLO metadata's source_file) -> component.
COMPONENTS = (
    ("xferlab/models/scan.py", "recurrence (fused scan)"),
    ("xferlab/native/__init__.py", "recurrence (native loops)"),
    ("xferlab/models/cells.py", "recurrence (cells)"),
    ("xferlab/models/rnn.py", "recurrence (layer glue, masks)"),
    ("xferlab/transfer/relation_based.py", "discriminator + reversal"),
    ("xferlab/models/classifier.py", "embedding, pooling, head"),
    ("xferlab/losses.py", "losses"),
    ("xferlab/tasks/classification.py", "losses"),
    ("optax/", "optimizer (Adam, clipping)"),
    ("xferlab/optim.py", "optimizer (Adam, clipping)"),
    ("xferlab/transfer/model_based.py", "optimizer (Adam, clipping)"),
    ("flax/nnx/nn/linear.py", "dense + embedding layers"),
    ("xferlab/train.py", "train step glue"),
)
TORCH_COMPONENTS = (
    (r"rnn|lstm|mkldnn|_thnn_fused", "recurrence"),
    (r"embedding", "embedding"),
    (r"adam|_foreach|lerp|addcdiv|addcmul|sqrt", "optimizer (Adam, clipping)"),
    (r"norm|clip", "optimizer (Adam, clipping)"),
    (r"addmm|linear|\bmm\b|matmul|relu|threshold", "dense layers (head, discriminator)"),
    (r"mean|amax|max|cat|sum|div|where|eq|index|scatter", "pooling + its backward"),
    (r"cross_entropy|log_softmax|nll|binary_cross|sigmoid", "losses"),
)
UNKNOWN = "other"
# What kind of work an instruction is, from its op_name (checked in this order).
KINDS = (
    ("embedding gather / scatter", ("_take", "gather", "scatter")),
    ("recurrence loop (per-step matmuls, gates)", ("/while",)),
    ("matmuls outside the loop (input projections, weight gradients)", ("dot_general", "tbh,tbg")),
)


def _kind(op_name: str, component: str) -> str:
  for kind, markers in KINDS:
    if any(m in op_name for m in markers):
      return kind
  if component.startswith("optimizer"):
    return component
  return "other (elementwise, pooling, layout)"


def component_of(stack: list[str]) -> str:
  """The component of the innermost frame of ``stack`` that ``COMPONENTS`` names."""
  for own in (True, False):           # the project's own frames first, then the libraries'
    for frame in stack:
      for suffix, name in COMPONENTS:
        if suffix in frame and suffix.startswith("xferlab/") == own:
          return name
  return UNKNOWN if stack else "no source (XLA-made copies, layout)"


def _table(hlo_text: str, title: str) -> dict[int, str]:
  """One of the compiled HLO text's debug tables (``FileNames``, ``FunctionNames``,
  ``FileLocations``, ``StackFrames``): ``{id: rest of its line}``."""
  match = re.search(rf"^{title}\n((?:\d+ .*\n?)*)", hlo_text, re.M)
  rows = {}
  for line in (match.group(1).splitlines() if match else ()):
    key, _, value = line.partition(" ")
    rows[int(key)] = value.strip().strip('"')
  return rows


def hlo_sources(hlo_text: str) -> dict[str, tuple[list[str], str]]:
  """``{instruction name: (call stack, op_name)}`` from compiled HLO text: the stack is
  ``"file:function"`` from the innermost frame outwards, read through the text's
  ``StackFrames`` / ``FileLocations`` tables (``stack_frame_id`` in each metadata)."""
  files, functions = _table(hlo_text, "FileNames"), _table(hlo_text, "FunctionNames")
  locations = {k: dict(re.findall(r"(\w+)=(\d+)", v))
               for k, v in _table(hlo_text, "FileLocations").items()}
  frames = {k: dict(re.findall(r"(\w+)=(\d+)", v))
            for k, v in _table(hlo_text, "StackFrames").items()}

  def stack(frame_id: int) -> list[str]:
    out, seen = [], set()
    while frame_id in frames and frame_id not in seen:
      seen.add(frame_id)
      loc = locations.get(int(frames[frame_id]["file_location_id"]), {})
      out.append(f"{files.get(int(loc.get('file_name_id', 0)), '?')}:"
                 f"{functions.get(int(loc.get('function_name_id', 0)), '?')}")
      frame_id = int(frames[frame_id].get("parent_frame_id", 0))
    return out

  out = {}
  pattern = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=.*?metadata=\{([^}]*)\}", re.M)
  for name, meta in pattern.findall(hlo_text):
    frame = re.search(r"stack_frame_id=(\d+)", meta)
    op = re.search(r'op_name="([^"]*)"', meta)
    out[name] = (stack(int(frame.group(1))) if frame else [], op.group(1) if op else "")
  return out


def self_times(events: list[dict]) -> collections.Counter:
  """Self time (µs) per event name: each complete event's duration less its nested children's,
  per thread."""
  by_thread = collections.defaultdict(list)
  for e in events:
    if e.get("ph") == "X" and "dur" in e:
      by_thread[(e.get("pid"), e.get("tid"))].append(e)
  self_us: collections.Counter = collections.Counter()
  for evs in by_thread.values():
    evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    stack: list[list] = []            # [end, name, child time]
    for e in evs:
      while stack and stack[-1][0] <= e["ts"]:
        end, name, child = stack.pop()
        self_us[name] -= child
      if stack:
        stack[-1][2] += e["dur"]
      self_us[e["name"]] += e["dur"]
      stack.append([e["ts"] + e["dur"], e["name"], 0.0])
    while stack:
      end, name, child = stack.pop()
      self_us[name] -= child
  return self_us


def _breakdown(per_step_ms: dict[str, float], total_ms: float, key: str = "component"
               ) -> list[dict]:
  return [{key: k, "ms_per_step": v, "share": v / total_ms}
          for k, v in sorted(per_step_ms.items(), key=lambda kv: -kv[1])]


def profile_xferlab(batch: int, length: int, hidden: int, steps: int) -> dict:
  import jax
  step, lower = rt.xferlab_classifier_step(batch, length, hidden, unroll=1)
  sources = hlo_sources(lower().compile().as_text())
  for _ in range(3):
    step()
  with tempfile.TemporaryDirectory(prefix="xferlab-profile-") as logdir:
    start = time.perf_counter()
    with jax.profiler.trace(logdir, create_perfetto_trace=True):
      for _ in range(steps):
        step()
    wall = time.perf_counter() - start
    path = glob.glob(os.path.join(logdir, "**", "perfetto_trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  self_us = self_times(events)
  components: collections.Counter = collections.Counter()
  kinds: collections.Counter = collections.Counter()
  passes: collections.Counter = collections.Counter()
  instructions = []
  for name, us in self_us.items():
    if name not in sources:
      continue
    stack, op = sources[name]
    comp = component_of(stack)
    backward = "transpose(" in op or "_backward" in op or "bwd" in op
    ms = us / 1e3 / steps
    components[comp] += ms
    kinds[_kind(op, comp)] += ms
    passes["backward" if backward else "forward / update"] += ms
    instructions.append({"instruction": name, "ms_per_step": ms, "component": comp,
                         "op_name": op[-120:],
                         "stack": [f.rsplit("/", 1)[-1] for f in stack[:4]]})
  executed = sum(components.values())
  step_ms = wall / steps * 1e3
  components["unattributed (runtime, host)"] = max(step_ms - executed, 0.0)
  instructions.sort(key=lambda r: -r["ms_per_step"])
  return {"ms_per_step": step_ms, "components": _breakdown(components, step_ms),
          "kinds": _breakdown(kinds, executed, "kind"), "executed_ms_per_step": executed,
          "passes": dict(passes), "top": instructions}


def profile_torch(batch: int, length: int, hidden: int, steps: int) -> dict:
  import torch
  torch_reference.use_all_cores()
  step = torch_reference.classifier(rt.classifier_config(hidden, 1),
                                    rt.random_batch(batch, length), rt.VOCAB_SIZE)
  for _ in range(3):
    step()
  start = time.perf_counter()
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    for _ in range(steps):
      step()
  step_ms = (time.perf_counter() - start) / steps * 1e3
  components: collections.Counter = collections.Counter()
  ops = []
  for avg in prof.key_averages():
    ms = avg.self_cpu_time_total / 1e3 / steps
    if ms <= 0:
      continue
    key = avg.key.lower()
    comp = next((name for pattern, name in TORCH_COMPONENTS if re.search(pattern, key)), UNKNOWN)
    components[comp] += ms
    ops.append({"op": avg.key, "ms_per_step": ms, "component": comp})
  ops.sort(key=lambda r: -r["ms_per_step"])
  profiled = sum(components.values())
  components["unattributed (Python, autograd engine)"] = max(step_ms - profiled, 0.0)
  return {"ms_per_step": step_ms, "components": _breakdown(components, step_ms), "top": ops[:15],
          "note": "profiled step times include the profiler's own overhead"}


def _print(title: str, result: dict, top_key: str) -> None:
  print(f"## {title}: {result['ms_per_step']:.1f} ms per profiled step")
  print("\n".join(rep.header(["component", "ms / step", "share"])))
  for r in result["components"]:
    print(rep.row([r["component"], f"{r['ms_per_step']:.2f}", f"{100 * r['share']:.1f}%"]))
  if "kinds" in result:
    print(f"\nby kind (shares of the {result['executed_ms_per_step']:.1f} ms inside instructions):")
    print("\n".join(rep.header(["kind", "ms / step", "share"])))
    for r in result["kinds"]:
      print(rep.row([r["kind"], f"{r['ms_per_step']:.2f}", f"{100 * r['share']:.1f}%"]))
  if "passes" in result:
    print("passes: " + ", ".join(f"{k} {v:.2f} ms" for k, v in result["passes"].items()))
  print(f"\ntop {top_key}s:")
  print("\n".join(rep.header([top_key, "ms / step", "component"])))
  for r in result["top"][:10]:
    print(rep.row([r[top_key][:60], f"{r['ms_per_step']:.2f}", r["component"]]))
  print(flush=True)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=rt.QUICK_CLASSIFIER["batch"])
  parser.add_argument("--length", type=int, default=rt.QUICK_CLASSIFIER["length"])
  parser.add_argument("--hidden", type=int, default=rt.QUICK_CLASSIFIER["hidden"])
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--out", default="profile_step.json")
  args = parser.parse_args(argv)
  point = {"batch": args.batch, "length": args.length, "hidden": args.hidden}
  result = {"point": point, "steps": args.steps,
            "xferlab": profile_xferlab(args.batch, args.length, args.hidden, args.steps)}
  _print("xferlab (XLA CPU)", result["xferlab"], "instruction")
  if torch_reference.available():
    result["torch"] = profile_torch(args.batch, args.length, args.hidden, args.steps)
    _print("PyTorch", result["torch"], "op")
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"results in {args.out}")
  return result


if __name__ == "__main__":
  main()

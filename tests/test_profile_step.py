"""The profiler breakdown's bookkeeping: self times of nested events and HLO source lookup."""

import jax
import jax.numpy as jnp

from benchmarks import profile_step


def test_self_times_subtract_nested_children_per_thread():
  events = [
      {"ph": "X", "name": "while", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
      {"ph": "X", "name": "dot", "ts": 10, "dur": 30, "pid": 1, "tid": 1},
      {"ph": "X", "name": "dot", "ts": 50, "dur": 20, "pid": 1, "tid": 1},
      {"ph": "X", "name": "fusion", "ts": 20, "dur": 50, "pid": 1, "tid": 2},   # other thread
      {"ph": "X", "name": "after", "ts": 120, "dur": 5, "pid": 1, "tid": 1},
  ]
  self_us = profile_step.self_times(events)
  assert self_us == {"while": 50, "dot": 50, "fusion": 50, "after": 5}


def _tiny_model(x, w):
  return jnp.tanh(x @ w).sum()


def test_hlo_sources_name_the_python_function_of_each_instruction():
  grad = jax.jit(jax.grad(_tiny_model, argnums=1))
  text = grad.lower(jnp.ones((4, 3)), jnp.ones((3, 2))).compile().as_text()
  sources = profile_step.hlo_sources(text)
  assert sources, "no instruction with metadata found"
  stacks = [stack for stack, _ in sources.values()]
  assert any(any("test_profile_step.py:_tiny_model" in frame for frame in s) for s in stacks)
  assert any("transpose(" in op for _, op in sources.values())        # the backward pass


def test_components_prefer_the_projects_frames_over_the_libraries():
  stack = [".../flax/nnx/nn/linear.py:Linear.__call__", "/x/xferlab/models/rnn.py:Layer.__call__",
           "/x/xferlab/models/classifier.py:features"]
  assert profile_step.component_of(stack) == "recurrence (layer glue, masks)"
  assert profile_step.component_of([".../optax/_src/transform.py:update"]) == \
      "optimizer (Adam, clipping)"
  assert profile_step.component_of([]).startswith("no source")

"""RNN core: cells against NumPy, padding invariance, bidirectional padding, stacking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import native
from xferlab.models import cells
from xferlab.models.rnn import Bidirectional, RecurrentLayer, StackedRNN, reverse_padded

NATIVE = pytest.mark.skipif(not native.available(),
                            reason="the native LSTM / GRU loops are not built here (xferlab.native; "
                                   "pip install -e . builds them with a C++ compiler)")
# Every implementation that runs on this backend, per cell; "native" is LSTM and GRU (CPU).
IMPLEMENTATIONS = [("rnn", "fused"), ("lstm", "fused"), ("gru", "fused"),
                   pytest.param("lstm", "native", marks=NATIVE),
                   pytest.param("gru", "native", marks=NATIVE)]

B, I, H = 3, 5, 4


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def params_of(cell):
  w_x = np.asarray(cell.input_proj.kernel[...], np.float64)
  b_x = np.asarray(cell.input_proj.bias[...], np.float64)
  w_h = np.asarray(cell.hidden_proj.kernel[...], np.float64)
  b_h = np.asarray(cell.hidden_proj.bias[...], np.float64) if cell.hidden_bias else 0.0
  return w_x, b_x, w_h, b_h


def numpy_step(name, cell, carry, x):
  """Textbook equations, written independently of the implementation."""
  w_x, b_x, w_h, b_h = params_of(cell)
  if name == "rnn":
    return np.tanh(x @ w_x + b_x + carry @ w_h)
  if name == "lstm":
    c, h = carry
    z = x @ w_x + b_x + h @ w_h
    i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return c, sigmoid(o) * np.tanh(c)
  gx, gh = x @ w_x + b_x, carry @ w_h + b_h
  r = sigmoid(gx[:, :H] + gh[:, :H])
  z = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
  n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
  return (1 - z) * n + z * carry


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_cell_step_matches_numpy(name):
  cell = cells.make_cell(name, I, H, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, I)).astype(np.float32)
  if name == "lstm":
    carry = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in range(2))
  else:
    carry = rng.normal(size=(B, H)).astype(np.float32)
  new_carry, h = cell.step(carry, cell.project_inputs(jnp.asarray(x)))
  expected = numpy_step(name, cell, carry, x)
  expected_h = expected[1] if name == "lstm" else expected
  np.testing.assert_allclose(np.asarray(h), expected_h, rtol=1e-5, atol=1e-5)
  if name == "lstm":
    np.testing.assert_allclose(np.asarray(new_carry[0]), expected[0], rtol=1e-5, atol=1e-5)


def test_lstm_forget_bias_starts_at_one():
  cell = cells.LSTMCell(I, H, rngs=nnx.Rngs(0))
  bias = np.asarray(cell.input_proj.bias[...])
  np.testing.assert_array_equal(bias[H:2 * H], 1.0)
  np.testing.assert_array_equal(bias[:H], 0.0)


def _padded_pair(lengths, t1, t2, features=I):
  x = np.random.default_rng(1).normal(size=(len(lengths), t2, features)).astype(np.float32)
  short = x[:, :t1].copy()
  for b, n in enumerate(lengths):       # garbage, not zeros, in the padding
    short[b, n:] = 7.0
    x[b, n:] = -3.0
  return jnp.asarray(short), jnp.asarray(x), jnp.asarray(lengths)


@pytest.mark.parametrize("name, implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_outputs_or_final_state(name, implementation, bidirectional):
  rnn = StackedRNN(name, I, H, num_layers=2, bidirectional=bidirectional,
                   implementation=implementation, rngs=nnx.Rngs(0))
  lengths = [6, 3, 1]
  short, long, lens = _padded_pair(lengths, 6, 11)
  out_short, carry_short = rnn(short, lens)
  out_long, carry_long = rnn(long, lens)
  np.testing.assert_allclose(out_long[:, :6], out_short, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(out_long[:, 6:]), 0.0)
  for a, b in zip(jax.tree.leaves(carry_short), jax.tree.leaves(carry_long)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  for b, n in enumerate(lengths):
    np.testing.assert_array_equal(np.asarray(out_short[b, n:]), 0.0)


def test_final_state_is_state_at_last_valid_step():
  layer = RecurrentLayer(cells.GRUCell(I, H, rngs=nnx.Rngs(0)))
  _, x, lens = _padded_pair([4, 2], 4, 9)
  out, carry = layer(x, lens)
  np.testing.assert_allclose(carry, out[jnp.arange(2), lens - 1], rtol=1e-6)


def test_reverse_padded_reverses_within_length():
  x = jnp.arange(2 * 5).reshape(2, 5)[..., None]
  r = reverse_padded(x, jnp.array([3, 5]))[..., 0]
  np.testing.assert_array_equal(r, [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]])
  np.testing.assert_array_equal(reverse_padded(reverse_padded(x, jnp.array([3, 5])),
                                               jnp.array([3, 5])), x)


def test_bidirectional_backward_half_reads_each_row_from_its_last_token():
  fwd = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)))
  bwd = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(1)))
  bi = Bidirectional(fwd, bwd)
  lengths = [5, 2]
  _, x, lens = _padded_pair(lengths, 5, 8)
  out, _ = bi(x, lens)
  for b, n in enumerate(lengths):
    # The backward direction over row b alone, reversed by hand, unpadded.
    row = x[b:b + 1, :n][:, ::-1]
    ref, _ = bwd(row, jnp.array([n]))
    np.testing.assert_allclose(out[b, :n, H:], ref[0, ::-1], rtol=1e-5, atol=1e-6)
    fref, _ = fwd(x[b:b + 1, :n], jnp.array([n]))
    np.testing.assert_allclose(out[b, :n, :H], fref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out[b, n:]), 0.0)


def test_stacked_dropout_only_with_rngs():
  rnn = StackedRNN("gru", I, H, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))
  _, x, lens = _padded_pair([4, 4], 4, 4)
  a, _ = rnn(x, lens)
  b, _ = rnn(x, lens)
  np.testing.assert_array_equal(a, b)
  c, _ = rnn(x, lens, rngs=nnx.Rngs(dropout=0))
  assert not np.allclose(a, c)


def _dot_shapes(jaxpr):
  """Operand shapes of the matmuls in ``jaxpr``, inside custom_vjp calls too (not in scans)."""
  found = []
  for e in jaxpr.eqns:
    if e.primitive.name == "dot_general":
      found.append(tuple(tuple(v.aval.shape) for v in e.invars))
    elif e.primitive.name != "scan":
      for param in e.params.values():
        inner = getattr(param, "jaxpr", param)
        if hasattr(inner, "eqns"):
          found += _dot_shapes(inner)
  return found


def _find_scans(jaxpr):
  """Scan equations anywhere in ``jaxpr``, inside custom_vjp calls and pjit too."""
  found = []
  for e in jaxpr.eqns:
    if e.primitive.name == "scan":
      found.append(e)
      continue
    for param in e.params.values():
      inner = getattr(param, "jaxpr", param)
      if hasattr(inner, "eqns"):
        found += _find_scans(inner)
  return found


@pytest.mark.parametrize("implementation", ["fused", "autodiff"])
def test_input_projection_is_hoisted_out_of_the_scan(implementation):
  layer = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)), implementation=implementation)
  _, x, lens = _padded_pair([3, 2], 3, 3)     # x: [2, 3, I]
  jaxpr = jax.make_jaxpr(lambda x, l: layer(x, l)[0])(x, lens).jaxpr
  scans = _find_scans(jaxpr)
  assert len(scans) == 1
  # Outside the loop: one matmul over all steps at once (time-major), [3, 2, I] x [I, 4H].
  assert ((3, 2, I), (I, 4 * H)) in _dot_shapes(jaxpr)
  # Inside the loop: only the recurrent matmul [2, H] x [H, 4H].
  assert _dot_shapes(scans[0].params["jaxpr"].jaxpr) == [((2, H), (H, 4 * H))]


@pytest.mark.parametrize("name, implementation", IMPLEMENTATIONS)
def test_hand_written_backward_equals_autodiff_of_the_scan(name, implementation):
  """The fused scan's and the native loops' backward passes give autodiff's gradients
  (padding, an empty row and the initial carry too), and the same outputs."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 6, I)).astype(np.float32))
  lengths = jnp.array([6, 2, 0])
  weights = jnp.asarray(rng.normal(size=(3, 6, H)).astype(np.float32))
  grads, outputs = {}, {}
  for kind in ("autodiff", implementation):
    layer = RecurrentLayer(cells.make_cell(name, I, H, rngs=nnx.Rngs(0)), implementation=kind)
    graphdef, params = nnx.split(layer)
    carry0 = jax.tree.map(lambda a: a + 0.3, layer.cell.initial_carry(3))
    outputs[kind] = layer(x, lengths, carry0)

    def loss(params, x, carry0):
      out, carry = nnx.merge(graphdef, params)(x, lengths, carry0)
      return (out * weights).sum() + sum((c ** 2).sum() for c in jax.tree.leaves(carry))

    grads[kind] = jax.grad(loss, argnums=(0, 1, 2))(params, x, carry0)
  for a, b in zip(jax.tree.leaves(outputs["autodiff"]), jax.tree.leaves(outputs[implementation])):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  flat = jax.tree.leaves(grads["autodiff"])
  assert len(flat) == len(jax.tree.leaves(grads[implementation]))
  for a, b in zip(flat, jax.tree.leaves(grads[implementation])):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


@NATIVE
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_native_loops_equal_the_fused_scan_at_a_real_size_vmapped_too(name):
  """Hidden 256 over 40 steps and 9 rows of mixed lengths (blocks of rows per thread), values
  and gradients, and under vmap (a vectorized λ sweep maps the whole step)."""
  size, hidden, rng = 16, 256, np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 9, 40, size)).astype(np.float32))
  lengths = jnp.asarray(rng.integers(0, 41, size=9))

  def run(kind):
    layer = RecurrentLayer(cells.make_cell(name, size, hidden, rngs=nnx.Rngs(1)),
                           implementation=kind)
    graphdef, params = nnx.split(layer)

    def loss(params, x):
      out, carry = nnx.merge(graphdef, params)(x, lengths)
      states = jax.tree.leaves(carry)
      return jnp.sum(jnp.sin(out)) + jnp.sum(states[0] * states[-1])

    one = jax.jit(jax.value_and_grad(loss))(params, x[0])
    mapped = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(None, 0)))(params, x)
    return one, mapped

  for a, b in zip(jax.tree.leaves(run("fused")), jax.tree.leaves(run("native"))):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-4, atol=2e-5)


def test_fused_backward_has_one_weight_gradient_matmul_outside_the_loop():
  layer = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)), implementation="fused")
  graphdef, params = nnx.split(layer)
  _, x, lens = _padded_pair([3, 2], 3, 3)

  def loss(params):
    return nnx.merge(graphdef, params)(x, lens)[0].sum()

  jaxpr = jax.make_jaxpr(jax.grad(loss))(params).jaxpr
  backward = [s for s in _find_scans(jaxpr) if s.params["reverse"]]
  assert len(backward) == 1
  # The reverse loop only carries dh back: [2, 4H] x [4H, H]; no [H, 4H] accumulator.
  assert _dot_shapes(backward[0].params["jaxpr"].jaxpr) == [((2, 4 * H), (4 * H, H))]


def test_cudnn_weight_layout_matches_the_scan():
  """The packing for cuDNN's LSTM, checked on CPU with jax.experimental.rnn's reference."""
  from jax.experimental import rnn as cudnn_rnn
  from xferlab.models.rnn import cudnn_weights
  layer = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)), implementation="fused")
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, I)).astype(np.float32))
  lengths = jnp.array([5, 5], jnp.int32)
  ours, (c, h) = layer(x, lengths)
  kernel, _ = layer.cell.recurrent_weights()
  w_ih, w_hh, b_ih, b_hh = cudnn_rnn.unpack_lstm_weights(cudnn_weights(layer.cell, kernel), I, H,
                                                         1, False)
  zeros = jnp.zeros((1, 2, H))
  ref, h_n, c_n = cudnn_rnn.lstm_ref(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, I, H, 1,
                                     0.0, False)
  np.testing.assert_allclose(np.asarray(ref), np.asarray(ours), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(h_n[0]), np.asarray(h), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(c_n[0]), np.asarray(c), rtol=1e-5, atol=1e-5)


def test_cudnn_is_refused_on_cpu_equals_the_scan_on_gpu_and_auto_is_native_or_fused():
  from xferlab.models.rnn import native_applies
  cudnn = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)), implementation="cudnn")
  auto = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)))
  fused = RecurrentLayer(cells.LSTMCell(I, H, rngs=nnx.Rngs(0)), implementation="fused")
  _, x, lens = _padded_pair([3, 2], 3, 3)
  expected = np.asarray(fused(x, lens)[0])
  if native_applies(auto.cell, x.dtype):     # the native loops: equal to float32 rounding
    np.testing.assert_allclose(np.asarray(auto(x, lens)[0]), expected, rtol=1e-5, atol=1e-6)
    assert not native_applies(auto.cell, jnp.bfloat16)
    assert native_applies(cells.GRUCell(I, H, rngs=nnx.Rngs(0)), x.dtype)
    assert not native_applies(cells.SimpleRNNCell(I, H, rngs=nnx.Rngs(0)), x.dtype)
  else:
    np.testing.assert_array_equal(np.asarray(auto(x, lens)[0]), expected)
  if jax.default_backend() != "gpu":
    with pytest.raises(ValueError, match="needs a GPU"):
      cudnn(x, lens)
  else:   # cuDNN's own kernels: equal to float32 rounding
    np.testing.assert_allclose(np.asarray(cudnn(x, lens)[0]), expected, rtol=1e-3, atol=1e-4)


_ISA_CHECK = """
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from xferlab import native
from xferlab.models import cells
from xferlab.models.rnn import RecurrentLayer
x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 9, 3)).astype(np.float32))
lengths = jnp.array([9, 4, 1, 0, 7])
for name in ("lstm", "gru"):
  results = {}
  for kind in ("fused", "native"):
    layer = RecurrentLayer(cells.make_cell(name, 3, 20, rngs=nnx.Rngs(0)), implementation=kind)
    graphdef, params = nnx.split(layer)
    loss = lambda p, x: jnp.sum(jnp.sin(nnx.merge(graphdef, p)(x, lengths)[0]))
    results[kind] = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(results["fused"]), jax.tree.leaves(results["native"])):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)
print(native.instruction_set())
"""


@NATIVE
@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_every_instruction_set_variant_equals_the_fused_scan(isa):
  """The narrower builds the CPU could be given (``XFERLAB_NATIVE_ISA`` forces one; the
  default, the widest this CPU runs, is what the other tests use)."""
  import os
  import subprocess
  import sys
  out = subprocess.run([sys.executable, "-c", _ISA_CHECK], capture_output=True, text=True,
                       env=dict(os.environ, XFERLAB_NATIVE_ISA=isa, JAX_PLATFORMS="cpu"),
                       timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  ran = out.stdout.split()[-1]
  if isa == "avx2" and ran != "avx2":
    pytest.skip(f"this CPU has no AVX2 + FMA (the loops ran {ran})")
  assert ran == isa


@pytest.mark.parametrize("shape", [(5, I), (3, 4, I), (2, 3, 4, I)])
def test_dense_projection_gradients_equal_autodiffs(shape):
  """The input projection's hand-written backward gives ``x @ W``'s autodiff gradients."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  kernel = jnp.asarray(rng.normal(size=(I, 3 * H)).astype(np.float32))
  weights = jnp.asarray(rng.normal(size=shape[:-1] + (3 * H,)).astype(np.float32))
  ours = jax.grad(lambda x, k: (cells.dense_projection(x, k) * weights).sum(), (0, 1))(x, kernel)
  reference = jax.grad(lambda x, k: ((x @ k) * weights).sum(), (0, 1))(x, kernel)
  np.testing.assert_allclose(cells.dense_projection(x, kernel), x @ kernel, rtol=1e-5, atol=1e-5)
  for a, b in zip(ours, reference):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)

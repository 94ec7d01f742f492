"""Running cells over time: one scan layer, bidirectional wrapping and stacking.

Conventions (batch-major at the API, time-major inside the scan):

* ``inputs: float[batch, time, features]``
* ``lengths: int[batch]`` -- number of valid steps; steps ``t >= length`` are
  padding. Padding never changes an output at a valid step nor the final state:
  the carry is frozen once a sequence ends and outputs at padded steps are 0.
* ``outputs: float[batch, time, hidden]`` (``2 * hidden`` when bidirectional).

The input projection of a cell runs once for all steps before the scan, so the
loop body holds a single ``[batch, hidden] x [hidden, G * hidden]`` matmul.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from xferlab.models.cells import GRUCell, LSTMCell, RecurrentCell, dense_projection, make_cell
from xferlab.models.scan import recurrent_scan


def length_mask(lengths: jax.Array, max_length: int) -> jax.Array:
  """``bool[batch, time]``: True at valid steps ``t < lengths[b]``."""
  return jnp.arange(max_length)[None, :] < lengths[:, None]


def reverse_padded(x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses each sequence within its own length; padding stays in place.

  ``x: float[batch, time, ...]``; row ``b`` becomes
  ``x[b, L-1], ..., x[b, 0], x[b, L], ..., x[b, T-1]`` with ``L = lengths[b]``.
  Applying it twice is the identity.
  """
  time = jnp.arange(x.shape[1])[None, :]
  src = jnp.where(time < lengths[:, None], lengths[:, None] - 1 - time, time)
  return jnp.take_along_axis(x, src.reshape(src.shape + (1,) * (x.ndim - 2)), axis=1)


SCAN_IMPLEMENTATIONS = ("auto", "fused", "autodiff", "cudnn", "native")


def on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def native_runs_here(dtype) -> bool:
  """Whether the native CPU loops (``xferlab.native``) can run an LSTM or GRU on inputs of
  ``dtype`` here: built, float32, CPU, and one device in one process (the custom calls have
  no partitioning rule, so a data-parallel program would gather every row onto every
  device; such runs take the fused scan)."""
  from xferlab import native
  return (jnp.dtype(dtype) == jnp.float32 and jax.default_backend() == "cpu"
          and jax.device_count() == 1 and native.available())


def native_applies(cell: RecurrentCell, dtype) -> bool:
  """Whether the native CPU loops can run ``cell`` (an LSTM or GRU) on inputs of ``dtype``."""
  return isinstance(cell, (LSTMCell, GRUCell)) and native_runs_here(dtype)


def cudnn_weights(cell: RecurrentCell, kernel: jax.Array) -> jax.Array:
  """The LSTM's weights in cuDNN's flat layout: ``W_ih [4H, I], W_hh [4H, H], b_ih, b_hh``.

  Gate order ``i, f, g, o`` is the same in both; our single bias is ``b_ih``
  and ``b_hh`` is zero.
  """
  w_ih = cell.input_proj.kernel[...].T
  b_ih = cell.input_proj.bias[...]
  return jnp.concatenate([w_ih.ravel(), kernel.T.ravel(), b_ih, jnp.zeros_like(b_ih)])


class RecurrentLayer(nnx.Module):
  """Scans one cell over time with ``jax.lax.scan``, masking padded steps.

  ``implementation``: ``"fused"`` differentiates the loop with
  ``xferlab.models.scan.recurrent_scan``'s hand-written backward pass (one
  weight-gradient matmul for the whole sequence); ``"autodiff"`` lets JAX
  differentiate the plain scan; ``"cudnn"`` calls cuDNN's LSTM through
  ``jax.experimental.rnn`` (GPU, LSTM only); ``"native"`` runs the fused scan's two
  loops as C++ custom calls (``xferlab.native``: CPU, LSTM or GRU, float32, where the package
  built them). ``"auto"`` (default) is native where that applies (``native_applies``)
  and fused everywhere else: on an H200 the fused scan trained an LSTM layer 1.5x
  faster than cuDNN (``benchmarks/gpu_check.py``). All compute the same values.

  ``weight_dropout``: DropConnect on the recurrent kernel ``W_h`` (one mask per
  call, shared by all steps; AWD-LSTM's weight drop), applied when ``rngs`` is
  given.
  """

  def __init__(self, cell: RecurrentCell, unroll: int = 1, implementation: str = "auto",
               weight_dropout: float = 0.0):
    if implementation not in SCAN_IMPLEMENTATIONS:
      raise ValueError(f"Unknown scan implementation {implementation!r}; "
                       f"choose one of {SCAN_IMPLEMENTATIONS}")
    self.cell = cell
    self.unroll = unroll
    self.implementation = implementation
    self.weight_dropout = nnx.Dropout(weight_dropout)

  @property
  def output_size(self) -> int:
    return self.cell.hidden_size

  def __call__(self, inputs: jax.Array, lengths: jax.Array, initial_carry: Any = None, *,
               rngs: nnx.Rngs | None = None):
    """Returns ``(outputs float[batch, time, hidden], final carry)``."""
    batch, time = inputs.shape[:2]
    carry = self.cell.initial_carry(batch, inputs.dtype) if initial_carry is None else initial_carry
    kernel, bias = self.cell.recurrent_weights()
    kernel = self.weight_dropout(kernel, deterministic=rngs is None, rngs=rngs)
    implementation = self.implementation
    # The native loops take float32 only; under mixed precision the weights may be bf16.
    native_ok = (len({jnp.dtype(a.dtype) for a in (inputs, kernel, bias)}) == 1
                 and native_applies(self.cell, inputs.dtype))
    if implementation == "auto":
      implementation = "native" if native_ok else "fused"
    if implementation == "native" and not native_ok:
      raise ValueError("scan_implementation 'native' needs the built kernels "
                       "(xferlab.native.available()), an LSTM or GRU cell, float32 and a CPU "
                       "backend with one device ('auto' falls back to the fused scan)")
    if implementation == "cudnn":
      return self._cudnn(inputs, lengths, carry, kernel)
    if implementation == "native":   # batch-major throughout: no transposes
      return self._native(inputs, lengths, carry, kernel, bias)
    projected = self.cell.project_inputs(jnp.swapaxes(inputs, 0, 1))   # [T, B, G*H], one matmul
    mask = jnp.swapaxes(length_mask(lengths, time), 0, 1)
    gates, output = self.cell.gates(), self.cell.output
    if implementation == "fused":
      outputs, carry = recurrent_scan(gates, output, self.unroll, self.cell.additive_gates,
                                      kernel, bias, projected, mask, carry)
      return jnp.swapaxes(outputs, 0, 1), carry

    def body(carry, x):
      projected_t, valid_t = x
      new_carry, h = gates(carry, projected_t, output(carry) @ kernel + bias)
      keep = lambda new, old: jnp.where(valid_t[:, None], new, old)
      carry = jax.tree.map(keep, new_carry, carry)
      return carry, jnp.where(valid_t[:, None], h, 0.0)

    carry, outputs = jax.lax.scan(body, carry, (projected, mask), unroll=self.unroll)
    return jnp.swapaxes(outputs, 0, 1), carry


  def _native(self, inputs, lengths, carry, kernel, bias):
    """The native CPU loops (``xferlab.native``), batch-major: no transposes around them."""
    from xferlab import native
    projection = self.cell.input_proj
    projected = dense_projection(inputs, projection.kernel[...])
    mask = length_mask(lengths, inputs.shape[1])
    if isinstance(self.cell, GRUCell):   # b_h stays apart: the reset gate scales it
      return native.gru_scan(kernel, bias, projected + projection.bias[...], mask, carry)
    # The LSTM's input bias joins b_h inside the loop, saving a pass over [B, T, 4H].
    return native.lstm_scan(kernel, bias + projection.bias[...], projected, mask, carry)

  def _cudnn(self, inputs, lengths, carry, kernel):
    """cuDNN's fused LSTM (``jax.experimental.rnn``; GPU only), same values as the scan."""
    from jax.experimental import rnn as cudnn_rnn
    if not isinstance(self.cell, LSTMCell):
      raise ValueError("scan_implementation 'cudnn' is for LSTM cells only")
    if not on_gpu():
      raise ValueError("scan_implementation 'cudnn' needs a GPU; JAX runs on "
                       f"{jax.default_backend()!r} (use 'auto' or 'fused')")
    c0, h0 = carry
    size, hidden = self.cell.input_size, self.cell.hidden_size
    # cuDNN runs in float32 whatever the compute dtype: jax.experimental.rnn's
    # backward fails to lower with bfloat16 weights (seen on an H200, jax 0.11.2).
    f32 = lambda a: a.astype(jnp.float32)
    outputs, h_n, c_n = cudnn_rnn.lstm(
        f32(inputs), f32(h0)[None], f32(c0)[None], f32(cudnn_weights(self.cell, kernel)),
        lengths.astype(jnp.int32), size, hidden, 1, 0.0, False)
    outputs = jnp.where(length_mask(lengths, inputs.shape[1])[..., None], outputs, 0.0)
    return outputs.astype(inputs.dtype), (c_n[0].astype(c0.dtype), h_n[0].astype(h0.dtype))


class Bidirectional(nnx.Module):
  """A forward and a backward layer; outputs concatenated on the feature axis.

  The backward layer reads each sequence reversed *within its length*, so
  padding at the end of a row is never read first.
  """

  def __init__(self, forward: RecurrentLayer, backward: RecurrentLayer):
    self.forward = forward
    self.backward = backward

  @property
  def output_size(self) -> int:
    return self.forward.output_size + self.backward.output_size

  def __call__(self, inputs: jax.Array, lengths: jax.Array, initial_carry: Any = None, *,
               rngs: nnx.Rngs | None = None):
    """Returns ``(float[batch, time, 2*hidden], (forward carry, backward carry))``."""
    fwd_carry, bwd_carry = (None, None) if initial_carry is None else initial_carry
    fwd_out, fwd_carry = self.forward(inputs, lengths, fwd_carry, rngs=rngs)
    bwd_out, bwd_carry = self.backward(reverse_padded(inputs, lengths), lengths, bwd_carry,
                                       rngs=rngs)
    outputs = jnp.concatenate([fwd_out, reverse_padded(bwd_out, lengths)], axis=-1)
    return outputs, (fwd_carry, bwd_carry)


class StackedRNN(nnx.Module):
  """``num_layers`` recurrent layers with dropout between them.

  Args:
    cell: ``"rnn" | "lstm" | "gru"``.
    input_size, hidden_size: feature sizes; every layer has ``hidden_size`` units
      per direction.
    bidirectional: wrap each layer in ``Bidirectional``.
    dropout: rate applied to the outputs of every layer but the last.
    unroll: ``lax.scan`` unroll factor.
    implementation: ``"fused"`` or ``"autodiff"`` backward pass (``RecurrentLayer``).
    weight_dropout: DropConnect rate on every layer's recurrent kernel.
    variational: one dropout mask per sequence (shared over time) between
      layers, as in Gal & Ghahramani 2016, instead of one per step.
  """

  def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
               bidirectional: bool = False, dropout: float = 0.0, unroll: int = 1,
               implementation: str = "auto", weight_dropout: float = 0.0,
               variational: bool = False, rngs: nnx.Rngs):
    layers = []
    size = input_size
    for _ in range(num_layers):
      make = lambda: RecurrentLayer(make_cell(cell, size, hidden_size, rngs=rngs), unroll=unroll,
                                    implementation=implementation,
                                    weight_dropout=weight_dropout)
      layer = Bidirectional(make(), make()) if bidirectional else make()
      layers.append(layer)
      size = layer.output_size
    self.layers = nnx.List(layers)
    self.dropout = nnx.Dropout(dropout, broadcast_dims=(1,) if variational else ())
    self.output_size = size

  def __call__(self, inputs: jax.Array, lengths: jax.Array, initial_carry: Any = None, *,
               rngs: nnx.Rngs | None = None):
    """Returns ``(outputs float[batch, time, output_size], [carry per layer])``.

    ``rngs`` (with a ``dropout`` stream) turns dropout on; ``None`` is evaluation.
    """
    carries = []
    x = inputs
    for i, layer in enumerate(self.layers):
      if i > 0:
        x = self.dropout(x, deterministic=rngs is None, rngs=rngs)
      x, carry = layer(x, lengths, None if initial_carry is None else initial_carry[i], rngs=rngs)
      carries.append(carry)
    return x, carries

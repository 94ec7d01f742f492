"""Recurrent cells: simple RNN (Elman), LSTM and GRU, in Flax NNX.

A cell is split into the two halves that an efficient scan needs:

* ``project_inputs(x)`` -- the input projection ``W_x x_t + b`` for *all* time
  steps at once (one large matmul outside the time loop);
* ``step(carry, projected_t)`` -- the recurrence for one time step, which only
  multiplies the previous hidden state by ``W_h`` (all gates fused into one
  matmul of width ``num_gates * hidden_size``).

``step`` is itself two parts: the matmul ``hidden_t = W_h h_{t-1} (+ b_h)`` and
the elementwise ``gates(carry, projected_t, hidden_t)``, a pure function with no
parameters. ``xferlab.models.scan`` uses that split to differentiate a whole
sequence with one weight-gradient matmul instead of one per step.

Shapes: ``x: float[..., input_size]``, ``projected: float[..., num_gates * hidden]``,
``h: float[batch, hidden]``. LSTM carries ``(c, h)``, the others carry ``h``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def sigmoid(x: jax.Array) -> jax.Array:
  """σ(x) = (1 + tanh(x / 2)) / 2: the same function, but XLA's CPU tanh is a cheap
  rational approximation where ``jax.nn.sigmoid`` costs an exp and a division
  (≈ 10% less time in the LSTM forward loop here)."""
  return 0.5 * jnp.tanh(0.5 * x) + 0.5


# The elementwise halves of the cells' steps (see ``RecurrentCell.gates``).

def simple_rnn_gates(h, projected_t, hidden_t, activation="tanh"):
  h = _ACTIVATIONS[activation](projected_t + hidden_t)
  return h, h


def lstm_gates(carry, projected_t, hidden_t):
  c, _ = carry
  i, f, g, o = jnp.split(projected_t + hidden_t, 4, axis=-1)
  c = sigmoid(f) * c + sigmoid(i) * jnp.tanh(g)
  h = sigmoid(o) * jnp.tanh(c)
  return (c, h), h


def gru_gates(h, projected_t, hidden_t):
  x_r, x_z, x_n = jnp.split(projected_t, 3, axis=-1)
  h_r, h_z, h_n = jnp.split(hidden_t, 3, axis=-1)
  r = sigmoid(x_r + h_r)
  z = sigmoid(x_z + h_z)
  n = jnp.tanh(x_n + r * h_n)
  h = (1.0 - z) * n + z * h
  return h, h


@jax.custom_vjp
def dense_projection(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``float[..., in] @ float[in, out] -> float[..., out]`` with a hand-written backward.

  The same values and gradients as ``x @ kernel``. Autodiff's transpose of this
  contraction leaves XLA's CPU compiler a weight-gradient ``dot`` with a transposed
  output layout that it runs through Eigen instead of its YNNPACK fusions, at about
  2.5x the time of the same matmul (``benchmarks.profile_step``: 28 against 11 ms per
  layer of the classifier step). Written as two plain contractions over flattened rows,
  both gradients take the fast path.
  """
  return jnp.einsum("...i,io->...o", x, kernel)


def _dense_projection_forward(x, kernel):
  return dense_projection(x, kernel), (x, kernel)


def _dense_projection_backward(saved, d_out):
  x, kernel = saved
  rows_x = x.reshape(-1, x.shape[-1])
  rows_d = d_out.reshape(-1, d_out.shape[-1])
  d_x = (rows_d @ kernel.T).reshape(x.shape)
  return d_x, rows_x.T @ rows_d


dense_projection.defvjp(_dense_projection_forward, _dense_projection_backward)


class RecurrentCell(nnx.Module):
  """Shared parts of all cells: the fused input and hidden projections.

  Attributes:
    input_proj: ``W_x`` and ``b``, kernel ``[input_size, G * hidden]``.
    hidden_proj: ``W_h``, kernel ``[hidden, G * hidden]`` (orthogonal init).
  """

  num_gates: int = 1
  hidden_bias: bool = False
  additive_gates: bool = True   # gates read only projected_t + hidden_t (not GRU)

  def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs):
    self.input_size = input_size
    self.hidden_size = hidden_size
    width = self.num_gates * hidden_size
    self.input_proj = nnx.Linear(
        input_size, width, rngs=rngs,
        kernel_init=nnx.initializers.glorot_uniform())
    self.hidden_proj = nnx.Linear(
        hidden_size, width, use_bias=self.hidden_bias, rngs=rngs,
        kernel_init=nnx.initializers.orthogonal())

  def project_inputs(self, x: jax.Array) -> jax.Array:
    """``float[..., input_size] -> float[..., G * hidden]``: ``W_x x + b``."""
    kernel, bias = self.input_proj.kernel[...], self.input_proj.bias[...]
    dtype = jnp.result_type(x, kernel, bias)
    return dense_projection(x.astype(dtype), kernel.astype(dtype)) + bias.astype(dtype)

  def initial_carry(self, batch_size: int, dtype=jnp.float32):
    return jnp.zeros((batch_size, self.hidden_size), dtype)

  @staticmethod
  def output(carry) -> jax.Array:
    """The hidden state ``h: float[batch, hidden]`` inside a carry."""
    return carry

  def recurrent_weights(self) -> tuple[jax.Array, jax.Array]:
    """``(W_h float[hidden, G*hidden], b_h float[G*hidden])``; ``b_h`` is 0 without a bias."""
    kernel = self.hidden_proj.kernel[...]
    if self.hidden_bias:
      return kernel, self.hidden_proj.bias[...]
    return kernel, jnp.zeros(kernel.shape[1], kernel.dtype)

  def gates(self):
    """The elementwise part of a step, a pure function without parameters:

    ``(carry, projected_t float[batch, G*hidden], hidden_t float[batch, G*hidden])
    -> (new carry, h float[batch, hidden])`` with ``hidden_t = W_h h_{t-1} + b_h``.
    """
    raise NotImplementedError

  def step(self, carry, projected_t: jax.Array):
    """One time step: ``(carry, float[batch, G*hidden]) -> (carry, h)``."""
    return self.gates()(carry, projected_t, self.hidden_proj(self.output(carry)))


class SimpleRNNCell(RecurrentCell):
  """Elman RNN: ``h_t = f(W_h h_{t-1} + W_x x_t + b)``, ``f`` tanh or relu."""

  num_gates = 1

  def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs,
               activation: str = "tanh"):
    super().__init__(input_size, hidden_size, rngs=rngs)
    if activation not in _ACTIVATIONS:
      raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    self.activation = activation

  def gates(self):
    return functools.partial(simple_rnn_gates, activation=self.activation)


class LSTMCell(RecurrentCell):
  """LSTM (Hochreiter & Schmidhuber 1997, with forget gate), gates ``i, f, g, o``.

  ``c_t = σ(f) c_{t-1} + σ(i) tanh(g)``, ``h_t = σ(o) tanh(c_t)``. The forget
  gate's bias starts at ``forget_bias`` (1.0, Jozefowicz et al. 2015).
  """

  num_gates = 4

  def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs,
               forget_bias: float = 1.0):
    super().__init__(input_size, hidden_size, rngs=rngs)
    bias = self.input_proj.bias[...]
    self.input_proj.bias[...] = bias.at[hidden_size:2 * hidden_size].set(forget_bias)

  def initial_carry(self, batch_size: int, dtype=jnp.float32):
    zeros = jnp.zeros((batch_size, self.hidden_size), dtype)
    return (zeros, zeros)

  @staticmethod
  def output(carry):
    return carry[1]

  def gates(self):
    return lstm_gates


class GRUCell(RecurrentCell):
  """GRU (Cho et al. 2014) with the reset gate applied after ``W_h`` (as cuDNN/PyTorch).

  ``r = σ(x_r + W_hr h + b_hr)``, ``z = σ(x_z + W_hz h + b_hz)``,
  ``n = tanh(x_n + r ⊙ (W_hn h + b_hn))``, ``h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}``.
  """

  num_gates = 3
  hidden_bias = True
  additive_gates = False        # the reset gate scales the hidden part of n only

  def gates(self):
    return gru_gates


CELLS = {"rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}


def make_cell(name: str, input_size: int, hidden_size: int, *, rngs: nnx.Rngs) -> RecurrentCell:
  """Builds a cell by name: ``rnn`` (tanh Elman), ``lstm`` or ``gru``."""
  if name not in CELLS:
    raise ValueError(f"Unknown cell {name!r}; choose one of {sorted(CELLS)}")
  return CELLS[name](input_size, hidden_size, rngs=rngs)

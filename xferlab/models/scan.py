"""The time loop of a recurrent layer, with a hand-written backward pass.

``recurrent_scan`` runs ``carry_t = gates(carry_{t-1}, x_t, W_h h_{t-1} + b_h)``
over time with ``jax.lax.scan``. Its value is what plain autodiff of that scan
would give; only the way the gradient is computed differs:

* Autodiff of a scan accumulates ``dW_h += h_{t-1}^T dgates_t`` inside the
  reverse loop: one skinny ``[hidden, batch] x [batch, G*hidden]`` matmul per
  step plus a read-modify-write of the whole ``[hidden, G*hidden]`` accumulator.
* Here the reverse loop only carries ``dh`` back through time (one
  ``[batch, G*hidden] x [G*hidden, hidden]`` matmul per step) and stacks the
  gate gradients; ``dW_h`` and ``db_h`` are then one large matmul over all
  ``time * batch`` rows, which runs near the machine's matmul peak.

The elementwise part of a step is recomputed in the reverse loop from the
stored pre-activations (``hidden_t``) and previous carries, so the forward pass
stores ``O(time * batch * G * hidden)`` floats, like autodiff would.

Shapes (time-major): ``projected float[time, batch, G*hidden]``,
``mask bool[time, batch]``, ``kernel float[hidden, G*hidden]``,
``bias float[G*hidden]``, carry a pytree of ``float[batch, hidden]``.
Padded steps (``mask`` False) keep the carry and output zeros.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

Gates = Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]]
Output = Callable[[Any], jax.Array]


def _masked_step(gates: Gates, carry, projected_t, hidden_t, valid_t):
  new_carry, h = gates(carry, projected_t, hidden_t)
  keep = lambda new, old: jnp.where(valid_t[:, None], new, old)
  return jax.tree.map(keep, new_carry, carry), jnp.where(valid_t[:, None], h, 0.0)


def _forward(gates, output, unroll, additive, kernel, bias, projected, mask, carry):
  """Returns ``((outputs [T, B, H], final carry), (previous carries, saved pre-activations))``.

  The saved pre-activations are ``hidden_t`` or, for ``additive`` cells (whose
  gates read only ``projected_t + hidden_t``), that sum.
  """

  def body(carry, xs):
    projected_t, valid_t = xs
    hidden_t = output(carry) @ kernel + bias
    if additive:
      hidden_t = projected_t + hidden_t
      projected_t = jnp.zeros((), hidden_t.dtype)
    new_carry, out = _masked_step(gates, carry, projected_t, hidden_t, valid_t)
    return new_carry, (out, carry, hidden_t)

  final, (outputs, previous, saved) = jax.lax.scan(body, carry, (projected, mask), unroll=unroll)
  return (outputs, final), (previous, saved)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def recurrent_scan(gates: Gates, output: Output, unroll: int, additive: bool, kernel, bias,
                   projected, mask, carry):
  """Scans a cell over time; returns ``(outputs float[time, batch, hidden], final carry)``.

  Args:
    gates: the cell's elementwise step (``RecurrentCell.gates()``).
    output: carry -> ``h float[batch, hidden]`` (``RecurrentCell.output``).
    unroll: ``lax.scan`` unroll factor of both loops.
    additive: the gates depend on ``projected_t + hidden_t`` only (LSTM, simple
      RNN; not GRU): the backward pass then needs one gradient for both.
    kernel, bias: ``W_h`` and ``b_h``.
    projected: ``W_x x_t + b`` for every step, time-major.
    mask: valid steps, time-major.
    carry: the initial carry.
  """
  return _forward(gates, output, unroll, additive, kernel, bias, projected, mask, carry)[0]


def _scan_fwd(gates, output, unroll, additive, kernel, bias, projected, mask, carry):
  result, (previous, saved) = _forward(gates, output, unroll, additive, kernel, bias, projected,
                                       mask, carry)
  return result, (kernel, None if additive else projected, mask, previous, saved)


def _scan_bwd(gates, output, unroll, additive, residuals, cotangents):
  kernel, projected, mask, previous, saved = residuals
  d_outputs, d_final = cotangents
  kernel_t = kernel.T

  def body(d_carry, xs):
    projected_t, valid_t, carry, saved_t, d_out = xs
    if additive:   # saved_t = projected_t + hidden_t; one gradient serves both
      step = lambda carry, z: _masked_step(gates, carry, jnp.zeros((), z.dtype), z, valid_t)
      _, pullback = jax.vjp(step, carry, saved_t)
      d_prev, d_hidden = pullback((d_carry, d_out))
      d_projected = None
    else:
      step = functools.partial(_masked_step, gates, valid_t=valid_t)
      _, pullback = jax.vjp(step, carry, projected_t, saved_t)
      d_prev, d_projected, d_hidden = pullback((d_carry, d_out))
    _, output_pullback = jax.vjp(output, carry)        # h_{t-1} fed W_h h_{t-1}
    (d_through_kernel,) = output_pullback(d_hidden @ kernel_t)
    return jax.tree.map(jnp.add, d_prev, d_through_kernel), (d_projected, d_hidden)

  d_carry, (d_projected, d_hidden) = jax.lax.scan(
      body, d_final, (projected, mask, previous, saved, d_outputs), reverse=True, unroll=unroll)
  h_previous = output(previous)                          # [T, B, H]
  d_kernel = jnp.einsum("tbh,tbg->hg", h_previous, d_hidden)
  d_bias = d_hidden.sum(axis=(0, 1))
  return d_kernel, d_bias, d_hidden if additive else d_projected, None, d_carry


recurrent_scan.defvjp(_scan_fwd, _scan_bwd)

"""Native CPU kernels: the LSTM and GRU time loops as XLA FFI custom calls (``lstm_loop.cc``).

``pip install -e .`` compiles ``lstm_*.cc`` (``setup.py``) against the XLA FFI headers that
jaxlib ships, with AVX-512, AVX2 and generic variants of which the CPU picks one at run time
(``instruction_set()``); where that build failed or was skipped, ``available()`` is False and
every layer runs the pure-JAX scan (``xferlab.models.scan``), which computes the same values.

``lstm_scan`` and ``gru_scan`` have ``scan.recurrent_scan``'s contract for the LSTM and the
GRU: the same inputs, the same outputs, the same masking (a padded step keeps the carry and outputs zeros) and a backward
pass that returns the same gradients. Only how the loops run differs: each thread takes a
share of the hidden units, packs its columns of ``W_h`` once per call and runs every time
step with a register-blocked matmul and vectorized gate arithmetic (one barrier per step),
instead of one XLA while-loop iteration of several instructions per step. The large matmuls
outside the loops (the input projection, ``dW_h = Σ_t h_{t-1}ᵀ dz_t``) stay in XLA.

``XFERLAB_NATIVE=0`` in the environment turns the kernels off (``available()`` is False);
``XFERLAB_NATIVE_THREADS=N`` sets the threads per call (default: the machine's cores).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import jax
import jax.numpy as jnp

_FORWARD, _BACKWARD = "xferlab_lstm_forward", "xferlab_lstm_backward"
_GRU_FORWARD, _GRU_BACKWARD = "xferlab_gru_forward", "xferlab_gru_backward"


@functools.cache
def _library() -> ctypes.CDLL | None:
  """The compiled kernels with their FFI targets registered, or None."""
  if os.environ.get("XFERLAB_NATIVE", "1") == "0":
    return None
  found = glob.glob(os.path.join(os.path.dirname(__file__), "_lstm_loop*.so"))
  if not found:
    return None
  try:
    lib = ctypes.CDLL(found[0])
  except OSError:
    return None
  lib.xferlab_set_threads(int(os.environ.get("XFERLAB_NATIVE_THREADS", "0")))
  lib.xferlab_instruction_set.restype = ctypes.c_char_p
  jax.ffi.register_ffi_target(_FORWARD, jax.ffi.pycapsule(lib.XferlabLstmForward),
                              platform="cpu")
  jax.ffi.register_ffi_target(_BACKWARD, jax.ffi.pycapsule(lib.XferlabLstmBackward),
                              platform="cpu")
  jax.ffi.register_ffi_target(_GRU_FORWARD, jax.ffi.pycapsule(lib.XferlabGruForward),
                              platform="cpu")
  jax.ffi.register_ffi_target(_GRU_BACKWARD, jax.ffi.pycapsule(lib.XferlabGruBackward),
                              platform="cpu")
  return lib


def available() -> bool:
  """Whether the native LSTM loops are built and loadable (and not turned off)."""
  return _library() is not None


def instruction_set() -> str | None:
  """``"avx512"``, ``"avx2"`` or ``"generic"``: the variant the CPU runs; None without the
  kernels."""
  lib = _library()
  return lib.xferlab_instruction_set().decode() if lib is not None else None


def _call(name: str, shapes, *args):
  out = tuple(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes)
  return jax.ffi.ffi_call(name, out, vmap_method="sequential")(*args)


@jax.custom_vjp
def lstm_scan(kernel, bias, projected, mask, carry):
  """The LSTM over time; returns ``(outputs float32[B, T, H], (c_T, h_T))``.

  Batch-major, as the layer holds its arrays (``scan.recurrent_scan`` is time-major):
  ``kernel float32[H, 4H]`` (``W_h``), ``bias float32[4H]`` (``b_h``), ``projected
  float32[B, T, 4H]`` (``W_x x_t + b``, gates ``i, f, g, o``), ``mask bool[B, T]`` (valid
  steps), ``carry`` ``(c_0, h_0)`` of ``float32[B, H]``.
  """
  return _forward(kernel, bias, projected, mask, carry)[0]


def _forward(kernel, bias, projected, mask, carry):
  _library()
  batch, time, gates = projected.shape
  hidden = gates // 4
  state, sequence = (batch, hidden), (batch, time, hidden)
  outputs, c, h, previous_c, previous_h, saved = _call(   # previous_c, saved: time-major
      _FORWARD, (sequence, state, state, (time, batch, hidden), sequence,
                 (time, batch, gates)),
      projected, mask, kernel, bias, *carry)
  return (outputs, (c, h)), (kernel, mask, previous_c, previous_h, saved)


def _backward(residuals, cotangents):
  kernel, mask, previous_c, previous_h, saved = residuals
  d_outputs, (d_c, d_h) = cotangents
  time, batch, gates = saved.shape
  state = (batch, gates // 4)
  d_saved, d_c0, d_h0 = _call(_BACKWARD, ((batch, time, gates), state, state), kernel, mask,
                              previous_c, saved, d_outputs, d_c, d_h)
  d_kernel = jnp.einsum("bth,btg->hg", previous_h, d_saved)
  return d_kernel, d_saved.sum(axis=(0, 1)), d_saved, None, (d_c0, d_h0)


lstm_scan.defvjp(_forward, _backward)


@jax.custom_vjp
def gru_scan(kernel, bias, projected, mask, h0):
  """The GRU over time; returns ``(outputs float32[B, T, H], h_T float32[B, H])``.

  ``scan.recurrent_scan``'s contract for the GRU (``cells.gru_gates``: gates ``r, z, n``, the
  reset gate applied to ``h W_hn + b_hn``), batch-major: ``kernel float32[H, 3H]`` (``W_h``),
  ``bias float32[3H]`` (``b_h``), ``projected float32[B, T, 3H]`` (``W_x x_t + b_x``), ``mask
  bool[B, T]``, ``h0 float32[B, H]``.
  """
  return _gru_forward(kernel, bias, projected, mask, h0)[0]


def _gru_forward(kernel, bias, projected, mask, h0):
  _library()
  batch, time, gates = projected.shape
  hidden = gates // 3
  sequence = (batch, time, hidden)
  outputs, h, previous_h, saved = _call(                 # saved: time-major
      _GRU_FORWARD, (sequence, (batch, hidden), sequence, (time, batch, gates)),
      projected, mask, kernel, bias, h0)
  return (outputs, h), (kernel, mask, projected, previous_h, saved)


def _gru_backward(residuals, cotangents):
  kernel, mask, projected, previous_h, saved = residuals
  d_outputs, d_h = cotangents
  batch, time, gates = projected.shape
  d_projected, d_hidden, d_h0 = _call(
      _GRU_BACKWARD, ((batch, time, gates), (batch, time, gates), (batch, gates // 3)),
      kernel, mask, projected, previous_h, saved, d_outputs, d_h)
  d_kernel = jnp.einsum("bth,btg->hg", previous_h, d_hidden)
  return d_kernel, d_hidden.sum(axis=(0, 1)), d_projected, None, d_h0


gru_scan.defvjp(_gru_forward, _gru_backward)

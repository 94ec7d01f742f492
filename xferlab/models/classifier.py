"""Text encoder (embedding + stacked RNN), pooling, and the sequence classifier.

``TextEncoder`` is the reusable trunk: the classifier here, and the language
model and seq2seq tracks, all read text through it, so its parameters (the
``encoder`` subtree) can move between them by partial restore.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from xferlab.models.rnn import StackedRNN, length_mask

POOLINGS = ("last", "mean", "max")


class TextEncoder(nnx.Module):
  """``tokens int[batch, time], lengths int[batch] -> float[batch, time, output_size]``.

  Dropout is applied to the embeddings (``embed_dropout``), between RNN
  layers (``dropout``) and to the recurrent kernels (``weight_dropout``) when
  ``rngs`` is given; ``variational`` shares each mask over time.
  """

  def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1,
               *, cell: str = "lstm", bidirectional: bool = False, dropout: float = 0.0,
               embed_dropout: float = 0.0, unroll: int = 1, implementation: str = "auto",
               weight_dropout: float = 0.0, variational: bool = False, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs,
                           embedding_init=nnx.initializers.normal(stddev=0.1))
    self.embed_dropout = nnx.Dropout(embed_dropout, broadcast_dims=(1,) if variational else ())
    self.rnn = StackedRNN(cell, embed_dim, hidden_size, num_layers, bidirectional=bidirectional,
                          dropout=dropout, unroll=unroll, implementation=implementation,
                          weight_dropout=weight_dropout, variational=variational, rngs=rngs)
    self.bidirectional = bidirectional
    self.output_size = self.rnn.output_size

  def __call__(self, tokens: jax.Array, lengths: jax.Array, *, rngs: nnx.Rngs | None = None,
               initial_carry=None, embed_noise: jax.Array | None = None):
    """Returns ``(outputs float[batch, time, output_size], per-layer final carries)``.

    ``embed_noise float[batch, time, embed_dim]`` (optional) is added to the looked-up
    embeddings before dropout: the hook of adversarial training on the embeddings.
    """
    x = self.embed(tokens)
    if embed_noise is not None:
      x = x + embed_noise.astype(x.dtype)
    return self.encode_embedded(x, lengths, rngs=rngs, initial_carry=initial_carry)

  def encode_embedded(self, embedded: jax.Array, lengths: jax.Array, *,
                      rngs: nnx.Rngs | None = None, initial_carry=None):
    """``__call__`` from embeddings ``float[batch, time, embed_dim]`` instead of token ids
    (embedding dropout, then the RNN): attributions differentiate through it."""
    x = self.embed_dropout(embedded, deterministic=rngs is None, rngs=rngs)
    return self.rnn(x, lengths, initial_carry, rngs=rngs)


def encoder_from_config(model_config, vocab_size: int, rngs: nnx.Rngs) -> TextEncoder:
  """The ``TextEncoder`` that ``config.model`` describes; every task builds its trunk here,
  so the ``encoder`` subtree of one task's checkpoint fits another's model."""
  m = model_config
  return TextEncoder(vocab_size, m.embed_dim, m.hidden_size, m.num_layers, cell=m.cell,
                     bidirectional=m.bidirectional, dropout=m.dropout,
                     embed_dropout=m.embed_dropout, unroll=m.unroll,
                     implementation=m.scan_implementation, weight_dropout=m.weight_dropout,
                     variational=m.variational_dropout, rngs=rngs)


def pool(outputs: jax.Array, lengths: jax.Array, kinds: Sequence[str] = POOLINGS,
         bidirectional: bool = False) -> jax.Array:
  """Concatenates poolings of ``outputs float[batch, time, d]`` over valid steps.

  * ``last``: the state after the last valid step; for a bidirectional encoder
    the forward half at step ``length - 1`` and the backward half at step 0
    (each direction's final state);
  * ``mean`` / ``max``: over valid steps only (ULMFiT's concat pooling is all three).

  Rows with ``length == 0`` (batch padding) pool to zeros. Returns
  ``float[batch, len(kinds) * d]``.
  """
  unknown = set(kinds) - set(POOLINGS)
  if unknown or not kinds:
    raise ValueError(f"pooling must be a non-empty subset of {POOLINGS}, got {tuple(kinds)}")
  batch, time, dim = outputs.shape
  mask = length_mask(lengths, time)[..., None]                     # [B, T, 1]
  nonempty = (lengths > 0)[:, None]
  pooled = []
  for kind in kinds:
    if kind == "last":
      last_index = jnp.maximum(lengths - 1, 0)
      last = outputs[jnp.arange(batch), last_index]                # [B, d]
      if bidirectional:
        half = dim // 2
        last = jnp.concatenate([last[:, :half], outputs[:, 0, half:]], axis=-1)
      pooled.append(last)
    elif kind == "mean":
      total = jnp.sum(jnp.where(mask, outputs, 0.0), axis=1)
      pooled.append(total / jnp.maximum(lengths, 1)[:, None].astype(outputs.dtype))
    else:
      largest = jnp.max(jnp.where(mask, outputs, -jnp.inf), axis=1)
      pooled.append(jnp.where(nonempty, largest, 0.0))
  return jnp.where(nonempty, jnp.concatenate(pooled, axis=-1), 0.0)


class MLP(nnx.Module):
  """``float[batch, in] -> float[batch, out]``: hidden ReLU layers with dropout before each Linear."""

  def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *,
               dropout: float = 0.0, rngs: nnx.Rngs):
    sizes = [in_features, *hidden, out_features]
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.dropout = nnx.Dropout(dropout)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
    for i, layer in enumerate(self.layers):
      if i > 0:
        x = jax.nn.relu(x)
      x = layer(self.dropout(x, deterministic=rngs is None, rngs=rngs))
    return x


class SequenceClassifier(nnx.Module):
  """Many-to-one classifier: ``TextEncoder`` -> pooled features -> ``MLP`` head.

  ``features`` is what transfer losses (the domain discriminator, MMD, CORAL)
  read; ``head`` maps features to class logits.
  """

  def __init__(self, encoder: TextEncoder, num_classes: int, *, pooling: Sequence[str] = POOLINGS,
               head_hidden: Sequence[int] = (), dropout: float = 0.0, rngs: nnx.Rngs):
    self.encoder = encoder
    self.pooling = tuple(pooling)
    self.feature_size = len(self.pooling) * encoder.output_size
    self.head = MLP(self.feature_size, head_hidden, num_classes, dropout=dropout, rngs=rngs)

  def features(self, tokens: jax.Array, lengths: jax.Array, *,
               rngs: nnx.Rngs | None = None, embed_noise: jax.Array | None = None) -> jax.Array:
    """``float[batch, feature_size]``: the pooled encoder states (``embed_noise``: added to
    the embeddings, see ``TextEncoder``)."""
    outputs, _ = self.encoder(tokens, lengths, rngs=rngs, embed_noise=embed_noise)
    return pool(outputs, lengths, self.pooling, self.encoder.bidirectional)

  def __call__(self, tokens: jax.Array, lengths: jax.Array, *,
               rngs: nnx.Rngs | None = None,
               embed_noise: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Returns ``(logits float[batch, classes], features float[batch, feature_size])``."""
    feats = self.features(tokens, lengths, rngs=rngs, embed_noise=embed_noise)
    return self.head(feats, rngs=rngs), feats

  def from_embeddings(self, embedded: jax.Array, lengths: jax.Array, *,
                      rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array]:
    """``__call__`` from embeddings ``float[batch, time, embed_dim]`` (integrated gradients
    interpolate them): ``(logits, features)``."""
    outputs, _ = self.encoder.encode_embedded(embedded, lengths, rngs=rngs)
    feats = pool(outputs, lengths, self.pooling, self.encoder.bidirectional)
    return self.head(feats, rngs=rngs), feats

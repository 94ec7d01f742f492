"""PyTorch reference models the throughput benchmark times beside xferlab's.

PyTorch is optional (``pip install -e ".[bench]"``): without it ``available()``
is False, and a benchmark measures the xferlab side only. Nothing here imports
xferlab; each builder returns a callable that does one whole iteration (and
returns when its work is done), as ``benchmarks.rnn_throughput.compare`` wants.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

try:
  import torch
except ImportError:       # the optional [bench] extra
  torch = None


def available() -> bool:
  return torch is not None


def use_all_cores() -> None:
  torch.set_num_threads(os.cpu_count() or 1)


def versions() -> dict:
  """PyTorch's version and its thread count (None without PyTorch)."""
  return {"torch": torch.__version__ if torch is not None else None,
          "torch_threads": torch.get_num_threads() if torch is not None else None}


def matmul(n: int) -> Callable[[], object]:
  """``torch.mm`` of two float32 ``n × n`` matrices."""
  a, b = torch.randn(n, n), torch.randn(n, n)
  return lambda: torch.mm(a, b)


def layer(cell: str, batch: int, time_steps: int, inputs: int,
          hidden: int) -> Callable[[], object]:
  """``nn.LSTM`` / ``nn.GRU``: ``out.sum().backward()``, gradients of weights and inputs."""
  rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](inputs, hidden, batch_first=True)
  x = torch.randn(batch, time_steps, inputs).requires_grad_()

  def step():
    rnn.zero_grad(set_to_none=True)
    x.grad = None
    out, _ = rnn(x)
    out.sum().backward()

  return step


def _dann_classifier(vocab_size: int, embed_dim: int, hidden: int, num_classes: int,
                     discriminator_hidden: int):
  """Embedding, 2-layer LSTM, mean + max pooling, linear head, DANN discriminator (MLP)."""
  nn = torch.nn

  class DANNClassifier(nn.Module):
    def __init__(self):
      super().__init__()
      features = 2 * hidden
      self.embed = nn.Embedding(vocab_size, embed_dim)
      self.rnn = nn.LSTM(embed_dim, hidden, num_layers=2, batch_first=True)
      self.head = nn.Linear(features, num_classes)
      self.discriminator = nn.Sequential(nn.Linear(features, discriminator_hidden), nn.ReLU(),
                                         nn.Linear(discriminator_hidden, 1))

    def features(self, tokens):
      """Mean + max pooling over time (every row is full length here)."""
      outputs, _ = self.rnn(self.embed(tokens))
      return torch.cat([outputs.mean(1), outputs.amax(1)], dim=-1)

  return DANNClassifier()


def _gradient_reversal():
  class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
      return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
      return -grad

  return GradReverse.apply


def classifier(config, data: dict, vocab_size: int) -> Callable[[], object]:
  """xferlab's DANN classifier train step in PyTorch: Adam, global-norm clipping, λ.

  ``config`` is the xferlab config of the network (``model``, ``transfer``,
  ``optimizer``); ``data`` a batch in ``xferlab.data.batching``'s format
  (``source`` with labels, ``target``), every row full length.
  """
  F = torch.nn.functional
  model = _dann_classifier(vocab_size, config.model.embed_dim, config.model.hidden_size,
                           config.classification.num_classes,
                           config.transfer.discriminator_hidden[0])
  reverse = _gradient_reversal()
  optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.learning_rate)
  batch = len(data["source"]["tokens"])
  tokens = torch.from_numpy(np.concatenate([data["source"]["tokens"], data["target"]["tokens"]]))
  labels = torch.from_numpy(data["source"]["labels"]).long()
  domain = torch.cat([torch.zeros(batch), torch.ones(batch)])
  lam = config.transfer.lam

  def step():
    optimizer.zero_grad(set_to_none=True)
    feats = model.features(tokens)
    source_loss = F.cross_entropy(model.head(feats[:batch]), labels)
    domain_logits = model.discriminator(reverse(feats))[:, 0]
    loss = source_loss + lam * F.binary_cross_entropy_with_logits(domain_logits, domain)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.optimizer.grad_clip)
    optimizer.step()

  return step


def language_model(tokens: np.ndarray, vocab_size: int, embed_dim: int, hidden: int,
                   layers: int, cutoffs: tuple[int, ...], div_value: float,
                   learning_rate: float = 1e-3, grad_clip: float = 0.25) -> Callable[[], object]:
  """One LM train step: ``nn.Embedding`` -> ``nn.LSTM`` (``layers``) -> a projection to the
  embedding width -> ``nn.AdaptiveLogSoftmaxWithLoss`` (``cutoffs``, ``div_value``), Adam with
  global-norm clipping; the hidden state carried (detached) from step to step, as truncated
  BPTT does. ``tokens`` is ``int[batch, time + 1]``: inputs and shifted targets."""
  nn = torch.nn

  class AdaptiveLM(nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab_size, embed_dim)
      self.rnn = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True)
      self.project = nn.Linear(hidden, embed_dim) if hidden != embed_dim else nn.Identity()
      self.softmax = nn.AdaptiveLogSoftmaxWithLoss(embed_dim, vocab_size, list(cutoffs),
                                                   div_value=div_value)

  model = AdaptiveLM()
  optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
  data = torch.from_numpy(np.asarray(tokens, np.int64))
  inputs, targets = data[:, :-1], data[:, 1:].reshape(-1)
  state = {"carry": None}

  def step():
    optimizer.zero_grad(set_to_none=True)
    outputs, carry = model.rnn(model.embed(inputs), state["carry"])
    state["carry"] = tuple(c.detach() for c in carry)
    hidden_states = model.project(outputs).reshape(-1, embed_dim)
    model.softmax(hidden_states, targets).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()

  return step

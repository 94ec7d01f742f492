"""Transfer methods: ``L_transfer`` losses (relation-based) and, later, partial restore / vectors."""

from __future__ import annotations

from flax import nnx

from xferlab.transfer.adversarial import DomainAdversarialLoss, grad_reverse
from xferlab.transfer.discrepancy import CoralLoss, MMDLoss
from xferlab.transfer.entropy import information_maximization

TRANSFER_METHODS = ("none", "dann", "coral", "mmd")


def make_transfer_loss(transfer_config, feature_size: int, *, rngs: nnx.Rngs):
  """The ``L_transfer`` module named by ``transfer.method``, or None for ``"none"``.

  Every such module is called as
  ``loss(source_features, target_features, source_weights, target_weights, rngs=...)``
  and returns ``(scalar loss, dict of scalar metrics)``.
  """
  method = transfer_config.method
  if method == "none":
    return None
  if method == "dann":
    return DomainAdversarialLoss(feature_size, tuple(transfer_config.discriminator_hidden),
                                 dropout=transfer_config.discriminator_dropout, rngs=rngs)
  if method == "coral":
    return CoralLoss()
  if method == "mmd":
    return MMDLoss()
  raise ValueError(f"Unknown transfer.method {method!r}; choose one of {TRANSFER_METHODS}")


__all__ = ["CoralLoss", "DomainAdversarialLoss", "MMDLoss", "TRANSFER_METHODS",
           "grad_reverse", "information_maximization",
           "make_transfer_loss"]

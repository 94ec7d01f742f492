"""xferlab: transfer learning with recurrent networks in JAX / Flax NNX."""

__version__ = "0.1.0"

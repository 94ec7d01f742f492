"""Data: corpora, tokenizers, batching."""

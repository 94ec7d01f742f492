"""Summarization with a pointer-generator: news (BBC) and science (SciTLDR), scored with ROUGE.

The model is the translation task's encoder-decoder (``xferlab.tasks.encoder_decoder``)
with ``seq2seq.copy`` (the copy distribution) and ``seq2seq.coverage`` (coverage
attention and loss) switched on as the experiment wants.

Data (``data.name``):

* ``scitldr``: paper abstract -> one-sentence TLDR; validation and test have
  several references each (the author's, then reviewers'), and ROUGE is taken
  against each: ``*_max`` and ``*_mean`` over references, as in the SciTLDR paper.
* ``bbc``: BBC article -> ``summarization.target_field``: ``summary`` (extractive,
  about 44% of the article; cut to ``summarization.max_target_length`` words) or ``title``.
* ``copy``: synthetic documents whose summary is their first 3 words (tests).

``data.subset_size`` keeps that share of the training pairs (chosen by ``data.subset_seed``,
which the experiments fix to 0: the same for every seed and arm), for learning curves against
the amount of data.

Vocabulary: one word-level vocabulary (lowercased words and punctuation) over
the training documents and targets of every corpus in ``seq2seq.vocab_sources``,
so that a model trained on news fits science word for word. Words outside it
get *extended ids* ``vocab + k`` (the ``k``-th distinct out-of-vocabulary word
of the example's source, after truncation to the largest bucket) in the source
and, where they occur in the source, in the target: the copy distribution can
produce them, and ``summarize`` writes them back as the source's words.

After training, the selected model summarizes the validation and test
documents with beam search (``decode.*``); ``results.json`` gets
``{valid,test}_rouge{1,2,L}_{max,mean}`` and the summaries are written to
``workdir/summaries/``.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from xferlab import metrics
from xferlab.data.tokenizer import UNK_ID, WordTokenizer, load_tokenizer
from xferlab.tasks.encoder_decoder import (EncoderDecoderModel, EncoderDecoderTask, generate,
                                           training_subset)
from xferlab.text_inputs import time_buckets, warn_truncated

CORPORA = {"bbc": "bbc_news_summary", "scitldr": "scitldr"}
TARGET_FIELDS = ("summary", "title")


def load_rows(data_config, corpus: str, split: str) -> list[dict]:
  """The examples of ``corpus`` (``bbc`` | ``scitldr`` | ``copy``) as dicts with
  ``document``, ``summary``, ``title``, ``references`` (and SciTLDR's sentences)."""
  if corpus == "copy":
    return copy_rows(split)
  if corpus not in CORPORA:
    raise ValueError(f"Unknown summarization corpus {corpus!r}; choose one of "
                     f"{sorted(CORPORA) + ['copy']}")
  from xferlab.data import load
  return list(load(CORPORA[corpus], split, manual_dir=data_config.manual_dir or None))


def copy_rows(split: str, size: int = 600) -> list[dict]:
  """Synthetic documents of 6-15 words from a 30-word vocabulary plus one rare word
  ``r<i>`` (out of vocabulary); the summary is the first three words."""
  offset = {"train": 0, "validation": 1, "test": 2}[split]
  rng = np.random.default_rng([7, offset])
  rows = []
  for i in range(size if split == "train" else size // 6):
    words = [f"w{j}" for j in rng.integers(0, 30, rng.integers(5, 14))]
    words.insert(int(rng.integers(0, 3)), f"r{offset}_{i}")   # a rare word among the first 3
    summary = " ".join(words[:3])
    rows.append({"document": " ".join(words), "summary": summary, "title": summary,
                 "references": [summary]})
  return rows


def first_sentence(document: str) -> str:
  """The document's first sentence (up to the first ``.``, ``!`` or ``?`` before a space)."""
  text = document.strip().split("\n")[0]
  return re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0]


def sentences(row: dict) -> list[str]:
  if row.get("document_sentences"):
    return list(row["document_sentences"])
  return [s for para in row["document"].split("\n") for s in re.split(r"(?<=[.!?])\s+", para)
          if s.strip()]


def baselines(rows: list[dict]) -> dict[str, dict[str, float]]:
  """ROUGE of Lead-1 (the first sentence) and of the extractive oracle sentence
  (SciTLDR's ``source_labels``; elsewhere the sentence with the best ROUGE-1 F1)."""
  references = [row["references"] for row in rows]
  lead = [first_sentence(row["document"]) for row in rows]
  oracle = []
  for row in rows:
    labels = row.get("source_labels")
    if labels is not None and len(labels) and max(labels) > 0:
      oracle.append(sentences(row)[int(np.argmax(labels))])
      continue
    candidates = sentences(row) or [row["document"]]
    scores = [metrics.rouge_scores([c], [row["references"]])["rouge1_max"] for c in candidates]
    oracle.append(candidates[int(np.argmax(scores))])
  return {"lead1": metrics.rouge_scores(lead, references),
          "oracle": metrics.rouge_scores(oracle, references)}


def extended_ids(tokenizer: WordTokenizer, source: str, target: str | None, max_source: int,
                 max_target: int = 0):
  """``(source ids, target ids, source OOV words)`` with extended ids ``vocab + k`` for the
  source's out-of-vocabulary words (the target's OOV words not in the source are UNK)."""
  vocab, oov = tokenizer.vocab_size, {}
  src = []
  for word in tokenizer.tokens(source)[:max_source]:
    i = tokenizer.stoi.get(word)
    src.append(i if i is not None else vocab + oov.setdefault(word, len(oov)))
  tgt = None
  if target is not None:
    words = tokenizer.tokens(target)
    words = words[:max_target] if max_target else words
    tgt = [tokenizer.stoi.get(w, vocab + oov[w] if w in oov else UNK_ID) for w in words]
  return src, tgt, list(oov)


class SummarizationTask(EncoderDecoderTask):
  name = "summarization"
  eval_sets = {"valid": "validation", "test": "test"}

  def corpora(self, config) -> tuple[str, ...]:
    """The corpora of ``data.name``, the vocabulary's ``seq2seq.vocab_sources`` and the
    adversarial domain (``copy`` is generated, not read)."""
    d, s = config.data, config.seq2seq
    names = [d.name]
    if not d.tokenizer_path:
      names += list(s.vocab_sources)
    if config.transfer.method != "none" and s.adversarial_domain:
      names.append(s.adversarial_domain)
    return tuple(dict.fromkeys(CORPORA[n] for n in names if n in CORPORA))

  def train_tokenizer(self, config):
    d = config.data
    if d.tokenizer_path:
      return load_tokenizer(d.tokenizer_path)
    if d.tokenizer != "word":
      raise ValueError("summarization uses a word vocabulary (the copy mechanism's extended "
                       "ids name source words): set data.tokenizer = 'word'")
    corpora = tuple(config.seq2seq.vocab_sources) or (d.name,)
    texts = [row[key] for corpus in corpora for row in load_rows(d, corpus, "train")
             for key in ("document", "summary", "title")]
    return WordTokenizer.train(texts, max_size=d.vocab_size or None, split=d.word_split)

  def load_pairs(self, config, split: str):
    """``(documents, targets)``: a target is a string (training) or the list of references."""
    d, field = config.data, config.summarization.target_field
    if field not in TARGET_FIELDS:
      raise ValueError(f"summarization.target_field must be one of {TARGET_FIELDS}, "
                       f"got {field!r}")
    rows = load_rows(d, d.name, split)
    if split == "train":
      return training_subset(config, [r["document"] for r in rows], [r[field] for r in rows])
    refs = [r["references"] if field == "summary" else [r["title"]] for r in rows]
    return [r["document"] for r in rows], refs

  def adversarial_sources(self, config) -> list[str]:
    """Training documents of ``seq2seq.adversarial_domain``, a corpus (e.g. scientific
    abstracts)."""
    corpus = config.seq2seq.adversarial_domain
    if not corpus:
      raise ValueError("transfer.method needs seq2seq.adversarial_domain: the corpus whose "
                       "documents are the other domain (e.g. 'scitldr')")
    return [r["document"] for r in load_rows(config.data, corpus, "train")]

  def encode_pairs(self, tokenizer, sources, targets, config):
    max_source = max(config.data.buckets)
    pairs = [extended_ids(tokenizer, s, t, max_source, config.summarization.max_target_length)
             for s, t in zip(sources, targets)]
    return [p[0] for p in pairs], [p[1] for p in pairs]

  def summarize(self, model: EncoderDecoderModel, tokenizer, config, texts: list[str],
                cache: dict | None = None, buckets: tuple[int, ...] | None = None,
                warn: bool = True) -> list[str]:
    """Beam-search summaries of ``texts`` (``decode.*``), copied words written back.

    ``texts`` are clean strings (``xferlab.text_inputs.as_texts``). An empty or
    whitespace-only text summarizes to ``""``; a document longer than the largest bucket is
    read up to it (one ``InputTruncatedWarning`` when ``warn``). An ``UNK`` the model
    generates is dropped (out-of-vocabulary source words come out through the copy
    distribution). The jitted decoder is kept in ``cache``; ``buckets`` are the padded
    lengths (default: ``text_inputs.time_buckets`` of ``data.buckets``).
    """
    buckets = tuple(buckets or time_buckets(tuple(config.data.buckets)))
    max_source = max(config.data.buckets)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if warn:
      cut = sum(len(tokenizer.tokens(texts[i])) > max_source for i in keep)
      if cut:
        warn_truncated(cut, len(texts), f"{max_source} words")
    encoded = [extended_ids(tokenizer, texts[i], None, max_source) for i in keep]
    outputs = generate(model.seq2seq, [e[0] or [UNK_ID] for e in encoded], config, cache, buckets)
    vocab = tokenizer.vocab_size

    def words(ids, oov):
      return [tokenizer.itos[i] if i < vocab else oov[i - vocab] for i in ids
              if i != UNK_ID and i - vocab < len(oov)]

    out = [""] * len(texts)
    for i, ids, e in zip(keep, outputs, encoded):
      out[i] = " ".join(words(ids, e[2]))
    return out

  def final_metrics(self, model: EncoderDecoderModel, tokenizer, config, workdir: str):
    """ROUGE of the selected model's beam-search summaries of each evaluation split."""
    results = {}
    os.makedirs(os.path.join(workdir, "summaries"), exist_ok=True)
    for name, split in self.eval_sets.items():
      documents, references = self.load_pairs(config, split)
      predictions = self.summarize(model, tokenizer, config, documents,
                                   buckets=tuple(config.data.buckets), warn=False)
      with open(os.path.join(workdir, "summaries", f"{split}.jsonl"), "w") as f:
        for prediction, refs in zip(predictions, references):
          f.write(json.dumps({"prediction": prediction, "references": refs}) + "\n")
      for metric, value in metrics.rouge_scores(predictions, references).items():
        results[f"{name}_{metric}"] = value
    return results

"""Translation: an attentional encoder-decoder trained with teacher forcing, scored with sacreBLEU.

Data (``data.name``):

* ``multi30k``: Multi30k captions; ``data.pair`` is ``en-de``, ``en-fr``,
  ``en-cs`` or any of them reversed (``de-en``, ...). ``data.fraction`` keeps
  that share of the 29,000 training pairs (the same subset for every seed and
  arm: ``data.subset_seed``). Validation is ``val`` (1,014), test
  ``test_2016_flickr`` (1,000).
* ``copy``: a synthetic corpus whose target is its source (tests, quick start).

Language tags (``data.language_tags``): every source starts with ``<2de>``,
``<2fr>``, ... (pieces of their own in the vocabulary), so one model can translate
into several languages; ``data.mix_pair`` then trains on another pair's data
as well (mixed fine-tuning).

Vocabulary: one sentencepiece model trained on the training text of every
language in ``data.vocab_languages`` (default English, French and German, all
29,000 captions of each). Because parent (en→fr) and child (en→de) then share
ids, the whole network -- embeddings and output layer included -- can move
from one pair to the other. Only monolingual text reaches the tokenizer; the
low-resource arms still train on ``data.fraction`` of the *pairs*.

Training, the loss (``CE_smoothed + λ · L_transfer``) and decoding are
``xferlab.tasks.encoder_decoder``'s; with a transfer term the other domain is
the source side of ``data.adversarial_pair`` (e.g. French sentences for a
German-English child of a French-English parent).

Evaluation during training is teacher-forced (``valid_perplexity``, the
selection metric); after training the selected model translates the
validation and test sets with beam search (``decode.*``) and
``results.json`` gets ``{valid,test}_{bleu,bleu_lc,chrf}`` (sacreBLEU on
detokenized, cased text; ``bleu_lc`` lowercased). The translations are
written to ``workdir/translations/``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from xferlab import metrics
from xferlab.data.tokenizer import UNK_ID, decode_without_unknowns, load_tokenizer, unknown_spans
from xferlab.tasks.base import train_tokenizer
from xferlab.tasks.encoder_decoder import (EncoderDecoderModel, EncoderDecoderTask, generate,
                                           training_subset)
from xferlab.text_inputs import time_buckets, truncate_ids

MULTI30K_LANGUAGES = ("de", "fr", "cs")


def parse_pair(pair: str) -> tuple[str, str]:
  """``"en-de" -> ("en", "de")``; one side must be English (Multi30k is English-centred)."""
  src, _, tgt = pair.partition("-")
  if "en" not in (src, tgt) or {src, tgt} - {"en"} - set(MULTI30K_LANGUAGES) or src == tgt:
    raise ValueError(f"Unknown Multi30k pair {pair!r}; use en-X or X-en with X in "
                     f"{MULTI30K_LANGUAGES}")
  return src, tgt


def multi30k_side(language: str, split: str, manual_dir: str = "") -> list[str]:
  """Every caption of ``split`` in ``language`` (line-aligned across languages)."""
  from xferlab.data import load
  other = "de" if language == "en" else language
  rows = load(f"multi30k/en-{other}", split, manual_dir=manual_dir or None)
  key = "source" if language == "en" else "target"
  return [row[key] for row in rows]


def copy_corpus(split: str, size: int = 2000, vocab: int = 20, seed: int = 0) -> list[str]:
  """Synthetic sentences of 3-9 words ``w0 … w{vocab-1}``; a split is a fixed seed offset."""
  offset = {"train": 0, "validation": 1, "test_2016_flickr": 2}[split]
  rng = np.random.default_rng([seed, offset])
  n = size if split == "train" else size // 10
  return [" ".join(f"w{i}" for i in rng.integers(0, vocab, rng.integers(3, 10)))
          for _ in range(n)]


def language_tag(language: str) -> str:
  """``"de" -> "<2de>"``: the source prefix that asks for a translation into ``language``."""
  return f"<2{language}>"


LANGUAGE_TAGS = tuple(language_tag(lang) for lang in ("en",) + MULTI30K_LANGUAGES)


def tag_sources(data_config, texts: list[str]) -> list[str]:
  """``texts`` with the target language's tag in front when ``data.language_tags`` is on."""
  d = data_config
  if not d.language_tags:
    return list(texts)
  if d.name != "multi30k":
    raise ValueError(f"data.language_tags applies to multi30k pairs, not {d.name!r}")
  tag = language_tag(parse_pair(d.pair)[1])
  return [f"{tag} {text}" for text in texts]


def load_pairs(data_config, split: str) -> tuple[list[str], list[str]]:
  """``(sources, targets)`` of ``split``; sources tagged with the target language if
  ``data.language_tags``.

  The training split keeps ``data.fraction`` of the pairs; with ``data.mix_pair`` they are
  repeated ``data.mix_repeat`` times and followed by every training pair of ``mix_pair``
  (mixed fine-tuning, Chu et al. 2017: the child's data beside the parent's, each source
  tagged with the language it asks for).
  """
  d = data_config
  if d.name == "copy":
    sources = copy_corpus(split)
    targets = list(sources)
  elif d.name == "multi30k":
    src, tgt = parse_pair(d.pair)
    sources, targets = (multi30k_side(lang, split, d.manual_dir) for lang in (src, tgt))
  else:
    raise ValueError(f"Unknown translation data.name {d.name!r}; choose multi30k or copy")
  sources = tag_sources(d, sources)
  if split == "train":
    sources, targets = training_subset(d, sources, targets)
    if d.mix_pair:
      if not d.language_tags:
        raise ValueError(f"data.mix_pair={d.mix_pair!r} needs data.language_tags=True: the "
                         "tag tells the model which language to translate into")
      other = d.copy_and_resolve_references()
      other.pair, other.fraction, other.mix_pair = d.mix_pair, 1.0, ""
      mixed_sources, mixed_targets = load_pairs(other, split)
      sources = sources * d.mix_repeat + mixed_sources
      targets = targets * d.mix_repeat + mixed_targets
  return sources, targets


def vocab_languages(data_config) -> tuple[str, ...]:
  """``data.vocab_languages`` plus every language the run reads (``data.pair``,
  ``data.mix_pair``, ``data.adversarial_pair``) that it lacks, with a warning: the vocabulary
  must cover both sides of every pair, or their letters become unknown pieces."""
  d = data_config
  languages = list(d.vocab_languages)
  read = [lang for pair in (d.pair, d.mix_pair, d.adversarial_pair) if pair
          for lang in parse_pair(pair)]
  missing = [lang for lang in dict.fromkeys(read) if lang not in languages]
  if missing:
    warnings.warn(f"data.vocab_languages {tuple(languages)} lacks {tuple(missing)}, which the "
                  f"run reads; the vocabulary is trained on {tuple(languages + missing)}",
                  stacklevel=2)
  return tuple(languages + missing)


def tokenizer_texts(data_config) -> list[str]:
  """The monolingual training text the joint vocabulary is trained on (``vocab_languages``)."""
  d = data_config
  if d.name == "copy":
    return copy_corpus("train")
  return [text for lang in vocab_languages(d)
          for text in multi30k_side(lang, "train", d.manual_dir)]


class TranslationTask(EncoderDecoderTask):
  name = "translation"
  eval_sets = {"valid": "validation", "test": "test_2016_flickr"}

  def train_tokenizer(self, config):
    if config.data.tokenizer_path:
      return load_tokenizer(config.data.tokenizer_path)
    tags = {"user_defined_symbols": list(LANGUAGE_TAGS)} if config.data.language_tags else {}
    return train_tokenizer(config.data, tokenizer_texts(config.data), **tags)

  def load_pairs(self, data_config, split: str):
    return load_pairs(data_config, split)

  def adversarial_sources(self, config) -> list[str]:
    """Source-side training sentences of ``data.adversarial_pair`` (the other domain)."""
    d = config.data
    if not d.adversarial_pair:
      raise ValueError("transfer.method needs data.adversarial_pair: the pair whose source "
                       "sentences are the other domain (e.g. 'fr-en' for a de-en child)")
    other = d.copy_and_resolve_references()
    other.pair, other.fraction = d.adversarial_pair, 1.0
    return load_pairs(other, "train")[0]

  def translate(self, model: EncoderDecoderModel, tokenizer, config, texts: list[str],
                cache: dict | None = None) -> list[str]:
    """Beam-search translations of ``texts`` (``decode.beam_size``, ``decode.alpha``,
    ``decode.max_length``), in order.

    ``texts`` are clean strings (``xferlab.text_inputs.as_texts``). An empty or
    whitespace-only text translates to ``""``; a source longer than the largest bucket is cut
    there (one ``InputTruncatedWarning``). Unknown output tokens become the source's unknown
    spans in order (a copy) or are dropped: no ``<unk>`` or `` ⁇ ``. The jitted decoder is kept
    in ``cache`` (``Restored`` passes its own).
    """
    out = [""] * len(texts)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    sources = tag_sources(config.data, [texts[i] for i in keep])
    buckets = time_buckets(tuple(config.data.buckets))
    hypotheses = self._translate_prepared(model, tokenizer, config, sources, cache, buckets)
    for i, hypothesis in zip(keep, hypotheses):
      out[i] = hypothesis
    return out

  @staticmethod
  def _translate_prepared(model, tokenizer, config, sources: list[str], cache=None,
                          buckets=None) -> list[str]:
    """``translate`` of sources that already carry their language tag (if the run uses tags);
    with ``buckets``, long sources are cut with a warning."""
    sequences = [tokenizer.encode(t) or [UNK_ID] for t in sources]
    if buckets:
      sequences = truncate_ids(sequences, max(buckets))
    outputs = generate(model.seq2seq, sequences, config, cache, buckets)
    return [decode_without_unknowns(tokenizer, ids, unknown_spans(tokenizer, source))
            for ids, source in zip(outputs, sources)]

  def final_metrics(self, model: EncoderDecoderModel, tokenizer, config, workdir: str):
    """BLEU / chrF of the selected model's beam-search translations of each evaluation split."""
    results = {}
    os.makedirs(os.path.join(workdir, "translations"), exist_ok=True)
    for name, split in self.eval_sets.items():
      sources, references = load_pairs(config.data, split)
      hypotheses = self._translate_prepared(model, tokenizer, config, sources)
      with open(os.path.join(workdir, "translations", f"{split}.txt"), "w") as f:
        f.write("\n".join(hypotheses) + "\n")
      for metric, value in metrics.translation_scores(hypotheses, references).items():
        results[f"{name}_{metric}"] = value
    return results



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

Monolingual target text (Multi30k Task 2's captions, ``monolingual_texts``):

* back-translation (Sennrich et al. 2016): ``data.synthetic_pairs`` names the
  ``synthetic.jsonl`` that ``python -m xferlab.studies.back_translate`` wrote (real
  target-language text, its synthetic source translated by a reverse model); those pairs
  join the training stream after the real ones, which ``data.real_repeat`` up-samples;
  ``data.synthetic_tag`` starts every synthetic source with ``<bt>`` (a piece of its own,
  Caswell et al. 2019); ``data.synthetic_limit`` keeps the first N;
* a decoder language model: ``data.monolingual_target`` (``multi30k_task2/de``) trains the
  seq2seq model on ``(empty source, caption)`` pairs -- the source reads as one ``EOS``, so
  the decoder learns ``p(y)`` -- whose decoder side (``seq2seq.encoder.embed``, ``decoder``,
  ``combine``, ``softmax_bias``) another run takes with ``init_from``. Its evaluation is
  the perplexity of the pair's validation / test targets from the empty source; no BLEU.

Only training pairs change; validation and test sets stay the pair's own, untagged.

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

import json
import os
import warnings

import numpy as np

from xferlab import metrics
from xferlab.data.tokenizer import (EOS_ID, UNK_ID, decode_without_unknowns, load_tokenizer,
                                    unknown_spans)
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


def corpus_pairs(data_config, split: str) -> tuple[list[str], list[str]]:
  """Every ``(sources, targets)`` pair of ``split`` of ``data.name`` (``data.pair``), sources
  tagged with the target language if ``data.language_tags``; no subset, no extra data."""
  d = data_config
  if d.name == "copy":
    sources = copy_corpus(split)
    targets = list(sources)
  elif d.name == "multi30k":
    src, tgt = parse_pair(d.pair)
    sources, targets = (multi30k_side(lang, split, d.manual_dir) for lang in (src, tgt))
  else:
    raise ValueError(f"Unknown translation data.name {d.name!r}; choose multi30k or copy")
  return tag_sources(d, sources), targets


def load_pairs(data_config, split: str) -> tuple[list[str], list[str]]:
  """``(sources, targets)`` of ``split``; sources tagged with the target language if
  ``data.language_tags``.

  The training split is ``training_pairs``: ``data.fraction`` of the pairs, mixed-fine-tuning
  and synthetic pairs added. With ``data.monolingual_target`` (a decoder language model) every
  source is empty: the training targets are that corpus's texts, the evaluation targets the
  pair's usual ones. Evaluation splits are never subset, repeated, mixed or tagged ``<bt>``.
  """
  d = data_config
  if _option(d, "monolingual_target"):
    if split == "train":
      return decoder_lm_pairs(d)
    targets = corpus_pairs(d, split)[1]
    return [""] * len(targets), targets
  sources, targets = corpus_pairs(d, split)
  if split == "train":
    sources, targets = training_pairs(d, sources, targets)
  return sources, targets


def training_pairs(data_config, sources: list[str], targets: list[str]):
  """The training stream's pairs, built from every real training pair in this order:

  1. ``data.fraction`` of them (``training_subset``: the same pairs for every seed and arm);
  2. with ``data.mix_pair``: those repeated ``data.mix_repeat`` times, followed by every
     training pair of ``mix_pair`` (mixed fine-tuning, Chu et al. 2017: the child's data beside
     the parent's, each source tagged with the language it asks for);
  3. all of that repeated ``data.real_repeat`` times (up-sampling the real pairs);
  4. with ``data.synthetic_pairs``: the back-translated pairs (``synthetic_training_pairs``)
     after them.

  The ``BatchStream`` shuffles every epoch, so the order only fixes what a seed sees.
  """
  d = data_config
  sources, targets = training_subset(d, sources, targets)
  if d.mix_pair:
    if not d.language_tags:
      raise ValueError(f"data.mix_pair={d.mix_pair!r} needs data.language_tags=True: the "
                       "tag tells the model which language to translate into")
    other = d.copy_and_resolve_references()
    other.pair = d.mix_pair
    mixed_sources, mixed_targets = corpus_pairs(other, "train")
    sources = sources * d.mix_repeat + mixed_sources
    targets = targets * d.mix_repeat + mixed_targets
  repeat = _option(d, "real_repeat", 1)
  if not isinstance(repeat, int) or repeat < 1:
    raise ValueError(f"data.real_repeat must be an integer >= 1, got {repeat!r}")
  sources, targets = sources * repeat, targets * repeat
  if _option(d, "synthetic_pairs"):
    synthetic_sources, synthetic_targets = synthetic_training_pairs(d)
    sources, targets = sources + synthetic_sources, targets + synthetic_targets
  return sources, targets


def _option(data_config, key: str, default=""):
  """A key added after some runs were made (their ``config.json`` lacks it)."""
  return data_config.get(key, default)


# ------------------------------------------------------------------------------
# Monolingual target text: back-translated pairs and the decoder language model.

def monolingual_texts(name: str, split: str, manual_dir: str = "") -> list[str]:
  """The texts of ``split`` of a monolingual corpus, in corpus order: ``multi30k_task2/de``
  or ``/en`` (its ``text`` field) or ``copy`` (the synthetic copy task's sentences)."""
  if name == "copy":
    return copy_corpus(split)
  from xferlab.data import load
  return [row["text"] for row in load(name, split, manual_dir=manual_dir or None)]


def corpus_language(name: str) -> str:
  """``"multi30k_task2/de" -> "de"``; ``""`` for a corpus without a language config."""
  return name.partition("/")[2]


def decoder_lm_pairs(data_config) -> tuple[list[str], list[str]]:
  """``("", text)`` for every non-empty training text of ``data.monolingual_target``.

  The pairs of a decoder language model: the seq2seq model reads a single ``EOS`` as its
  source (``TranslationTask.encode_pairs``), so attention has one position and a constant
  context, and the decoder (embedding, RNN, attentional layer, tied output layer) learns
  ``p(y)`` of the target language. Only the ``train`` split is read (Multi30k Task 2's
  validation and test captions describe Task 1's validation and test images).
  """
  d = data_config
  name = d.monolingual_target
  if d.name == "multi30k" and corpus_language(name) != parse_pair(d.pair)[1]:
    raise ValueError(f"data.monolingual_target={name!r} is not in the target language of "
                     f"data.pair={d.pair!r}")
  if d.fraction != 1.0 or d.mix_pair or _option(d, "synthetic_pairs"):
    raise ValueError("data.monolingual_target trains a decoder language model on every text "
                     "of its corpus: set data.fraction=1 and no data.mix_pair or "
                     "data.synthetic_pairs")
  targets = [t for t in monolingual_texts(name, "train", d.manual_dir) if t.strip()]
  return [""] * len(targets), targets


BT_TAG = "<bt>"   # the tag of synthetic sources (tagged back-translation, Caswell et al. 2019)
SYNTHETIC_FILE = "synthetic.jsonl"            # what xferlab.studies.back_translate writes ...
SYNTHETIC_SUMMARY = "back_translate.json"     # ... and beside it, its size and settings


def synthetic_path(path: str) -> str:
  """``data.synthetic_pairs`` as a file: a folder means its ``synthetic.jsonl``."""
  return os.path.join(path, SYNTHETIC_FILE) if os.path.isdir(path) else path


def check_synthetic_settings(data_config, settings: dict) -> None:
  """Refuses a back-translated corpus made from held-out text (a split other than ``train``)
  or by a model of another direction than the run's (a ``de-en`` model for ``en-de``)."""
  d = data_config
  split = settings.get("split") or "train"
  if split != "train":
    raise ValueError(f"data.synthetic_pairs={d.synthetic_pairs!r} was back-translated from the "
                     f"{split!r} split; train only on training text (Multi30k Task 2's "
                     "validation / test captions describe Task 1's validation / test images)")
  pair = settings.get("model_pair", "")
  if d.name == "multi30k" and settings.get("model_data") == "multi30k" and pair:
    src, tgt = parse_pair(pair)
    if f"{tgt}-{src}" != d.pair:
      raise ValueError(f"data.synthetic_pairs={d.synthetic_pairs!r} was made by a {pair} model;"
                       f" a {d.pair} run needs back-translations by a "
                       f"{'-'.join(parse_pair(d.pair)[::-1])} model")


def synthetic_training_pairs(data_config) -> tuple[list[str], list[str]]:
  """The back-translated pairs of ``data.synthetic_pairs`` (``{"source": synthetic source,
  "target": real target}`` per line), the first ``data.synthetic_limit`` of them (0 = all).

  Sources get the target-language tag (``data.language_tags``), then ``<bt>`` in front
  (``data.synthetic_tag``); pairs with an empty target are dropped. The settings in
  ``back_translate.json`` beside the file are checked (``check_synthetic_settings``).
  """
  d = data_config
  path = synthetic_path(d.synthetic_pairs)
  summary = os.path.join(os.path.dirname(path), SYNTHETIC_SUMMARY)
  if os.path.exists(summary):
    with open(summary) as f:
      check_synthetic_settings(d, json.load(f).get("settings", {}))
  sources, targets = [], []
  with open(path, encoding="utf-8") as f:
    for line in f:
      pair = json.loads(line)
      if pair["target"].strip():
        sources.append(pair["source"])
        targets.append(pair["target"])
  limit = _option(d, "synthetic_limit", 0)
  if limit:
    sources, targets = sources[:limit], targets[:limit]
  sources = tag_sources(d, sources)
  if _option(d, "synthetic_tag", False):
    sources = [f"{BT_TAG} {s}" for s in sources]
  return sources, targets


def tokenizer_symbols(data_config) -> list[str]:
  """The tags the vocabulary must hold as pieces of their own: the language tags
  (``data.language_tags``), then ``<bt>`` (``data.synthetic_tag``)."""
  d = data_config
  return (list(LANGUAGE_TAGS) if d.language_tags else []) + (
      [BT_TAG] if _option(d, "synthetic_tag", False) else [])


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
    """The joint vocabulary (``tokenizer_texts``) with ``tokenizer_symbols`` as whole pieces (a
    word tokenizer gets them as one more training text: split on whitespace they stay whole)."""
    if config.data.tokenizer_path:
      return load_tokenizer(config.data.tokenizer_path)
    symbols, texts = tokenizer_symbols(config.data), tokenizer_texts(config.data)
    if config.data.tokenizer == "word":
      return train_tokenizer(config.data, texts + ([" ".join(symbols)] if symbols else []))
    tags = {"user_defined_symbols": symbols} if symbols else {}
    return train_tokenizer(config.data, texts, **tags)

  def load_pairs(self, data_config, split: str):
    return load_pairs(data_config, split)

  def encode_pairs(self, tokenizer, sources, targets, config):
    """Ids of the pairs; an empty source (a decoder language model's) reads as the single
    ``EOS``, so that attention has one position."""
    return ([tokenizer.encode(t) or [EOS_ID] for t in sources],
            [tokenizer.encode(t) for t in targets])

  def adversarial_sources(self, config) -> list[str]:
    """Source-side training sentences of ``data.adversarial_pair`` (the other domain)."""
    d = config.data
    if not d.adversarial_pair:
      raise ValueError("transfer.method needs data.adversarial_pair: the pair whose source "
                       "sentences are the other domain (e.g. 'fr-en' for a de-en child)")
    other = d.copy_and_resolve_references()
    other.pair = d.adversarial_pair
    return corpus_pairs(other, "train")[0]   # every real pair: no subset, no synthetic ones

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
    if _option(config.data, "monolingual_target"):
      return {}   # a decoder language model: nothing to translate
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



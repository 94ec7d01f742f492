"""Translation: an attentional encoder-decoder trained with teacher forcing, scored with sacreBLEU.

Data (``data.name``):

* ``multi30k``: Multi30k captions; ``translation.pair`` is ``en-de``, ``en-fr``,
  ``en-cs`` or any of them reversed (``de-en``, ...). ``data.subset_size`` keeps
  that share of the 29,000 training pairs (the same subset for every seed and
  arm: ``data.subset_seed`` = 0, as the experiments set it). Validation is ``val`` (1,014), test
  ``test_2016_flickr`` (1,000).
* ``copy``: a synthetic corpus whose target is its source (tests, quick start).

Language tags (``translation.language_tags``): every source starts with ``<2de>``,
``<2fr>``, ... (pieces of their own in the vocabulary), so one model can translate
into several languages; ``translation.mix_pair`` then trains on another pair's data
as well (mixed fine-tuning).

Monolingual target text (Multi30k Task 2's captions, ``monolingual_texts``):

* back-translation (Sennrich et al. 2016): ``translation.synthetic_pairs`` names the
  ``synthetic.jsonl`` that ``python -m xferlab.studies.back_translate`` wrote (real
  target-language text, its synthetic source translated by a reverse model); those pairs
  join the training stream after the real ones, which ``translation.real_repeat`` up-samples;
  ``translation.synthetic_tag`` starts every synthetic source with ``<bt>`` (a piece of its own,
  Caswell et al. 2019); ``translation.synthetic_limit`` keeps the first N;
* a decoder language model: ``translation.monolingual_target`` (``multi30k_task2/de``) trains the
  seq2seq model on ``(empty source, caption)`` pairs -- the source reads as one ``EOS``, so
  the decoder learns ``p(y)`` -- whose decoder side (``seq2seq.encoder.embed``, ``decoder``,
  ``combine``, ``softmax_bias``) another run takes with ``init_from``. Its evaluation is
  the perplexity of the pair's validation / test targets from the empty source; no BLEU.

Only training pairs change; validation and test sets stay the pair's own, untagged.

Vocabulary: one sentencepiece model trained on the training text of every
language in ``seq2seq.vocab_sources`` (() = English, French and German, all
29,000 captions of each). Because parent (en→fr) and child (en→de) then share
ids, the whole network -- embeddings and output layer included -- can move
from one pair to the other. Only monolingual text reaches the tokenizer; the
low-resource arms still train on ``data.subset_size`` of the *pairs*.

Training, the loss (``CE_smoothed + λ · L_transfer``) and decoding are
``xferlab.tasks.encoder_decoder``'s; with a transfer term the other domain is
the source side of the pair ``seq2seq.adversarial_domain`` (e.g. French sentences for a
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


def tag_sources(config, texts: list[str]) -> list[str]:
  """``texts`` with the target language's tag in front when ``translation.language_tags``
  is on."""
  d, t = config.data, config.translation
  if not t.language_tags:
    return list(texts)
  if d.name != "multi30k":
    raise ValueError(f"translation.language_tags applies to multi30k pairs, not {d.name!r}")
  tag = language_tag(parse_pair(t.pair)[1])
  return [f"{tag} {text}" for text in texts]


def corpus_pairs(config, split: str) -> tuple[list[str], list[str]]:
  """Every ``(sources, targets)`` pair of ``split`` of ``data.name`` (``translation.pair``),
  sources tagged with the target language if ``translation.language_tags``; no subset, no
  extra data."""
  d = config.data
  if d.name == "copy":
    sources = copy_corpus(split)
    targets = list(sources)
  elif d.name == "multi30k":
    src, tgt = parse_pair(config.translation.pair)
    sources, targets = (multi30k_side(lang, split, d.manual_dir) for lang in (src, tgt))
  else:
    raise ValueError(f"Unknown translation data.name {d.name!r}; choose multi30k or copy")
  return tag_sources(config, sources), targets


def with_pair(config, pair: str):
  """A copy of ``config`` that reads ``pair`` (``translation.pair``)."""
  other = config.copy_and_resolve_references()
  other.translation.pair = pair
  return other


def load_pairs(config, split: str) -> tuple[list[str], list[str]]:
  """``(sources, targets)`` of ``split``; sources tagged with the target language if
  ``translation.language_tags``.

  The training split is ``training_pairs``: ``data.subset_size`` of the pairs,
  mixed-fine-tuning and synthetic pairs added. With ``translation.monolingual_target`` (a
  decoder language model) every source is empty: the training targets are that corpus's
  texts, the evaluation targets the pair's usual ones. Evaluation splits are never subset,
  repeated, mixed or tagged ``<bt>``.
  """
  if config.translation.monolingual_target:
    if split == "train":
      return decoder_lm_pairs(config)
    targets = corpus_pairs(config, split)[1]
    return [""] * len(targets), targets
  sources, targets = corpus_pairs(config, split)
  if split == "train":
    sources, targets = training_pairs(config, sources, targets)
  return sources, targets


def training_pairs(config, sources: list[str], targets: list[str]):
  """The training stream's pairs, built from every real training pair in this order:

  1. ``data.subset_size`` of them (``training_subset``: with ``data.subset_seed`` = 0 the
     same pairs for every seed and arm);
  2. with ``mix_pair``: those repeated ``mix_repeat`` times, followed by every
     training pair of ``mix_pair`` (mixed fine-tuning, Chu et al. 2017: the child's data beside
     the parent's, each source tagged with the language it asks for);
  3. all of that repeated ``real_repeat`` times (up-sampling the real pairs);
  4. with ``synthetic_pairs``: the back-translated pairs (``synthetic_training_pairs``)
     after them (all keys of the ``translation`` section).

  The ``BatchStream`` shuffles every epoch, so the order only fixes what a seed sees.
  """
  t = config.translation
  sources, targets = training_subset(config, sources, targets)
  if t.mix_pair:
    if not t.language_tags:
      raise ValueError(f"translation.mix_pair={t.mix_pair!r} needs translation.language_tags="
                       "True: the tag tells the model which language to translate into")
    mixed_sources, mixed_targets = corpus_pairs(with_pair(config, t.mix_pair), "train")
    sources = sources * t.mix_repeat + mixed_sources
    targets = targets * t.mix_repeat + mixed_targets
  repeat = t.real_repeat
  if not isinstance(repeat, int) or repeat < 1:
    raise ValueError(f"translation.real_repeat must be an integer >= 1, got {repeat!r}")
  sources, targets = sources * repeat, targets * repeat
  if t.synthetic_pairs:
    synthetic_sources, synthetic_targets = synthetic_training_pairs(config)
    sources, targets = sources + synthetic_sources, targets + synthetic_targets
  return sources, targets


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


def decoder_lm_pairs(config) -> tuple[list[str], list[str]]:
  """``("", text)`` for every non-empty training text of ``translation.monolingual_target``.

  The pairs of a decoder language model: the seq2seq model reads a single ``EOS`` as its
  source (``TranslationTask.encode_pairs``), so attention has one position and a constant
  context, and the decoder (embedding, RNN, attentional layer, tied output layer) learns
  ``p(y)`` of the target language. Only the ``train`` split is read (Multi30k Task 2's
  validation and test captions describe Task 1's validation and test images).
  """
  d, t = config.data, config.translation
  name = t.monolingual_target
  if d.name == "multi30k" and corpus_language(name) != parse_pair(t.pair)[1]:
    raise ValueError(f"translation.monolingual_target={name!r} is not in the target language "
                     f"of translation.pair={t.pair!r}")
  if d.subset_size or t.mix_pair or t.synthetic_pairs:
    raise ValueError("translation.monolingual_target trains a decoder language model on every "
                     "text of its corpus: set data.subset_size=0 and no translation.mix_pair "
                     "or translation.synthetic_pairs")
  targets = [t for t in monolingual_texts(name, "train", d.manual_dir) if t.strip()]
  return [""] * len(targets), targets


BT_TAG = "<bt>"   # the tag of synthetic sources (tagged back-translation, Caswell et al. 2019)
SYNTHETIC_FILE = "synthetic.jsonl"            # what xferlab.studies.back_translate writes ...
SYNTHETIC_SUMMARY = "back_translate.json"     # ... and beside it, its size and settings


def synthetic_path(path: str) -> str:
  """``translation.synthetic_pairs`` as a file: a folder means its ``synthetic.jsonl``."""
  return os.path.join(path, SYNTHETIC_FILE) if os.path.isdir(path) else path


def check_synthetic_settings(config, settings: dict) -> None:
  """Refuses a back-translated corpus made from held-out text (a split other than ``train``)
  or by a model of another direction than the run's (a ``de-en`` model for ``en-de``)."""
  d, t = config.data, config.translation
  split = settings.get("split") or "train"
  if split != "train":
    raise ValueError(f"translation.synthetic_pairs={t.synthetic_pairs!r} was back-translated "
                     "from the "
                     f"{split!r} split; train only on training text (Multi30k Task 2's "
                     "validation / test captions describe Task 1's validation / test images)")
  pair = settings.get("model_pair", "")
  if d.name == "multi30k" and settings.get("model_data") == "multi30k" and pair:
    src, tgt = parse_pair(pair)
    if f"{tgt}-{src}" != t.pair:
      raise ValueError(f"translation.synthetic_pairs={t.synthetic_pairs!r} was made by a "
                       f"{pair} model; a {t.pair} run needs back-translations by a "
                       f"{'-'.join(parse_pair(t.pair)[::-1])} model")


def synthetic_training_pairs(config) -> tuple[list[str], list[str]]:
  """The back-translated pairs of ``translation.synthetic_pairs`` (``{"source": synthetic
  source, "target": real target}`` per line), the first ``synthetic_limit`` of them (0 = all).

  Sources get the target-language tag (``language_tags``), then ``<bt>`` in front
  (``synthetic_tag``); pairs with an empty target are dropped. The settings in
  ``back_translate.json`` beside the file are checked (``check_synthetic_settings``).
  """
  t = config.translation
  path = synthetic_path(t.synthetic_pairs)
  summary = os.path.join(os.path.dirname(path), SYNTHETIC_SUMMARY)
  if os.path.exists(summary):
    with open(summary) as f:
      check_synthetic_settings(config, json.load(f).get("settings", {}))
  sources, targets = [], []
  with open(path, encoding="utf-8") as f:
    for line in f:
      pair = json.loads(line)
      if pair["target"].strip():
        sources.append(pair["source"])
        targets.append(pair["target"])
  if t.synthetic_limit:
    sources, targets = sources[:t.synthetic_limit], targets[:t.synthetic_limit]
  sources = tag_sources(config, sources)
  if t.synthetic_tag:
    sources = [f"{BT_TAG} {s}" for s in sources]
  return sources, targets


def tokenizer_symbols(config) -> list[str]:
  """The tags the vocabulary must hold as pieces of their own: the language tags
  (``translation.language_tags``), then ``<bt>`` (``translation.synthetic_tag``)."""
  t = config.translation
  return (list(LANGUAGE_TAGS) if t.language_tags else []) + ([BT_TAG] if t.synthetic_tag else [])


DEFAULT_VOCAB_LANGUAGES = ("en", "fr", "de")   # seq2seq.vocab_sources = () of a translation run


def vocab_languages(config) -> tuple[str, ...]:
  """``seq2seq.vocab_sources`` (() = ``DEFAULT_VOCAB_LANGUAGES``) plus every language the run
  reads (``translation.pair``, ``translation.mix_pair``, ``seq2seq.adversarial_domain``) that
  it lacks, with a warning: the vocabulary must cover both sides of every pair, or their
  letters become unknown pieces."""
  t = config.translation
  languages = list(config.seq2seq.vocab_sources or DEFAULT_VOCAB_LANGUAGES)
  read = [lang for pair in (t.pair, t.mix_pair, config.seq2seq.adversarial_domain) if pair
          for lang in parse_pair(pair)]
  missing = [lang for lang in dict.fromkeys(read) if lang not in languages]
  if missing:
    warnings.warn(f"seq2seq.vocab_sources {tuple(languages)} lacks {tuple(missing)}, which the "
                  f"run reads; the vocabulary is trained on {tuple(languages + missing)}",
                  stacklevel=2)
  return tuple(languages + missing)


def tokenizer_texts(config) -> list[str]:
  """The monolingual training text the joint vocabulary is trained on (``vocab_languages``)."""
  d = config.data
  if d.name == "copy":
    return copy_corpus("train")
  return [text for lang in vocab_languages(config)
          for text in multi30k_side(lang, "train", d.manual_dir)]


class TranslationTask(EncoderDecoderTask):
  name = "translation"
  eval_sets = {"valid": "validation", "test": "test_2016_flickr"}

  def train_tokenizer(self, config):
    """The joint vocabulary (``tokenizer_texts``) with ``tokenizer_symbols`` as whole pieces (a
    word tokenizer gets them as one more training text: split on whitespace they stay whole)."""
    if config.data.tokenizer_path:
      return load_tokenizer(config.data.tokenizer_path)
    symbols, texts = tokenizer_symbols(config), tokenizer_texts(config)
    if config.data.tokenizer == "word":
      return train_tokenizer(config.data, texts + ([" ".join(symbols)] if symbols else []))
    tags = {"user_defined_symbols": symbols} if symbols else {}
    return train_tokenizer(config.data, texts, **tags)

  def corpora(self, config) -> tuple[str, ...]:
    """The Multi30k configs of every language the run reads (its pair, ``mix_pair``, the
    adversarial pair, the vocabulary's languages) and ``monolingual_target``."""
    d, t = config.data, config.translation
    names = [t.monolingual_target] if t.monolingual_target not in ("", "copy") else []
    if d.name != "multi30k":
      return tuple(names)
    pairs = [t.pair, t.mix_pair]
    if config.transfer.method != "none":
      pairs.append(config.seq2seq.adversarial_domain)
    languages = [lang for pair in pairs if pair for lang in parse_pair(pair)]
    if not d.tokenizer_path:
      languages += list(config.seq2seq.vocab_sources or DEFAULT_VOCAB_LANGUAGES)
    names += [f"multi30k/en-{'de' if lang == 'en' else lang}" for lang in languages]
    return tuple(dict.fromkeys(names))

  def load_pairs(self, config, split: str):
    return load_pairs(config, split)

  def encode_pairs(self, tokenizer, sources, targets, config):
    """Ids of the pairs; an empty source (a decoder language model's) reads as the single
    ``EOS``, so that attention has one position."""
    return ([tokenizer.encode(t) or [EOS_ID] for t in sources],
            [tokenizer.encode(t) for t in targets])

  def adversarial_sources(self, config) -> list[str]:
    """Source-side training sentences of the pair ``seq2seq.adversarial_domain`` (the other
    domain)."""
    pair = config.seq2seq.adversarial_domain
    if not pair:
      raise ValueError("transfer.method needs seq2seq.adversarial_domain: the pair whose source "
                       "sentences are the other domain (e.g. 'fr-en' for a de-en child)")
    # every real pair: no subset, no synthetic ones
    return corpus_pairs(with_pair(config, pair), "train")[0]

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
    sources = tag_sources(config, [texts[i] for i in keep])
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
    if config.translation.monolingual_target:
      return {}   # a decoder language model: nothing to translate
    results = {}
    os.makedirs(os.path.join(workdir, "translations"), exist_ok=True)
    for name, split in self.eval_sets.items():
      sources, references = load_pairs(config, split)
      hypotheses = self._translate_prepared(model, tokenizer, config, sources)
      with open(os.path.join(workdir, "translations", f"{split}.txt"), "w") as f:
        f.write("\n".join(hypotheses) + "\n")
      for metric, value in metrics.translation_scores(hypotheses, references).items():
        results[f"{name}_{metric}"] = value
    return results



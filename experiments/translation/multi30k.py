r"""Multi30k translation with an attentional RNN, and transfer between language pairs.

  python launch.py experiments/translation/multi30k.py:en-fr --workdir runs/translation/en-fr
  python launch.py experiments/translation/multi30k.py:en-de --workdir runs/translation/en-de
  python launch.py experiments/translation/multi30k.py:en-de,0.1 --workdir runs/translation/en-de-10
  python launch.py experiments/translation/multi30k.py:en-de,0.1,transfer \
      --set init_from.path=runs/translation/en-fr --workdir runs/translation/en-de-10-transfer

Argument ``PAIR[,FRACTION[,ARM]]``:
  PAIR      en-de | en-fr | en-cs, or reversed (de-en, ...); en-cs and cs-en add Czech to
            the joint vocabulary (every pair's languages are covered);
  FRACTION  share of the 29,000 training pairs (default 1.0; the same subset for every seed);
  ARM       scratch (default) | transfer | adversarial:
    scratch      random initialization;
    transfer     the whole network of a model trained on another pair (``init_from.path``,
                 by default ``runs/translation/<parent>``) -- possible because every pair
                 shares one joint en+fr+de sentencepiece vocabulary: the bidirectional
                 encoder, the embedding (= the tied output layer), the decoder, the
                 attention and the bridge all transfer; nothing is re-initialized. The
                 parent is en-fr for en-X children and fr-en for X-en children;
    mixed        transfer, then mixed fine-tuning (Chu et al. 2017): the child's pairs,
                 repeated 10 times, beside all of the parent's, every source tagged with
                 the language it asks for (``<2de>``, ``<2fr>``; ``translation.language_tags``),
                 2 epochs of that mix. The tags need a vocabulary with those pieces: the
                 parent's rows move over by token string (``init_from.vocab = auto``), the
                 tags start at the mean embedding. The child keeps learning English
                 encoding and target-side generation from 29,000 parent pairs instead of
                 overfitting 2,900. Measured at 10%: validation perplexity 17.1
                 against transfer's 18.7, test BLEU the same (26.6 against 26.7);
    adversarial  transfer, plus ``L_source + λ·L_transfer`` on the mean encoder states: a
                 language discriminator behind gradient reversal between the child's
                 sources and the parent's sources (an X-en child: German vs French
                 sentences into one encoder). For en-X pairs both sides would be English.
Monolingual target text (Multi30k Task 2's 145,000 training captions, written independently
of the Task 1 translations; its validation / test captions describe Task 1's validation / test
images and are never trained on). For en-X children with X a Task 2 language (de):
    bt           back-translation (Sennrich et al. 2016): the 10% (or all) real pairs, repeated
                 ``translation.real_repeat`` times (10 at 10%, 2 at full data), plus every Task 2
                 caption with a synthetic English source (``translation.synthetic_pairs``), tagged
                 ``<bt>`` (``translation.synthetic_tag``); 2 epochs of that mix, from scratch. The
                 synthetic English comes from a X-en model of the same data: ``de-en,0.1,transfer``
                 (from the fr-en parent) at 10%, ``de-en`` at full data;
    bt_transfer  bt, initialized with the whole en-fr parent (its vocabulary lacks ``<bt>``:
                 rows move by string, ``init_from.vocab = auto``);
    lm           a decoder language model, not a translation model: every Task 2 caption as a
                 target of an empty source (``translation.monolingual_target``; the source reads as one
                 EOS, so the decoder learns p(y)); selected on the perplexity of the pair's
                 validation targets; FRACTION must be 1;
    lm_transfer  lm, initialized with the whole en-fr parent (so its embedding and decoder stay
                 in the parent's space, for declm_transfer);
    declm        the child with the decoder side of ``lm`` (``DECODER_SIDE``: the shared
                 embedding = the tied output layer, the decoder LSTM, the attentional layer,
                 the output bias); encoder, bridge and attention fresh;
    declm_transfer  the decoder side of ``lm_transfer`` and the encoder side of the en-fr parent
                 (``ENCODER_SIDE``: encoder LSTM, bridge, attention; ``init_from.extra``).
``init_from.made_by`` holds the commands that make every prerequisite, in order.
Also ``copy`` (the synthetic copy task) and ``smoke`` (a few steps on Multi30k); ``copy,1,lm``
and ``copy,1,bt`` are their tiny versions for tests (set ``translation.synthetic_pairs``).

Model (sized for a 2-core CPU): joint sentencepiece vocabulary of 8,000; embedding
256 shared by encoder and decoder and tied to the output layer; bidirectional LSTM
encoder 2x256; LSTM decoder 256 with multiplicative (Luong) attention; input
feeding available (``seq2seq.input_feeding``) but off: without it the decoder runs
as one fused scan, about 30% faster on this CPU, which buys more epochs; dropout 0.3 on the embeddings and the attentional states; label smoothing
0.1; Adam with a cosine schedule; the model with the best validation perplexity is
kept and translates val and test_2016_flickr with beam search (beam 5, GNMT length
penalty 0.6). ``results.json`` holds ``test_bleu`` (sacreBLEU, detokenized and
cased), ``test_bleu_lc`` (lowercased), ``test_chrf`` and the same for ``valid``.
"""

from xferlab.defaults import base_config

ARMS = ("scratch", "transfer", "mixed", "adversarial", "bt", "bt_transfer", "lm", "lm_transfer",
        "declm", "declm_transfer")
TASK2_LANGUAGES = ("de", "en")   # the languages of Multi30k Task 2's monolingual captions
# A decoder language model's part of the network, and a translation parent's encoder side.
DECODER_SIDE = ("seq2seq.encoder.embed", "seq2seq.decoder", "seq2seq.combine",
                "seq2seq.softmax_bias")
ENCODER_SIDE = ("seq2seq.encoder.rnn", "seq2seq.bridge", "seq2seq.attention")


def _parent(pair: str) -> str:
  src, tgt = pair.split("-")
  return "en-fr" if src == "en" else "fr-en"


def _command(argument: str, workdir: str) -> str:
  return (f"python launch.py experiments/translation/multi30k.py:{argument} "
          f"--workdir {workdir}")


def _target_corpus(pair: str) -> str:
  tgt = pair.split("-")[1]
  if tgt not in TASK2_LANGUAGES:
    raise ValueError(f"Monolingual {tgt!r} text does not exist here (Multi30k Task 2 has "
                     f"{TASK2_LANGUAGES}); the bt / lm arms need en-de or de-en")
  return f"multi30k_task2/{tgt}"


def back_translation(pair: str, fraction: float) -> tuple[str, list[str]]:
  """``(synthetic.jsonl path, commands that make it)`` for a PAIR,FRACTION child: a model
  of the reverse pair on the same pairs (from its X-en / en-X parent below 100%), then
  ``xferlab.studies.back_translate`` of the target language's Task 2 training captions."""
  src, tgt = pair.split("-")
  reverse = f"{tgt}-{src}"
  if fraction < 1.0:
    name = f"{reverse}-{round(100 * fraction)}-transfer"
    parent = _parent(reverse)
    commands = [_command(parent, f"runs/translation/{parent}"),
                _command(f"{reverse},{fraction:g},transfer", f"runs/translation/{name}")]
  else:
    name = reverse
    commands = [_command(reverse, f"runs/translation/{name}")]
  folder = f"runs/translation/bt/{name}"
  commands.append(f"python -m xferlab.studies.back_translate runs/translation/{name} "
                  f"--source {_target_corpus(pair)} --split train --out {folder}")
  return f"{folder}/synthetic.jsonl", commands


def _monolingual_arm(c, arm: str, parent: str) -> None:
  """The settings of the bt, lm and declm arms (see the module docstring)."""
  pair, fraction, tgt = c.translation.pair, _fraction(c), c.translation.pair.split("-")[1]
  made_by = []
  if arm in ("bt", "bt_transfer"):
    c.translation.synthetic_pairs, made_by = back_translation(pair, fraction)
    c.translation.synthetic_tag = True
    c.translation.real_repeat = 10 if fraction < 1.0 else 2
    c.train.num_epochs = 2
    c.train.eval_every_epochs = 0.25
    c.train.patience = 4
    c.train.max_train_minutes = 150.0
  if arm in ("lm", "lm_transfer"):
    if fraction != 1.0:
      raise ValueError("The lm arms read every monolingual caption: FRACTION must be 1")
    c.translation.monolingual_target = _target_corpus(pair)
    c.report_metric = "valid_perplexity"
    c.train.num_epochs = 3
    c.train.eval_every_epochs = 0.25
    c.train.patience = 4
    c.train.max_train_minutes = 120.0
  if arm in ("declm", "declm_transfer"):
    _target_corpus(pair)
    lm = "lm" if arm == "declm" else "lm_transfer"
    workdir = f"runs/translation/{tgt}-{lm.replace('_', '-')}"
    c.init_from.path, c.init_from.subtrees = workdir, DECODER_SIDE
    made_by = [_command(f"{pair},1,{lm}", workdir)]
    c.optimizer.learning_rate = 1e-3
  if arm.endswith("_transfer"):   # bt_transfer, lm_transfer: the whole parent
    made_by.insert(0, _command(parent, f"runs/translation/{parent}"))
    if arm == "declm_transfer":
      c.init_from.extra = ((f"runs/translation/{parent}", ENCODER_SIDE, c.init_from.vocab),)
    else:
      c.init_from.path, c.init_from.subtrees = f"runs/translation/{parent}", ("seq2seq",)
      c.optimizer.learning_rate = 1e-3
    if arm == "bt_transfer":
      c.init_from.vocab = "auto"   # the <bt> tag is not in the parent's vocabulary
  c.init_from.made_by = " && ".join(dict.fromkeys(made_by))


def _fraction(c) -> float:
  """The share of the training pairs a configuration keeps (``data.subset_size``; 0 = all)."""
  return c.data.subset_size or 1.0


def get_config(arg=None):
  parts = (arg or "en-de").split(",")
  c = base_config("translation")
  c.seed = 0
  c.report_metric = "test_bleu"

  c.data.name = "multi30k"
  c.translation.pair = parts[0] if parts[0] not in ("copy", "smoke") else "en-de"
  fraction = float(parts[1]) if len(parts) > 1 else 1.0
  c.data.subset_size = 0.0 if fraction == 1.0 else fraction
  c.data.subset_seed = 0          # the same pairs for every seed and arm
  c.data.tokenizer = "sentencepiece"
  c.data.vocab_size = 8000
  c.seq2seq.vocab_sources = ("en", "fr", "de")
  if "cs" in c.translation.pair.split("-"):   # the vocabulary covers both languages of every pair
    c.seq2seq.vocab_sources += ("cs",)
  c.data.buckets = (12, 16, 20, 24, 32, 48, 80)   # fine: padding costs softmax work
  c.data.batch_size = 64
  c.data.eval_batch_size = 128

  c.model.cell = "lstm"
  c.model.embed_dim = 256
  c.model.hidden_size = 256
  c.model.num_layers = 1
  c.model.bidirectional = True
  c.seq2seq.decoder_hidden = 256
  c.seq2seq.attention = "luong"
  c.seq2seq.input_feeding = False   # ~30% faster here (the decoder runs as one fused scan)
  c.seq2seq.share_embeddings = True
  c.model.tie_embeddings = True
  c.model.embed_dropout = 0.3
  c.model.output_dropout = 0.3
  c.seq2seq.label_smoothing = 0.1

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.grad_clip = 1.0

  c.decode.beam_size = 5
  c.decode.alpha = 0.6
  c.decode.max_length = 80

  # About 2.9k tokens/s (source + target) here: an epoch of 29,000 pairs takes ~5.5 min.
  c.train.num_epochs = 6
  c.train.max_train_minutes = 40.0
  c.train.early_stopping_metric = "valid_perplexity"
  c.train.early_stopping_mode = "min"
  c.train.log_every = 50
  # Few pairs: more passes over them (as many steps as 2 full epochs at 10%).
  if fraction < 1.0:
    c.train.num_epochs = max(6, round(2 / fraction))
    c.train.patience = 5

  arm = parts[2] if len(parts) > 2 else "scratch"
  if arm not in ARMS:
    raise ValueError(f"Unknown arm {arm!r}; choose one of {ARMS}")
  c.name = f"multi30k_{c.translation.pair}_{fraction:g}_{arm}"
  if arm in ("transfer", "mixed", "adversarial"):
    parent = _parent(c.translation.pair)
    c.init_from.path = f"runs/translation/{parent}"
    c.init_from.subtrees = ("seq2seq",)
    c.init_from.made_by = (f"python launch.py experiments/translation/multi30k.py:{parent} "
                           f"--workdir runs/translation/{parent}")
    c.optimizer.learning_rate = 1e-3
    if "cs" in c.seq2seq.vocab_sources:   # the parent's en+fr+de vocabulary: move rows by string
      c.init_from.vocab = "auto"
  if arm == "mixed":
    c.translation.language_tags = True
    c.translation.mix_pair = _parent(c.translation.pair)
    c.translation.mix_repeat = max(1, round(1 / fraction))   # as many own pairs as parent pairs
    c.init_from.vocab = "auto"
    c.train.num_epochs = 2
    c.train.eval_every_epochs = 0.25
  c.init_from.extra = ()   # more checkpoints to restore from (xferlab.transfer.model_based)
  if arm not in ARMS[:4]:
    _monolingual_arm(c, arm, _parent(c.translation.pair))
  if arm == "adversarial":
    if c.translation.pair.startswith("en-"):
      raise ValueError("The adversarial arm needs an X-en child (its sources are not English): "
                       "e.g. de-en,0.1,adversarial")
    c.transfer.method = "dann"
    c.transfer.lam = 0.1
    c.transfer.schedule = "dann"
    c.seq2seq.adversarial_domain = _parent(c.translation.pair)

  if parts[0] == "copy":   # the synthetic copy task (target = source): seconds on a CPU
    c.name = "copy"
    c.data.name = "copy"
    c.data.tokenizer = "word"
    c.data.word_split = "whitespace"
    c.data.vocab_size = 0
    c.data.buckets = (12,)
    c.data.batch_size = 32
    c.data.eval_batch_size = 100
    c.model.embed_dim = c.model.hidden_size = c.seq2seq.decoder_hidden = 32
    c.model.embed_dropout = c.model.output_dropout = c.seq2seq.label_smoothing = 0.0
    c.optimizer.learning_rate = 1e-2
    c.train.num_epochs = 0
    c.train.num_steps = 300
    c.train.eval_every = 300
    c.train.max_train_minutes = 0.0
    c.decode.max_length = 12
    if c.translation.monolingual_target:   # copy,1,lm: a language model of the copy sentences
      c.translation.monolingual_target = "copy"
    c.train.patience = 0
  elif parts[0] == "smoke":
    c.name = "multi30k_smoke"
    c.train.num_epochs = 0
    c.train.num_steps = 10
    c.train.eval_every = 10
  return c

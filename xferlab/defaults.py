"""The base configuration every experiment starts from: the full set of valid keys.

One function per section (``data``, ``model``, ``transfer``, ...), joined by
``base_config(task)``: the sections every task shares, plus the task's own (``TASK_SECTIONS``:
``classification``, ``language_model``, ``seq2seq`` for both encoder-decoder tasks,
``translation``, ``summarization``). An experiment file calls ``base_config(task)`` and changes
what it needs; overrides (``--set a.b=value``) may only name keys that exist here or in the
experiment. Keys renamed since are in ``xferlab.config.OLD_KEYS``.
"""

from __future__ import annotations

import ml_collections


def _data_section() -> ml_collections.ConfigDict:
  """What is read, and how it is tokenized and batched: the keys every task shares. A task's
  own keys live in its section (``classification``, ``language_model``, ``seq2seq``,
  ``translation``, ``summarization``)."""
  s = ml_collections.ConfigDict()
  s.name = "synthetic"           # a domain-adaptation corpus (xferlab.data.domains)
  s.source = "books"
  s.target = "kitchen"
  s.manual_dir = ""              # corpora folder ('' -> $XFERLAB_DATA, then ../shared/data)
  s.tokenizer = "word"           # word | sentencepiece (unigram) | bpe
  s.vocab_size = 20000
  s.tokenizer_path = ""          # a saved tokenizer to use instead of training one ('' = train)
  s.buckets = (32, 64, 128, 256)  # padded lengths; longer texts are truncated to the last
  s.batch_size = 32              # labeled source rows per step (and as many target rows)
  s.eval_batch_size = 128
  s.subset_size = 0.0            # the labeled training examples kept (reviews; the pairs of an
                                 # encoder-decoder task): 0 = all, a share in (0, 1), or a
                                 # count (an integer >= 1; 1 is one example, not all).
                                 # Classification keeps a class-balanced subset
  s.subset_seed = -1             # which ones; -1 = the run's seed (a new subset per seed). The
                                 # translation and summarization experiments fix it to 0: the
                                 # same pairs for every seed and arm
  s.in_domain = False            # amazon, amazon_hatn, movie: train (and validate) on labeled
                                 # reviews of the target domain that are not in its test set
                                 # (the in-domain upper bound; xferlab.data.domains)
  s.pseudo_labels = ""           # classification: a teacher's labels for target_unlabeled rows,
                                 # added to the source rows ('' = none; a bare file
                                 # name: the run's own; xferlab.transfer.self_training)
  s.word_split = "words"         # word tokenizer: words (lowercase, split punctuation) | whitespace
  s.shuffle_seed = -1            # data order; -1 = follow `seed`. Fix it to vmap seeds in a sweep
  s.synthetic = ml_collections.ConfigDict()  # SyntheticSpec fields, for data.name == "synthetic"
  return s


def _model_section() -> ml_collections.ConfigDict:
  """The network: the recurrent encoder every task shares, and what more than one task reads.
  A head or decoder of one task family is configured in that task's section."""
  s = ml_collections.ConfigDict()
  s.cell = "lstm"                # rnn | lstm | gru
  s.embed_dim = 128
  s.hidden_size = 256
  s.num_layers = 1
  s.bidirectional = False
  s.dropout = 0.0                # between RNN layers and in the head
  s.embed_dropout = 0.0
  s.weight_dropout = 0.0         # DropConnect on the recurrent kernels (AWD-LSTM)
  s.variational_dropout = False  # one dropout mask per sequence, shared over time
  s.output_dropout = 0.0         # language model, encoder-decoder: on the last layer's outputs
  s.tie_embeddings = True        # language model, encoder-decoder: softmax weights = the
                                 # (target) input embedding
  s.unroll = 1                   # lax.scan unroll factor
  s.scan_implementation = "auto"  # auto (= native for float32 LSTMs on a CPU where the
                                 # loops built, else fused; fused beat cudnn on an H200) |
                                 # fused (hand-written backward) | autodiff | cudnn | native
  s.pretrained_vectors = ""      # word vectors (GloVe / word2vec text, .gz allowed) for the
                                 # embedding; '' = none (xferlab.transfer.feature_based). To keep
                                 # them fixed: finetune.frozen = ("embedding",)
  return s


def _classification_section() -> ml_collections.ConfigDict:
  """Classification (``xferlab.tasks.classification``): the head on the pooled encoder."""
  s = ml_collections.ConfigDict()
  s.num_classes = 2
  s.pooling = ("last", "mean", "max")
  s.head_hidden = ()
  s.adversarial_epsilon = 0.0    # adversarial training on the embeddings (Miyato et al. 2017),
                                 # ε in units of the embedding's std; 0 = off
  return s


def _language_model_section() -> ml_collections.ConfigDict:
  """Language modelling (``xferlab.tasks.language_model``)."""
  s = ml_collections.ConfigDict()
  s.bptt = 35                    # steps of truncated backprop through time
  s.adaptive_softmax_cutoffs = ()  # adaptive softmax (Grave et al. 2017) over word ids in
                                 # frequency order, e.g. (2000, 10000): a head over ids < 2000
                                 # + one logit per tail cluster; () = full softmax
  s.adaptive_softmax_div = 4.0   # tail cluster i works in dimension d / div ** (i + 1)
  s.state_reset_every = 0        # zero a row's carried state every this many batches (rows
                                 # staggered), so the model learns to read from the zero state
                                 # that a classifier starts each text from; 0 = never
  return s


def _seq2seq_section() -> ml_collections.ConfigDict:
  """What both encoder-decoder tasks (translation, summarization) read
  (``xferlab.tasks.encoder_decoder``): the decoder, and the data beside the pairs."""
  s = ml_collections.ConfigDict()
  s.decoder_hidden = 0           # decoder width (0 = encoder output width)
  s.attention = "luong"          # luong (multiplicative) | bahdanau (additive)
  s.input_feeding = True         # feed the last attentional state to the decoder
  s.share_embeddings = True      # one embedding for source and target
  s.label_smoothing = 0.0        # of the training cross-entropy
  s.copy = False                 # pointer-generator copy distribution
  s.coverage = False             # coverage in the attention + coverage loss
  s.coverage_loss_weight = 1.0   # its weight in the loss (See et al. 2017: 1)
  s.target_buckets = ()          # padded target lengths of their own (() = a pair's source
                                 # bucket); for targets much shorter than sources
  s.vocab_sources = ()           # what the vocabulary is trained on: translation: languages
                                 # (() = en, fr, de) plus every language the run reads;
                                 # summarization: corpora (() = data.name), e.g. ("bbc", "scitldr")
  s.adversarial_domain = ""      # with a transfer term: the other domain, whose source texts the
                                 # encoder aligns with: a pair (translation, e.g. fr-en for a
                                 # de-en child: its source sentences) or a corpus (summarization)
  return s


def _translation_section() -> ml_collections.ConfigDict:
  """Translation (``xferlab.tasks.translation``)."""
  s = ml_collections.ConfigDict()
  s.pair = "en-de"               # multi30k: en-de | en-fr | en-cs, or reversed
  s.language_tags = False        # start every source with its target language's tag (<2de>),
                                 # a piece of its own in the joint vocabulary
  s.mix_pair = ""                # also train on this pair's full training set (mixed
                                 # fine-tuning; needs language_tags), e.g. en-fr
  s.mix_repeat = 1               # with mix_pair: the own pairs, repeated this often
  s.synthetic_pairs = ""         # a back-translated corpus to train on beside the real pairs (a
                                 # synthetic.jsonl, or the folder holding it, made by
                                 # python -m xferlab.studies.back_translate); '' = none
  s.synthetic_limit = 0          # use the first N synthetic pairs (0 = all)
  s.synthetic_tag = False        # start every synthetic source with the <bt> tag, a piece of its
                                 # own in the vocabulary (tagged back-translation)
  s.real_repeat = 1              # the real training pairs, repeated this often (up-sampled
                                 # against the synthetic ones)
  s.monolingual_target = ""      # train a decoder language model instead: every training pair
                                 # is (empty source, a text of this corpus), e.g.
                                 # multi30k_task2/de (its train split); evaluation unchanged
  return s


def _summarization_section() -> ml_collections.ConfigDict:
  """Summarization (``xferlab.tasks.summarization``)."""
  s = ml_collections.ConfigDict()
  s.target_field = "summary"     # bbc: summary | title
  s.max_target_length = 0        # cut training targets to this many words (0 = all)
  return s


def _transfer_section() -> ml_collections.ConfigDict:
  """Relation-based transfer: ``L_source + λ·L_transfer``
  (``xferlab.transfer.relation_based``)."""
  s = ml_collections.ConfigDict()
  s.method = "none"              # none | dann | coral | mmd
  s.lam = 0.1                    # λ in L_source + λ·L_transfer (the plateau of a schedule)
  s.schedule = "constant"        # constant | dann
  s.lam_min = 0.0                # λ at the start of the dann schedule
  s.gamma = 10.0                 # steepness of the dann schedule
  s.discriminator_hidden = (100,)
  s.discriminator_dropout = 0.0
  s.target_entropy = 0.0         # β of the target information-maximization term added to the
                                 # loss (xferlab.transfer.relation_based); 0 = off. Classification only
  return s


def _optimizer_section() -> ml_collections.ConfigDict:
  """The plain optimizer (``xferlab.optim``)."""
  s = ml_collections.ConfigDict()
  s.name = "adam"                # adam | adamw | sgd
  s.learning_rate = 1e-3
  s.weight_decay = 0.0
  s.momentum = 0.9               # sgd only
  s.grad_clip = 1.0              # global-norm clipping; 0 disables
  s.schedule = "constant"        # constant | cosine | warmup_cosine | slanted_triangular
  s.warmup_steps = 0
  s.cut_frac = 0.1               # slanted_triangular: fraction of steps spent rising to the peak
  s.stlr_ratio = 32.0            # slanted_triangular: peak rate / lowest rate
  return s


def _finetune_section() -> ml_collections.ConfigDict:
  """Fine-tuning controls (``xferlab.transfer.model_based``). Layer groups, bottom to top:
  the embedding, each RNN layer, then everything else (head, transfer module)."""
  s = ml_collections.ConfigDict()
  s.frozen = ()                  # parameter path prefixes never updated, e.g.
                                 # ("classifier/encoder",) or ("classifier.encoder.embed",); the
                                 # entry "embedding" stands for every encoder embedding of the
                                 # model (pretrained vectors kept fixed; FROZEN_EMBEDDING)
  s.discriminative_factor = 0.0  # group k below the top trains at lr / factor**k
                                 # (ULMFiT: 2.6); 0 or 1 = off
  s.unfreeze_every = 0           # gradual unfreezing: steps per stage (stage s trains the top s
                                 # groups); 0 = off
  return s


def _train_section() -> ml_collections.ConfigDict:
  """The loop (``xferlab.train``): budget, evaluation, selection, checkpoints, devices."""
  s = ml_collections.ConfigDict()
  s.num_steps = 0                # 0 -> num_epochs * batches per source epoch
  s.num_epochs = 5
  s.log_every = 50
  s.eval_every = 0               # steps between evaluations; 0 -> every eval_every_epochs epochs
  s.eval_every_epochs = 1.0      # with eval_every 0: epochs between evaluations (a small
                                 # training set can keep the step grid of a large one)
  s.checkpoint_every = 0         # 0 -> at every evaluation
  s.keep_checkpoints = 2
  s.early_stopping_metric = "source_val_accuracy"  # chosen on source validation only;
                                 # '' keeps the last evaluation (a fixed training budget)
  s.early_stopping_mode = "max"
  s.patience = 0                 # evaluations without improvement before stopping; 0 = never stop
  s.progress_bar = True
  s.max_train_minutes = 0.0      # stop (evaluate, checkpoint) once this much training time is
                                 # spent; 0 = no limit. The schedule still spans num_epochs.
  s.devices = 0                  # data parallelism over this many local devices; 0 = all of them
  s.ema_decay = 0.0              # > 0: evaluate, select and keep an exponential moving average
                                 # of the weights (Polyak averaging), decay min(d, (1+t)/(10+t))
  s.final_eval_sets = ()         # evaluation sets scored once, on the selected model after
                                 # training (e.g. ("target",): 25,000 IMDb test reviews); () =
                                 # every set at every evaluation
  s.precision = "float32"        # float32 | bfloat16 (mixed: bf16 compute, f32 parameters)
  return s


def _decode_section() -> ml_collections.ConfigDict:
  """Encoder-decoder generation (``xferlab.decode``)."""
  s = ml_collections.ConfigDict()
  s.beam_size = 5                # 1 = greedy
  s.alpha = 0.6                  # length penalty ((5 + |y|) / 6) ** alpha; 0 = none
  s.max_length = 80              # output tokens at most
  return s


def _init_from_section() -> ml_collections.ConfigDict:
  """Model-based transfer: parameters restored from another run's checkpoint."""
  s = ml_collections.ConfigDict()
  s.path = ""                    # a checkpoint directory (a run's workdir, or its checkpoints/<step>)
  s.subtrees = ("encoder",)      # parameter subtrees taken from it; "new=old" renames
                                 # (an LM into a classifier: "classifier.encoder=encoder")
  s.vocab = ""                   # the checkpoint's vocabulary, when it differs from this run's:
                                 # '' = the same vocabulary; 'auto' = the tokenizer/ folder of the
                                 # checkpoint's workdir; else a tokenizer directory. Embedding rows
                                 # move by token string; tokens it lacks get the mean row.
  s.made_by = ""                 # the command that trains init_from.path: named in the error
                                 # when that path (or data.tokenizer_path) does not exist
  s.extra = ()                   # more checkpoints to restore after path, each (path, subtrees)
                                 # or (path, subtrees, vocab); a later one wins on overlap
  return s


def _privacy_section() -> ml_collections.ConfigDict:
  """Differentially private training (DP-SGD, ``xferlab.privacy``): each example's gradient
  clipped to ``clip_norm``, Gaussian noise of std ``noise_multiplier · clip_norm`` added to
  their sum; the accountant reports ε at ``delta``. Classification only."""
  s = ml_collections.ConfigDict()
  s.clip_norm = 0.0              # C: per-example gradient L2 bound; 0 = DP-SGD off
  s.noise_multiplier = 0.0       # σ: noise std / C (with target_epsilon 0)
  s.target_epsilon = 0.0         # > 0: solve σ so that the whole run (all its steps) spends
                                 # this ε at delta; 0 = take noise_multiplier as given
  s.delta = 1e-5                 # δ of the reported (ε, δ); keep it below 1 / training examples
  s.accountant = "rdp"           # rdp (Rényi DP) | pld (privacy loss distributions, tighter)
  return s


FROZEN_EMBEDDING = "embedding"   # finetune.frozen entry: every encoder embedding

# The sections of each task beside the shared ones: a run's configuration holds its own and
# no other (``--set translation.pair=de-en`` on a sentiment run names an unknown section).
TASK_SECTIONS = {
    "classification": ("classification",),
    "language_model": ("language_model",),
    "translation": ("seq2seq", "translation"),
    "summarization": ("seq2seq", "summarization"),
}
SECTION_BUILDERS = {
    "classification": _classification_section,
    "language_model": _language_model_section,
    "seq2seq": _seq2seq_section,
    "translation": _translation_section,
    "summarization": _summarization_section,
}


def task_sections(task: str) -> tuple[str, ...]:
  """The sections of ``task`` beside the shared ones; ValueError for an unknown task."""
  if task not in TASK_SECTIONS:
    raise ValueError(f"Unknown task {task!r}; choose one of {', '.join(TASK_SECTIONS)}")
  return TASK_SECTIONS[task]


def base_config(task: str = "classification") -> ml_collections.ConfigDict:
  """Every valid key of a ``task`` run with its default: the shared sections, then the
  task's own (``TASK_SECTIONS``), each section from its own function above."""
  c = ml_collections.ConfigDict()
  c.name = "experiment"
  c.task = task
  c.seed = 0                     # model init, dropout and data order
  c.seeds = ()                   # several seeds: run each and report mean ± std
  c.arms = ml_collections.ConfigDict()   # arm name -> nested overrides, e.g. {"transfer": {"lam": 0.0}}
  c.report_metric = "target_accuracy"    # the headline metric (sweep plots, tables)
  c.data = _data_section()
  c.model = _model_section()
  c.transfer = _transfer_section()
  c.optimizer = _optimizer_section()
  c.finetune = _finetune_section()
  c.train = _train_section()
  c.decode = _decode_section()
  c.init_from = _init_from_section()
  c.privacy = _privacy_section()
  for section in task_sections(task):
    c[section] = SECTION_BUILDERS[section]()
  return c

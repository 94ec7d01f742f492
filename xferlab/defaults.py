"""The base configuration every experiment starts from: the full set of valid keys.

One function per section (``data``, ``model``, ``transfer``, ...), joined by
``base_config``. An experiment file calls ``base_config()`` and changes what it needs; overrides
(``--set a.b=value``) may only name keys that exist here or in the experiment.
"""

from __future__ import annotations

import ml_collections


def _data_section() -> ml_collections.ConfigDict:
  """What is read, and how it is tokenized and batched. Keys marked with a task serve that
  task only."""
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
  s.num_labels = 0               # amazon: keep this many labeled training reviews (0 = all)
  s.label_seed = -1              # which ones (class-balanced); -1 = the run's seed
  s.in_domain = False            # amazon, amazon_hatn, movie: train (and validate) on labeled
                                 # reviews of the target domain that are not in its test set
                                 # (the in-domain upper bound; xferlab.data.domains)
  s.word_split = "words"         # word tokenizer: words (lowercase, split punctuation) | whitespace
  s.bptt = 35                    # language model: steps of truncated backprop through time
  s.shuffle_seed = -1            # data order; -1 = follow `seed`. Fix it to vmap seeds in a sweep
  s.pair = "en-de"               # translation (multi30k): en-de | en-fr | en-cs, or reversed
  s.fraction = 1.0               # translation, summarization: share of the training pairs kept
  s.subset_seed = 0              # which pairs (the same for every seed and arm)
  s.vocab_languages = ("en", "fr", "de")  # translation: the joint vocabulary's languages
  s.adversarial_pair = ""        # translation with a transfer term: the pair whose source
                                 # sentences are the other domain (e.g. fr-en for a de-en child)
  s.language_tags = False        # translation: start every source with its target language's
                                 # tag (<2de>), a piece of its own in the joint vocabulary
  s.mix_pair = ""                # translation: also train on this pair's full training set
                                 # (mixed fine-tuning; needs language_tags), e.g. en-fr
  s.mix_repeat = 1               # translation with mix_pair: the own pairs, repeated this often
  s.synthetic_pairs = ""         # translation: a back-translated corpus to train on beside the
                                 # real pairs (a synthetic.jsonl, or the folder holding it, made
                                 # by python -m xferlab.studies.back_translate); '' = none
  s.synthetic_limit = 0          # translation: use the first N synthetic pairs (0 = all)
  s.synthetic_tag = False        # translation: start every synthetic source with the <bt> tag,
                                 # a piece of its own in the vocabulary (tagged back-translation)
  s.real_repeat = 1              # translation: the real training pairs, repeated this often
                                 # (up-sampled against the synthetic ones)
  s.monolingual_target = ""      # translation: train a decoder language model instead: every
                                 # training pair is (empty source, a text of this corpus), e.g.
                                 # multi30k_task2/de (its train split); evaluation unchanged
  s.target_buckets = ()          # encoder-decoder: padded target lengths of their own
                                 # (() = a pair's source bucket); for targets much shorter than sources
  s.target_field = "summary"     # summarization (bbc): summary | title
  s.max_target_length = 0        # summarization: cut training targets to this many words (0 = all)
  s.vocab_corpora = ()           # summarization: corpora whose training text makes the vocabulary
                                 # (() = data.name only); ("bbc", "scitldr") lets news fit science
  s.adversarial_corpus = ""      # summarization with a transfer term: the other domain's corpus
  s.synthetic = ml_collections.ConfigDict()  # SyntheticSpec fields, for data.name == "synthetic"
  return s


def _model_section() -> ml_collections.ConfigDict:
  """The network: the recurrent encoder shared by every task, and each task's head or decoder."""
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
  s.output_dropout = 0.0         # language model: on the last layer's outputs
  s.tie_embeddings = True        # language model: softmax weights = input embedding
  s.adaptive_softmax_cutoffs = ()  # language model: adaptive softmax (Grave et al. 2017)
                                 # over word ids in frequency order, e.g. (2000, 10000): a head
                                 # over ids < 2000 + one logit per tail cluster; () = full softmax
  s.adaptive_softmax_div = 4.0   # tail cluster i works in dimension d / div ** (i + 1)
  s.pooling = ("last", "mean", "max")
  s.head_hidden = ()
  s.unroll = 1                   # lax.scan unroll factor
  s.scan_implementation = "auto"  # auto (= fused; faster than cudnn on an H200) | fused
                                 # (hand-written backward) | autodiff | cudnn
  s.num_classes = 2
  s.decoder_hidden = 0           # encoder-decoder: decoder width (0 = encoder output width)
  s.attention = "luong"          # encoder-decoder: luong (multiplicative) | bahdanau (additive)
  s.input_feeding = True         # encoder-decoder: feed the last attentional state to the decoder
  s.share_embeddings = True      # encoder-decoder: one embedding for source and target
  s.label_smoothing = 0.0        # encoder-decoder: of the training cross-entropy
  s.copy = False                 # encoder-decoder: pointer-generator copy distribution
  s.coverage = False             # encoder-decoder: coverage in the attention + coverage loss
  s.coverage_loss_weight = 1.0   # its weight in the loss (See et al. 2017: 1)
  s.pretrained_vectors = ""      # word vectors (GloVe / word2vec text, .gz allowed) for the
                                 # embedding; '' = none (xferlab.transfer.feature_based)
  s.freeze_embeddings = False    # never update the embedding (adds it to finetune.frozen)
  s.adversarial_epsilon = 0.0    # classification: adversarial training on the embeddings
                                 # (Miyato et al. 2017), ε in units of the embedding's std;
                                 # 0 = off (xferlab.tasks.classification)
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
  s.frozen = ()                  # parameter path prefixes never updated,
                                 # e.g. ("classifier/encoder",) or ("classifier.encoder.embed",)
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


def base_config() -> ml_collections.ConfigDict:
  """Every valid key with its default: the shared ones here, each section from its own
  function below."""
  c = ml_collections.ConfigDict()
  c.name = "experiment"
  c.task = "classification"
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
  return c

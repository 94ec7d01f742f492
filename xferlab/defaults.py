"""The base configuration every experiment starts from: the full set of valid keys.

An experiment file calls ``base_config()`` and changes what it needs; overrides
(``--set a.b=value``) may only name keys that exist here or in the experiment.
"""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "experiment"
  c.task = "classification"
  c.seed = 0                     # model init, dropout and data order
  c.seeds = ()                   # several seeds: run each and report mean ± std
  c.arms = ml_collections.ConfigDict()   # arm name -> nested overrides, e.g. {"transfer": {"lam": 0.0}}
  c.report_metric = "target_accuracy"    # the headline metric (sweep plots, tables)

  c.data = ml_collections.ConfigDict()
  c.data.name = "synthetic"      # a domain-adaptation corpus (xferlab.data.domains)
  c.data.source = "books"
  c.data.target = "kitchen"
  c.data.manual_dir = ""         # corpora folder ('' -> $XFERLAB_DATA, then ../shared/data)
  c.data.tokenizer = "word"      # word | sentencepiece (unigram) | bpe
  c.data.vocab_size = 20000
  c.data.tokenizer_path = ""     # a saved tokenizer to use instead of training one ('' = train)
  c.data.buckets = (32, 64, 128, 256)   # padded lengths; longer texts are truncated to the last
  c.data.batch_size = 32         # labeled source rows per step (and as many target rows)
  c.data.eval_batch_size = 128
  c.data.num_labels = 0          # amazon: keep this many labeled training reviews (0 = all)
  c.data.label_seed = -1         # which ones (class-balanced); -1 = the run's seed
  c.data.in_domain = False       # amazon, amazon_hatn, movie: train (and validate) on labeled
                                 # reviews of the target domain that are not in its test set
                                 # (the in-domain upper bound; xferlab.data.domains)
  c.data.word_split = "words"    # word tokenizer: words (lowercase, split punctuation) | whitespace
  c.data.bptt = 35               # language model: steps of truncated backprop through time
  c.data.shuffle_seed = -1       # data order; -1 = follow `seed`. Fix it to vmap seeds in a sweep
  c.data.pair = "en-de"           # translation (multi30k): en-de | en-fr | en-cs, or reversed
  c.data.fraction = 1.0          # translation, summarization: share of the training pairs kept
  c.data.subset_seed = 0         # which pairs (the same for every seed and arm)
  c.data.vocab_languages = ("en", "fr", "de")   # translation: the joint vocabulary's languages
  c.data.adversarial_pair = ""   # translation with a transfer term: the pair whose source
                                 # sentences are the other domain (e.g. fr-en for a de-en child)
  c.data.language_tags = False  # translation: start every source with its target language's
                                 # tag (<2de>), a piece of its own in the joint vocabulary
  c.data.mix_pair = ""           # translation: also train on this pair's full training set
                                 # (mixed fine-tuning; needs language_tags), e.g. en-fr
  c.data.mix_repeat = 1          # translation with mix_pair: the own pairs, repeated this often
  c.data.target_buckets = ()     # encoder-decoder: padded target lengths of their own
                                 # (() = a pair's source bucket); for targets much shorter than sources
  c.data.target_field = "summary"  # summarization (bbc): summary | title
  c.data.max_target_length = 0   # summarization: cut training targets to this many words (0 = all)
  c.data.vocab_corpora = ()      # summarization: corpora whose training text makes the vocabulary
                                 # (() = data.name only); ("bbc", "scitldr") lets news fit science
  c.data.adversarial_corpus = "" # summarization with a transfer term: the other domain's corpus
  c.data.synthetic = ml_collections.ConfigDict()   # SyntheticSpec fields, for data.name == "synthetic"

  c.model = ml_collections.ConfigDict()
  c.model.cell = "lstm"          # rnn | lstm | gru
  c.model.embed_dim = 128
  c.model.hidden_size = 256
  c.model.num_layers = 1
  c.model.bidirectional = False
  c.model.dropout = 0.0          # between RNN layers and in the head
  c.model.embed_dropout = 0.0
  c.model.weight_dropout = 0.0   # DropConnect on the recurrent kernels (AWD-LSTM)
  c.model.variational_dropout = False  # one dropout mask per sequence, shared over time
  c.model.output_dropout = 0.0   # language model: on the last layer's outputs
  c.model.tie_embeddings = True  # language model: softmax weights = input embedding
  c.model.pooling = ("last", "mean", "max")
  c.model.head_hidden = ()
  c.model.unroll = 1             # lax.scan unroll factor
  c.model.scan_implementation = "auto"  # auto (= fused; faster than cudnn on an H200) | fused
                                 # (hand-written backward) | autodiff | cudnn
  c.model.num_classes = 2
  c.model.decoder_hidden = 0     # encoder-decoder: decoder width (0 = encoder output width)
  c.model.attention = "luong"    # encoder-decoder: luong (multiplicative) | bahdanau (additive)
  c.model.input_feeding = True   # encoder-decoder: feed the last attentional state to the decoder
  c.model.share_embeddings = True  # encoder-decoder: one embedding for source and target
  c.model.label_smoothing = 0.0  # encoder-decoder: of the training cross-entropy
  c.model.copy = False           # encoder-decoder: pointer-generator copy distribution
  c.model.coverage = False       # encoder-decoder: coverage in the attention + coverage loss
  c.model.coverage_loss_weight = 1.0   # its weight in the loss (See et al. 2017: 1)
  c.model.pretrained_vectors = ""  # word vectors (GloVe / word2vec text, .gz allowed) for the
                                 # embedding; '' = none (xferlab.transfer.feature_based)
  c.model.freeze_embeddings = False  # never update the embedding (adds it to finetune.frozen)

  c.transfer = ml_collections.ConfigDict()
  c.transfer.method = "none"     # none | dann | coral | mmd
  c.transfer.lam = 0.1           # λ in L_source + λ·L_transfer (the plateau of a schedule)
  c.transfer.schedule = "constant"   # constant | dann
  c.transfer.lam_min = 0.0       # λ at the start of the dann schedule
  c.transfer.gamma = 10.0        # steepness of the dann schedule
  c.transfer.discriminator_hidden = (100,)
  c.transfer.discriminator_dropout = 0.0
  c.transfer.target_entropy = 0.0  # β of the target information-maximization term added to the
                                 # loss (xferlab.transfer.relation_based); 0 = off. Classification only

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"      # adam | adamw | sgd
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.momentum = 0.9     # sgd only
  c.optimizer.grad_clip = 1.0    # global-norm clipping; 0 disables
  c.optimizer.schedule = "constant"  # constant | cosine | warmup_cosine | slanted_triangular
  c.optimizer.warmup_steps = 0
  c.optimizer.cut_frac = 0.1     # slanted_triangular: fraction of steps spent rising to the peak
  c.optimizer.stlr_ratio = 32.0  # slanted_triangular: peak rate / lowest rate

  # Fine-tuning controls (xferlab.transfer.model_based). Layer groups, bottom to top: the
  # embedding, each RNN layer, then everything else (head, transfer module).
  c.finetune = ml_collections.ConfigDict()
  c.finetune.frozen = ()         # parameter path prefixes never updated,
                                 # e.g. ("classifier/encoder",) or ("classifier.encoder.embed",)
  c.finetune.discriminative_factor = 0.0   # group k below the top trains at lr / factor**k
                                 # (ULMFiT: 2.6); 0 or 1 = off
  c.finetune.unfreeze_every = 0  # gradual unfreezing: steps per stage (stage s trains the top s
                                 # groups); 0 = off

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 0          # 0 -> num_epochs * batches per source epoch
  c.train.num_epochs = 5
  c.train.log_every = 50
  c.train.eval_every = 0         # steps between evaluations; 0 -> every eval_every_epochs epochs
  c.train.eval_every_epochs = 1.0  # with eval_every 0: epochs between evaluations (a small
                                 # training set can keep the step grid of a large one)
  c.train.checkpoint_every = 0   # 0 -> at every evaluation
  c.train.keep_checkpoints = 2
  c.train.early_stopping_metric = "source_val_accuracy"   # chosen on source validation only;
                                 # '' keeps the last evaluation (a fixed training budget)
  c.train.early_stopping_mode = "max"
  c.train.patience = 0           # evaluations without improvement before stopping; 0 = never stop
  c.train.progress_bar = True
  c.train.max_train_minutes = 0.0  # stop (evaluate, checkpoint) once this much training time is
                                 # spent; 0 = no limit. The schedule still spans num_epochs.
  c.train.devices = 0            # data parallelism over this many local devices; 0 = all of them
  c.train.ema_decay = 0.0         # > 0: evaluate, select and keep an exponential moving average
                                 # of the weights (Polyak averaging), decay min(d, (1+t)/(10+t))
  c.train.precision = "float32"  # float32 | bfloat16 (mixed: bf16 compute, f32 parameters)

  c.decode = ml_collections.ConfigDict()   # encoder-decoder generation (xferlab.decode)
  c.decode.beam_size = 5         # 1 = greedy
  c.decode.alpha = 0.6           # length penalty ((5 + |y|) / 6) ** alpha; 0 = none
  c.decode.max_length = 80       # output tokens at most

  c.init_from = ml_collections.ConfigDict()
  c.init_from.path = ""          # a checkpoint directory (a run's workdir, or its checkpoints/<step>)
  c.init_from.subtrees = ("encoder",)   # parameter subtrees taken from it; "new=old" renames
                                 # (an LM into a classifier: "classifier.encoder=encoder")
  c.init_from.vocab = ""         # the checkpoint's vocabulary, when it differs from this run's:
                                 # '' = the same vocabulary; 'auto' = the tokenizer/ folder of the
                                 # checkpoint's workdir; else a tokenizer directory. Embedding rows
                                 # move by token string; tokens it lacks get the mean row.
  c.init_from.made_by = ""       # the command that trains init_from.path: named in the error
                                 # when that path (or data.tokenizer_path) does not exist
  return c

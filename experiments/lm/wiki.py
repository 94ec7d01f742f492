r"""ULMFiT's first stage: a general-domain word-level language model on Wikipedia (``wiki_en``).

  python launch.py experiments/lm/wiki.py --workdir runs/wiki

22 M words of 2015 English Wikipedia (``wiki_en``, split by article; about 30 M
tokens once punctuation is split off, every paragraph ends in ``</s>``), a
32k-word vocabulary (lowercased words and punctuation, ``data.word_split =
"words"``; the rest is ``<unk>``) and a 2-layer LSTM with tied embeddings. The
softmax over 32k words would be most of the cost per token, so the output layer
is an adaptive softmax (Grave et al. 2017): a head over the 2,000 most frequent
words (tied to their embedding rows) plus one logit per tail cluster, and tail
clusters [2000, 10000) and [10000, 32000) in 100 and 25 dimensions. One epoch
(cosine schedule to 0) is the run; the model with the best validation
perplexity is kept, ``results.json`` has ``valid_perplexity`` and
``test_perplexity``. A checkpoint every 250 steps (about 5 minutes): a killed
run resumes at the next batch of the epoch and loses little. The tokenized
stream is cached under the data dir, so a resume does not tokenize again.

``train.max_train_minutes`` stops early (``--set train.max_train_minutes=120``);
the schedule still spans the epoch.

Arguments (``experiments/lm/wiki.py:ARG``):
  (none)  the full run;
  smoke   a few steps (tests, timing).

Measured (2026-12-05, the shared 2-core CPU, other jobs running): preparing the
data takes 31 s the first time (reading 3.6 s, training the 32k word tokenizer on
22 M words 9 s, tokenizing 27 M train tokens ~15 s), seconds once the stream is
cached; 6,035 steps of 64 x 70 tokens per epoch; the train step runs at
3.4k-5.5k tokens/s on 2 cores (2.5k on one core), so the epoch takes 1.5-2.5 hours
plus ~4 evaluations of valid + test (1.3 M tokens, ~6k tokens/s per core). The
same step with the full 32k softmax is 4.1x slower (808 vs 3,286 ms, one process).

Vocabulary pilot (same day, one core, ``taskset -c 1``; this configuration with
constant learning rate 3e-3, 4 minutes of training each, validation perplexity
on the first 100k tokens of the validation split):

  vocab  cutoffs               params  steps  tokens/s  valid ppl  valid <unk>
  16k    (2000, 8000)           9.8 M    173     3.0k      257.3        6.8%
  32k    (2000, 10000)         16.8 M    145     2.5k      395.7        3.9%
  64k    (2000, 10000, 30000)  29.8 M    169     2.9k      467.8        2.2%

Perplexities at different vocabularies are not comparable (the smaller the
vocabulary, the more words collapse into one easy ``<unk>``), and 4 minutes is
early training; training speed is about the same for all three (the LSTM
dominates; the spread is the shared machine's noise), evaluation is 1.7x slower
at 64k. 32k is kept: 16k loses 6.8% of the words (too many review words for stage
2), 64k nearly doubles the parameters for 1.7 points of coverage.
"""

from xferlab.defaults import base_config


def get_config(arg=None):
  c = base_config("language_model")
  c.name = "wiki_lm"
  c.task = "language_model"
  c.seed = 0
  c.report_metric = "test_perplexity"

  c.data.name = "wiki"
  c.data.tokenizer = "word"
  c.data.word_split = "words"        # lowercase, punctuation split off (as the review LMs read)
  c.data.vocab_size = 32000
  c.data.batch_size = 64
  c.language_model.bptt = 70
  c.data.eval_batch_size = 16

  c.model.cell = "lstm"
  c.model.embed_dim = 400
  c.model.hidden_size = 400
  c.model.num_layers = 2
  c.model.tie_embeddings = True
  c.language_model.adaptive_softmax_cutoffs = (2000, 10000)
  c.language_model.adaptive_softmax_div = 4.0
  # 30 M tokens for 16 M parameters: little regularization is needed.
  c.model.variational_dropout = True
  c.model.embed_dropout = 0.05
  c.model.dropout = 0.1
  c.model.output_dropout = 0.1
  c.model.weight_dropout = 0.0

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 3e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.grad_clip = 0.25

  c.train.num_epochs = 1
  c.train.eval_every_epochs = 0.25
  c.train.checkpoint_every = 250
  c.train.keep_checkpoints = 2
  c.train.max_train_minutes = 0.0
  c.train.early_stopping_metric = "valid_perplexity"
  c.train.early_stopping_mode = "min"
  c.train.log_every = 50

  if arg == "smoke":
    c.data.batch_size = 8
    c.train.num_epochs = 0
    c.train.num_steps = 10
    c.train.eval_every = 10
  elif arg:
    raise ValueError(f"Unknown argument {arg!r}; use '' or 'smoke'")
  return c

r"""News => science summarization: a pointer-generator pretrained on BBC news, fine-tuned on SciTLDR.

  python launch.py experiments/summarization/news_to_science.py:bbc --workdir runs/summarization/bbc
  python launch.py experiments/summarization/news_to_science.py:news --workdir runs/summarization/news
  python launch.py experiments/summarization/news_to_science.py:scratch --workdir runs/summarization/scratch
  python -m benchmarks.summarization --seeds 2          # every arm, Lead-1 and oracle beside

Arguments -- pretraining on news (BBC News Summary, 1,693 training articles):
  bbc              article -> its extractive summary (cut to 60 words);
  bbc_title        article -> its headline;
  bbc_adversarial  article -> summary, plus ``L_source + λ·L_transfer`` on the mean encoder
                   states: a domain discriminator behind gradient reversal between news
                   articles and (unlabeled) SciTLDR training abstracts;
and on science (SciTLDR-A, 1,992 training abstracts; test references: 2-4 per paper):
  scratch          random initialization;
  news             the whole ``bbc`` model (``init_from``: runs/summarization/bbc), fine-tuned;
  news_title       the same from ``bbc_title``;
  news_adversarial the same from ``bbc_adversarial``;
plus ``copy`` (a synthetic task for tests: copy the first three words, one of them out of
vocabulary) and ``smoke``.

Every run shares one word vocabulary (10,000 words of the BBC and SciTLDR training text),
so the whole network transfers. Model: embedding 128, bidirectional LSTM encoder 2x128,
LSTM decoder 256 with additive (Bahdanau) attention and the copy mechanism (See et al. 2017;
coverage is off by default, ``--set seq2seq.coverage=True`` adds it with its loss), dropout
0.3; Adam 2e-3, batch 32; every run trains until its validation perplexity stops improving
(at most 12 epochs; patience 4 epochs on SciTLDR, 2 for the BBC summary parents, the title
parent 4 epochs); the model with the best validation perplexity is kept and decodes with beam search (beam 4). ``results.json``
has ``test_rouge1_max`` (ROUGE F1, best reference), ``*_mean`` (mean over references)
for ROUGE-1/2/L. Not tried: the language-model-initialized encoder. Our LMs are
unidirectional and of other widths (PTB 300-d words; reviews an 8k sentencepiece
vocabulary) where this encoder is a 2x128 bidirectional LSTM over BBC+SciTLDR words: it
would need an LM of this shape trained on news and science text.

Measured (docs/summarization.md; 2 seeds, every run at its validation optimum): test ROUGE-1 (max)
37.6 for ``news_adversarial`` against 37.1 from scratch with all 1,992 abstracts (+0.5);
34.6 against 14.0 with 498 of them (+20.6). Lead-1: 31.3.
"""

from xferlab.defaults import base_config

PRETRAIN = {"bbc": "summary", "bbc_title": "title", "bbc_adversarial": "summary"}
FINETUNE = {"scratch": None, "news": "bbc", "news_title": "bbc_title",
            "news_adversarial": "bbc_adversarial"}


def get_config(arg=None):
  arm = arg or "scratch"
  if arm not in (*PRETRAIN, *FINETUNE, "copy", "smoke"):
    raise ValueError(f"Unknown argument {arm!r}; choose one of "
                     f"{sorted((*PRETRAIN, *FINETUNE, 'copy', 'smoke'))}")
  c = base_config("summarization")
  c.name = f"summarization_{arm}"
  c.seed = 0
  c.report_metric = "test_rouge1_max"

  c.data.name = "bbc" if arm in PRETRAIN else "scitldr"
  c.data.subset_seed = 0                      # a subset (data.subset_size): the same for
                                              # every seed and arm
  c.summarization.target_field = PRETRAIN.get(arm, "summary")
  c.summarization.max_target_length = 60 if arm in PRETRAIN else 0
  c.data.tokenizer = "word"
  c.data.vocab_size = 10000                   # the copy mechanism reaches the rarer words
  c.seq2seq.vocab_sources = ("bbc", "scitldr")
  # Sources are cut to the largest bucket: 256 words keeps 99% of SciTLDR abstracts whole and
  # the first 256 words of a BBC article (median 327), where its summary's first sentences are.
  c.data.buckets = (64, 128, 192, 256)
  c.seq2seq.target_buckets = (16, 32, 64)        # summaries are short: no decoding over padding
  c.data.batch_size = 32
  c.data.eval_batch_size = 32

  c.model.cell = "lstm"
  c.model.embed_dim = 128
  c.model.hidden_size = 128
  c.model.bidirectional = True
  c.seq2seq.decoder_hidden = 256
  c.seq2seq.attention = "bahdanau"
  c.seq2seq.input_feeding = False
  c.seq2seq.copy = True
  # Coverage (See et al. 2017) is switchable; off by default here. It forces a step-by-step
  # decoder: 1.9k against 2.5k tokens/s on this CPU, and one-sentence TLDRs repeat little.
  c.seq2seq.coverage = False
  c.seq2seq.coverage_loss_weight = 1.0
  c.model.embed_dropout = 0.3
  c.model.output_dropout = 0.3

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.grad_clip = 2.0

  c.decode.beam_size = 4
  c.decode.alpha = 0.6
  c.decode.max_length = {"summary": 60, "title": 20}[c.summarization.target_field] if arm in PRETRAIN \
      else 40

  # Budgets sized for a 2-core CPU (~2.5k tokens/s). Every run trains to its validation
  # optimum, so no arm is compared while still under-trained: at an equal 4 SciTLDR epochs
  # (~10 minutes) the transfer arms led scratch by ~3 ROUGE-1, but scratch's validation
  # perplexity was still falling (83.6 -> 67.4 in its last epoch) and at its optimum
  # (epoch 7) it caught up. SciTLDR arms: at most 12 epochs (~25 minutes), patience 4.
  # BBC summary parents: at most 12 epochs, patience 2 (after 3 epochs they were still
  # falling fast, 142 -> 110). The title parent peaks at epoch 3.
  c.train.num_epochs = {"bbc_title": 4}.get(arm, 12)
  c.train.early_stopping_metric = "valid_perplexity"
  c.train.early_stopping_mode = "min"
  c.train.patience = {"bbc": 2, "bbc_adversarial": 2}.get(arm, 4)
  c.train.log_every = 25

  if arm == "bbc_adversarial":
    c.transfer.method = "dann"
    c.transfer.lam = 0.1
    c.transfer.schedule = "dann"
    c.seq2seq.adversarial_domain = "scitldr"
  parent = FINETUNE.get(arm)
  if parent:
    c.init_from.path = f"runs/summarization/{parent}"
    c.init_from.subtrees = ("seq2seq",)
    c.init_from.made_by = (f"python launch.py experiments/summarization/news_to_science.py:{parent}"
                           f" --workdir runs/summarization/{parent}")

  if arm == "copy":
    c.data.name = "copy"
    c.seq2seq.vocab_sources = ("copy",)
    c.data.vocab_size = 34                 # the 30 common words: every r<i> is out of vocabulary
    c.data.buckets = (16,)
    c.seq2seq.target_buckets = (8,)
    c.data.batch_size = 32
    c.data.eval_batch_size = 100
    c.model.embed_dim = c.model.hidden_size = 32
    c.seq2seq.decoder_hidden = 64
    c.model.embed_dropout = c.model.output_dropout = 0.0
    c.optimizer.learning_rate = 1e-2
    c.decode.max_length = 6
    c.train.num_epochs = 0
    c.train.num_steps = 300
    c.train.eval_every = 300
    c.train.patience = 0
  elif arm == "smoke":
    c.train.num_epochs = 0
    c.train.num_steps = 6
    c.train.eval_every = 6
    c.decode.beam_size = 2
  return c

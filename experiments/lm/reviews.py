r"""ULMFiT's second stage: the general (PTB) language model fine-tuned on review text.

  python launch.py experiments/lm/reviews.py:books --workdir runs/lm_reviews_books \
      --set init_from.path=runs/ptb

A sentencepiece (unigram) language model on the ``amazon_unlabeled`` reviews of
one domain (``:books``, ``:dvd``, ``:electronics``, ``:kitchen``) or of all four
(``:all``, the default). None of those reviews is one of the labeled Blitzer
benchmark reviews. It starts from the word-level PTB model
(``experiments/lm/ptb.py``): the ``encoder`` subtree (embedding and LSTMs) is
restored with a vocabulary map (``init_from.vocab = "auto"``): a piece takes
the row of the PTB word it spells (``▁Great`` -> ``great``), other pieces the
mean embedding row. Fine-tuning follows ULMFiT: discriminative learning rates
(each lower layer group's rate divided by 2.6) and the slanted triangular
schedule. ``init_from.path = ""`` trains the review LM from scratch instead.

The encoder has the classifier's structure, so the sentiment experiments take
it with ``init_from.subtrees = ("classifier.encoder=encoder",)`` and this
run's tokenizer (``data.tokenizer_path = <workdir>/tokenizer``).

Measured (2026-12-01, 2-core CPU; ``:all`` from ``runs/ptb``, test perplexity
111.7): 2 epochs, 7,030 steps in 46 minutes of training at 2.85k tokens/s;
validation perplexity 153.4 after the first epoch and 135.3 after the second,
test perplexity 126.8. This is the model the sentiment ``lm`` arms start from.
"""

import os

from xferlab.config import load_experiment


def get_config(arg=None):
  c, _ = load_experiment(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ptb.py"))
  domain = arg or "all"
  smoke = domain == "smoke"
  c.name = f"lm_reviews_{domain}"
  c.data.name = "reviews"
  c.data.source = "books" if smoke else domain
  c.data.tokenizer = "sentencepiece"
  c.data.vocab_size = 8000
  c.data.batch_size = 32

  c.init_from.path = "runs/ptb"
  c.init_from.subtrees = ("encoder",)
  c.init_from.vocab = "auto"
  c.init_from.made_by = "python launch.py experiments/lm/ptb.py --workdir runs/ptb"

  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "slanted_triangular"
  c.finetune.discriminative_factor = 2.6
  c.train.num_epochs = 2
  c.train.max_train_minutes = 0.0
  if smoke:
    c.train.num_epochs, c.train.num_steps, c.train.eval_every = 0, 10, 10
  return c

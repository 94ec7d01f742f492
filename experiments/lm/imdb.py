r"""ULMFiT's second stage: the Wikipedia language model fine-tuned on IMDb reviews.

  python launch.py experiments/lm/imdb.py --workdir runs/lm_imdb --set init_from.path=runs/wiki

A word-level (32k words, lowercased, punctuation split) language model on the
``imdb_full`` train + unsup reviews (75k reviews, 16.8 M whitespace words): 1% of
them, chosen by a hash of the text, are validation and another 1% test; the
labeled test reviews, and the train / unsup rows that repeat one, are never
read (``xferlab.tasks.language_model``). It starts from the Wikipedia model
(``experiments/lm/wiki.py``): the ``encoder`` subtree (embedding and LSTMs) is
restored with a vocabulary map (``init_from.vocab = "auto"``): a word of this
vocabulary takes the Wikipedia row of the same word, other words the mean row.
The adaptive softmax's shortlist is tied to the embedding, so it starts from
the map too; the cluster logits and the tail clusters are new. Fine-tuning
follows ULMFiT: discriminative learning rates (each lower layer group's rate
divided by 2.6) and the slanted triangular schedule, one epoch.

The encoder has the classifier's structure, so sentiment classifiers take it
with ``init_from.subtrees = ("classifier.encoder=encoder",)`` and this run's
tokenizer (``data.tokenizer_path = <workdir>/tokenizer``).

Arguments (``experiments/lm/imdb.py:ARG``):
  (none)   from the Wikipedia LM (``init_from.path``, default ``runs/wiki``);
  scratch  the same model trained from random weights (the baseline of stage 1);
  resets   ``scratch`` with each row's carried state zeroed every 4 batches (staggered;
           ``language_model.state_reset_every``), so that the encoder learns to read from
           the zero state every classifier starts a review from;
  smoke    a few steps from scratch on a small vocabulary (tests, timing).
"""

import os

from xferlab.config import load_experiment


def get_config(arg=None):
  c, _ = load_experiment(os.path.join(os.path.dirname(os.path.abspath(__file__)), "wiki.py"))
  if arg not in (None, "", "scratch", "resets", "smoke"):
    raise ValueError(f"Unknown argument {arg!r}; use '', 'scratch', 'resets' or 'smoke'")
  c.name = "lm_imdb" + (f"_{arg}" if arg else "")
  c.data.name = "imdb"
  c.data.vocab_size = 32000

  if arg in (None, ""):
    c.init_from.path = "runs/wiki"
    c.init_from.subtrees = ("encoder",)
    c.init_from.vocab = "auto"
    c.init_from.made_by = "python launch.py experiments/lm/wiki.py --workdir runs/wiki"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.schedule = "slanted_triangular"
    c.finetune.discriminative_factor = 2.6
  if arg == "resets":
    c.language_model.state_reset_every = 4
  c.train.num_epochs = 1
  c.train.eval_every_epochs = 0.5
  if arg == "smoke":
    c.data.batch_size = 8
    c.train.num_epochs, c.train.num_steps, c.train.eval_every = 0, 10, 10
  return c

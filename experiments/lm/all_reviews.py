r"""The IMDb language model fine-tuned on the Amazon reviews: an LM that has read all the
unlabeled review text (the sentiment ``lm`` / ``lm_dann`` arms' word-level LM).

  python launch.py experiments/lm/all_reviews.py --workdir runs/lm_all_reviews

Stage 1 is ``experiments/lm/imdb.py:resets`` (``runs/lm_imdb_resets``): IMDb train + unsup
text (75k movie reviews), word level, state resets every 4 batches. This stage reads the
``amazon_unlabeled`` reviews of all four domains (22k product reviews, 2.9 M words; none is
one of the labeled Blitzer reviews that protocol A tests on), 95 % train, 2.5 % validation,
2.5 % test, one epoch. The tokenizer is new (32k lowercased words of this text); the
``encoder`` subtree (embedding and LSTMs) is restored with the vocabulary map
(``init_from.vocab = "auto"``: a word takes the IMDb row of the same word, others the mean
row), and the adaptive softmax's shortlist starts from the map through the tied embedding.
ULMFiT's fine-tuning: discriminative rates (factor 2.6) and the slanted triangular schedule;
the resets stay on, because every classifier reads a review from the zero state.

Arguments: (none) the run; ``smoke`` a few steps on a small vocabulary (tests).
``--set init_from.path=DIR`` starts from another word-level LM with this network (e.g. the
Wikipedia one, ``experiments/lm/wiki.py``, for the three-stage ULMFiT recipe).
"""

import os

from xferlab.config import load_experiment

STAGE_1 = "runs/lm_imdb_resets"
STAGE_1_COMMAND = "python launch.py experiments/lm/imdb.py:resets --workdir runs/lm_imdb_resets"


def get_config(arg=None):
  if arg not in (None, "", "smoke"):
    raise ValueError(f"Unknown argument {arg!r}; use '' or 'smoke'")
  c, _ = load_experiment(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imdb.py"))
  c.name = "lm_all_reviews"
  c.data.name = "reviews"
  c.data.source = "all"
  c.language_model.state_reset_every = 4

  c.init_from.path = STAGE_1
  c.init_from.subtrees = ("encoder",)
  c.init_from.vocab = "auto"
  c.init_from.made_by = STAGE_1_COMMAND
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "slanted_triangular"
  c.finetune.discriminative_factor = 2.6
  c.train.num_epochs = 1
  c.train.eval_every_epochs = 0.25
  c.train.checkpoint_every = 100
  if arg == "smoke":
    c.data.source, c.data.vocab_size, c.data.batch_size = "books", 2000, 8
    c.language_model.adaptive_softmax_cutoffs = (500, 1000)
    c.init_from.path = ""
    c.train.num_epochs, c.train.num_steps, c.train.eval_every = 0, 10, 10
  return c

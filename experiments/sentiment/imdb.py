r"""The IMDb benchmark (Maas et al. 2011): does a pretrained RNN transfer where labels are few?

  python launch.py experiments/lm/wiki.py --workdir runs/wiki                     # stage 1
  python launch.py experiments/lm/imdb.py --workdir runs/lm_imdb                  # stage 2
  python launch.py experiments/lm/imdb.py:scratch --workdir runs/lm_imdb_scratch  # Dai & Le
  python launch.py experiments/lm/imdb.py:resets --workdir runs/lm_imdb_resets   # + resets
  python -m benchmarks.imdb --out runs/bench_imdb                                 # this file's arms

One network for every arm: a word embedding and a 2-layer LSTM of 400 units
(the language models' encoder, ``experiments/lm/wiki.py``), concat pooling
(last, mean, max) and a 50-unit head. The label budget is ``data.subset_size``
training reviews (0 = all 25,000), class-balanced and different for each seed;
10 % of the budget is the validation split that selects the model (never the
test set). The 25,000 test reviews are scored once, on the selected model
(``train.final_eval_sets``).

Arms (``experiments/sentiment/imdb.py:ARM``; ``--set data.subset_size=N`` picks the budget):
  scratch       random weights; the IMDb LM's vocabulary;
  lm_imdb       the encoder of an LM trained on IMDb train + unsup text from random
                weights (Dai & Le 2015's LM-LSTM), fine-tuned;
  lm_imdb_resets  the same from an LM whose carried state was zeroed every 4 batches
                (``experiments/lm/imdb.py:resets``): the classifier reads every review
                from the zero state, which the plain LM met once in its epoch;
  lm_wiki_imdb  the encoder of the IMDb LM that started from the Wikipedia LM
                (ULMFiT's three stages);
  lm_wiki       the Wikipedia LM's encoder and vocabulary, no in-domain stage;
  glove         frozen GloVe 6B 50-d vectors (``glove_6b_50d``) under the scratch
                network (embedding 50);
  vectors       frozen word2vec vectors trained on IMDb's unsup reviews
                (``python -m xferlab.studies.word2vec --domains imdb --dim 128
                --out runs/vectors_imdb``; embedding 128).
The LM arms fine-tune with ULMFiT's controls: discriminative learning rates
(÷2.6 per layer group), the slanted triangular schedule and gradual unfreezing (a
group every tenth of the run: one epoch at 1,000 labels). An LM arm name may end
with a fine-tuning recipe (``lm_imdb_resets_lpft``, ``RECIPES``):
  _lpft         linear probing, then fine-tuning (Kumar et al. 2022): the embedding
                stays as pretrained, and the head trains alone on the frozen encoder
                for a fifth of the run before the top LSTM layer unfreezes, so the
                encoder is never updated through a random head.
  _probe        LP-FT with the probe fitted to convergence: the head is linear and starts
                as a logistic regression (C by cross-validation) on the frozen encoder's
                pooled features of the run's own training reviews
                (``xferlab.studies.probe.save_probe_head``, restored through
                ``init_from.extra``; ``benchmarks.imdb`` fits it before the run), then
                ULMFiT's recipe as above.

Where the language models live: ``runs/`` by default; ``--set
init_from.path=DIR --set data.tokenizer_path=DIR/tokenizer`` names others
(``benchmarks.imdb`` does that from its ``--lms`` flag).
"""

import os

# Fine-tuning recipes an LM arm's name may end with: recipe -> (steps per unfreezing stage as
# a fraction of the run, parameter groups that never train, whether the head is linear and
# starts as a logistic regression fitted to the frozen encoder's features).
RECIPES = {"": (0.1, (), False), "lpft": (0.2, ("embedding",), False), "probe": (0.1, (), True)}
LM_ARMS = {"lm_imdb": "runs/lm_imdb_scratch", "lm_imdb_resets": "runs/lm_imdb_resets",
           "lm_wiki_imdb": "runs/lm_imdb", "lm_wiki": "runs/wiki"}
LM_DIRS = {f"{arm}_{recipe}" if recipe else arm: lm_dir
           for arm, lm_dir in LM_ARMS.items() for recipe in RECIPES}
ARMS = ("scratch", *LM_DIRS, "glove", "vectors")
LM_COMMANDS = {
    "runs/wiki": "python launch.py experiments/lm/wiki.py --workdir runs/wiki",
    "runs/lm_imdb": "python launch.py experiments/lm/imdb.py --workdir runs/lm_imdb",
    "runs/lm_imdb_scratch": ("python launch.py experiments/lm/imdb.py:scratch "
                             "--workdir runs/lm_imdb_scratch"),
    "runs/lm_imdb_resets": ("python launch.py experiments/lm/imdb.py:resets "
                            "--workdir runs/lm_imdb_resets"),
}


def _network(c) -> None:
  c.model.cell = "lstm"
  c.model.embed_dim = 400
  c.model.hidden_size = 400
  c.model.num_layers = 2
  c.classification.pooling = ("last", "mean", "max")
  c.classification.head_hidden = (50,)
  c.model.dropout = 0.3
  c.model.embed_dropout = 0.1
  c.model.variational_dropout = True


def recipe_of(arm: str) -> str:
  """The fine-tuning recipe an LM arm's name ends with ("" for ULMFiT's own)."""
  return next((r for r in RECIPES if r and arm.endswith("_" + r)), "")


def starts_from_probe(arm: str) -> bool:
  """Whether the arm's linear head starts as the probe (``xferlab.studies.probe.save_probe_head``
  writes it; the run restores it through ``init_from.extra``)."""
  return arm in LM_DIRS and RECIPES[recipe_of(arm)][2]


def unfreeze_every(arm: str, num_steps: int) -> int:
  """``finetune.unfreeze_every`` of an LM arm that trains ``num_steps`` steps."""
  return max(1, int(num_steps * RECIPES[recipe_of(arm)][0]))


def _lm_arm(c, arm: str) -> None:
  lm_dir = LM_DIRS[arm]
  c.data.tokenizer_path = os.path.join(lm_dir, "tokenizer")
  c.init_from.path = lm_dir
  c.init_from.subtrees = ("classifier.encoder=encoder",)
  c.init_from.made_by = LM_COMMANDS.get(lm_dir, "")
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "slanted_triangular"
  c.finetune.discriminative_factor = 2.6
  c.finetune.unfreeze_every = unfreeze_every(arm, c.train.num_steps)
  c.finetune.frozen = RECIPES[recipe_of(arm)][1]
  if starts_from_probe(arm):
    c.classification.head_hidden = ()


def get_config(arg=None):
  from xferlab.defaults import base_config
  arm = arg or "scratch"
  if arm not in ARMS + ("smoke",):
    raise ValueError(f"Unknown arm {arm!r}; choose one of {', '.join(ARMS)}")
  c = base_config()
  c.name = f"imdb_{arm}"
  c.report_metric = "target_accuracy"
  c.data.name = "imdb"
  c.data.source = c.data.target = "imdb"
  c.data.subset_size = 1000
  c.data.tokenizer = "word"
  c.data.tokenizer_path = os.path.join(LM_ARMS["lm_wiki_imdb"], "tokenizer")
  c.data.buckets = (128, 256, 400)
  c.data.batch_size = 32
  c.data.eval_batch_size = 128
  _network(c)
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip = 1.0
  c.train.num_epochs = 0
  c.train.num_steps = 300
  c.train.eval_every = 30
  c.train.early_stopping_metric = "source_val_accuracy"
  c.train.final_eval_sets = ("target",)
  c.train.log_every = 10
  if arm in LM_DIRS:
    _lm_arm(c, arm)
  elif arm == "glove":
    from xferlab.transfer.feature_based import GLOVE_6B_50D_DIM, glove_6b_50d_path
    c.model.embed_dim = GLOVE_6B_50D_DIM
    c.model.pretrained_vectors = glove_6b_50d_path()
    c.finetune.frozen = ("embedding",)
  elif arm == "vectors":
    c.model.embed_dim = 128
    c.model.pretrained_vectors = "runs/vectors_imdb/vectors.txt"
    c.finetune.frozen = ("embedding",)
  elif arm == "smoke":           # the synthetic corpus, a few steps: tests
    c.data.name, c.data.source, c.data.target = "synthetic", "books", "kitchen"
    c.data.tokenizer_path, c.data.subset_size = "", 0
    c.model.embed_dim = c.model.hidden_size = 16
    c.train.num_steps, c.train.eval_every = 6, 3
  return c


def steps_for(num_labels: int) -> tuple[int, int]:
  """``(train.num_steps, train.eval_every)`` of a label budget (0 = 25,000): about 10
  epochs of the training part for small budgets, 3 epochs of 22,500 reviews for all."""
  train_size = 0.9 * (num_labels or 25000)
  epochs = 10 if train_size < 5000 else 3
  steps = max(30, int(round(epochs * train_size / 32)))
  return steps, max(1, steps // 10)

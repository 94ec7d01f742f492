r"""Few labels: a classifier from scratch against one fine-tuned from the review LM (ULMFiT).

  python launch.py experiments/lm/ptb.py --workdir runs/ptb
  python launch.py experiments/lm/reviews.py:books --workdir runs/lm_reviews_books
  python launch.py experiments/sentiment/few_labels.py:books --use-experiment-sweep \
      --workdir runs/few_labels_books

(the language models are read from ``runs/lm_reviews_<domain>``; another place:
``--set data.tokenizer_path=DIR/tokenizer --set arms.ulmfit.init_from.path=DIR``.)

In-domain sentiment on one Amazon domain (``:books`` by default; the argument
names another). Of its 2,000 labeled reviews, 400 are held out for test (fixed
split, ``xferlab.data.domains``) and the classifier trains on 100, 500 or all
1,600 of the rest (class-balanced, a different subset per seed) -- the sweep
over ``data.subset_size`` -- with 3 seeds each. Nothing is selected on the test
reviews: every run trains for the same fixed number of steps and reports its
final model.

Arms (same tokenizer -- the review LM's sentencepiece model -- same network,
same budget):
  scratch  random initialization, Adam;
  ulmfit   the review LM's encoder (``init_from``, ``classifier.encoder=encoder``),
           fine-tuned with discriminative learning rates (÷2.6 per layer group
           going down), the slanted triangular schedule and gradual unfreezing
           (one more layer group every ``unfreeze_every`` steps, top first).

The sweep writes ``sweep.md`` (accuracy mean ± std per arm and label count) and
``sweep.png`` (the learning curve: accuracy against the number of labels).
"""

LABELS = (100, 500, 1600)


def get_config(arg=None):
  from xferlab.defaults import base_config
  c = base_config()
  domain = arg or "books"
  c.name = f"few_labels_{domain}"
  c.seed = 0
  c.seeds = (0, 1, 2)
  c.report_metric = "target_accuracy"

  c.data.name = "amazon"
  c.data.source = c.data.target = domain
  c.data.subset_size = 1600
  c.data.tokenizer = "sentencepiece"
  lm_dir = f"runs/lm_reviews_{domain if domain != 'smoke' else 'books'}"
  c.data.tokenizer_path = f"{lm_dir}/tokenizer"
  c.data.buckets = (64, 128, 256)
  c.data.batch_size = 32
  c.data.eval_batch_size = 100

  # The language model's encoder: embedding 300, 2 x LSTM 300 (experiments/lm/ptb.py).
  c.model.cell = "lstm"
  c.model.embed_dim = 300
  c.model.hidden_size = 300
  c.model.num_layers = 2
  c.classification.pooling = ("last", "mean", "max")   # ULMFiT's concat pooling
  c.classification.head_hidden = (50,)
  c.model.dropout = 0.3
  c.model.embed_dropout = 0.2
  c.model.variational_dropout = True
  c.model.weight_dropout = 0.2

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip = 1.0
  c.train.num_epochs = 0
  c.train.num_steps = 150
  c.train.eval_every = 150               # the final model only
  c.train.early_stopping_metric = ""     # fixed budget: report the final model
  c.train.log_every = 25

  c.arms.scratch = {}
  c.arms.ulmfit = {
      "init_from": {"path": lm_dir, "subtrees": ("classifier.encoder=encoder",)},
      "optimizer": {"learning_rate": 2e-3, "schedule": "slanted_triangular"},
      "finetune": {"discriminative_factor": 2.6, "unfreeze_every": 15},
  }
  if arg == "smoke":
    c.data.source = c.data.target = "books"
    c.seeds = (0,)
    c.train.num_steps, c.train.eval_every = 4, 2
  return c


def sweep(add):
  for n in LABELS:
    add(**{"data.subset_size": n})

r"""Quick start: domain-adversarial training on a synthetic two-domain sentiment corpus.

  python launch.py experiments/quickstart.py --workdir runs/quickstart

trains a source-only arm (λ = 0) and a DANN arm over 3 seeds on the built-in
synthetic corpus (``xferlab/data/synthetic.py``: books reviews labeled,
kitchen reviews unlabeled and for test; no download) and prints target-domain
accuracy as mean ± std. Both arms share everything but λ: the same data stream,
model and discriminator, so λ = 0 is exactly source-only training. Each arm
trains for a fixed budget of 8 epochs and reports its final model (no target
label is used to pick anything).

Arguments (``experiments/quickstart.py:ARG``):
  (none)  both arms, 3 seeds;
  dann    the DANN arm alone, one seed (what a λ sweep uses):
          python launch.py experiments/quickstart.py:dann --sweep transfer.lam=0,0.1,1
  smoke   both arms, one seed, a few steps (tests).
"""

from xferlab.defaults import base_config


def get_config(arg=None):
  c = base_config()
  c.name = "quickstart"
  c.seed = 0
  c.seeds = (0, 1, 2)
  c.arms.source_only = {"transfer": {"lam": 0.0}}
  c.arms.dann = {}

  c.data.name = "synthetic"
  c.data.source, c.data.target = "books", "kitchen"
  c.data.buckets = (40,)
  c.data.batch_size = 64
  c.data.eval_batch_size = 500

  c.model.cell = "gru"
  c.model.embed_dim = 32
  c.model.hidden_size = 64
  c.classification.pooling = ("mean", "max")

  c.transfer.method = "dann"
  c.transfer.lam = 0.1
  c.transfer.schedule = "constant"
  c.transfer.discriminator_hidden = (64,)

  c.optimizer.learning_rate = 1e-3
  c.train.num_epochs = 8
  # A fixed budget: report the model after the last epoch. No target label is
  # ever used to choose anything.
  c.train.early_stopping_metric = ""
  c.train.log_every = 25
  c.train.progress_bar = False

  if arg == "dann":
    c.seeds = ()
    c.arms = {}
  elif arg == "smoke":
    c.seeds = (0,)
    c.train.num_steps = 6
    c.train.eval_every = 3
    c.data.synthetic.num_source_train = 200
    c.data.synthetic.num_source_val = 100
    c.data.synthetic.num_target_unlabeled = 200
    c.data.synthetic.num_target_test = 100
  elif arg:
    raise ValueError(f"Unknown quickstart argument {arg!r}; use dann or smoke")
  return c


def sweep(add):
  for lam in (0.0, 0.1, 0.3, 1.0):
    add(**{"transfer.lam": lam})

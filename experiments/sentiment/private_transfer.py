r"""Private transfer: a public pretrained model fine-tuned with DP-SGD on a target domain's reviews.

  python launch.py experiments/lm/reviews.py:all --workdir runs/lm_reviews_all   # public LM
  python launch.py experiments/sentiment/private_transfer.py:target=dvd \
      --workdir runs/private_dvd
  python -m xferlab.studies.privacy runs/private_dvd        # membership inference per run

or, with a classifier trained on a public source domain as the public model (no LM; the
measured setting of docs/trust.md, public books -> private kitchen):

  python launch.py experiments/sentiment/amazon.py:source=books,target=books,arms=source_only \
      --set 'seeds=()' --workdir runs/public_books
  python launch.py experiments/sentiment/private_transfer.py:target=kitchen,\
public_source=runs/public_books,epochs=5 --workdir runs/private_kitchen

The use case (issue 35): the labeled reviews of the target domain are private; what is
public is the review language model (ULMFiT stage 2 on the *unlabeled* reviews of all four
Amazon domains, ``experiments/lm/reviews.py:all``) and its sentencepiece tokenizer. Protocol
A's in-domain setting (``data.in_domain``, ``xferlab.data.domains``): train on the target
domain's labeled ``amazon_hatn`` reviews that are not in its test set (90 %, 4,850 to 5,190
reviews: the private set, N), test on its 2,000 Blitzer reviews.

Arms (8; each over 3 seeds), the same network (the review LM's: embedding 300, 2 x LSTM 300,
concat pooling, ``experiments/sentiment/amazon.py``'s ``lm`` arm), tokenizer, batches and
budget, differing only in the initialization and in ε:
  lm_eps1, lm_eps3, lm_eps8   the LM's encoder (``init_from``), its embedding frozen (public
                              and good; 2.4M fewer noisy coordinates), DP-SGD with σ solved
                              for ε = 1, 3, 8 at δ = 1e-5 over the whole run
                              (``privacy.target_epsilon``);
  lm_nonprivate               the same without DP-SGD (ε = ∞);
  scratch_eps1/3/8, scratch_nonprivate   random initialization, embedding trained.
Every arm reads the LM's tokenizer, so no vocabulary is learned from the private reviews.

DP-SGD (``xferlab.privacy``): per-example clipping at C = ``CLIP_NORM``, Gaussian noise,
batches of ``BATCH_SIZE`` (q = B / N ≈ 0.05; σ ≈ 3.3, 1.5, 0.9 for ε = 1, 3, 8 over the
~220 steps of ``EPOCHS`` epochs), Adam at ``LEARNING_RATE``; ε is accounted with the
RDP accountant for Poisson sampling at rate q, although our batches are shuffled (the
standard heuristic; see ``xferlab.privacy``). The released model is the last one
(``train.early_stopping_metric = ""``): choosing an evaluation on the private validation
split would spend privacy the accountant does not count. These values are set a priori,
not tuned; the non-private arms share them so that only the noise differs.

Argument (``experiments/sentiment/private_transfer.py:ARG``), comma-separated, all optional:
  target=dvd                 the private domain (books, dvd, electronics, kitchen);
  arms=lm_eps8+lm_nonprivate a subset of the arms, joined by '+';
  lm=runs/lm_reviews_all     where the public review LM is;
  public_source=DIR          the public model is instead a *classifier* trained on a public
                             source domain's labeled reviews, the run in DIR, e.g.
                             ``python launch.py experiments/sentiment/amazon.py:source=books,
                             target=books,arms=source_only --set 'seeds=()'
                             --workdir runs/public_books`` (its tokenizer is learned from
                             books text only: none of the target's reviews). Every arm takes
                             that run's network and tokenizer (``DIR/config.json``,
                             ``DIR/tokenizer``); the pretrained arms, named ``source_*``,
                             take its whole classifier (``init_from.subtrees =
                             ("classifier",)``), embedding frozen. No LM is read;
  epochs=10                  the fixed training budget of every arm (``EPOCHS``); σ is solved
                             for it;
  smoke                      one seed, small batches, 3 steps (a check that the arms run).
"""

import json
import os

from xferlab.config import apply_overrides, flatten, load_experiment

AMAZON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "amazon.py")
EPSILONS = (1, 3, 8)     # plus the non-private arm, ε = ∞
CLIP_NORM = 1.0          # C: Li et al. (2022) clip every example ("small C"), here all of them
BATCH_SIZE = 256         # DP-SGD wants large batches: the noise is σC/B per coordinate
EPOCHS = 10
LEARNING_RATE = 2e-3     # Adam; the LM recipe's 1e-3 was chosen for batches of 32
DELTA = 1e-5             # below 1/N (N ≈ 5,000)
ENCODER = "classifier.encoder"   # the head arms freeze it: embedding and recurrent layers
PUBLIC_COMMAND = ("python launch.py experiments/sentiment/amazon.py:source={domain},"
                  "target={domain},arms=source_only --set 'seeds=()' --workdir {run_dir}")
DEFAULTS = {"target": "dvd", "arms": "", "lm": "runs/lm_reviews_all", "public_source": "",
            "epochs": str(EPOCHS), "smoke": False}


def arms(pretrained_model: dict, prefix: str = "lm") -> dict:
  """The 12 arms' overrides (nested): {prefix, prefix_head, scratch} x {ε = 1, 3, 8, ∞}; the
  ``prefix`` arms start from ``pretrained_model["init_from"]`` with their embedding frozen, the
  ``prefix_head`` arms train only the classifier's head on the frozen public encoder."""
  pretrained = {"init_from": dict(pretrained_model["init_from"]),
                "finetune": {"frozen": ("embedding",)}}
  head_only = dict(pretrained, finetune={"frozen": (ENCODER,)})
  out = {}
  for name, start in ((prefix, pretrained), (f"{prefix}_head", head_only), ("scratch", {})):
    for eps in EPSILONS:
      out[f"{name}_eps{eps}"] = dict(start, privacy={"clip_norm": CLIP_NORM,
                                                     "target_epsilon": float(eps)})
    out[f"{name}_nonprivate"] = dict(start)
  return out


def public_classifier(run_dir: str) -> dict:
  """The settings that reproduce the public classifier in ``run_dir`` (a finished run of
  ``amazon.py``): its tokenizer, network and pooling, and ``init_from`` its whole classifier."""
  config_file = os.path.join(run_dir, "config.json")
  if not os.path.exists(os.path.join(run_dir, "results.json")):
    found = "an unfinished run" if os.path.exists(config_file) else "no run"
    raise FileNotFoundError(
        f"public_source={run_dir} holds {found}; train the public model first, e.g. a books "
        f"classifier: {PUBLIC_COMMAND.format(domain='books', run_dir=run_dir)}")
  with open(config_file) as f:
    public = json.load(f)
  made_by = PUBLIC_COMMAND.format(domain=public["data"]["source"], run_dir=run_dir)
  return {"data": {k: public["data"][k] for k in ("tokenizer", "vocab_size", "word_split",
                                                   "buckets")}
          | {"tokenizer_path": os.path.join(run_dir, "tokenizer")},
          "model": public["model"], "classification": public["classification"],
          "init_from": {"path": run_dir, "subtrees": ("classifier",), "vocab": "",
                        "made_by": made_by}}


def get_config(arg=None):
  _, amazon = load_experiment(AMAZON)
  options = amazon.parse_arg(arg, DEFAULTS)
  target = options["target"]
  c = amazon.base(dict(options, source=target), f"private_{target}")
  c.data.name = "amazon"
  c.data.in_domain = True                      # the target's own labeled reviews: private
  if options["public_source"]:
    pretrained_model, prefix = public_classifier(options["public_source"]), "source"
  else:
    pretrained_model, prefix = amazon.lm_arms(options["lm"])["lm"], "lm"
  # Every arm: the public model's tokenizer and network, its fine-tuning recipe; no transfer.
  c = apply_overrides(c, flatten({k: pretrained_model[k] for k in
                                  ("data", "model", "optimizer", "classification")
                                  if k in pretrained_model}))
  c.init_from.made_by = pretrained_model["init_from"]["made_by"]   # names the public model
  c.transfer.method, c.transfer.lam = "none", 0.0
  c.data.batch_size = BATCH_SIZE
  c.optimizer.learning_rate = LEARNING_RATE
  c.train.num_epochs = int(options["epochs"])
  c.train.early_stopping_metric = ""           # release the last model (see above)
  c.privacy.delta = DELTA
  c.report_metric = "target_accuracy"
  all_arms = arms(pretrained_model, prefix)
  names = options["arms"].split("+") if options["arms"] else list(all_arms)
  unknown = [n for n in names if n not in all_arms]
  if unknown:
    raise ValueError(f"Unknown arms {unknown}; choose from {', '.join(all_arms)}")
  c.arms = {}
  for name in names:
    c.arms[name] = all_arms[name]
  if options["smoke"]:
    c.seeds = (0,)
    c.train.num_epochs, c.train.num_steps, c.train.eval_every, c.train.log_every = 0, 3, 3, 1
    c.data.buckets, c.data.batch_size, c.data.eval_batch_size = (32,), 8, 64
  return c

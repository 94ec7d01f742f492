r"""Cross-domain sentiment, protocol B: the HATN benchmark (Li et al., AAAI 2018).

  python launch.py experiments/sentiment/amazon_hatn.py:source=books,target=dvd \
      --workdir runs/hatn_books_dvd
  python -m benchmarks.sentiment --protocol B

(the LM arms need ``python launch.py experiments/lm/reviews.py:all --workdir runs/lm_reviews_all``;
the vector arms ``python -m xferlab.studies.word2vec --out runs/vectors_reviews``, which the benchmark
runs itself.)

Protocol (``xferlab.data.domains._amazon_hatn``): the source domain's
``amazon_hatn`` reviews (3,000 + 3,000 labeled) without duplicate rows; of
each class n are drawn for training with a fixed seed, class balanced, n =
min(2,800, smaller class - 200) -- HATN's 2,800 + 2,800 where the distinct rows
allow it, at least 200 + 200 left for validation: n = 2,661 (books), 2,565
(dvd), 2,583 (electronics), 2,668 (kitchen); the other distinct rows validate.
The target domain's unlabeled text is ``amazon_unlabeled`` (the text of the
test reviews, labels dropped: HATN's own unlabeled files are not available;
so here the review word vectors and the review LM have read the test reviews'
text too, never their labels);
the test set is all 6,000 labeled target reviews, as HATN reports (12-pair
average 86.6 for HATN_h; per pair in ``shared/data/amazon_hatn/SOURCE.md``).
The in-domain arm trains on the target's Blitzer reviews that are not among
its HATN reviews (about 1,600 to 1,800).

Arms, model, training budget and model selection (source validation only) are
those of ``experiments/sentiment/amazon.py``, as is the argument
(``source=…,target=…,arms=a+b,lm=DIR,vectors=DIR,smoke``).
"""

import os

from xferlab.config import load_experiment

_HERE = os.path.dirname(os.path.abspath(__file__))
_amazon = load_experiment(os.path.join(_HERE, "amazon.py"))[1]


def get_config(arg=None):
  options = _amazon.parse_arg(arg, _amazon.DEFAULTS)
  c = _amazon.base(options, f"amazon_hatn_{options['source']}_{options['target']}")
  c.data.name = "amazon_hatn"
  c.train.num_epochs = 3       # 5,100 to 5,600 training reviews: about 3.4x protocol A's epoch
  return _amazon.finish(c, options)


sweep = _amazon.sweep

r"""Movie reviews to product reviews: imdb_2k, rt_polarity or imdb_full as the source, an Amazon
domain as the target (the seed's sentiment scenario).

  python launch.py experiments/sentiment/movie_to_product.py:source=imdb_2k,target=kitchen \
      --workdir runs/movie_imdb_kitchen
  python -m benchmarks.sentiment --protocol movie      # 2 sources x 4 targets

(the LM arms need ``python launch.py experiments/lm/reviews.py:all --workdir runs/lm_reviews_all``;
the vector arms ``python -m xferlab.studies.word2vec --out runs/vectors_reviews``, which the benchmark
runs itself.)

Protocol (``xferlab.data.domains._movie``): the source's labeled movie reviews
(``imdb_2k``: 2,000 IMDB documents, one repeat dropped; ``rt_polarity``:
10,662 Rotten Tomatoes snippets, repeats dropped; ``imdb_full``: the 25,000 labeled
IMDb training reviews, 99 repeats dropped) split once (fixed seed) into
90 % training and 10 % validation; the target domain's unlabeled text
(``amazon_unlabeled``) and its 2,000 labeled Blitzer reviews as the test set,
exactly as in protocol A, so the in-domain arm (and the source-only one beside
it) are comparable with ``experiments/sentiment/amazon.py``'s.

Arms, model, training budget and model selection (source validation only) are
those of ``experiments/sentiment/amazon.py``, as is the argument
(``source=imdb_2k|rt_polarity|imdb_full,target=…,arms=a+b,lm=DIR,vectors=DIR,smoke``;
default ``source=imdb_2k,target=kitchen``). rt_polarity's 9,600 training snippets are
short: its epoch has about 5x imdb_2k's batches, so it trains 2 epochs; imdb_full's
22,411 training reviews are 12x imdb_2k's, and every arm (the vector and LM arms too: 1,400
steps, more than protocol A's 12 and 8 epochs) trains 2 epochs.
"""

import os

from xferlab.config import load_experiment

_HERE = os.path.dirname(os.path.abspath(__file__))
_amazon = load_experiment(os.path.join(_HERE, "amazon.py"))[1]


def get_config(arg=None):
  options = _amazon.parse_arg(arg, dict(_amazon.DEFAULTS, source="imdb_2k", target="kitchen"))
  c = _amazon.base(options, f"movie_{options['source']}_{options['target']}")
  c.data.name = "movie"
  if options["source"] in ("rt_polarity", "imdb_full"):
    c.train.num_epochs = 2
    return _amazon.finish(c, options, lm_epochs=2)
  return _amazon.finish(c, options)


sweep = _amazon.sweep

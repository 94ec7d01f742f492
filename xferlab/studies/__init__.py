"""Research tools built on the library's public entry points (never its private names).

* ``probe`` -- a linear probe of a frozen encoder's features;
* ``domain_distance`` -- proxy A-distance between source and target features,
  and pictures of them;
* ``peers`` -- non-neural peers on the same labels (TF-IDF + logistic regression);
* ``word2vec`` -- the review word vectors the sentiment benchmarks start from.

Each is a command, ``python -m xferlab.studies.<name> --help``.
"""

"""Research tools built on the library's public entry points (never its private names).

* ``probe`` -- a linear probe of a frozen encoder's features;
* ``domain_distance`` -- proxy A-distance between source and target features,
  and pictures of them;
* ``select`` -- ranking candidate sources and pretrained models for a target by
  label-free similarity, and how well each measure predicts transfer;
* ``peers`` -- non-neural peers on the same labels (TF-IDF + logistic
  regression, NB-SVM);
* ``word2vec`` -- the review word vectors the sentiment benchmarks start from;
* ``back_translate`` -- synthetic parallel text from monolingual captions;
* ``explain`` -- token attributions and attention maps of a restored model;
* ``robustness`` -- word-substitution and typo attacks on a classifier;
* ``privacy`` -- membership inference against a (DP-)trained classifier.

Each is a command, ``python -m xferlab.studies.<name> --help``.
"""

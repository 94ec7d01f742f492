"""The three families of transfer, one module each.

* ``feature_based`` -- pretrained word vectors: read into the embedding,
  exported from it, trained with word2vec on unlabeled text;
* ``model_based`` -- a pretrained network's parameters: named subtrees restored
  from an orbax checkpoint (``config.init_from``) across vocabularies, and
  ULMFiT's fine-tuning controls (freezing, discriminative rates, gradual
  unfreezing) on top of the plain optimizer (``xferlab.optim``);
* ``relation_based`` -- ``L_transfer`` losses relating source and target
  features: domain-adversarial (DANN), discrepancy (CORAL, MMD), entropy;
* ``self_training`` -- a teacher's confident labels for the target's unlabeled
  text, added to the source labels of a student.
"""

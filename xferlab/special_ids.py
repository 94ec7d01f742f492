"""The four ids every tokenizer in xferlab reserves, so that models, batching and
checkpoints never need to know which tokenizer produced the ids.

``PAD_ID = 0`` is padding (masked out by the RNN core), ``UNK_ID = 1`` an unknown
token, ``BOS_ID = 2`` and ``EOS_ID = 3`` the start and end of a sequence. A
module of its own so that the models can use them without importing the data
layer.
"""

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)

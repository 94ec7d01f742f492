"""TFDS builders of the real corpora, one module per corpus.

``BUILDERS`` maps each corpus name to its builder class. Use
``xferlab.data.catalog`` (``load`` / ``prepare``) rather than the classes
directly: it resolves the manual and data directories.

| name                | configs                          | splits                             |
|---------------------|----------------------------------|------------------------------------|
| amazon_multi_domain | books, dvd, electronics, kitchen | train (2,000 each)                 |
| amazon_hatn         | books, dvd, electronics, kitchen | train (6,000 each)                 |
| amazon_unlabeled    | books, dvd, electronics, kitchen | train (HATN minus dup / Blitzer)   |
| imdb_2k             |                                  | train (2,000)                      |
| imdb_full           |                                  | train, test (25,000 each),         |
|                     |                                  | unsup (50,000; label -1)           |
| rt_polarity         |                                  | train (10,662)                     |
| sst2                | kim (default), glue              | train, validation, test (kim only) |
| multi30k            | en-de (default), en-fr, en-cs    | train, validation, test_2016_flickr, |
|                     |                                  | test_2018_flickr, test_2017_flickr |
|                     |                                  | and test_2017_mscoco (not en-cs)   |
| multi30k_task2      | de (default), en                 | train (145,000), validation        |
|                     |                                  | (5,070), test_2016 (5,000)         |
| bbc_news_summary    |                                  | train, validation, test            |
| scitldr             |                                  | train, validation, test            |
| ptb                 |                                  | train, validation, test            |
| wiki_en             |                                  | train, validation, test (articles) |

Feature names: sentiment corpora have ``text`` and ``label`` (0 = negative,
1 = positive; ``amazon_unlabeled`` has no label, ``imdb_full``'s ``unsup``
split has label -1) and ``domain`` for Amazon;
translation ``source`` / ``target`` (+ ``*_tok``); summarization ``document``,
``summary`` (str) and ``references`` (list[str]); language-model text
(PTB, ``wiki_en``, ``multi30k_task2``) ``text``. Each
builder's docstring lists all its features.
"""

from __future__ import annotations

from xferlab.data.corpora.amazon_hatn import AmazonHatn, AmazonUnlabeled
from xferlab.data.corpora.amazon_multi_domain import AmazonMultiDomain
from xferlab.data.corpora.base import CorpusBuilder
from xferlab.data.corpora.bbc_news_summary import BbcNewsSummary
from xferlab.data.corpora.files import CorruptFileError, ManualDataError
from xferlab.data.corpora.imdb_2k import Imdb2k
from xferlab.data.corpora.imdb_full import ImdbFull
from xferlab.data.corpora.multi30k import Multi30k
from xferlab.data.corpora.multi30k_task2 import Multi30kTask2
from xferlab.data.corpora.ptb import Ptb
from xferlab.data.corpora.rt_polarity import RtPolarity
from xferlab.data.corpora.scitldr import Scitldr
from xferlab.data.corpora.sst2 import Sst2
from xferlab.data.corpora.wiki_en import WikiEn

BUILDERS: dict[str, type[CorpusBuilder]] = {
    cls.name: cls for cls in (
        AmazonMultiDomain, AmazonUnlabeled, AmazonHatn, Imdb2k, RtPolarity, Sst2, Multi30k,
        BbcNewsSummary, Scitldr, Ptb, ImdbFull, WikiEn, Multi30kTask2)
}

__all__ = ["BUILDERS", "CorpusBuilder", "CorruptFileError", "ManualDataError"]

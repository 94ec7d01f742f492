"""``multi30k``: Multi30k (WMT16-18 multimodal task 1) caption translation from English."""

from __future__ import annotations

import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_REPO, _COMMIT = "multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
_ORIGIN = (f"Multi30k task 1 (Elliott et al. 2016, 2017; Barrault et al. 2018), "
           f"github.com/{_REPO} @ {_COMMIT}: data/task1/raw/<split>.<lang>.gz and "
           "data/task1/tok/<split>.lc.norm.tok.<lang>")

# Split name -> file stem. "val" is called "validation" like in every other corpus.
_SPLITS = {
    "train": "train",
    "validation": "val",
    "test_2016_flickr": "test_2016_flickr",
    "test_2017_flickr": "test_2017_flickr",
    "test_2017_mscoco": "test_2017_mscoco",
    "test_2018_flickr": "test_2018_flickr",
}
_NO_CZECH = ("test_2017_flickr", "test_2017_mscoco")  # Czech exists only for the other splits
LANGUAGES = ("en", "de", "fr", "cs")

# md5 of the decompressed files, as listed in SOURCE.md (`zcat FILE | md5sum`).
_MD5SUMS = """
91d70d413b7711e46d57fbdd15e656d3  test_2016_flickr.cs
cde61d7401b116652ee84099c7858ca3  test_2016_flickr.de
2022a6c31e2418047a0511333d55ed42  test_2016_flickr.en
091159ae517b43efa0faaa650c49923b  test_2016_flickr.fr
798e7b25ccbaab6767b20f9b4cec6901  test_2017_flickr.de
956eb7b4f31dd4b8f39b4e74756ebd11  test_2017_flickr.en
a8b6b102af1270923e4d2b4b11e500d0  test_2017_flickr.fr
ab02abcdf97edbf8ea33e34863a46a81  test_2017_mscoco.de
9136efc03561305aedd74be5c0eedb2e  test_2017_mscoco.en
aa75907158a777757f672dccab6f2ab4  test_2017_mscoco.fr
715e007e3f6bd14d63d21861f536a653  test_2018_flickr.cs
a0d2f2a31703374a8e81a086027a61ae  test_2018_flickr.de
d1dfeec96154c20773e06875ace4c143  test_2018_flickr.en
cbca3755cf35c18868356c5ce7ad587f  test_2018_flickr.fr
ea345fc3015296d49f06bc26912cc982  train.cs
d3b4bc1671cfb805267f97f16884beba  train.de
053a34ece7c904dbc8c7361799afbe4c  train.en
849ec62eac03bcc3335f8bac00a4045a  train.fr
dcb79728c6b05448519f888f2e49bef6  val.cs
9f139b15d9d11936dea7af2904e57d8c  val.de
2234730e7925354b766681b029b347ec  val.en
5c6267b6b147feb0fd6a826d01b7a53a  val.fr
201d1147d06c2eed3806f66d054130a3  tok/test_2016_flickr.lc.norm.tok.cs
3054f8453b394c41d17df5c15849b5c8  tok/test_2016_flickr.lc.norm.tok.de
09aa5360d1e0ae3e03742297eb720d7d  tok/test_2016_flickr.lc.norm.tok.en
647b8e2b48e705809f33acb5d42e4db1  tok/test_2016_flickr.lc.norm.tok.fr
16f01da9607f03da9f132ab30e241629  tok/test_2017_flickr.lc.norm.tok.de
79a14bd0d9833831e6eccaa5ed49a54f  tok/test_2017_flickr.lc.norm.tok.en
5767f31029d1d0c810aacf94dfd939c1  tok/test_2017_flickr.lc.norm.tok.fr
b63f1e0f850931af924de89fd8df168b  tok/test_2017_mscoco.lc.norm.tok.de
bc403421d105044d845b43cadbc6e1fd  tok/test_2017_mscoco.lc.norm.tok.en
b83c21222d209057dbc762d76a9421b3  tok/test_2017_mscoco.lc.norm.tok.fr
c71679508363f152fa157334775d7984  tok/test_2018_flickr.lc.norm.tok.cs
16afb081ec7e50c571913a8b731af351  tok/test_2018_flickr.lc.norm.tok.de
5f4a149095a979179580dafc01ed2239  tok/test_2018_flickr.lc.norm.tok.en
834f135a67bb4c5f503c87e3d3aa27d9  tok/test_2018_flickr.lc.norm.tok.fr
7f15de558e01cf9644a50fb4fcd0ef2c  tok/train.lc.norm.tok.cs
4380018035b602bd0d0c4f369918dfde  tok/train.lc.norm.tok.de
11ac4eac7988e6bd46cabe9755b71d26  tok/train.lc.norm.tok.en
7c48349119f8a7dbbff2dc33248623e2  tok/train.lc.norm.tok.fr
1b3fd3aa4306ee68623db2aa993855ab  tok/val.lc.norm.tok.cs
579f1cd1c81ae3917e4485613e0a62f7  tok/val.lc.norm.tok.de
02902c626a88ec3c0a56cca3c5bb77fe  tok/val.lc.norm.tok.en
a1cb900de37188e7220c719af23f9b87  tok/val.lc.norm.tok.fr
"""
_MD5 = {name: md5 for md5, name in (line.split() for line in _MD5SUMS.strip().splitlines())}


def _raw(stem: str, lang: str) -> files.SourceFile:
  url = files.github_raw(_REPO, _COMMIT, f"data/task1/raw/{stem}.{lang}.gz")
  return files.SourceFile(f"{stem}.{lang}.gz", url, md5=_MD5[f"{stem}.{lang}"])


def _tok(stem: str, lang: str) -> files.SourceFile:
  name = f"{stem}.lc.norm.tok.{lang}"
  url = files.github_raw(_REPO, _COMMIT, f"data/task1/tok/{name}")
  return files.SourceFile(f"tok/{name}.gz", url, md5=_MD5[f"tok/{name}"])


def splits_for(target: str) -> list[str]:
  """The split names of the ``en-<target>`` pair."""
  return [s for s in _SPLITS if not (target == "cs" and s in _NO_CZECH)]


_ALL_FILES = [f(stem, lang) for stem in _SPLITS.values() for lang in LANGUAGES
              if not (lang == "cs" and stem in _NO_CZECH) for f in (_raw, _tok)]


class Multi30kConfig(tfds.core.BuilderConfig):
  """One language pair ``source-target``; the source is always English."""

  def __init__(self, *, target: str, **kwargs):
    super().__init__(name=f"en-{target}", **kwargs)
    self.source, self.target = "en", target


class Multi30k(base.CorpusBuilder):
  """Multi30k captions, English -> German / French / Czech, aligned by line.

  Configs: ``en-de``, ``en-fr``, ``en-cs``.

  Features:
    source: str, the English caption (original case and punctuation).
    target: str, its translation.
    source_tok, target_tok: str, the same captions lowercased and
      Moses-tokenized (the repo's ``tok/`` files; tokenized BLEU, the usual
      Multi30k convention, is computed on these).
  Lines are stripped (a few end with a space, e.g. 645 of test_2018_flickr.cs).

  Splits: train (29,000), validation (1,014; the file ``val``),
  test_2016_flickr (1,000; the usual "Multi30k test", alias ``test``),
  test_2018_flickr (1,071), and for en-de and en-fr only test_2017_flickr
  (1,000) and test_2017_mscoco (461).
  """

  name = "multi30k"
  MANUAL_FOLDER = "multi30k"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://github.com/multi30k/dataset"
  CITATION = "Elliott et al. 2016 (Multi30K); Elliott et al. 2017; Barrault et al. 2018."
  BUILDER_CONFIGS = [
      Multi30kConfig(target=t, description=f"English -> {t}") for t in ("de", "fr", "cs")]
  SPLIT_ALIASES = {**base.COMMON_SPLIT_ALIASES, "test": "test_2016_flickr"}
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("multi30k", _ALL_FILES, _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        key: tfds.features.Text() for key in ("source", "target", "source_tok", "target_tok")})

  def _source_files(self):
    src, tgt = self.builder_config.source, self.builder_config.target
    needed = {}
    for split in splits_for(tgt):
      stem = _SPLITS[split]
      needed |= {(split, "source"): _raw(stem, src), (split, "target"): _raw(stem, tgt),
                 (split, "source_tok"): _tok(stem, src), (split, "target_tok"): _tok(stem, tgt)}
    return needed

  def _splits(self, paths):
    return {
        split: self._generate_examples({k: p for (s, k), p in paths.items() if s == split})
        for split in splits_for(self.builder_config.target)
    }

  def _generate_examples(self, paths):
    columns = {key: files.read_lines(path) for key, path in paths.items()}
    lengths = {str(paths[key]): len(lines) for key, lines in columns.items()}
    if len(set(lengths.values())) != 1:
      raise files.CorruptFileError(
          f"Multi30k files of one split are not aligned line by line: {lengths}")
    for i, row in enumerate(zip(*columns.values())):
      yield i, {key: line.strip() for key, line in zip(columns, row)}

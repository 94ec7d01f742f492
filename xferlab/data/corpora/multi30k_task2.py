"""``multi30k_task2``: Multi30k Task 2, independent English and German captions (5 per image)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from xferlab.data.corpora import base, files

_REPO, _COMMIT = "multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
_ORIGIN = (f"Multi30k task 2 (Elliott et al. 2016), github.com/{_REPO} @ {_COMMIT}: "
           "data/task2/raw/<split>.<1..5>.<lang>.gz and data/task2/image_splits/<split>_images.txt")

# Split name -> file stem; "val" is called "validation" like in every other corpus.
_SPLITS = {"train": "train", "validation": "val", "test_2016": "test_2016"}
LANGUAGES = ("de", "en")
CAPTIONS = (1, 2, 3, 4, 5)

# md5 of the decompressed files, measured on the ../shared/data copy (byte-for-byte copies of
# the repo's files; its SOURCE.md gives no checksums). Downloads are checked against them.
_MD5SUMS = """
a73c80d29174f8a0eed8aba6e19245d0  train.1.de
09b01bec0745232c95a35a36d70a1619  train.2.de
5d960ba4404c0f1f6098bd411b017791  train.3.de
4f2888382fd9fea25753f3f36f2c74c2  train.4.de
11c1bf6652332e2e7b789e68b1b379a5  train.5.de
26fac46f0f4070d27b06bb65a97ff359  train.1.en
39fe36e50cd1aecb265e3ac4de4adc6b  train.2.en
8c45b50a15817ca1f1f8f2a59eda0a57  train.3.en
9afe6e7e312afa43737ffc8f8812a6c8  train.4.en
435b052e58e49c32ce9e17964972ffac  train.5.en
e4a34070fad6f153d1d234748c345ac1  val.1.de
329f3482112f00661177efee1126aaf7  val.2.de
916836375a7ba06fbceb69f86aca42d4  val.3.de
0e57e76aa32532e9da5d105b8613538c  val.4.de
39491d7a805d26c013b18e1e63d510db  val.5.de
bcec42b857956b598bfda57d25785f1e  val.1.en
acbc72f53e3f5b8ac29da78fc8b791b3  val.2.en
1d6754c3ea311252f21329e4a06a3497  val.3.en
221c79b3bc4a480bc64cc1db39779cd1  val.4.en
3bbbf98d6ea20dfbd8585ed6540dc81f  val.5.en
b175a0034e2376cce42db36b1e01ba34  test_2016.1.de
9736088c74490147189fb9579efe9e67  test_2016.2.de
a35b2d593cb3723e4c296d5ec1cc1666  test_2016.3.de
abd60c67a37b05752cfe983ab4d4f154  test_2016.4.de
0322cc28c544e5bfad69d6983437564b  test_2016.5.de
71b886c5cad81ee945e163708c47307d  test_2016.1.en
946941ebf2a8a8adfb54102008d38963  test_2016.2.en
ef0f6906acb47e5cadbfca2ec0883c3f  test_2016.3.en
bed1f91291ce50e83506568ccecafa14  test_2016.4.en
2b35ca6b4e64ed562e609d869bccc5b4  test_2016.5.en
b5fa4fedfaa42b116ca6772cd0bf1223  train_images.txt
f4ad613558044b76f0473244b61497fe  val_images.txt
f63e2c0292ed2ed5aec62a4d97c0ae0c  test_2016_images.txt
"""
_MD5 = {name: md5 for md5, name in (line.split() for line in _MD5SUMS.strip().splitlines())}


def _captions(stem: str, number: int, lang: str) -> files.SourceFile:
  name = f"{stem}.{number}.{lang}"
  url = files.github_raw(_REPO, _COMMIT, f"data/task2/raw/{name}.gz")
  return files.SourceFile(f"{name}.gz", url, md5=_MD5[name])


def _images(stem: str) -> files.SourceFile:
  name = f"{stem}_images.txt"
  return files.SourceFile(f"image_splits_{name}",
                          files.github_raw(_REPO, _COMMIT, f"data/task2/image_splits/{name}"),
                          md5=_MD5[name])


_ALL_FILES = [_captions(stem, n, lang) for stem in _SPLITS.values() for lang in LANGUAGES
              for n in CAPTIONS] + [_images(stem) for stem in _SPLITS.values()]


class Multi30kTask2Config(tfds.core.BuilderConfig):
  """The captions of one language."""

  def __init__(self, *, lang: str, **kwargs):
    super().__init__(name=lang, **kwargs)
    self.lang = lang


class Multi30kTask2(base.CorpusBuilder):
  """Multi30k Task 2: five captions per image, written independently per language.

  Monolingual in-domain text for the Multi30k translation task (a target-side
  language model, back-translation). The captions of one image in the two
  languages are *not* translations of each other.

  Configs: ``de`` (default), ``en``: ``load("multi30k_task2/de", "train")``.

  Features:
    text: str, one caption as released, stripped.
    image: int32, the 0-based line number in the split's files, i.e. the
      index of the image in ``image_splits_<split>_images.txt``.
    caption: int32, 1..5, which file of the split the caption comes from
      (files are ordered by caption length per image: 1 holds the longest
      English caption).
    image_file: str, the Flickr30k file name of the image (``1000092795.jpg``).

  Splits: train (29,000 images x 5 = 145,000 captions), validation (1,014 x 5
  = 5,070; the files ``val``), test_2016 (1,000 x 5 = 5,000; aliases ``test``
  and ``test_2016_flickr``).
  Order: image by image, the five captions of each image in file order
  (image 0 captions 1..5, image 1 captions 1..5, ...): every prefix holds
  captions of all five length ranks.

  The images are those of Task 1 (``multi30k``): ``train`` the Task 1 train
  images, ``validation`` its validation images, ``test_2016`` its
  ``test_2016_flickr`` images. Never train on validation / test_2016 captions
  when evaluating on Task 1's validation / test: they describe the same pictures.
  """

  name = "multi30k_task2"
  MANUAL_FOLDER = "multi30k_task2"
  ORIGIN = _ORIGIN
  HOMEPAGE = "https://github.com/multi30k/dataset"
  CITATION = "Elliott et al. Multi30K: Multilingual English-German Image Descriptions. VL 2016."
  BUILDER_CONFIGS = [Multi30kTask2Config(lang="de", description="German captions"),
                     Multi30kTask2Config(lang="en", description="English captions")]
  SPLIT_ALIASES = {**base.COMMON_SPLIT_ALIASES, "test": "test_2016",
                   "test_2016_flickr": "test_2016"}
  MANUAL_DOWNLOAD_INSTRUCTIONS = files.instructions("multi30k_task2", _ALL_FILES, _ORIGIN)

  def _features(self):
    return tfds.features.FeaturesDict({
        "text": tfds.features.Text(),
        "image": tfds.features.Scalar(dtype=np.int32),
        "caption": tfds.features.Scalar(dtype=np.int32),
        "image_file": tfds.features.Text(),
    })

  def _source_files(self):
    lang = self.builder_config.lang
    needed = {}
    for split, stem in _SPLITS.items():
      needed[(split, "images")] = _images(stem)
      needed |= {(split, n): _captions(stem, n, lang) for n in CAPTIONS}
    return needed

  def _splits(self, paths):
    return {split: self._generate_examples({k: p for (s, k), p in paths.items() if s == split})
            for split in _SPLITS}

  def _generate_examples(self, paths):
    images = [line.strip() for line in files.read_lines(paths["images"])]
    captions = {n: files.read_lines(paths[n]) for n in CAPTIONS}
    lengths = {str(paths[n]): len(lines) for n, lines in captions.items()}
    lengths[str(paths["images"])] = len(images)
    if len(set(lengths.values())) != 1:
      raise files.CorruptFileError(
          f"Multi30k task 2 files of one split are not aligned line by line: {lengths}")
    for i, image_file in enumerate(images):
      for n in CAPTIONS:
        yield i * len(CAPTIONS) + n - 1, {"text": captions[n][i].strip(), "image": i,
                                          "caption": n, "image_file": image_file}

"""The per-task configuration: task sections, the merged keys, and old key names mapped for one
release (``xferlab.config.OLD_KEYS``, ``migrate``)."""

import json
import os
import warnings

import numpy as np
import pytest

from xferlab import config as config_lib
from xferlab.config import (OLD_KEYS, ConfigError, RenamedKeyWarning, apply_overrides,
                            from_json, load_experiment, to_json, validate)
from xferlab.defaults import TASK_SECTIONS, base_config
from xferlab.workdir import config_differences
from tests.conftest import QUICKSTART, ROOT

PTB = ROOT + "/experiments/lm/ptb.py"
WIKI = ROOT + "/experiments/lm/wiki.py"
MULTI30K = ROOT + "/experiments/translation/multi30k.py"
NEWS = ROOT + "/experiments/summarization/news_to_science.py"


@pytest.fixture(autouse=True)
def _every_warning_again(monkeypatch):
  monkeypatch.setattr(config_lib, "WARNED_OLD_KEYS", set())   # each old key warns once per process


ADDED_SINCE_THE_RENAME = {"language_model": ("state_reset_every",)}   # no old run has these


def written_before_the_rename(config) -> dict:
  """``config`` as xferlab wrote it before the per-task sections: every task's keys in flat
  ``data`` / ``model`` sections, the twins side by side, ``model.freeze_embeddings``."""
  tree = json.loads(to_json(config))
  task = tree["task"]
  seq2seq = task in ("translation", "summarization")
  old = base_config("translation").to_dict()   # the old defaults of every moved key ...
  old.update(base_config("summarization").to_dict())
  old.update(base_config("language_model").to_dict())
  old.update(base_config("classification").to_dict())
  old = json.loads(json.dumps(old, default=list))
  for section in ("classification", "language_model", "seq2seq", "translation",
                  "summarization"):
    values = tree.pop(section, old[section])   # ... and the run's own values where it has them
    for key in ADDED_SINCE_THE_RENAME.get(section, ()):
      values.pop(key, None)
    for key, value in values.items():
      destination = "model" if f"model.{key}" in OLD_KEYS else "data"
      tree[destination][key] = value
  data = tree["data"]
  size, seed = data.pop("subset_size"), data.pop("subset_seed")
  data["num_labels"], data["label_seed"] = (0, -1) if seq2seq else (int(size), seed)
  data["fraction"], data["subset_seed"] = (size or 1.0, seed) if seq2seq else (1.0, 0)
  sources, other = data.pop("vocab_sources"), data.pop("adversarial_domain")
  data["vocab_languages"] = sources if task == "translation" else ["en", "fr", "de"]
  data["vocab_corpora"] = sources if task == "summarization" else []
  data["adversarial_pair"] = other if task == "translation" else ""
  data["adversarial_corpus"] = other if task == "summarization" else ""
  frozen = tree["finetune"]["frozen"]
  tree["model"]["freeze_embeddings"] = "embedding" in frozen
  tree["finetune"]["frozen"] = [p for p in frozen if p != "embedding"]
  return tree


def test_a_config_holds_its_task_sections_and_no_other():
  for task, sections in TASK_SECTIONS.items():
    config = base_config(task)
    others = {s for own in TASK_SECTIONS.values() for s in own} - set(sections)
    assert all(s in config for s in sections) and not any(s in config for s in others), task
    validate(config)
  swapped = apply_overrides(base_config(), {"task": "language_model",
                                            "language_model.bptt": 12})
  assert swapped.language_model.bptt == 12 and "classification" not in swapped
  mixed = base_config()
  mixed.task = "translation"
  with pytest.raises(ConfigError, match="base_config\\('translation'\\)"):
    validate(mixed)


def test_unknown_sections_and_keys_still_name_the_valid_ones():
  config, _ = load_experiment(QUICKSTART)
  with pytest.raises(ConfigError, match="section of translation runs.*Sections: arms, "
                                        "classification, data"):
    apply_overrides(config, ["translation.pair=de-en"])
  with pytest.raises(ConfigError, match="section of translation runs"):
    with pytest.warns(RenamedKeyWarning, match="'data.pair' is now 'translation.pair'"):
      apply_overrides(config, ["data.pair=de-en"])     # an old key of another task
  with pytest.raises(ConfigError) as e:
    apply_overrides(config, ["data.subset_sise=3"])
  assert "data.subset_size" in str(e.value) and "data.subset_seed" in str(e.value)
  with pytest.raises(ConfigError, match="classification.head_hidden"):
    apply_overrides(config, ["classification.head=(50,)"])


def test_an_old_key_warns_once_naming_the_new_one_and_is_applied():
  config, _ = load_experiment(QUICKSTART)
  with pytest.warns(RenamedKeyWarning, match="'data.num_labels' is now 'data.subset_size'"):
    c = apply_overrides(config, ["data.num_labels=100", "data.label_seed=3",
                                 "model.pooling=max", "model.freeze_embeddings=True"])
  assert (c.data.subset_size, c.data.subset_seed) == (100, 3)
  assert c.classification.pooling == ("max",) and c.finetune.frozen == ("embedding",)
  with warnings.catch_warnings():
    warnings.simplefilter("error")                     # once: the second use is silent
    again = apply_overrides(config, {"data.num_labels": 7})
  assert again.data.subset_size == 7
  assert apply_overrides(c, {"model.freeze_embeddings": False}).finetune.frozen == ()
  translation, _ = load_experiment(MULTI30K + ":copy")
  with pytest.warns(RenamedKeyWarning):
    t = apply_overrides(translation, ["data.fraction=0.25", "data.pair=de-en",
                                      "data.vocab_languages=('en','de')",
                                      "data.adversarial_pair=fr-en", "model.copy=True"])
  assert (t.data.subset_size, t.translation.pair, t.seq2seq.vocab_sources) == (
      0.25, "de-en", ("en", "de"))
  assert t.seq2seq.adversarial_domain == "fr-en" and t.seq2seq.copy
  assert apply_overrides(translation, {"data.fraction": 1.0}).data.subset_size == 0


def test_an_experiment_file_with_old_keys_is_mapped(tmp_path):
  path = tmp_path / "old_style.py"
  path.write_text("from xferlab.defaults import base_config\n"
                  "def get_config(arg=None):\n"
                  "  c = base_config()\n"
                  "  c.task = 'language_model'\n"
                  "  c.data.bptt = 50\n"
                  "  c.model.adaptive_softmax_cutoffs = (10, 20)\n"
                  "  return c\n")
  with pytest.warns(RenamedKeyWarning, match="'data.bptt' is now 'language_model.bptt'"):
    config, _ = load_experiment(str(path))
  assert config.language_model.bptt == 50 and config.language_model.adaptive_softmax_cutoffs == (
      10, 20)
  assert "classification" not in config and "bptt" not in config.data
  validate(config)


@pytest.mark.parametrize("spec", [QUICKSTART, QUICKSTART + ":dann", PTB + ":smoke",
                                  WIKI, MULTI30K + ":de-en,0.1,adversarial",
                                  MULTI30K + ":en-de,0.1,mixed", MULTI30K + ":copy",
                                  NEWS + ":bbc_adversarial", NEWS + ":copy",
                                  ROOT + "/experiments/sentiment/imdb.py:vectors"])
def test_a_config_written_before_the_rename_compares_equal(spec):
  config, _ = load_experiment(spec)
  old = written_before_the_rename(config)
  assert "pair" in old["data"] and "freeze_embeddings" in old["model"]
  read = from_json(json.dumps(old))                    # as a workdir's config.json is read
  assert read.to_dict() == from_json(to_json(config)).to_dict()
  assert config_differences(read, config) == []
  changed = apply_overrides(config, {"seed": 5, "seeds": tuple(config.seeds)})   # seeds kept
  assert config_differences(read, changed) == ["seed"]


def test_the_committed_old_config_of_the_wiki_lm_matches_its_experiment():
  """``benchmarks/results/lm_wiki/config.json`` was written before the rename."""
  with open(os.path.join(ROOT, "benchmarks/results/lm_wiki/config.json")) as f:
    text = f.read()
  assert '"bptt": 70' in text and '"num_labels"' in text
  config, _ = load_experiment(WIKI)
  assert config_differences(from_json(text), config) == []
  assert config_differences(from_json(text), apply_overrides(config, {
      "language_model.bptt": 35})) == ["language_model.bptt"]


def test_the_merged_subset_key_keeps_what_num_labels_and_fraction_kept(monkeypatch):
  """Classification: a class-balanced count, a new subset per seed (label_seed -1) or a fixed
  one; encoder-decoder tasks: a share of the pairs, the same for every seed (subset_seed 0)."""
  from xferlab.data import domains
  from xferlab.tasks import translation
  rows = {"train": [{"text": f"t{i}", "label": i % 2} for i in range(400)],
          "unsup": [{"text": "u"}], "test": [{"text": "x", "label": 0}]}
  monkeypatch.setattr("xferlab.data.load", lambda name, split, manual_dir=None: rows[split])
  imdb = apply_overrides(base_config(), {"data.name": "imdb"})
  all_texts = np.array([r["label"] for r in rows["train"]])
  train = ([r["text"] for r in rows["train"]], all_texts)

  def kept(overrides, seed):
    data = apply_overrides(imdb, overrides).data
    corpus = domains.load_domain_adaptation(data, seed)
    return sorted(corpus["source_train"][0] + list(corpus["source_val"][0]))

  with pytest.warns(RenamedKeyWarning):
    old = kept({"data.num_labels": 100}, seed=4)
  assert old == kept({"data.subset_size": 100}, seed=4) == sorted(
      domains.balanced_subset(*train, 100, 4)[0])
  assert kept({"data.subset_size": 100}, seed=5) != old          # -1: the run's seed
  fixed = kept({"data.subset_size": 100, "data.subset_seed": 4}, seed=5)
  assert fixed == old and kept({"data.label_seed": 4, "data.num_labels": 100}, seed=5) == old
  assert len(kept({"data.subset_size": 0.25}, seed=4)) == 100     # a share of 400

  copy, _ = load_experiment(MULTI30K + ":copy")
  everything = translation.load_pairs(copy, "train")[0]
  with pytest.warns(RenamedKeyWarning):
    by_fraction = translation.load_pairs(apply_overrides(copy, {"data.fraction": 0.25}), "train")
  share = apply_overrides(copy, {"data.subset_size": 0.25})
  assert translation.load_pairs(share, "train") == by_fraction
  keep = np.sort(np.random.default_rng(0).permutation(len(everything))[:round(
      0.25 * len(everything))])                                   # the formula of data.fraction
  assert by_fraction[0] == [everything[i] for i in keep]
  assert translation.load_pairs(apply_overrides(share, {"seed": 3}), "train") == by_fraction
  assert len(translation.load_pairs(apply_overrides(copy, {"data.subset_size": 7}),
                                    "train")[0]) == 7
  with pytest.raises(ConfigError, match="data.subset_size"):
    validate(apply_overrides(copy, {"data.subset_size": 2.5}))


def test_a_corpus_file_named_from_another_machine_compares_equal(tmp_path, monkeypatch):
  """A run (or an unpacked record) written where the corpora lay elsewhere still matches:
  GloVe's vectors are the same file of the corpus folder; another file is a difference."""
  monkeypatch.setenv("XFERLAB_DATA", str(tmp_path / "data"))
  glove = "glove_6b_50d/glove.6B.50d.top100k.txt.gz"
  config = apply_overrides(base_config(), {"model.pretrained_vectors": str(tmp_path / "data" /
                                                                         glove)})
  elsewhere = from_json(to_json(apply_overrides(config, {
      "model.pretrained_vectors": "/elsewhere/shared/data/" + glove})))
  assert config_differences(elsewhere, config) == []
  other_file = from_json(to_json(apply_overrides(config, {
      "model.pretrained_vectors": "/elsewhere/shared/data/glove_6b_50d/other.txt.gz"})))
  assert config_differences(other_file, config) == ["model.pretrained_vectors"]
  outside = apply_overrides(config, {"model.pretrained_vectors": "/mine/" + glove})
  assert config_differences(elsewhere, outside) == ["model.pretrained_vectors"]

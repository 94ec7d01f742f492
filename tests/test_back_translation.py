"""Monolingual target text for translation: back-translation (``xferlab.studies.back_translate``,
synthetic pairs in the training stream), the decoder language model, and restoring its decoder
side (with a second ``init_from`` source) into a seq2seq model. Tiny copy-task models only."""

from __future__ import annotations

import json
import os
import warnings

import jax
import numpy as np
import pytest

from benchmarks import arms, translation as bench
from xferlab import launch
from xferlab.metrics import DegenerateResultWarning
from xferlab.config import apply_overrides, flatten, load_experiment
from xferlab.data.tokenizer import EOS_ID, UNK_ID
from xferlab.param_paths import leaf_paths
from xferlab.studies import back_translate as bt
from xferlab.tasks import translation
from xferlab.transfer import model_based

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI30K = os.path.join(ROOT, "experiments", "translation", "multi30k.py")
QUIET = {"train.progress_bar": False}


def experiment(argument: str, overrides=None):
  config, module = load_experiment(f"{MULTI30K}:{argument}")
  return apply_overrides(config, dict(QUIET, **(overrides or {}))), module


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
  """A copy-task model (target = source) that stands in for the reverse model."""
  workdir = str(tmp_path_factory.mktemp("copy"))
  config, _ = experiment("copy")
  launch.run_config(config, workdir, verbose=False)
  return workdir


def synthetic_lines(out) -> list[dict]:
  with open(os.path.join(out, "synthetic.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


# ------------------------------------------------------------------------------
# Back-translation.

def test_back_translation_keeps_count_and_order_and_resumes_after_a_kill(copy_run, tmp_path,
                                                                        monkeypatch):
  texts = translation.copy_corpus("validation")[:22] + ["", "w1 w2 w3", "  "]
  out = str(tmp_path / "bt")
  restored = launch.restore(copy_run)
  calls, killed = [], []
  original = bt.translate_chunk

  def killed_at_chunk_1(restored, part, settings, index, cache):
    if index == 1 and not killed:
      killed.append(index)
      raise KeyboardInterrupt
    calls.append(index)
    return original(restored, part, settings, index, cache)

  monkeypatch.setattr(bt, "translate_chunk", killed_at_chunk_1)
  with pytest.raises(KeyboardInterrupt):
    bt.back_translate(restored, texts, out, chunk=10, log=lambda _: None)
  assert sorted(os.listdir(tmp_path / "bt" / "chunks")) == ["00000.json", "00000.jsonl"]
  assert not os.path.exists(tmp_path / "bt" / "synthetic.jsonl")
  (tmp_path / "bt" / "chunks" / "00001.jsonl.tmp").write_text('{"half": ')   # a torn write
  calls.clear()
  summary = bt.back_translate(restored, texts, out, chunk=10, log=lambda _: None)
  assert calls == [1, 2]                                 # the finished chunk is not redone
  pairs = synthetic_lines(out)
  assert len(pairs) == len(texts) == summary["size"] == 25
  assert [p["target"] for p in pairs] == texts            # input order
  assert pairs[22]["source"] == pairs[24]["source"] == ""  # empty texts, empty sources
  copied = [p["source"] == p["target"] for p in pairs if p["target"].strip()]
  assert np.mean(copied) > 0.9                           # the copy model copies: order kept
  assert summary["seconds"] > 0 and summary["tokens_per_second"] > 0
  assert summary["settings"]["mode"] == "beam" and summary["settings"]["beam_size"] == 5
  saved = json.loads((tmp_path / "bt" / "back_translate.json").read_text())
  assert saved["size"] == 25 and saved["settings"]["model"] == os.path.abspath(copy_run)
  calls.clear()
  again = bt.back_translate(restored, texts, out, chunk=10, log=lambda _: None)
  assert calls == [] and synthetic_lines(out) == pairs and again["size"] == 25
  with pytest.raises(ValueError, match="other settings"):
    bt.back_translate(restored, texts, out, chunk=10, beam=1, log=lambda _: None)
  with pytest.raises(ValueError, match="other texts"):
    bt.back_translate(restored, texts[::-1], out, chunk=10, log=lambda _: None)


def test_a_limited_run_grows_into_the_whole_input(copy_run, tmp_path):
  texts = translation.copy_corpus("validation")[:12]
  out = str(tmp_path / "bt")
  restored = launch.restore(copy_run)
  bt.back_translate(restored, texts[:7], out, chunk=5, beam=1, log=lambda _: None)
  lines = []
  bt.back_translate(restored, texts, out, chunk=5, beam=1, log=lines.append)
  assert "1 done, 2 to translate" in lines[0]       # chunk 1 held 2 of its 5 texts: redone
  assert [p["target"] for p in synthetic_lines(out)] == texts


def test_shards_split_the_chunks_and_the_last_one_writes_the_outputs(copy_run, tmp_path):
  texts = translation.copy_corpus("validation")[:13]
  out, restored = str(tmp_path / "bt"), launch.restore(copy_run)
  whole = bt.back_translate(restored, texts, str(tmp_path / "whole"), chunk=3, beam=1,
                            log=lambda _: None)
  lines = []
  assert bt.back_translate(restored, texts, out, chunk=3, beam=1, shard=(1, 2),
                           log=lines.append) is None     # chunks 0, 2, 4 are still missing
  assert "shard 1/2 has 2; 0 done, 2 to translate" in lines[0]
  assert sorted(f for f in os.listdir(tmp_path / "bt" / "chunks") if f.endswith("l")) == [
      "00001.jsonl", "00003.jsonl"]
  assert not os.path.exists(tmp_path / "bt" / "synthetic.jsonl")
  summary = bt.back_translate(restored, texts, out, chunk=3, beam=1, shard=(0, 2),
                              log=lines.append)
  assert summary["size"] == 13 and synthetic_lines(out) == synthetic_lines(tmp_path / "whole")
  assert summary["source_tokens"] == whole["source_tokens"]
  assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
  for bad in ("2/2", "1", "a/b"):
    with pytest.raises(ValueError, match="--shard"):
      bt.parse_shard(bad)


def test_sampled_back_translations_are_reproducible(copy_run, tmp_path):
  texts = translation.copy_corpus("validation")[:9]
  restored, cache = launch.restore(copy_run), {}

  def run(name, **options):
    bt.back_translate(restored, texts, str(tmp_path / name), chunk=4, sample=True,
                      log=lambda _: None, cache=cache, **options)
    return [p["source"] for p in synthetic_lines(tmp_path / name)]

  first = run("a", temperature=3.0)
  assert run("b", temperature=3.0) == first and len(first) == len(texts)
  assert run("c", temperature=3.0, seed=1) != first
  assert all(w.startswith("w") for s in first for w in s.split())
  assert bt.decoding_settings(restored, sample=True)["beam_size"] == 1


def test_cli_back_translates_a_text_file(copy_run, tmp_path, capsys):
  source = tmp_path / "captions.txt"
  texts = ["w1 w2 w3", "w4 w5", "", "w6 w7 w8 w9"]
  source.write_text("\n".join(texts) + "\n")
  out = tmp_path / "bt"
  assert bt.main([copy_run, "--source", str(source), "--out", str(out), "--chunk", "3",
                  "--beam", "1"]) == 0
  assert [p["target"] for p in synthetic_lines(out)] == texts
  summary = json.loads((out / "back_translate.json").read_text())
  assert summary["settings"]["split"] == "" and summary["settings"]["mode"] == "greedy"
  assert '"size": 4' in capsys.readouterr().out


def test_back_translation_refuses_a_corpus_in_the_wrong_language(copy_run):
  restored = launch.restore(copy_run)
  restored.config.data.name = "multi30k"                 # pretend: an en->de model
  with pytest.raises(ValueError, match="back-translate with a de-en model"):
    bt.check_direction(restored, "multi30k_task2/de")
  restored.config.translation.pair = "de-en"
  bt.check_direction(restored, "multi30k_task2/de")


# ------------------------------------------------------------------------------
# Synthetic pairs in the training stream.

def write_synthetic(folder, pairs, **settings) -> str:
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, "synthetic.jsonl")
  with open(path, "w") as f:
    f.writelines(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs)
  with open(os.path.join(folder, "back_translate.json"), "w") as f:
    json.dump({"size": len(pairs), "settings": settings}, f)
  return path


def test_synthetic_pairs_tags_and_real_repeat_shape_the_training_stream(tmp_path):
  synthetic = [("w1 w2", "w3 w4"), ("", "w5"), ("w6", ""), ("w7 w8", "w9")]
  path = write_synthetic(tmp_path / "bt", synthetic, split="train", model_data="copy")
  config, _ = experiment("copy,1,bt", {"translation.synthetic_pairs": path})
  assert (config.translation.synthetic_tag, config.translation.real_repeat) == (True, 2)
  real = translation.copy_corpus("train")
  sources, targets = translation.load_pairs(config, "train")
  assert sources == real * 2 + ["<bt> w1 w2", "<bt> ", "<bt> w7 w8"]    # empty target dropped
  assert targets == real * 2 + ["w3 w4", "w5", "w9"]
  valid = translation.load_pairs(config, "validation")
  assert valid == (translation.copy_corpus("validation"),) * 2         # evaluation untouched
  plain = apply_overrides(config, {"translation.synthetic_tag": False, "translation.real_repeat": 1,
                                   "translation.synthetic_limit": 1})
  assert translation.load_pairs(plain, "train")[0] == real + ["w1 w2"]
  assert translation.load_pairs(apply_overrides(config, {"translation.synthetic_pairs": str(
      tmp_path / "bt")}), "train") == (sources, targets)             # the folder works
  with pytest.raises(ValueError, match="real_repeat"):
    translation.load_pairs(apply_overrides(config, {"translation.real_repeat": 0}), "train")

  task = translation.TranslationTask()
  data = task.prepare(config, str(tmp_path / "run"))
  tag = data.tokenizer.encode("<bt>")
  assert len(tag) == 1 and tag[0] != UNK_ID                             # a piece of its own
  stream = data.train
  assert len(stream.sequences) == 2 * len(real) + 3
  assert stream.sequences[-3][0] == tag[0] and stream.sequences[-2] == tag
  assert stream.targets[-1] == data.tokenizer.encode("w9")


def test_synthetic_settings_are_checked():
  config, _ = experiment("en-de,0.1,bt")
  d = config
  translation.check_synthetic_settings(d, {"split": "train", "model_data": "multi30k",
                                           "model_pair": "de-en"})
  with pytest.raises(ValueError, match="validation"):
    translation.check_synthetic_settings(d, {"split": "validation"})
  with pytest.raises(ValueError, match="needs back-translations by a de-en model"):
    translation.check_synthetic_settings(d, {"split": "train", "model_data": "multi30k",
                                             "model_pair": "en-de"})
  assert translation.tokenizer_symbols(d) == ["<bt>"]
  d.translation.language_tags = True
  assert translation.tokenizer_symbols(d) == list(translation.LANGUAGE_TAGS) + ["<bt>"]


def test_the_bt_arms_and_their_prerequisites(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)   # where no runs/ exist
  config, _ = experiment("en-de,0.1,bt")
  assert config.translation.synthetic_pairs == "runs/translation/bt/de-en-10-transfer/synthetic.jsonl"
  made_by = config.init_from.made_by.split(" && ")
  assert made_by[1].endswith("multi30k.py:de-en,0.1,transfer --workdir "
                             "runs/translation/de-en-10-transfer")
  assert made_by[2] == ("python -m xferlab.studies.back_translate "
                        "runs/translation/de-en-10-transfer --source multi30k_task2/de "
                        "--split train --out runs/translation/bt/de-en-10-transfer")
  with pytest.raises(FileNotFoundError, match="translation.synthetic_pairs.*Make it first: python"):
    model_based.check_prerequisites(config)
  config, _ = experiment("en-de,0.1,bt_transfer")
  assert (config.init_from.path, config.init_from.vocab) == ("runs/translation/en-fr", "auto")
  config, _ = experiment("en-de,1,bt")
  assert config.translation.synthetic_pairs.startswith("runs/translation/bt/de-en/")
  with pytest.raises(ValueError, match="Task 2"):
    experiment("en-fr,0.1,bt")
  with pytest.raises(ValueError, match="FRACTION must be 1"):
    experiment("en-de,0.1,lm")


# ------------------------------------------------------------------------------
# The decoder language model and two init_from sources.

def pure_params(model) -> dict:
  from flax import nnx
  return nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])


def leaves(tree) -> dict[str, np.ndarray]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {".".join(str(getattr(k, "key", k)) for k in path): np.asarray(v) for path, v in flat}


def check_sources(params: dict, sources: dict[str, dict]) -> None:
  """Every leaf of ``params`` equals the leaf of the source whose prefix is longest."""
  for name, value in leaves(params).items():
    prefix = max((p for p in sources if name == p or name.startswith(p + ".") or not p),
                 key=len)
    np.testing.assert_array_equal(value, leaves(sources[prefix])[name], err_msg=name)


@pytest.fixture(scope="module")
def lm_and_parent(tmp_path_factory):
  """A copy-sentence decoder LM (empty sources) and a copy-task 'parent', a few steps each."""
  base = tmp_path_factory.mktemp("lm")
  steps = {"train.num_steps": 12, "train.eval_every": 12}
  lm, _ = experiment("copy,1,lm", steps)
  parent, _ = experiment("copy", dict(steps, seed=7))
  results = launch.run_config(lm, str(base / "lm"), verbose=False)
  with warnings.catch_warnings():   # 12 steps translate nothing yet: that is not the point
    warnings.simplefilter("ignore", DegenerateResultWarning)
    launch.run_config(parent, str(base / "parent"), verbose=False)
  return str(base / "lm"), str(base / "parent"), results


def test_task2_captions_feed_the_language_model_and_back_translation(tmp_path, monkeypatch):
  """On the builder's fixture files: the training captions in corpus order, nothing else."""
  from tests.data.test_new_corpora import make_task2
  make_task2(tmp_path / "data")
  monkeypatch.setenv("XFERLAB_DATA_DIR", str(tmp_path / "tfds"))
  config, _ = experiment("en-de,1,lm", {"data.manual_dir": str(tmp_path / "data")})
  sources, targets = translation.decoder_lm_pairs(config)
  expected = [f"train de image {i} caption {n}" for i in range(3) for n in range(1, 6)]
  assert targets == expected and sources == [""] * 15
  assert bt.source_texts("multi30k_task2/de", "train", str(tmp_path / "data")) == expected
  wrong = apply_overrides(config, {"translation.monolingual_target": "multi30k_task2/en"})
  with pytest.raises(ValueError, match="not in the target language"):
    translation.decoder_lm_pairs(wrong)


def test_decoder_lm_reads_empty_sources(lm_and_parent):
  config, _ = experiment("copy,1,lm")
  assert config.translation.monolingual_target == "copy" and config.report_metric == "valid_perplexity"
  sources, targets = translation.load_pairs(config, "train")
  assert set(sources) == {""} and targets == translation.copy_corpus("train")
  valid = translation.load_pairs(config, "validation")
  assert set(valid[0]) == {""} and valid[1] == translation.copy_corpus("validation")
  task = translation.TranslationTask()
  restored = launch.restore(lm_and_parent[0])
  ids, _ = task.encode_pairs(restored.tokenizer, ["", "w1"], ["w1", "w1"], config)
  assert ids[0] == [EOS_ID] and ids[1] != [EOS_ID]
  results = lm_and_parent[2]
  assert results["valid_perplexity"] > 1.0 and "test_bleu" not in results
  with pytest.raises(ValueError, match="subset_size=0"):
    translation.decoder_lm_pairs(apply_overrides(config, {"data.subset_size": 0.5}))


def test_restoring_a_decoder_lm_moves_exactly_the_named_subtrees(lm_and_parent, tmp_path):
  lm_dir, parent_dir, _ = lm_and_parent
  side = load_experiment(MULTI30K)[1].DECODER_SIDE
  child, _ = experiment("copy")
  fresh = pure_params(launch.build(child, str(tmp_path / "fresh")).model)
  lm = pure_params(launch.restore(lm_dir).model)
  seeded = apply_overrides(child, {"init_from.path": lm_dir, "init_from.subtrees": side})
  params = pure_params(launch.build(seeded, str(tmp_path / "seeded")).model)
  check_sources(params, {"": fresh, **{s: lm for s in side}})
  assert not np.array_equal(leaves(lm)["seq2seq.decoder.cell.input_proj.kernel"],
                            leaves(fresh)["seq2seq.decoder.cell.input_proj.kernel"])
  assert len(leaves(params)) == len(leaf_paths(fresh))


def test_a_second_init_from_source_takes_the_parent_encoder(lm_and_parent, tmp_path):
  lm_dir, parent_dir, _ = lm_and_parent
  module = load_experiment(MULTI30K)[1]
  child, _ = experiment("copy")
  fresh = pure_params(launch.build(child, str(tmp_path / "fresh")).model)
  lm = pure_params(launch.restore(lm_dir).model)
  parent = pure_params(launch.restore(parent_dir).model)
  both = apply_overrides(child, {"init_from.path": lm_dir,
                                 "init_from.subtrees": module.DECODER_SIDE,
                                 "init_from.extra": ((parent_dir, module.ENCODER_SIDE),)})
  params = pure_params(launch.build(both, str(tmp_path / "both")).model)
  check_sources(params, {"": fresh, **{s: lm for s in module.DECODER_SIDE},
                         **{s: parent for s in module.ENCODER_SIDE}})
  # A later source wins where subtrees overlap; a bare string is one subtree.
  overlap = apply_overrides(child, {"init_from.path": lm_dir, "init_from.subtrees": ("seq2seq",),
                                    "init_from.extra": ((parent_dir, "seq2seq.decoder", ""),)})
  params = pure_params(launch.build(overlap, str(tmp_path / "overlap")).model)
  check_sources(params, {"": lm, "seq2seq.decoder": parent})
  missing = apply_overrides(both, {"init_from.extra": ((str(tmp_path / "nowhere"), ("x",)),),
                                   "init_from.made_by": "make it"})
  with pytest.raises(FileNotFoundError, match="init_from.extra = .*nowhere.*make it"):
    model_based.check_prerequisites(missing)
  with pytest.raises(ValueError, match=r"init_from.extra\[0\]"):
    model_based.init_sources(apply_overrides(child, {"init_from.extra": ("just a path",)})
                             .init_from)


def test_the_declm_arms_name_both_sources():
  config, module = experiment("en-de,0.1,declm")
  assert (config.init_from.path, config.init_from.subtrees) == ("runs/translation/de-lm",
                                                                module.DECODER_SIDE)
  assert config.init_from.made_by.endswith(":en-de,1,lm --workdir runs/translation/de-lm")
  config, _ = experiment("en-de,0.1,declm_transfer")
  assert config.init_from.path == "runs/translation/de-lm-transfer"
  assert config.init_from.extra == (("runs/translation/en-fr", module.ENCODER_SIDE, ""),)
  assert [s[0] for s in model_based.init_sources(config.init_from)] == [
      "runs/translation/de-lm-transfer", "runs/translation/en-fr"]
  config, _ = experiment("en-de,1,lm_transfer")
  assert config.translation.monolingual_target == "multi30k_task2/de"
  assert (config.init_from.path, config.init_from.subtrees) == ("runs/translation/en-fr",
                                                                ("seq2seq",))


# ------------------------------------------------------------------------------
# The benchmark's arms (no training).

def test_benchmark_points_the_new_arms_at_their_prerequisites():
  for arm, needs in bench.PREREQUISITES.items():
    assert arm in bench.ARMS and all(bench.split_prerequisite(n)[1] in bench.ARMS
                                     for n in needs.values())
  out = "/tmp/out"
  overrides = bench.prerequisite_overrides("de_10_bt", out)
  assert overrides == ["translation.synthetic_pairs=/tmp/out/bt_deen_10_transfer/synthetic.jsonl"]
  overrides = bench.prerequisite_overrides("de_10_bt_all_transfer", out)
  assert overrides == [
      "translation.synthetic_pairs=/tmp/out/bt_all_deen_10_transfer/synthetic.jsonl"]
  # --bt-limit caps the bt: corpora only; bt_all: always covers every caption.
  captions = [f"c{i}" for i in range(5)]
  assert bench.captions_to_translate(captions, "bt:", 2) == ["c0", "c1"]
  assert bench.captions_to_translate(captions, "bt:", 0) == captions
  assert bench.captions_to_translate(captions, "bt_all:", 2) == captions
  # ... and the all-captions arm is de_10_bt_transfer in every setting but its corpus.
  assert (arms.arm_config(bench.EXPERIMENT, bench.ARMS, "de_10_bt_all_transfer", 0, out, [])
          == arms.arm_config(bench.EXPERIMENT, bench.ARMS, "de_10_bt_transfer", 0, out, []))
  overrides = bench.prerequisite_overrides("de_10_declm_transfer", out)
  config = arms.arm_config(bench.EXPERIMENT, bench.ARMS, "de_10_declm_transfer", 1, out,
                           overrides)
  assert config.init_from.path == "/tmp/out/de_lm_transfer/seed_0" and config.seed == 1
  assert config.init_from.extra[0][0] == "/tmp/out/fr_full/seed_0"
  assert config.init_from.extra[0][1] == load_experiment(MULTI30K)[1].ENCODER_SIDE
  config = arms.arm_config(bench.EXPERIMENT, bench.ARMS, "de_10_declm", 0, out, [])
  assert config.init_from.path == "/tmp/out/de_lm/seed_0"
  assert bench.full_data("de_full_bt") and not bench.full_data("de_10_bt")
  # The variants differ from de_10_bt_transfer in their one setting only.
  base = arms.arm_config(bench.EXPERIMENT, bench.ARMS, "de_10_bt_transfer", 0, out, [])
  for arm, settings in bench.ARM_SETTINGS.items():
    config = arms.arm_config(bench.EXPERIMENT, bench.ARMS, arm, 0, out, settings)
    changed = {k for k, v in flatten(config).items() if flatten(base).get(k) != v}
    assert changed == {s.split("=")[0] for s in settings}, arm
    assert bench.PREREQUISITES[arm] == bench.PREREQUISITES["de_10_bt_transfer"]


def test_benchmark_report_has_back_translations_and_the_acceptance_bar(tmp_path):
  from xferlab.metrics import mean_std
  stat = lambda *v: mean_std(v)
  results = {"de_full": {"test_bleu": stat(36.0)},
             "de_10_transfer": {"test_bleu": stat(26.0, 27.0), "valid_bleu": stat(28.0, 28.0)},
             "de_10_bt": {"test_bleu": stat(31.0, 32.0), "valid_bleu": stat(33.0, 33.0),
                          "valid_chrf": stat(60.0, 61.0)},
             "de_full_bt": {"test_bleu": stat(38.0)},
             "de_10_adversarial": {"test_bleu": stat(33.0), "valid_bleu": stat(40.0)}}  # de→en
  summaries = {"bt:deen_10_transfer": {
      "size": 145000, "seconds": 3600.0, "tokens_per_second": 1234.0, "empty_outputs": 2,
      "model_results": {"valid_bleu": 33.4},
      "settings": {"model": str(tmp_path / "deen_10_transfer" / "seed_0"), "mode": "beam",
                   "beam_size": 5}}}
  text = bench.report(results, str(tmp_path), summaries)
  assert "| de_10_bt | 2 | 31.5 ± 0.5 | - | - | 33.0 ± 0.0 | 60.5 ± 0.5 |" in text
  assert "| bt:deen_10_transfer | deen_10_transfer/seed_0 | 33.4 | beam 5 | 145,000 | 60.0 |" in text
  assert "best 10% arm by validation BLEU: de_10_bt, test 31.5 = 88% of de_full 36.0" in text
  assert "de_full_bt: 38.0 against de_full 36.0 (+2.0)" in text
  saved = json.loads((tmp_path / "back_translation.json").read_text())["bt:deen_10_transfer"]
  assert saved["size"] == 145000
  assert saved["settings"]["model"] == os.path.join("deen_10_transfer", "seed_0")   # portable
  assert bench.back_translation_lines({"bt": saved}) == bench.back_translation_lines(
      {"bt": summaries["bt:deen_10_transfer"]})
  del results["de_full"]
  assert "of the recorded de_full 36.9" in bench.report(results, str(tmp_path))


def test_the_mix_choices_are_made_on_validation_beyond_the_seed_noise():
  from xferlab.metrics import mean_std
  stat = lambda *v: mean_std(v)
  results = {"de_10_bt_transfer": {"valid_bleu": stat(28.5, 29.1)},   # sample std 0.42
             "de_10_bt_transfer_untagged": {"valid_bleu": stat(28.9)},
             "de_10_bt_transfer_unrepeated": {"valid_bleu": stat(23.7)}}
  assert bench.mix_choice_lines(results) == [
      "- the <bt> tag on synthetic sources: val BLEU 28.8 with (2 seeds), 28.9 without "
      "(de_10_bt_transfer_untagged, 1): no difference beyond two standard errors (± 1.0); "
      "keep the default",
      "- the real pairs repeated 10 times: val BLEU 28.8 with (2 seeds), 23.7 without "
      "(de_10_bt_transfer_unrepeated, 1): keep it"]
  results["de_10_bt_transfer_untagged"] = {"valid_bleu": stat(30.5, 30.7)}
  assert bench.mix_choice_lines(results)[0].endswith("drop it")
  results["de_10_bt_transfer"] = {"valid_bleu": stat(28.5)}
  assert bench.mix_choice_lines(results)[1].endswith("no spread to judge by (one seed each)")
  del results["de_10_bt_transfer_unrepeated"]["valid_bleu"]
  assert len(bench.mix_choice_lines(results)) == 1   # a variant without scores is left out


def test_arm_seeds_sets_one_arms_seed_count_and_names_the_valid_arms():
  import argparse
  args = argparse.Namespace(seeds=2, full_seeds=3, arm_seeds=["de_10_bt_transfer_untagged=1"])
  assert bench.seed_count("de_10_bt_transfer_untagged", args) == 1
  assert bench.seed_count("de_10_bt_transfer", args) == 2
  assert bench.seed_count("de_full_bt", args) == 3
  args.arm_seeds = ["de_10_typo=1"]
  with pytest.raises(ValueError, match="de_10_typo.*valid arms"):
    bench.seed_count("de_full", args)
  args.arm_seeds = ["de_full"]
  with pytest.raises(ValueError, match="ARM=N"):
    bench.seed_count("de_full", args)

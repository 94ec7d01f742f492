"""Adversarial robustness: the word-substitution attack keeps to its budget and its similarity
threshold, the typo attack changes at most k words, an attack never makes a wrong prediction
right, and adversarial training on the embeddings (``classification.adversarial_epsilon``) is exactly
off at ε = 0 and trains at ε > 0."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from xferlab import launch
from xferlab.config import ConfigError, apply_overrides, load_experiment, validate
from xferlab.data import batching
from xferlab.studies import explain, robustness
from xferlab.tasks import get_task
from xferlab.tasks.classification import adversarial_embedding_noise
from xferlab.transfer.feature_based import export_word_vectors, read_word_vectors
from tests.conftest import QUICKSTART, TINY
from tests.test_explain import target_reviews, trained_classifier  # noqa: F401 (fixtures)

WORDS = re.compile(r"[^\W\d_]+")


def _check_invariants(results, budget):
  """Per review: at most ``budget`` changes; a wrong prediction is never attacked (so it never
  becomes right); the true class's probability never rises; a success flips the prediction."""
  for r in results:
    assert len(r.changes) <= budget
    assert r.adversarial_correct <= r.clean_correct
    assert r.adversarial_probability <= r.clean_probability + 1e-6
    if not r.clean_correct:
      assert r.changes == [] and r.adversarial_probability == pytest.approx(r.clean_probability)
    assert r.success == (r.clean_correct and not r.adversarial_correct)
  summary = robustness.summarize(results)
  assert summary["attacked_accuracy"] <= summary["clean_accuracy"]
  return summary


def test_word_attack_keeps_to_budget_threshold_and_vocabulary(trained_classifier,
                                                              target_reviews, tmp_path):
  """Vectors from a file: substitutes are neighbours above the threshold that the file has;
  stop words never change; the adversarial ids differ from the clean ones in the changed
  positions only."""
  restored = trained_classifier[1]
  texts, labels = target_reviews
  vocab = list(restored.tokenizer.itos)
  path = str(tmp_path / "vectors.txt")
  export_word_vectors(path, restored.tokenizer, explain.embedding_matrix(restored))
  missing = {"excellent", "wonderful"}                  # words the file lacks
  lines = [l for l in open(path) if l.split(" ")[0] not in missing]
  open(path, "w").writelines(lines)
  space = robustness.word_space(restored, path)
  vectors, _, _ = read_word_vectors(path, vocab)
  unit = {i: v / np.linalg.norm(v) for i, v in vectors.items()}
  results = robustness.attack_texts(restored, texts, labels, "word", 2, space=space,
                                    similarity=0.5, neighbours=6)
  _check_invariants(results, 2)
  changed = 0
  for text, r in zip(texts, results):
    clean_ids = explain.encode_texts(restored, [text])[1][0]
    differ = [p for p, (a, b) in enumerate(zip(clean_ids, r.adversarial_ids)) if a != b]
    assert sorted(differ) == sorted(p for p, _, _ in r.changes)
    for p, old, new in r.changes:
      i, j = vocab.index(old), vocab.index(new)
      assert clean_ids[p] == i and r.adversarial_ids[p] == j
      assert float(unit[i] @ unit[j]) >= 0.5 - 1e-6
      assert old not in robustness.STOP_WORDS and new not in robustness.STOP_WORDS
      assert old not in missing and new not in missing
      changed += 1
  assert changed > 0   # the test looked at substitutions


def test_word_attack_on_a_trained_model_lowers_accuracy(trained_classifier, target_reviews):
  restored = trained_classifier[1]
  texts, labels = target_reviews
  results = robustness.attack_texts(restored, texts, labels, "word", 3, similarity=0.3)
  summary = _check_invariants(results, 3)
  np.testing.assert_allclose(summary["clean_accuracy"],
                             np.mean(restored.predict(texts) == labels))
  assert summary["attacked_accuracy"] < summary["clean_accuracy"]
  assert summary["success_rate"] > 0 and summary["mean_queries"] > 1
  protected = robustness.word_space(restored, "own", protect=["great", "good"])
  assert not protected.eligible[restored.tokenizer.stoi["great"]]


def test_neighbours_are_above_the_threshold_and_most_similar_first(trained_classifier):
  space = robustness.word_space(trained_classifier[1])
  i = trained_classifier[1].tokenizer.stoi["sturdy"]
  found = space.neighbours(i, 5, 0.2)
  sims = [s for _, s in found]
  assert sims == sorted(sims, reverse=True) and all(s >= 0.2 for s in sims)
  assert all(space.eligible[j] and j != i for j, _ in found)
  assert space.neighbours(trained_classifier[1].tokenizer.stoi["the"], 5, -1.0) == []


def _one_edit(a: str, b: str) -> bool:
  """Whether ``b`` is ``a`` with one swap of adjacent letters, deletion, insertion or
  substitution."""
  if len(a) == len(b):
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                              and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
  short, long_ = sorted((a, b), key=len)
  return len(long_) == len(short) + 1 and any(long_[:i] + long_[i + 1:] == short
                                               for i in range(len(long_)))


def test_typo_attack_changes_at_most_k_words(trained_classifier, target_reviews):
  restored = trained_classifier[1]
  texts, labels = target_reviews
  results = robustness.attack_texts(restored, texts, labels, "typo", 2)
  _check_invariants(results, 2)
  edits = 0
  for text, r in zip(texts, results):
    before, after = WORDS.findall(text), WORDS.findall(r.adversarial)
    assert len(before) == len(after)
    differ = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(differ) == len(r.changes) <= 2
    for a, b in differ:
      assert _one_edit(a, b) and a.lower() not in robustness.STOP_WORDS
      edits += 1
  assert edits > 0
  rng = np.random.default_rng(0)
  for word in ("sturdy", "pan", "dishwasher"):
    variants = robustness.typo_variants(word, rng, 4)
    assert variants and all(_one_edit(word, v) for v in variants)


def test_command_writes_json_and_markdown(trained_classifier, tmp_path):
  workdir = trained_classifier[0]
  out = tmp_path / "out"
  assert robustness.main([workdir, "--budget", "2", "--num", "6", "--similarity", "0.3",
                          "--out", str(out)]) == 0
  written = json.load(open(out / "robustness.json"))
  run = written["runs"][workdir]
  for attack in ("word", "typo"):
    assert set(run[attack]["summary"]) >= {"clean_accuracy", "attacked_accuracy",
                                           "success_rate"}
  arm = next(iter(written["arms"].values()))
  assert set(arm) == {f"{a}_{k}" for a in ("word", "typo")
                      for k in ("clean_accuracy", "attacked_accuracy", "success_rate")}
  assert "budget k = 2" in open(out / "robustness.md").read()


# ------------------------------------------------------------------------------
# The defence: adversarial training on the embeddings.

def _batch(paired: bool):
  rng = np.random.default_rng(0)
  seqs = [list(rng.integers(4, 40, rng.integers(3, 12))) for _ in range(8)]
  source = batching.make_batch(seqs, range(6), 8, 16, labels=rng.integers(0, 2, 8))
  if not paired:
    return source
  return {"source": source, "target": batching.make_batch(seqs, range(2, 8), 8, 16)}


def _loss(config, batch, lam=0.1):
  """``(loss, metrics, gradients)`` of one batch, jitted as the trainer does."""
  task = get_task("classification")
  graphdef, params, rest = nnx.split(task.build_model(config, 40), nnx.Param, ...)

  @jax.jit
  def run(params):
    def loss(p):
      return task.loss(nnx.merge(graphdef, p, rest), batch, jnp.float32(lam), None, None)
    (value, (out, _)), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return value, out, grads

  return run(params)


@pytest.mark.parametrize("paired", [False, True])
def test_adversarial_epsilon_zero_is_exactly_the_plain_loss(tiny_config, paired):
  """ε = 0 traces the same program as a configuration without the key (an older run's), so
  losses and gradients are bit-identical; ε > 0 adds CE(perturbed) and changes gradients."""
  batch = _batch(paired)
  old = tiny_config.copy_and_resolve_references()
  del old.classification["adversarial_epsilon"]
  plain, plain_out, plain_grads = _loss(old, batch)
  zero, zero_out, zero_grads = _loss(tiny_config, batch)
  assert float(plain) == float(zero) and "adversarial_loss" not in zero_out
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), plain_grads,
                                   zero_grads))
  task = get_task("classification")
  program = lambda c: str(jax.make_jaxpr(lambda b: task.loss(task.build_model(c, 40), b,
                                                             jnp.float32(0.1), None, None))(batch))
  assert program(old) == program(tiny_config)
  adv, adv_out, adv_grads = _loss(
      apply_overrides(tiny_config, {"classification.adversarial_epsilon": 2.0}), batch)
  np.testing.assert_allclose(float(adv), float(zero) + float(adv_out["adversarial_loss"]),
                             rtol=1e-6)
  assert float(adv_out["adversarial_loss"]) > float(zero_out["source_loss"])   # a worse input
  differs = jax.tree.map(lambda a, b: bool(jnp.abs(a - b).max() > 0), zero_grads, adv_grads)
  assert any(jax.tree.leaves(differs))


def test_adversarial_noise_has_norm_epsilon_sigma_per_review(tiny_config):
  model = get_task("classification").build_model(tiny_config, 40)
  rows = _batch(False)
  noise = adversarial_embedding_noise(model.classifier, rows, 0.5)
  sigma = float(jnp.std(model.classifier.encoder.embed.embedding[...]))
  norms = np.sqrt((np.asarray(noise) ** 2).sum(axis=(1, 2)))
  np.testing.assert_allclose(norms[:6], 0.5 * sigma, rtol=1e-4)   # labeled rows
  np.testing.assert_array_equal(norms[6:], 0.0)                   # batch padding: none
  valid = np.arange(16)[None] < rows["lengths"][:, None]
  assert np.abs(np.asarray(noise)[~valid]).max() == 0.0            # none on padded steps


def test_adversarial_training_runs_and_logs_its_loss(tmp_path):
  results = launch.run(QUICKSTART + ":dann", dict(TINY, **{"classification.adversarial_epsilon": 1.0,
                                                          "train.progress_bar": False}),
                       str(tmp_path / "run"))
  assert np.isfinite(results["target_accuracy"])
  records = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  train = [r for r in records if r.get("split") == "train"]
  assert train and all(np.isfinite(r["adversarial_loss"]) and "transfer_loss" in r for r in train)
  with pytest.raises(ConfigError, match="adversarial_epsilon"):
    validate(apply_overrides(load_experiment(QUICKSTART)[0],
                             {"classification.adversarial_epsilon": -1.0}))

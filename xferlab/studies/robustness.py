r"""Adversarial robustness of a trained classifier: a greedy word-substitution attack and a
character-level typo attack, each within a budget of ``k`` changed words per review.

  python -m xferlab.studies.robustness RUN_DIR [RUN_DIR ...] --budget 3 --out DIR \
      [--vectors own|PATH] [--attacks word,typo] [--num 500] [--similarity 0.7] \
      [--neighbours 10] [--typos 4] [--seed 0]

Each ``RUN_DIR`` is a run's workdir or a folder of runs (an experiment's ``arm/seed_s``); every
run is attacked on the same ``--num`` reviews of its target test set (chosen with ``--seed``),
and ``DIR/robustness.json`` / ``DIR/robustness.md`` give, per run and per arm (mean ± std over
seeds), the clean accuracy, the accuracy under each attack and the attack's success rate.

**Word substitution** (``substitution_attack``). Candidates for a word are its ``--neighbours``
nearest words by cosine similarity in a word-vector space -- the run's own input embedding
(``own``) or a GloVe / word2vec text file (``xferlab.transfer.feature_based``; words the file
lacks are never candidates) -- and only those with similarity at least ``--similarity``. The
meaning-keeping constraints: (1) the similarity threshold; (2) stop words, negations
(``STOP_WORDS``), punctuation, numbers, special tokens and one-letter words are never replaced
and never substitutes; (3) each position changes at most once, and only from its original word
to one of that word's neighbours; (4) with a sentencepiece vocabulary only whole-word pieces
(``▁word`` followed by a new word) are replaced, by whole-word pieces. Part of speech is *not*
checked, and distributional vectors place antonyms close (``good`` / ``bad``), so a
substitution can flip the meaning: the report lists the most frequent substitutions and
examples for a reader to judge; ``--protect FILE`` (one word a line) keeps chosen words as
they are. Greedy search: at each of at most ``k`` steps every remaining (position, candidate)
pair is scored exactly and the one that lowers the true class's probability most is applied;
the search stops when the prediction flips, or when no pair lowers the probability.

**Typos** (``typo_attack``): in up to ``k`` words (alphabetic, at least 3 letters, not stop
words) one edit each -- swap two adjacent inner letters, delete an inner letter, insert a
letter, or replace a letter by a neighbour on a QWERTY keyboard -- ``--typos`` random variants
per word (one per kind, seeded), chosen greedily as above on the re-tokenized text.

**What is reported** (``summarize``). Only reviews the model classifies correctly are attacked;
a misclassified review stays as it is. So per review, ``adversarial_correct <= clean_correct``
and the true class's probability never rises: the attack can only lower the count of correct
predictions, never raise it. ``clean_accuracy`` and ``attacked_accuracy`` are over all
attacked-set reviews; ``success_rate`` = flipped / correctly classified.

The defence, adversarial training on the embeddings (Miyato et al. 2017), is the classification
task's ``classification.adversarial_epsilon`` (``xferlab.tasks.classification``); compare a run trained
with it to one without by passing both folders.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import warnings
from collections import Counter
from typing import Any, Sequence

import numpy as np

from xferlab.studies.explain import arm_of, run_dirs, sequence_probabilities, target_texts

ATTACKS = ("word", "typo")
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before
being below between both but by can cannot could couldn did didn do does doesn doing don down
during each either ever few for from further had hadn has hasn have haven having he her here
hers herself him himself his how i if in into is isn it its itself just let me more most
mustn my myself neither never no nobody none nor not nothing now of off on once only or other
our ours ourselves out over own same shan she should shouldn so some such than that the their
theirs them themselves then there these they this those through to too under until up very
was wasn we were weren what when where which while who whom why will with without won would
wouldn you your yours yourself yourselves n't t s d ll m re ve y br
""".split())
KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SP = "\u2581"


@dataclasses.dataclass
class AttackResult:
  """One review under attack. ``changes`` are ``(position, old, new)``: token positions for
  word substitution, word positions (``_WORD`` matches) for typos."""
  label: int
  clean_probability: float
  adversarial_probability: float
  clean_correct: bool
  adversarial_correct: bool
  changes: list[tuple[int, str, str]]
  queries: int
  original: str
  adversarial: str
  adversarial_ids: list[int]

  @property
  def success(self) -> bool:
    return self.clean_correct and not self.adversarial_correct

  def to_json(self) -> dict:
    d = dataclasses.asdict(self)
    d.pop("adversarial_ids")
    return dict(d, success=self.success)


# ------------------------------------------------------------------------------
# The word-vector space and its neighbours.

def is_word_token(token: str, subword: bool) -> bool:
  """Whether a vocabulary token may be replaced or be a substitute: an alphabetic word of two
  letters or more, not a stop word (with ``subword``, a piece that starts a word: ``▁word``)."""
  if subword:
    if not token.startswith(_SP):
      return False
    token = token[1:]
  return len(token) > 1 and token.isalpha() and token.lower() not in STOP_WORDS


@dataclasses.dataclass
class WordSpace:
  """Unit word vectors of a vocabulary and which ids take part in substitutions."""
  unit: np.ndarray        # float32[vocab, dim], rows of norm 1 (0 for ids without a vector)
  eligible: np.ndarray    # bool[vocab]
  tokens: list[str]
  subword: bool
  cache: dict = dataclasses.field(default_factory=dict)

  def neighbours(self, i: int, count: int, similarity: float) -> list[tuple[int, float]]:
    """Up to ``count`` eligible ids other than ``i`` with cosine similarity ``>= similarity``
    to ``i``, most similar first (none when ``i`` is not eligible)."""
    key = (int(i), count, similarity)
    if key not in self.cache:
      found: list[tuple[int, float]] = []
      if self.eligible[i]:
        cos = self.unit @ self.unit[i]
        cos[~self.eligible] = -np.inf
        cos[i] = -np.inf
        best = np.argsort(-cos, kind="stable")[:count]
        found = [(int(j), float(cos[j])) for j in best if cos[j] >= similarity]
      self.cache[key] = found
    return self.cache[key]


def word_space(restored, vectors: str = "own", protect: Sequence[str] = ()) -> WordSpace:
  """The ``WordSpace`` of a restored classifier's vocabulary: its own input embedding
  (``"own"``) or the vectors of a GloVe / word2vec file (only words the file has take part);
  ``protect`` words never take part."""
  from xferlab.data.tokenizer import vocabulary
  from xferlab.studies.explain import embedding_matrix
  tokens = vocabulary(restored.tokenizer)
  if vectors == "own":
    matrix = embedding_matrix(restored)
    has = np.ones(len(tokens), bool)
  else:
    from xferlab.transfer.feature_based import read_word_vectors
    found, _, dim = read_word_vectors(vectors, tokens)
    matrix = np.zeros((len(tokens), dim), np.float32)
    has = np.zeros(len(tokens), bool)
    for i, v in found.items():
      matrix[i], has[i] = v, True
  subword = any(t.startswith(_SP) for t in tokens)
  protected = {w.lower() for w in protect}
  eligible = has & np.array([i >= 4 and is_word_token(t, subword)
                             and t.lstrip(_SP).lower() not in protected
                             for i, t in enumerate(tokens)])
  norms = np.linalg.norm(matrix, axis=1, keepdims=True)
  unit = np.where(norms > 0, matrix / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
  eligible &= norms[:, 0] > 0
  return WordSpace(unit, eligible, tokens, subword)


def _positions(ids: Sequence[int], space: WordSpace) -> list[int]:
  """Token positions that may change: eligible ids (whole words, for subword vocabularies)."""
  out = []
  for p, i in enumerate(ids):
    whole = not space.subword or p + 1 == len(ids) or space.tokens[ids[p + 1]].startswith(_SP)
    if space.eligible[i] and whole:
      out.append(p)
  return out


# ------------------------------------------------------------------------------
# Greedy search, shared by both attacks.

def _greedy(restored, start: list[int], label: int, budget: int, candidates, cap: int):
  """Greedy search from ``start`` (ids). ``candidates(current ids, changes)`` lists the
  one-word moves ``(change, ids)`` left after the ``changes`` applied so far (``change[0]``
  names the position); the move that lowers ``p(label)`` most is applied, at most ``budget``
  times, stopping at a flip or when no move lowers it. A start already misclassified is left
  as it is. Returns ``(ids, probabilities, changes, queries, clean probabilities)``."""
  clean = probs = sequence_probabilities(restored, [start], cap)[0]
  current, changes, queries = list(start), [], 1
  if int(np.argmax(probs)) != label:
    return current, probs, changes, queries, clean
  for _ in range(budget):
    moves = candidates(current, changes)
    if not moves:
      break
    unique = list({tuple(ids): None for _, ids in moves})
    scored = dict(zip(unique, sequence_probabilities(restored, [list(u) for u in unique], cap)))
    queries += len(unique)
    best = min(range(len(moves)), key=lambda j: scored[tuple(moves[j][1])][label])
    p = scored[tuple(moves[best][1])]
    if p[label] >= probs[label]:
      break
    current, probs = list(moves[best][1]), p
    changes.append(moves[best][0])
    if int(np.argmax(probs)) != label:
      break
  return current, probs, changes, queries, clean


def _result(label, clean_p, probs, changes, queries, original, adversarial, ids):
  return AttackResult(int(label), float(clean_p[label]), float(probs[label]),
                      int(np.argmax(clean_p)) == label, int(np.argmax(probs)) == label,
                      changes, queries, original, adversarial, list(ids))


def _join(tokens: Sequence[str], subword: bool) -> str:
  return "".join(tokens).replace(_SP, " ").strip() if subword else " ".join(tokens)


def substitution_attack(restored, text: str, label: int, space: WordSpace, budget: int, *,
                        neighbours: int = 10, similarity: float = 0.7,
                        cap: int = 512) -> AttackResult:
  """The greedy word-substitution attack on one review (see the module doc)."""
  from xferlab.studies.explain import encode_texts
  _, ids, tokens = encode_texts(restored, [text])
  ids, tokens = ids[0], tokens[0]
  options = {p: space.neighbours(ids[p], neighbours, similarity) for p in _positions(ids, space)}

  def candidates(current, changes):
    changed = {c[0] for c in changes}
    return [((p, space.tokens[ids[p]], space.tokens[j]), current[:p] + [j] + current[p + 1:])
            for p, found in options.items() if p not in changed for j, _ in found]

  adv, probs, changes, queries, clean = _greedy(restored, ids, label, budget, candidates, cap)
  shown = list(tokens)
  for p, _, new in changes:
    shown[p] = new
  return _result(label, clean, probs, changes, queries, _join(tokens, space.subword),
                 _join(shown, space.subword), adv)


# ------------------------------------------------------------------------------
# Typos.

def _keyboard_neighbours(ch: str) -> str:
  for r, row in enumerate(KEYBOARD):
    c = row.find(ch.lower())
    if c >= 0:
      near = [row[c - 1] if c > 0 else "", row[c + 1] if c + 1 < len(row) else ""]
      near += [KEYBOARD[r2][c] for r2 in (r - 1, r + 1) if 0 <= r2 < 3 and c < len(KEYBOARD[r2])]
      return "".join(near)
  return "etaoin"


def typo_variants(word: str, rng: np.random.Generator, per_word: int = 4) -> list[str]:
  """Up to ``per_word`` one-edit misspellings of ``word`` (swap, delete, insert, keyboard
  substitution, in that order of kinds, positions drawn with ``rng``); never ``word`` itself."""
  n, out = len(word), []
  if n >= 4:
    i = int(rng.integers(1, n - 2))
    out.append(word[:i] + word[i + 1] + word[i] + word[i + 2:])
  if n >= 3:
    i = int(rng.integers(1, n - 1))
    out.append(word[:i] + word[i + 1:])
  i = int(rng.integers(1, n))
  out.append(word[:i] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))] + word[i:])
  i = int(rng.integers(0, n))
  near = _keyboard_neighbours(word[i])
  out.append(word[:i] + near[int(rng.integers(len(near)))] + word[i + 1:])
  unique = [v for v in dict.fromkeys(out) if v != word]
  return unique[:per_word]


def typo_attack(restored, text: str, label: int, budget: int, *, per_word: int = 4,
                seed: int = 0, cap: int = 512) -> AttackResult:
  """The greedy typo attack on one review (see the module doc)."""
  from xferlab.studies.explain import encode_texts
  from xferlab.text_inputs import InputTruncatedWarning
  spans = [m.span() for m in _WORD.finditer(text)]
  rng = np.random.default_rng(seed)
  variants = {w: typo_variants(text[a:b], rng, per_word) for w, (a, b) in enumerate(spans)
              if b - a >= 3 and text[a:b].lower() not in STOP_WORDS}
  encode = lambda words: encode_texts(restored, [_respell(text, spans, words)])[1][0]

  def candidates(current, changes):
    words = {w: v for w, _, v in changes}
    return [((w, text[spans[w][0]:spans[w][1]], v), encode({**words, w: v}))
            for w, options in variants.items() if w not in words for v in options]

  with warnings.catch_warnings():   # a long review is cut once per candidate: warn never
    warnings.simplefilter("ignore", InputTruncatedWarning)
    adv, probs, changes, queries, clean = _greedy(restored, encode({}), label, budget,
                                                  candidates, cap)
  return _result(label, clean, probs, changes, queries, text,
                 _respell(text, spans, {w: v for w, _, v in changes}), adv)


def _respell(text: str, spans: Sequence[tuple[int, int]], words: dict[int, str]) -> str:
  """``text`` with the words at ``spans[w]`` replaced by ``words[w]``."""
  out, last = [], 0
  for w in sorted(words):
    a, b = spans[w]
    out += [text[last:a], words[w]]
    last = b
  return "".join(out) + text[last:]


# ------------------------------------------------------------------------------
# Evaluation and report.

def attack_texts(restored, texts, labels: Sequence[int], attack: str = "word",
                 budget: int = 3, *, space: WordSpace | None = None, neighbours: int = 10,
                 similarity: float = 0.7, per_word: int = 4, seed: int = 0,
                 cap: int = 512) -> list[AttackResult]:
  """``attack`` (``word`` | ``typo``) on every text (``as_texts``) with its true label."""
  from xferlab.text_inputs import as_texts, max_chars_for
  items, _ = as_texts(texts, max_chars=max_chars_for(restored.config))
  if len(items) != len(labels):
    raise ValueError(f"{len(items)} texts but {len(labels)} labels")
  if attack not in ATTACKS:
    raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
  if attack == "word":
    space = space or word_space(restored)
    return [substitution_attack(restored, t, int(y), space, budget, neighbours=neighbours,
                                similarity=similarity, cap=cap) for t, y in zip(items, labels)]
  return [typo_attack(restored, t, int(y), budget, per_word=per_word, seed=seed * 100003 + n,
                      cap=cap) for n, (t, y) in enumerate(zip(items, labels))]


def summarize(results: Sequence[AttackResult]) -> dict[str, float]:
  """``clean_accuracy``, ``attacked_accuracy``, ``success_rate`` (flipped / correctly
  classified), ``accuracy_drop``, and means of changed words and model queries."""
  n = len(results)
  correct = [r for r in results if r.clean_correct]
  flipped = [r for r in results if r.success]
  clean = len(correct) / n if n else 0.0
  attacked = sum(r.adversarial_correct for r in results) / n if n else 0.0
  return {"num_texts": n, "clean_accuracy": clean, "attacked_accuracy": attacked,
          "accuracy_drop": clean - attacked,
          "success_rate": len(flipped) / len(correct) if correct else 0.0,
          "mean_changes_of_successes": float(np.mean([len(r.changes) for r in flipped]))
          if flipped else 0.0,
          "mean_queries": float(np.mean([r.queries for r in results])) if n else 0.0}


def attack_run(run: str, args) -> dict[str, Any]:
  """Every attack of ``args`` on one run's target test reviews: summaries, settings, the most
  frequent substitutions and a few successful examples."""
  from xferlab import launch
  restored = launch.restore(run)
  texts, labels = target_texts(restored, args.num, args.seed)
  protect = [w.strip() for w in open(args.protect)] if args.protect else []
  out: dict[str, Any] = {"run": run, "budget": args.budget}
  for attack in args.attacks.split(","):
    space = word_space(restored, args.vectors, protect) if attack == "word" else None
    results = attack_texts(restored, texts, labels, attack, args.budget, space=space,
                           neighbours=args.neighbours, similarity=args.similarity,
                           per_word=args.typos, seed=args.seed)
    swaps = Counter(f"{old} -> {new}" for r in results if r.success for _, old, new in r.changes)
    out[attack] = {"summary": summarize(results),
                   "substitutions": swaps.most_common(20),
                   "examples": [r.to_json() for r in results if r.success][:args.examples]}
    print(f"[robustness] {run} {attack}: {out[attack]['summary']}", flush=True)
  return out


def report(per_run: dict[str, dict], roots: Sequence[str], args) -> tuple[dict, str]:
  """Per arm (a root folder's name and the run's arm below it), mean ± std over its runs of
  every attack's accuracies and success rate; and the markdown report."""
  from xferlab.metrics import mean_std
  arms: dict[str, list[dict]] = {}
  for run, result in per_run.items():
    root = next(r for r in roots if os.path.abspath(run).startswith(os.path.abspath(r)))
    arm = os.path.basename(os.path.abspath(root))
    arm += "" if arm_of(run, root) == "run" else "/" + arm_of(run, root)
    flat = {}
    for attack in ATTACKS:
      for key in ("clean_accuracy", "attacked_accuracy", "success_rate"):
        if attack in result:
          flat[f"{attack}_{key}"] = result[attack]["summary"][key]
    arms.setdefault(arm, []).append(flat)
  stats = {arm: {k: mean_std([r[k] for r in rows]) for k in rows[0]} for arm, rows in arms.items()}
  attacks = [a for a in ATTACKS if any(f"{a}_success_rate" in s for s in stats.values())]
  keys = [f"{attacks[0]}_clean_accuracy"] + [f"{a}_{k}" for a in attacks
                                              for k in ("attacked_accuracy", "success_rate")]
  names = ["clean accuracy"] + [f"{a}: {k}" for a in attacks
                                for k in ("accuracy under attack", "success rate")]
  lines = [f"# Robustness: budget k = {args.budget} words per review", "",
           f"{args.num} target test reviews per run (seed {args.seed}); word substitution: "
           f"vectors `{args.vectors}`, cosine >= {args.similarity}, {args.neighbours} "
           f"neighbours; typos: {args.typos} variants per word. In %, mean ± std over runs.",
           "", "| arm | runs | " + " | ".join(names) + " |", "|---" * (len(keys) + 2) + "|"]
  for arm, s in stats.items():
    cells = [f"{100 * s[k]['mean']:.1f} ± {100 * s[k]['std']:.1f}" if k in s else "-"
             for k in keys]
    lines.append(f"| {arm} | {len(arms[arm])} | " + " | ".join(cells) + " |")
  examples = [(run, e) for run, r in per_run.items() if "word" in r
              for e in r["word"]["examples"][:2]]
  if examples:
    lines += ["", "## Word-substitution examples", ""]
    lines += [f"- `{os.path.relpath(run)}`: " + ", ".join(f"{o} -> {n}" for _, o, n in
                                                         e["changes"]) for run, e in examples]
  return stats, "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.robustness",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("runs", nargs="+", help="run workdirs, or folders of runs (arms x seeds)")
  parser.add_argument("--budget", type=int, default=3, help="k: words changed per review at most")
  parser.add_argument("--vectors", default="own",
                      help="word vectors for substitutes: 'own' (the run's embedding) or a "
                      "GloVe / word2vec text file")
  parser.add_argument("--attacks", default="word,typo", help="comma-separated: word, typo")
  parser.add_argument("--num", type=int, default=500, help="target test reviews per run")
  parser.add_argument("--similarity", type=float, default=0.7, help="cosine threshold")
  parser.add_argument("--neighbours", type=int, default=10, help="candidates per word")
  parser.add_argument("--typos", type=int, default=4, help="typo variants per word")
  parser.add_argument("--protect", default="", help="file of words never substituted")
  parser.add_argument("--examples", type=int, default=10, help="successful examples kept per run")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", required=True, help="output folder")
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  unknown = set(args.attacks.split(",")) - set(ATTACKS)
  if unknown or args.budget < 1:
    _parser().error(f"--attacks takes {ATTACKS} (got {sorted(unknown)}); --budget >= 1")
  os.makedirs(args.out, exist_ok=True)
  per_run = {run: attack_run(run, args) for root in args.runs for run in run_dirs(root)}
  stats, text = report(per_run, args.runs, args)
  with open(os.path.join(args.out, "robustness.json"), "w") as f:
    json.dump({"args": vars(args), "arms": stats, "runs": per_run}, f, indent=1)
  with open(os.path.join(args.out, "robustness.md"), "w") as f:
    f.write(text)
  print(text)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

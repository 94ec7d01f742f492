r"""Back-translation (Sennrich et al. 2016): real target-language text, translated into the
source language by a model of the reverse direction, gives synthetic training pairs.

  python -m xferlab.studies.back_translate RUN_DIR --source multi30k_task2/de --split train \
      --out DIR [--chunk 2000] [--beam 5 | --sample [--temperature 1.0] [--seed 0]] \
      [--limit N] [--batch-size ROWS] [--max-length TOKENS] [--manual-dir PATH] [--shard I/N]

``RUN_DIR`` is a trained translation run of the reverse direction (a de→en model makes
German-target pairs for an en→de run), restored with ``xferlab.launch.restore``.
``--source`` is a corpus (``multi30k_task2/de``: its ``--split``; the corpus language must be
the model's source language) or a text file of one sentence per line. The texts are
translated in chunks of ``--chunk``; inside a chunk the jitted decoder runs on length-sorted,
bucketed batches (``launch.restore(RUN_DIR).translate``: one compilation per padded shape).

Decoding: ``--beam K`` (default 5; 1 = greedy) with the run's GNMT length penalty
(``decode.alpha``), or ``--sample``: unrestricted sampling from the model's distribution
(``--temperature``), which Edunov et al. (2018) found better than beam search when synthetic
data is plentiful; chunk ``i`` draws with ``PRNGKey(seed)`` folded with ``i``, so a rerun gives
the same samples. ``--max-length`` (default: the run's ``decode.max_length``) caps the output.

Writes into ``DIR``:

* ``synthetic.jsonl``: one ``{"source": synthetic translation, "target": input text}`` per
  input text, in input order (an empty text gives an empty source): ``translation.synthetic_pairs``
  of a training run (``xferlab.tasks.translation``);
* ``back_translate.json``: ``size``, ``seconds`` (decoding time summed over every session),
  ``tokens_per_second`` (input + output tokens), ``sentences_per_second``, token counts,
  ``empty_outputs``, the model's own validation / test BLEU, and ``settings`` (model, pair,
  source, split, decoding), which a training run checks (no held-out split, right direction);
* ``chunks/NNNNN.jsonl`` and ``.json`` (its seconds and token counts): each written to a
  temporary file and renamed, so a killed job leaves whole chunks only;
* ``manifest.json``: the decoding settings. Running the same command again resumes: finished
  chunks are checked against the input and skipped. Other settings in the same ``DIR`` are
  refused (use another ``--out``).

Several processes share one ``DIR`` with ``--shard I/N``: process ``I`` translates the chunks
whose index is ``I`` modulo ``N``, so ``N`` commands started at once (one per core, e.g. under
``taskset -c I``) split the work. Whichever finds every chunk on disk at its end writes
``synthetic.jsonl`` and ``back_translate.json`` (a command without ``--shard`` does too, and
translates what is missing); the others exit after their share.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from xferlab import decode
from xferlab.data import batching
from xferlab.data.tokenizer import UNK_ID, decode_without_unknowns, unknown_spans
from xferlab.special_ids import BOS_ID, EOS_ID, PAD_ID
from xferlab.tasks.translation import (SYNTHETIC_FILE, SYNTHETIC_SUMMARY, corpus_language,
                                       monolingual_texts, parse_pair, tag_sources)
from xferlab.text_inputs import as_texts, batch_rows, max_chars_for, time_buckets, truncate_ids

MANIFEST = "manifest.json"
# Settings that change the output: a rerun in the same folder must keep them.
FIXED_SETTINGS = ("model", "source", "split", "mode", "beam_size", "alpha", "max_length",
                  "temperature", "seed", "chunk")


# ------------------------------------------------------------------------------
# Inputs and settings.

def source_texts(source: str, split: str = "train", manual_dir: str = "") -> list[str]:
  """The texts to back-translate: a text file (one per line) or a corpus's ``split``
  (``xferlab.tasks.translation.monolingual_texts``)."""
  if os.path.isfile(source):
    with open(source, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f]
  return monolingual_texts(source, split, manual_dir)


def decoding_settings(restored, *, source: str = "", split: str = "", chunk: int = 2000,
                      beam: int = 5, sample: bool = False, temperature: float = 1.0,
                      seed: int = 0, max_length: int = 0, batch_size: int = 0) -> dict:
  """What ``back_translate`` records and a rerun must repeat (``FIXED_SETTINGS``)."""
  c = restored.config
  if chunk < 1 or beam < 1 or temperature <= 0:
    raise ValueError(f"need chunk >= 1, beam >= 1, temperature > 0; got {chunk}, {beam}, "
                     f"{temperature}")
  return {"model": os.path.abspath(restored.workdir), "model_task": c.task,
          "model_data": c.data.name, "model_pair": c.translation.pair,
          "source": source, "split": split,
          "mode": "sample" if sample else ("greedy" if beam == 1 else "beam"),
          "beam_size": 1 if sample else beam, "alpha": c.decode.alpha,
          "temperature": temperature if sample else None, "seed": seed if sample else None,
          "max_length": max_length or c.decode.max_length,
          "batch_size": batch_size or c.data.eval_batch_size, "chunk": chunk}


def check_direction(restored, source: str) -> None:
  """A corpus in another language than the model's source side is refused."""
  language, config = corpus_language(source), restored.config
  if config.task != "translation":
    raise ValueError(f"{restored.workdir} is a {config.task!r} run, not a translation run")
  if language and config.data.name == "multi30k":
    model_source = parse_pair(config.translation.pair)[0]
    if language != model_source:
      raise ValueError(f"{source} is {language!r} text but the model translates "
                       f"{config.translation.pair} (from {model_source!r}); back-translate with a "
                       f"{language}-{model_source} model")


def claim_folder(out: str, settings: dict) -> None:
  """Writes ``manifest.json``, or checks that the one there has the same ``FIXED_SETTINGS``."""
  os.makedirs(os.path.join(out, "chunks"), exist_ok=True)
  path = os.path.join(out, MANIFEST)
  if os.path.exists(path):
    with open(path) as f:
      before = json.load(f)
    changed = [k for k in FIXED_SETTINGS if before.get(k) != settings.get(k)]
    if changed:
      raise ValueError(f"{out} holds a back-translation with other settings ("
                       + ", ".join(f"{k}: {before.get(k)!r} -> {settings.get(k)!r}"
                                   for k in changed) + "); use another --out")
    return
  write_atomic(path, json.dumps(settings, indent=2) + "\n")


def temporary(path: str) -> str:
  """A temporary name beside ``path``, this process's own (shards may write the same file)."""
  return f"{path}.{os.getpid()}.tmp"


def write_atomic(path: str, text: str) -> None:
  """``text`` into ``path`` through a temporary file: a reader (or a rerun) never sees half."""
  tmp = temporary(path)
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(tmp, path)


def parse_shard(text: str) -> tuple[int, int]:
  """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; anything else raises ``ValueError``."""
  try:
    index, count = (int(part) for part in text.split("/"))
  except ValueError:
    raise ValueError(f"--shard wants I/N (e.g. 0/2), got {text!r}") from None
  if not 0 <= index < count:
    raise ValueError(f"--shard {text}: need 0 <= I < N")
  return index, count


# ------------------------------------------------------------------------------
# Decoding.

def sample_ids(seq2seq, source: jax.Array, lengths: jax.Array, max_length: int, key: jax.Array,
               temperature: float = 1.0) -> jax.Array:
  """``int32[N, max_length]``: every token drawn from ``p(y_t | y_<t, x) ** (1 / temperature)``
  (PAD and BOS never), up to and including ``EOS``, then ``PAD``; one ``lax.while_loop``."""
  n = source.shape[0]
  encoded = seq2seq.encode(source, lengths)

  def cond(c):
    step, _, _, _, finished = c
    return (step < max_length) & ~jnp.all(finished)

  def body(c):
    step, state, last, out, finished = c
    scores, state, _ = seq2seq.decode_step(encoded, state, last)
    logits = decode.normalized_log_probs(scores) / temperature
    token = jax.random.categorical(jax.random.fold_in(key, step), logits).astype(jnp.int32)
    token = jnp.where(finished, PAD_ID, token)
    return step + 1, state, token, out.at[:, step].set(token), finished | (token == EOS_ID)

  init = (jnp.int32(0), seq2seq.initial_state(encoded), jnp.full((n,), BOS_ID, jnp.int32),
          jnp.full((n, max_length), PAD_ID, jnp.int32), jnp.zeros((n,), bool))
  return jax.lax.while_loop(cond, body, init)[3]


def jitted_sampler(seq2seq, max_length: int, temperature: float) -> Callable:
  """``(tokens, lengths, key) -> int32[N, max_length]``, compiled once per padded shape."""
  graphdef, state = nnx.split(seq2seq)

  @jax.jit
  def run(state, tokens, lengths, key):
    return sample_ids(nnx.merge(graphdef, state), tokens, lengths, max_length, key, temperature)

  return lambda tokens, lengths, key: run(state, tokens, lengths, key)


def sample_translations(restored, texts: Sequence[str], key: jax.Array, cache: dict,
                        temperature: float = 1.0) -> list[str]:
  """Sampled translations of ``texts`` in order, prepared as ``restored.translate`` prepares
  its inputs (cleaned, tagged, cut at the largest bucket; empty texts give ``""``)."""
  config, tokenizer = restored.config, restored.tokenizer
  items, _ = as_texts(list(texts), max_chars=max_chars_for(config))
  out = [""] * len(items)
  keep = [i for i, t in enumerate(items) if t.strip()]
  sources = tag_sources(config, [items[i] for i in keep])
  buckets = time_buckets(tuple(config.data.buckets))
  sequences = truncate_ids([tokenizer.encode(t) or [UNK_ID] for t in sources], max(buckets))
  name = ("sampler", config.decode.max_length, temperature)
  if name not in cache:
    cache[name] = jitted_sampler(restored.model.seq2seq, name[1], name[2])
  lengths = np.array([len(s) for s in sequences], np.int64)
  order = np.argsort(lengths, kind="stable")
  rows = batch_rows(len(sequences), config.data.eval_batch_size) if sequences else 1
  for number, start in enumerate(range(0, len(sequences), rows)):
    idx = order[start:start + rows]
    batch = batching.make_batch(sequences, idx, rows,
                                batching.bucket_length(int(lengths[idx].max()), buckets))
    tokens = np.asarray(cache[name](batch["tokens"], batch["lengths"],
                                    jax.random.fold_in(key, number)))
    for row, ids in zip(idx, decode.strip(tokens[:len(idx)])):
      out[keep[row]] = decode_without_unknowns(tokenizer, ids,
                                               unknown_spans(tokenizer, sources[row]))
  return out


def translate_chunk(restored, texts: list[str], settings: dict, index: int,
                    cache: dict) -> list[str]:
  """Chunk ``index``'s translations: beam search / greedy through ``restored.translate``, or
  sampling with ``PRNGKey(seed)`` folded with ``index``."""
  if settings["mode"] != "sample":
    return list(restored.translate(texts)) if texts else []
  key = jax.random.fold_in(jax.random.PRNGKey(settings["seed"]), index)
  return sample_translations(restored, texts, key, cache, settings["temperature"])


def configure(restored, settings: dict) -> None:
  """Puts the decoding settings into the restored run's configuration (``translate`` reads
  them; its compiled decoder is keyed by them)."""
  c = restored.config
  c.decode.beam_size = settings["beam_size"]
  c.decode.max_length = settings["max_length"]
  c.data.eval_batch_size = settings["batch_size"]


# ------------------------------------------------------------------------------
# Chunks, resuming and the outputs.

def chunk_file(out: str, index: int) -> str:
  return os.path.join(out, "chunks", f"{index:05d}.jsonl")


def read_chunk(path: str) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def finished_chunk(out: str, index: int, texts: list[str]) -> bool:
  """Whether chunk ``index`` is on disk for exactly ``texts``. A shorter chunk whose targets
  begin ``texts`` (the last chunk of a ``--limit`` run) is done again; other texts raise."""
  path = chunk_file(out, index)
  if not os.path.exists(path):
    return False
  targets = [pair["target"] for pair in read_chunk(path)]
  if targets == texts:
    return True
  if len(targets) < len(texts) and targets == texts[:len(targets)]:
    return False
  raise ValueError(f"{path} holds other texts than chunk {index} of this input; {out} was "
                   "made from another input: use another --out")


def token_count(tokenizer, texts: Sequence[str]) -> int:
  return sum(len(tokenizer.encode(t)) for t in texts if t.strip())


def missing_chunks(out: str, texts: list[str], chunk: int) -> list[int]:
  """The chunk indices not yet on disk for ``texts``."""
  return [i for i in range(math.ceil(len(texts) / chunk))
          if not finished_chunk(out, i, texts[i * chunk:(i + 1) * chunk])]


def translate_chunks(restored, texts: list[str], out: str, settings: dict,
                     log: Callable[[str], None], cache: dict | None = None,
                     shard: tuple[int, int] = (0, 1)) -> None:
  """Translates every chunk of this ``shard`` (index ``I`` of ``N``: chunks ``I`` mod ``N``)
  not yet on disk, writing each atomically, with progress lines (jitted samplers kept in
  ``cache``)."""
  chunk, cache = settings["chunk"], {} if cache is None else cache
  count = math.ceil(len(texts) / chunk)
  todo = [i for i in missing_chunks(out, texts, chunk) if i % shard[1] == shard[0]]
  mine = len(range(shard[0], count, shard[1]))
  log(f"[back_translate] {len(texts):,} texts in {count} chunks of {chunk}"
      + (f", shard {shard[0]}/{shard[1]} has {mine}" if shard[1] > 1 else "")
      + f"; {mine - len(todo)} done, {len(todo)} to translate ({settings['mode']})")
  started, done = time.perf_counter(), 0
  for n, i in enumerate(todo):
    part = texts[i * chunk:(i + 1) * chunk]
    t0 = time.perf_counter()
    outputs = translate_chunk(restored, part, settings, i, cache)
    seconds = time.perf_counter() - t0
    if len(outputs) != len(part):
      raise RuntimeError(f"chunk {i}: {len(outputs)} translations of {len(part)} texts")
    tokens = (token_count(restored.tokenizer, part), token_count(restored.tokenizer, outputs))
    stats = {"count": len(part), "seconds": seconds, "source_tokens": tokens[0],
             "output_tokens": tokens[1]}
    write_atomic(chunk_file(out, i)[:-len(".jsonl")] + ".json", json.dumps(stats) + "\n")
    write_atomic(chunk_file(out, i), "".join(
        json.dumps({"source": s, "target": t}, ensure_ascii=False) + "\n"
        for s, t in zip(outputs, part)))
    done += len(part)
    rate = done / (time.perf_counter() - started)
    left = sum(len(texts[j * chunk:(j + 1) * chunk]) for j in todo[n + 1:])
    log(f"[back_translate] chunk {i + 1}/{count}: {len(part):,} texts in {seconds:.1f} s "
        f"({sum(tokens) / max(seconds, 1e-9):,.0f} tok/s); ETA {left / rate / 60:.1f} min")


def write_outputs(restored, texts: list[str], out: str, settings: dict) -> dict:
  """``synthetic.jsonl`` (every chunk in order) and ``back_translate.json``; returns the
  summary."""
  chunk, totals = settings["chunk"], {"seconds": 0.0, "source_tokens": 0, "output_tokens": 0}
  tmp = temporary(os.path.join(out, SYNTHETIC_FILE))
  size = empty = 0
  with open(tmp, "w", encoding="utf-8") as f:
    for i in range(math.ceil(len(texts) / chunk)):
      pairs = read_chunk(chunk_file(out, i))
      f.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)
      size += len(pairs)
      empty += sum(not p["source"].strip() and bool(p["target"].strip()) for p in pairs)
      with open(chunk_file(out, i)[:-len(".jsonl")] + ".json") as s:
        stats = json.load(s)
      totals = {k: totals[k] + stats[k] for k in totals}
  os.replace(tmp, os.path.join(out, SYNTHETIC_FILE))
  seconds = totals["seconds"]
  summary = {"size": size, "seconds": round(seconds, 2),
             "tokens_per_second": round((totals["source_tokens"] + totals["output_tokens"])
                                        / max(seconds, 1e-9), 1),
             "sentences_per_second": round(size / max(seconds, 1e-9), 2),
             "source_tokens": totals["source_tokens"], "output_tokens": totals["output_tokens"],
             "empty_outputs": empty,
             "model_results": {k: v for k, v in restored.results.items()
                               if k in ("valid_bleu", "test_bleu", "valid_perplexity")},
             "settings": settings}
  write_atomic(os.path.join(out, SYNTHETIC_SUMMARY), json.dumps(summary, indent=2) + "\n")
  return summary


def back_translate(restored, texts: Sequence[str], out: str, *, log: Callable = print,
                   cache: dict | None = None, shard: tuple[int, int] = (0, 1),
                   **options) -> dict | None:
  """Back-translates ``texts`` with ``restored`` (a ``launch.restore``-d translation run) into
  ``out`` (see the module docstring), resuming what an earlier call left there.

  ``options`` are ``decoding_settings``'s (``source``, ``split``, ``chunk``, ``beam``,
  ``sample``, ``temperature``, ``seed``, ``max_length``, ``batch_size``); ``cache`` keeps the
  jitted sampler across calls (beam search reuses ``restored``'s own); ``shard = (I, N)``
  translates only chunks ``I`` mod ``N``. Returns the summary written to
  ``back_translate.json`` (``synthetic.jsonl`` has ``len(texts)`` lines in order), or ``None``
  when chunks of other shards are still missing.
  """
  texts = list(texts)
  settings = decoding_settings(restored, **options)
  claim_folder(out, settings)
  configure(restored, settings)
  translate_chunks(restored, texts, out, settings, log, cache, shard)
  missing = missing_chunks(out, texts, settings["chunk"])
  if missing:
    log(f"[back_translate] shard {shard[0]}/{shard[1]} done; {len(missing)} chunks of other "
        "shards are still missing, so the last shard to finish writes the outputs")
    return None
  return write_outputs(restored, texts, out, settings)


def main(argv: Sequence[str] | None = None) -> int:
  from xferlab import launch
  parser = argparse.ArgumentParser(prog="python -m xferlab.studies.back_translate",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("run_dir", help="a trained translation run of the reverse direction")
  parser.add_argument("--source", required=True, help="a corpus (multi30k_task2/de) or a file")
  parser.add_argument("--split", default="train")
  parser.add_argument("--out", required=True)
  parser.add_argument("--chunk", type=int, default=2000, help="texts per resumable chunk")
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
  mode.add_argument("--sample", action="store_true", help="sample instead of beam search")
  parser.add_argument("--temperature", type=float, default=1.0)
  parser.add_argument("--seed", type=int, default=0, help="of the samples")
  parser.add_argument("--limit", type=int, default=0, help="only the first N texts (0 = all)")
  parser.add_argument("--batch-size", type=int, default=0, help="rows per decoder batch")
  parser.add_argument("--max-length", type=int, default=0, help="output tokens at most")
  parser.add_argument("--manual-dir", default="", help="the corpora folder")
  parser.add_argument("--shard", default="0/1",
                      help="I/N: translate only chunks I mod N (run N at once, one per core)")
  args = parser.parse_args(argv)
  try:
    shard = parse_shard(args.shard)
  except ValueError as e:
    parser.error(str(e))
  restored = launch.restore(args.run_dir)
  split = "" if os.path.isfile(args.source) else args.split   # a file has no split
  check_direction(restored, args.source if split else "")
  texts = source_texts(args.source, split, args.manual_dir)
  texts = texts[:args.limit] if args.limit else texts
  summary = back_translate(
      restored, texts, args.out, source=args.source, split=split, chunk=args.chunk,
      beam=args.beam, sample=args.sample, temperature=args.temperature, seed=args.seed,
      max_length=args.max_length, batch_size=args.batch_size, shard=shard,
      log=lambda line: print(line, flush=True))
  if summary is not None:
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())

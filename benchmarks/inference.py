"""Per-call times of a restored model's text APIs: the first call (compiles) and repeats.

  python -m benchmarks.inference                      # trains two small runs in a temp dir
  python -m benchmarks.inference --classifier runs/qs --translator runs/translation/en-de

Prints, for ``predict`` on one text, ``predict`` on ``--repeats`` texts and ``translate`` /
``summarize`` of one sentence: the first call's time and the median and max of
``--repeats`` further calls (varied texts of similar length, so of one padded
shape), plus the number of compiled shapes. The targets (issue 30): after the first
call, ``predict`` on one text well under 0.1 s, ``translate`` of one sentence under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time(call, inputs) -> list[float]:
  times = []
  for x in inputs:
    start = time.perf_counter()
    call(x)
    times.append(time.perf_counter() - start)
  return times


def report(name: str, restored, call, first, repeats) -> None:
  t0 = _time(call, [first])[0]
  times = _time(call, repeats)
  print(f"{name:<28} first {t0:7.3f} s   then median {statistics.median(times) * 1e3:7.1f} ms, "
        f"max {max(times) * 1e3:7.1f} ms over {len(times)} calls   "
        f"compiled shapes: {restored.compilations()}", flush=True)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--classifier", help="workdir of a classification run (default: train one)")
  parser.add_argument("--translator", help="workdir of a translation run (default: train one)")
  parser.add_argument("--summarizer", help="workdir of a summarization run (default: train one)")
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args(argv)
  sys.path.insert(0, ROOT)
  from xferlab import launch
  tmp = tempfile.mkdtemp(prefix="xferlab-inference-")
  few = {"train.num_steps": 20, "train.eval_every": 20, "train.progress_bar": False}
  if not args.classifier:
    args.classifier = os.path.join(tmp, "cls")
    launch.run(os.path.join(ROOT, "experiments/quickstart.py:dann"), few, args.classifier)
  if not args.translator:
    args.translator = os.path.join(tmp, "mt")
    launch.run(os.path.join(ROOT, "experiments/translation/multi30k.py:copy"), few, args.translator)
  if not args.summarizer:
    args.summarizer = os.path.join(tmp, "sum")
    launch.run(os.path.join(ROOT, "experiments/summarization/news_to_science.py:copy"), few,
               args.summarizer)
  n = args.repeats
  cls = launch.restore(args.classifier)
  words = ["sturdy", "flimsy", "great", "awful", "pan", "lid", "really", "waste"]
  texts = [" ".join(words[(i + j) % len(words)] for j in range(6)) for i in range(n)]
  report("predict, 1 text", cls, cls.predict, "a sturdy pan , really great", texts)
  report(f"predict, {n} texts", cls, cls.predict, texts[::-1],
         [texts[i:] + texts[:i] for i in range(n)])
  mt = launch.restore(args.translator)
  sentences = [" ".join(f"w{(i * 3 + j) % 20}" for j in range(7)) for i in range(n)]
  report("translate, 1 sentence", mt, mt.translate, "w1 w2 w3 w4 w5 w6 w7", sentences)
  sm = launch.restore(args.summarizer)
  documents = [" ".join(f"w{(i * 5 + j) % 30}" for j in range(12)) for i in range(n)]
  report("summarize, 1 document", sm, sm.summarize, documents[0], documents)
  return 0


if __name__ == "__main__":
  sys.exit(main())

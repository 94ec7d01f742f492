"""Tasks: what is learned (data, model, loss, evaluation); the trainer is shared.

A task object provides:

* ``prepare(config, workdir) -> TaskData`` -- tokenizer (saved into the workdir),
  the training stream and the evaluation sets;
* ``build_model(config, vocab_size) -> nnx.Module``;
* ``loss(model, batch, lam, rngs) -> (loss, metrics)`` -- traced, inside jit;
  a task with ``stateful = True`` takes the carried ``task_state`` as a fifth
  argument and returns ``(loss, (metrics, new task_state))``, and provides
  ``initial_task_state(config)`` (a language model's hidden state);
* ``eval_sums(model, batch)`` -- traced; sums that ``eval_metrics`` turns into floats;
* ``predict(model, tokenizer, config, texts)`` -- for restored models
  (``translate`` / ``summarize`` for encoder-decoder tasks);
* optionally ``final_metrics(model, tokenizer, config, workdir) -> dict`` --
  metrics of the selected model computed once after training (BLEU of decoded
  translations), merged into ``results.json``.
"""

from __future__ import annotations

from xferlab.tasks.base import TaskData
from xferlab.tasks.classification import ClassificationTask
from xferlab.tasks.language_model import LanguageModelTask
from xferlab.tasks.summarization import SummarizationTask
from xferlab.tasks.translation import TranslationTask

TASKS = {"classification": ClassificationTask(), "language_model": LanguageModelTask(),
         "translation": TranslationTask(), "summarization": SummarizationTask()}


def get_task(name: str):
  if name not in TASKS:
    raise ValueError(f"Unknown task {name!r}; choose one of {sorted(TASKS)}")
  return TASKS[name]


__all__ = ["TASKS", "TaskData", "get_task"]

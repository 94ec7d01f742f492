"""Tasks: what is learned (data, model, loss, evaluation); the trainer is shared.

Every task subclasses ``xferlab.tasks.base.Task`` (the protocol, one loss
signature for all: ``loss(model, batch, lam, rngs, task_state) -> (loss,
(metrics, task_state))``). Restored models use a task's ``predict``
(classification) or ``translate`` / ``summarize`` (encoder-decoder tasks).
"""

from __future__ import annotations

from xferlab.tasks.base import Task, TaskData
from xferlab.tasks.classification import ClassificationTask
from xferlab.tasks.language_model import LanguageModelTask
from xferlab.tasks.summarization import SummarizationTask
from xferlab.tasks.translation import TranslationTask

TASKS = {"classification": ClassificationTask(), "language_model": LanguageModelTask(),
         "translation": TranslationTask(), "summarization": SummarizationTask()}


def get_task(name: str) -> Task:
  if name not in TASKS:
    raise ValueError(f"Unknown task {name!r}; choose one of {sorted(TASKS)}")
  return TASKS[name]


__all__ = ["TASKS", "Task", "TaskData", "get_task"]

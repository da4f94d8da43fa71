"""In-process runner: evaluates tasks one training group at a time.

Why it exists beside Ray: debugging (breakpoints, tracebacks), determinism
tests, and the engine-overhead benchmark. It batches: ``results()`` evaluates
everything submitted so far, grouped by training key so one training serves all
its hardware variants, and returns the batch for one store transaction.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
import warnings
from collections import OrderedDict

from dse.runners.base import EvalResult, EvalTask, Runner
from evaluators.base import Evaluator, EvaluatorSpec


def format_error(exc: BaseException) -> str:
    """Error text recorded in the store: type, message and the traceback tail."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n{tb[-4000:]}"


def run_group(evaluator: Evaluator, tasks: list[EvalTask], worker: str) -> list[EvalResult]:
    """Evaluate tasks sharing a training key in one ``evaluate_batch`` call.

    Warnings the evaluator raises (a corrupt model-cache file, a missing C compiler)
    travel back with the first result as ``extra["warnings"]``: a Ray worker's stderr
    does not reach the user, so the study loop prints them, each once per run.
    """
    started = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # each distinct message once per group
        try:
            outcomes = evaluator.evaluate_batch([t.design for t in tasks])
        except Exception as exc:  # a failure of the shared part (e.g. the training) fails the group
            outcomes = [exc] * len(tasks)
    finished = time.time()
    raised = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    per = (finished - started) / max(len(tasks), 1)
    results = []
    for i, (task, out) in enumerate(zip(tasks, outcomes, strict=True)):
        t0, t1 = started + i * per, started + (i + 1) * per
        if isinstance(out, BaseException):
            results.append(
                EvalResult(
                    task.design_id, "failed", None, format_error(out), t0, t1, worker, task.attempt
                )
            )
        else:
            metrics = {k: float(v) for k, v in out.items()}
            results.append(
                EvalResult(task.design_id, "done", metrics, None, t0, t1, worker, task.attempt)
            )
    if raised and results:
        results[0].extra["warnings"] = raised
    return results


class SerialRunner(Runner):
    """Evaluates in the calling process; ``batch`` tasks in flight per round."""

    def __init__(self, spec: EvaluatorSpec, batch: int = 16, evaluator: Evaluator | None = None):
        super().__init__(spec)
        self.batch = batch
        self._evaluator = evaluator
        self._queue: OrderedDict[str | None, list[EvalTask]] = OrderedDict()
        self._worker = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = self.spec.create()
        return self._evaluator

    def submit(self, tasks: list[EvalTask]) -> None:
        for t in tasks:
            self._queue.setdefault(t.training_key or f"__solo:{t.design_id}", []).append(t)

    def results(self, timeout: float | None = None) -> list[EvalResult]:
        out: list[EvalResult] = []
        while self._queue:
            _, tasks = self._queue.popitem(last=False)
            out.extend(run_group(self.evaluator, tasks, self._worker))
        return out

    def pending(self) -> int:
        return sum(len(v) for v in self._queue.values())

    def capacity(self) -> int:
        return self.batch

"""The runner contract: tasks in, results out as they complete.

A runner never talks to the store or the optimizer; the study loop does. This
keeps serial and Ray runners interchangeable and lets the loop commit a batch
of results in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from evaluators.base import EvaluatorSpec


@dataclass(frozen=True)
class EvalTask:
    """One design to evaluate."""

    design_id: str
    design: dict[str, Any]
    training_key: str | None = None
    attempt: int = 1


@dataclass
class EvalResult:
    """Outcome of one task. ``status`` is 'done' or 'failed' (error text kept)."""

    design_id: str
    status: Literal["done", "failed"]
    metrics: dict[str, float] | None = None
    error: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    worker: str = ""
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


class Runner(ABC):
    """Evaluates tasks with an evaluator rebuilt from ``spec`` wherever it runs."""

    def __init__(self, spec: EvaluatorSpec):
        self.spec = spec

    @abstractmethod
    def submit(self, tasks: list[EvalTask]) -> None:
        """Queue tasks; returns at once (serial runner may defer work to ``results``)."""

    @abstractmethod
    def results(self, timeout: float | None = None) -> list[EvalResult]:
        """Completed results since the last call; waits up to ``timeout`` for at least one."""

    @abstractmethod
    def pending(self) -> int:
        """Tasks submitted whose result has not been returned yet."""

    def capacity(self) -> int:
        """How many tasks can usefully run at once (the loop keeps this many in flight)."""
        return 1

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release workers (idempotent)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""When a study stops: small termination objects, one rule each (pymoo's style).

Why apart from the loop: each rule (budget, time, CPU hours, stagnation, fail-fast, an
exhausted space) is a decision a user reads about in the docs and in a run's last line;
one class per rule keeps the rule, its parameters and the words it prints together, and
lets the loop ask them all alike. Two kinds:

* *asking* rules (:class:`StopRule`): once one says stop, no new design is proposed;
  what is in flight finishes and is recorded, then the run ends with that rule's name;
* the *abort* rule :class:`FailFast`: ends the run at once (in-flight designs stay
  recorded as running; ``dse resume`` re-queues them).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dse.runners.base import EvalResult

__all__ = [
    "RunState",
    "StopRule",
    "EvaluationBudget",
    "TimeBudget",
    "CpuBudget",
    "Stagnation",
    "FailFast",
    "budget_rules",
    "first_stop",
    "state_now",
]


@dataclass
class RunState:
    """What the rules look at, refreshed by the loop before it asks them."""

    #: designs in the store: recorded, queued and running (the budget counts them all)
    reserved: float
    #: CPU-seconds the evaluations of this study used so far
    cpu_seconds: float
    #: wall clock (``time.time()``)
    now: float


class StopRule(ABC):
    """An asking rule: :meth:`reason` is None while new designs may be proposed."""

    #: the word a run's outcome records (``StudyOutcome.stopped_by``)
    name: str

    @abstractmethod
    def reason(self, state: RunState) -> str | None:
        """``self.name`` once the rule says stop, else None."""


@dataclass
class EvaluationBudget(StopRule):
    """``budget.evaluations``: at most ``n`` designs in the store (the store enforces it too)."""

    n: float
    name: str = "budget"

    def reason(self, state: RunState) -> str | None:
        return self.name if state.reserved >= self.n else None


@dataclass
class TimeBudget(StopRule):
    """``budget.time``: no new design after ``deadline`` (wall clock, resumes included)."""

    deadline: float
    name: str = "time"

    def reason(self, state: RunState) -> str | None:
        return self.name if state.now >= self.deadline else None


@dataclass
class CpuBudget(StopRule):
    """``budget.cpu_hours``: evaluation CPU-seconds (duration × CPUs per evaluation)."""

    seconds: float
    name: str = "cpu_hours"

    def reason(self, state: RunState) -> str | None:
        return self.name if state.cpu_seconds >= self.seconds else None


@dataclass
class Stagnation(StopRule):
    """``budget.stagnation``: the hypervolume ``dse status`` prints rose by less than
    ``tol`` (relative) over the last ``window`` evaluations (see
    :meth:`dse.query.HypervolumeTracker.stagnated`)."""

    window: int
    tol: float
    tracker: Any  # dse.query.HypervolumeTracker
    name: str = "stagnation"

    def reason(self, state: RunState) -> str | None:
        return self.name if self.tracker.stagnated(self.window, self.tol) else None


def first_stop(rules: Sequence[StopRule], state: RunState) -> str | None:
    """The name of the first rule that says stop, in the order given, else None."""
    for rule in rules:
        why = rule.reason(state)
        if why is not None:
            return why
    return None


def budget_rules(
    budget: Any, tracker: Any, *, evaluations: float, deadline: float | None
) -> list[StopRule]:
    """The asking rules of a spec's ``budget`` (``dse.spec.BudgetSpec``); ``evaluations``
    and ``deadline`` are the run's own (flags and earlier runs' time already applied)."""
    rules: list[StopRule] = []
    if deadline is not None:
        rules.append(TimeBudget(deadline))
    if budget.cpu_hours is not None:
        rules.append(CpuBudget(budget.cpu_hours * 3600))
    if budget.stagnation is not None:
        rules.append(Stagnation(budget.stagnation.window, budget.stagnation.tol, tracker))
    if not math.isinf(evaluations):
        rules.append(EvaluationBudget(evaluations))
    return rules


class FailFast:
    """Abort rule: the first ``k`` evaluations of this run all failed, or the last ``k``
    failed with the same error (``budget.fail_fast``; 0 is off). Why: a broken dataset path
    or a bad option fails every design the same way; running the whole budget only hides it."""

    def __init__(self, k: int):
        self.k = int(k)
        self.done = 0
        self.failed = 0
        self._streak: list[str] = []

    def update(self, results: list[EvalResult]) -> None:
        for r in results:
            if r.status == "done":
                self.done += 1
                self._streak.clear()
            else:
                self.failed += 1
                self._streak = ([*self._streak, r.error or ""])[-self.k :] if self.k else []

    @property
    def triggered(self) -> bool:
        if self.k <= 0:
            return False
        first_all_failed = self.done == 0 and self.failed >= self.k
        repeated = len(self._streak) >= self.k and len(set(self._streak)) == 1
        return first_all_failed or repeated

    def describe(self) -> str:
        first = self.done == 0 and self.failed >= self.k
        what = (
            f"the first {self.failed} evaluations failed"
            if first
            else (f"the same error {self.k} times in a row")
        )
        return f"fail_fast ({what})"


def state_now(reserved: float, cpu_seconds: Callable[[], float]) -> RunState:
    """A fresh :class:`RunState` (the clock read once)."""
    return RunState(reserved=reserved, cpu_seconds=cpu_seconds(), now=time.time())

"""dse.termination: each stopping rule on its own, and the spec's budget turned into rules."""

from __future__ import annotations

import math

from dse.query import HypervolumeTracker
from dse.runners.base import EvalResult
from dse.spec import BudgetSpec
from dse.termination import (
    CpuBudget,
    EvaluationBudget,
    FailFast,
    RunState,
    Stagnation,
    TimeBudget,
    budget_rules,
    first_stop,
)


def _state(reserved=0.0, cpu=0.0, now=0.0) -> RunState:
    return RunState(reserved=reserved, cpu_seconds=cpu, now=now)


def test_each_rule_says_stop_at_its_limit_and_not_before():
    assert EvaluationBudget(10).reason(_state(reserved=9)) is None
    assert EvaluationBudget(10).reason(_state(reserved=10)) == "budget"
    assert TimeBudget(100.0).reason(_state(now=99.9)) is None
    assert TimeBudget(100.0).reason(_state(now=100.0)) == "time"
    assert CpuBudget(3600.0).reason(_state(cpu=3599)) is None
    assert CpuBudget(3600.0).reason(_state(cpu=3600)) == "cpu_hours"


def test_stagnation_reads_the_tracker():
    tracker = HypervolumeTracker({"f1": "min", "f2": "min"}, window=3)
    rule = Stagnation(window=3, tol=1e-9, tracker=tracker)
    tracker.add([({}, {"f1": 1.0, "f2": 2.0}), ({}, {"f1": 2.0, "f2": 1.0})], 2)
    assert rule.reason(_state()) is None  # fewer evaluations than the window
    for n in range(3, 6):
        tracker.add([({}, {"f1": 2.0, "f2": 2.0})], n)  # dominated: no gain
    assert rule.reason(_state()) == "stagnation"


def test_budget_rules_follow_the_spec_and_report_in_order():
    budget = BudgetSpec(evaluations=50, time=60, cpu_hours=0.5, stagnation={"window": 20})
    tracker = HypervolumeTracker({"f1": "min"})
    rules = budget_rules(budget, tracker, evaluations=50, deadline=1000.0)
    assert [r.name for r in rules] == ["time", "cpu_hours", "stagnation", "budget"]
    assert first_stop(rules, _state(reserved=10, cpu=10, now=0)) is None
    # time is named before the budget when both hold, as a run's last line says
    assert first_stop(rules, _state(reserved=50, now=2000.0)) == "time"
    assert first_stop(rules, _state(reserved=50)) == "budget"
    unbounded = budget_rules(BudgetSpec(time=60), tracker, evaluations=math.inf, deadline=None)
    assert unbounded == []


def _result(i: int, ok: bool, error: str = "boom") -> EvalResult:
    return EvalResult(f"d{i}", "done" if ok else "failed", None, None if ok else error)


def test_fail_fast_first_k_failures_or_k_equal_errors_in_a_row():
    rule = FailFast(3)
    rule.update([_result(0, False, "a"), _result(1, False, "b")])
    assert not rule.triggered
    rule.update([_result(2, False, "c")])
    assert rule.triggered and rule.describe() == "fail_fast (the first 3 evaluations failed)"
    rule = FailFast(3)
    rule.update([_result(0, True), _result(1, False, "x"), _result(2, False, "y")])
    rule.update([_result(3, False, "y"), _result(4, False, "y")])
    assert rule.triggered and "the same error 3 times in a row" in rule.describe()
    off = FailFast(0)
    off.update([_result(i, False) for i in range(10)])
    assert not off.triggered

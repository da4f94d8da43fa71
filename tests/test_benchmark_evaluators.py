"""Benchmark evaluators: analytic values, true-front hypervolumes, batch = single, options."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from evaluators.base import EvaluatorError, available_evaluators, create_evaluator


def test_benchmarks_are_registered() -> None:
    assert {"zdt1", "zdt2", "zdt3", "dtlz2", "noop", "sleep"} <= set(available_evaluators())


@pytest.mark.parametrize("name, n_var", [("zdt1", 7), ("zdt2", 30), ("zdt3", 5), ("dtlz2", 12)])
def test_default_space_covers_the_problem_bounds(name: str, n_var: int) -> None:
    ev = create_evaluator(name, n_var=n_var)
    space = ev.default_space()
    assert space.names == [f"x_{i}" for i in range(n_var)]
    assert all(p.low == 0.0 and p.high == 1.0 and p.stage == "deploy" for p in space)
    assert ev.metric_names() == [f"f{j + 1}" for j in range(ev.n_obj)]


def test_zdt_values_match_their_closed_forms() -> None:
    # On the Pareto set (x_1.. = 0, g = 1): ZDT1 f2 = 1 - sqrt(f1), ZDT2 f2 = 1 - f1^2 (Zitzler 2000)
    design = {"x_0": 0.25, **{f"x_{i}": 0.0 for i in range(1, 10)}}
    assert create_evaluator("zdt1", n_var=10).evaluate(design) == pytest.approx(
        {"f1": 0.25, "f2": 0.5}
    )
    assert create_evaluator("zdt2", n_var=10).evaluate(design) == pytest.approx(
        {"f1": 0.25, "f2": 1 - 0.0625}
    )
    off = {**design, "x_3": 1.0}  # g = 1 + 9/9 = 2: f2 = 2 (1 - sqrt(0.25 / 2))
    assert create_evaluator("zdt1", n_var=10).evaluate(off)["f2"] == pytest.approx(
        2 * (1 - math.sqrt(0.125))
    )


def test_dtlz2_optimum_lies_on_the_unit_sphere() -> None:
    ev = create_evaluator("dtlz2", n_obj=3)
    assert ev.n_var == 12
    rng = np.random.default_rng(0)
    for _ in range(5):
        d = {f"x_{i}": (rng.uniform() if i < 2 else 0.5) for i in range(ev.n_var)}
        f = np.array(list(ev.evaluate(d).values()))
        assert np.linalg.norm(f) == pytest.approx(1.0)
    four = create_evaluator("dtlz2", n_obj=4, n_var=8)
    assert four.metric_names() == ["f1", "f2", "f3", "f4"]


def test_true_front_hypervolumes_match_analytic_values() -> None:
    ref = [1.1, 1.1]
    # area dominated inside [0, 1.1]^2: ∫0^1 (1.1 - f2(f1)) df1 + 0.1 * 1.1
    assert create_evaluator("zdt1").true_front_hypervolume(ref) == pytest.approx(
        1.1 - 1 / 3 + 0.11, rel=1e-3
    )
    assert create_evaluator("zdt2").true_front_hypervolume(ref) == pytest.approx(
        1.1 - 2 / 3 + 0.11, rel=1e-3
    )
    dtlz2 = create_evaluator("dtlz2")
    exact = 1.1**3 - math.pi / 6
    assert dtlz2.true_front_hypervolume([1.1] * 3) == pytest.approx(exact)
    # the dense-front estimate used for other reference points agrees to ~2 %
    from pymoo.indicators.hv import HV

    dense = HV(ref_point=np.array([1.1] * 3))(dtlz2.pareto_front(2000))
    assert dense == pytest.approx(exact, rel=0.03)
    zdt3 = create_evaluator("zdt3")
    assert 0 < zdt3.true_front_hypervolume(ref) < 1.1 * 2.0
    with pytest.raises(ValueError, match="must have 2 entries"):
        create_evaluator("zdt1").true_front_hypervolume([1.1] * 3)


def test_evaluate_batch_equals_single_and_reports_bad_designs() -> None:
    ev = create_evaluator("zdt3", n_var=6)
    space = ev.default_space()
    rng = np.random.default_rng(2)
    designs = [space.sample(rng) for _ in range(8)]
    batch = ev.evaluate_batch(designs)
    for d, m in zip(designs, batch, strict=True):
        assert m == pytest.approx(ev.evaluate(d))
    mixed = ev.evaluate_batch([designs[0], {"x_0": 0.5}])
    assert mixed[0] == pytest.approx(batch[0])
    assert isinstance(mixed[1], EvaluatorError) and "x_1" in str(mixed[1])


def test_noop_and_sleep() -> None:
    noop = create_evaluator("noop", n_var=3)
    assert noop.evaluate({"x_0": 0.2, "x_1": 0.3, "x_2": 1.0}) == pytest.approx(
        {"f1": 1.5, "f2": 0.64 + 0.49}
    )
    assert len(noop.default_space()) == 3
    sleep = create_evaluator("sleep", seconds=0.05)
    t0 = time.perf_counter()
    assert sleep.evaluate({"x_0": 0.5, "x_1": 0.5}) == pytest.approx({"f1": 1.0, "f2": 0.5})
    assert time.perf_counter() - t0 >= 0.05


@pytest.mark.parametrize(
    "name, options, fragment",
    [
        ("zdt1", {"n_var": 1}, "n_var=1"),
        ("zdt1", {"n_var": "ten"}, "n_var='ten'"),
        ("zdt1", {"n_obj": 3}, "n_obj"),
        ("dtlz2", {"n_obj": 1}, "n_obj=1"),
        ("dtlz2", {"n_obj": 5, "n_var": 3}, "n_var >= n_obj"),
        ("sleep", {"seconds": -1}, "seconds=-1"),
        ("noop", {"n_var": 0}, "n_var=0"),
    ],
)
def test_bad_options_are_rejected_with_a_clear_message(name, options, fragment) -> None:
    with pytest.raises(EvaluatorError, match="allowed|unexpected keyword") as info:
        create_evaluator(name, **options)
    assert fragment in str(info.value)

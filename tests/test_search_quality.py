"""Search quality through the whole engine (spec -> study loop -> SQLite store -> query).

Budgets are stated per test. Hypervolume is measured by ``dse.query.hypervolume``
over every recorded design, against a stated reference point, as a fraction of
the true front's hypervolume (``pareto_front()`` of the pymoo problem).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dse
from dse.query import hypervolume
from evaluators.base import create_evaluator


def _study(
    name: str, evaluator: dict, objectives: dict, optimizer: dict, evaluations: int, seed: int = 0
) -> dict:
    return {
        "name": name,
        "evaluator": evaluator,
        "objectives": objectives,
        "optimizer": optimizer,
        "budget": {"evaluations": evaluations},
        "runner": {"kind": "serial", "batch": optimizer.get("population", 20)},
        "seed": seed,
    }


def _hv_fraction(view: dse.StudyView, evaluator: dict, ref: list[float]) -> float:
    ev = create_evaluator(evaluator["name"], **{k: v for k, v in evaluator.items() if k != "name"})
    measured = hypervolume(view.frame(), view.objectives, ref_point=ref)
    return measured.value / ev.true_front_hypervolume(ref)


@pytest.mark.parametrize("problem", ["zdt1", "zdt2"])
def test_nsga2_reaches_95_percent_of_true_front_on_zdt(problem: str, tmp_path: Path) -> None:
    # ZDT with n_var=10; NSGA-II population 40 for 100 generations = 4000 evaluations; ref (1.1, 1.1)
    evaluator = {"name": problem, "n_var": 10}
    spec = _study(
        problem, evaluator, {"f1": "min", "f2": "min"}, {"name": "nsga2", "population": 40}, 4000
    )
    view = dse.run(spec, runs_dir=tmp_path)
    assert len(view.frame()) == 4000
    assert _hv_fraction(view, evaluator, [1.1, 1.1]) >= 0.95


def test_nsga3_reaches_90_percent_of_true_front_on_dtlz2(tmp_path: Path) -> None:
    # 3-objective DTLZ2 (n_var=12); NSGA-III with 12 partitions (91 directions, population 92),
    # 60 generations = 5520 evaluations; ref (1.1, 1.1, 1.1)
    evaluator = {"name": "dtlz2", "n_obj": 3}
    objectives = {"f1": "min", "f2": "min", "f3": "min"}
    spec = _study("dtlz2", evaluator, objectives, {"name": "nsga3", "partitions": 12}, 92 * 60)
    spec["runner"]["batch"] = 92
    view = dse.run(spec, runs_dir=tmp_path)
    assert _hv_fraction(view, evaluator, [1.1, 1.1, 1.1]) >= 0.90


def test_nsga2_beats_random_on_every_seed(tmp_path: Path) -> None:
    # ZDT1 with n_var=4; 400 evaluations each (NSGA-II population 20 x 20 generations); 5 seeds
    evaluator = {"name": "zdt1", "n_var": 4}
    objectives = {"f1": "min", "f2": "min"}
    for seed in range(5):
        fractions = {}
        for opt in ({"name": "nsga2", "population": 20}, {"name": "random"}):
            spec = _study(f"{opt['name']}_{seed}", evaluator, objectives, opt, 400, seed)
            view = dse.run(spec, runs_dir=tmp_path)
            fractions[opt["name"]] = _hv_fraction(view, evaluator, [1.1, 1.1])
        assert fractions["nsga2"] > fractions["random"], (seed, fractions)

"""Optimizers: contract, seeds, conditions, failures, constraints, warm start, search quality.

Every test drives the optimizer with a tiny ask -> evaluate -> tell loop; the
search-quality checks go through the whole engine in tests/test_search_quality.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymoo.indicators.hv import HV

from dse.optimizers import OptimizerError, available_optimizers, create_optimizer
from evaluators.base import create_evaluator
from search_spaces import SearchSpace

ALL = ["nsga2", "nsga3", "optuna-nsga2", "tpe", "random", "grid", "qmc"]

MIXED = SearchSpace.from_dict(
    {
        "x": {"low": 0.0, "high": 1.0, "size": 2},
        "k": {"low": 1, "high": 5, "type": "int"},
        "c": ["a", "b"],
        "y": {"low": 0.1, "high": 10.0, "log": True, "when": "c == 'b'"},
        "fixed": {"value": 3},
    }
)


def mixed_metrics(d: dict) -> dict:
    y = d.get("y", 1.0)
    return {"f1": d["x_0"] + 0.1 * d["k"], "f2": (1 - d["x_0"]) ** 2 + d["x_1"] + abs(np.log(y))}


def drive(opt, evaluate, budget: int, batch: int) -> list[tuple[dict, dict | None]]:
    """The minimal study loop: ask, evaluate, tell, until the budget or exhaustion."""
    told: list[tuple[dict, dict | None]] = []
    while len(told) < budget and not opt.exhausted():
        designs = opt.ask(min(batch, budget - len(told)))
        assert designs or opt.exhausted(), "optimizer returned nothing although all was told"
        metrics = evaluate(designs)
        opt.tell(designs, metrics)
        told += zip(designs, metrics, strict=True)
    return told


def bench(name: str, **options):
    ev = create_evaluator(name, **options)
    return ev, ev.default_space(), (lambda ds: ev.evaluate_batch(ds))


def hv_fraction(ev, told, ref) -> float:
    F = np.array([[m[k] for k in ev.metric_names()] for _, m in told if m is not None])
    return HV(ref_point=np.array(ref))(F) / ev.true_front_hypervolume(ref)


# --------------------------------------------------------------------------- contract


def test_registry_names_and_errors() -> None:
    assert available_optimizers() == sorted(ALL)
    with pytest.raises(OptimizerError, match="unknown optimizer 'cmaes'; allowed: grid, nsga2"):
        create_optimizer("cmaes", MIXED, {"f1": "min"}, [], 0, {})
    with pytest.raises(OptimizerError, match="unknown option.*popsize.*allowed: population"):
        create_optimizer("nsga2", MIXED, {"f1": "min"}, [], 0, {"popsize": 10})
    with pytest.raises(
        OptimizerError, match="unknown option.*population.*allowed: levels, shuffle"
    ):
        create_optimizer("grid", MIXED, {"f1": "min"}, [], 0, {"population": 10})
    with pytest.raises(OptimizerError, match="direction 'up'; allowed: min, max"):
        create_optimizer("random", MIXED, {"f1": "up"}, [], 0, {})
    with pytest.raises(OptimizerError, match="population=1"):
        create_optimizer("nsga2", MIXED, {"f1": "min"}, [], 0, {"population": 1})
    with pytest.raises(OptimizerError, match="qmc_type='lattice'.*sobol, halton"):
        create_optimizer("qmc", MIXED, {"f1": "min"}, [], 0, {"qmc_type": "lattice"})
    with pytest.raises(OptimizerError, match="smaller than the 91 reference directions"):
        create_optimizer("nsga3", MIXED, {"a": "min", "b": "min", "c": "min"}, [], 0,
                         {"population": 20, "partitions": 12})  # fmt: skip
    with pytest.raises(OptimizerError, match="1 designs but 2 metrics"):
        create_optimizer("random", MIXED, {"f1": "min"}, [], 0, {}).tell([{}], [None, None])


@pytest.mark.parametrize("name", ALL)
def test_backend_is_seeded_and_respects_conditional_params(name: str) -> None:
    options = {"shuffle": True, "levels": 3} if name == "grid" else {}
    if name in ("nsga2", "optuna-nsga2"):
        options["population"] = 8

    def run(seed: int) -> list[dict]:
        opt = create_optimizer(name, MIXED, {"f1": "min", "f2": "min"}, [], seed, options)
        told = drive(opt, lambda ds: [mixed_metrics(d) for d in ds], budget=24, batch=8)
        return [d for d, _ in told]

    first = run(3)
    assert len(first) == 24
    for d in first:
        assert MIXED.validate(d) == d  # canonical and in range
        assert ("y" in d) == (d["c"] == "b")  # conditional param only when active
        assert d["fixed"] == 3
    assert run(3) == first  # same seed, same sequence
    assert run(4) != first


def test_pymoo_hands_out_a_generation_and_waits_for_it() -> None:
    ev, space, evaluate = bench("zdt1", n_var=4)
    opt = create_optimizer("nsga2", space, {"f1": "min", "f2": "min"}, [], 0, {"population": 10})
    gen = opt.ask(100)
    assert len(gen) == 10  # one generation at most
    assert opt.ask(5) == []  # all out, nothing told yet
    opt.tell(gen[:9], evaluate(gen[:9]))
    assert opt.ask(5) == []  # one result still missing
    opt.tell(gen[9:], evaluate(gen[9:]))
    nxt = opt.ask(4)
    assert len(nxt) == 4 and not set(map(str, nxt)) & set(map(str, gen))
    assert not opt.exhausted()


def test_pymoo_chooses_real_coded_or_mixed_variables() -> None:
    real = create_optimizer("nsga2", bench("zdt1", n_var=3)[1], {"f1": "min"}, [], 0, {})
    mixed = create_optimizer("nsga2", MIXED, {"f1": "min"}, [], 0, {})
    assert not real.mixed and mixed.mixed


@pytest.mark.parametrize("name, max_end", [("nsga2", 0.15), ("optuna-nsga2", 0.3)])
def test_failed_designs_are_avoided(name: str, max_end: float) -> None:
    ev, space, evaluate = bench("zdt1", n_var=4)

    def flaky(ds):  # every design with x_1 > 0.5 fails (half of the space)
        return [None if d["x_1"] > 0.5 else m for d, m in zip(ds, evaluate(ds), strict=True)]

    opt = create_optimizer(name, space, {"f1": "min", "f2": "min"}, [], 0, {"population": 20})
    told = drive(opt, flaky, budget=200, batch=20)
    first = np.mean([m is None for _, m in told[:20]])
    last = np.mean([m is None for _, m in told[-40:]])
    assert first > 0.3 and last < max_end, (first, last)  # sampling blindly fails half
    assert opt.n_failed == sum(m is None for _, m in told)


@pytest.mark.parametrize(
    "name, budget, batch, options, min_end",
    [
        ("nsga2", 200, 20, {"population": 20}, 0.8),
        ("nsga3", 200, 20, {"population": 20}, 0.8),
        ("optuna-nsga2", 300, 20, {"population": 20}, 0.5),
        ("tpe", 100, 5, {"n_startup_trials": 10}, 0.5),
    ],
)
def test_constraints_steer_the_search_to_the_feasible_region(
    name, budget, batch, options, min_end
) -> None:
    # Random sampling is ~10 % feasible; pymoo's feasibility-first survival gets most
    # designs feasible, Optuna's samplers (constrained domination, feasibility-aware TPE)
    # at least half, at the stated budgets.
    ev, space, evaluate = bench("zdt1", n_var=4)
    constraints = ["f1 >= 0.8", "x_2 <= 0.5"]  # metric and param constraints: ~10 % feasible
    opt = create_optimizer(name, space, {"f1": "min", "f2": "min"}, constraints, 1, options)
    told = drive(opt, evaluate, budget, batch)

    def feasible(d, m):
        return m["f1"] >= 0.8 and d["x_2"] <= 0.5

    start = np.mean([feasible(d, m) for d, m in told[:batch]])
    end = np.mean([feasible(d, m) for d, m in told[-20:]])
    assert start < 0.3 and end >= min_end, (start, end)


@pytest.mark.parametrize("name", ["nsga2", "tpe"])
def test_maximized_objectives_are_negated(name: str) -> None:
    ev, space, evaluate = bench("zdt1", n_var=4)
    opts = {"population": 20} if name == "nsga2" else {"n_startup_trials": 10}
    budget = 200 if name == "nsga2" else 50
    up = drive(create_optimizer(name, space, {"f1": "max", "f2": "min"}, [], 0, opts),
               evaluate, budget, 10)  # fmt: skip
    down = drive(create_optimizer(name, space, {"f1": "min", "f2": "max"}, [], 0, opts),
                 evaluate, budget, 10)  # fmt: skip
    # f1 = x_0 is uniform at first; maximizing pushes it up, minimizing down
    assert np.mean([m["f1"] for _, m in up[-10:]]) > 0.65
    assert np.mean([m["f1"] for _, m in down[-10:]]) < 0.35


def test_tell_accepts_designs_it_never_asked() -> None:
    ev, space, evaluate = bench("zdt1", n_var=3)
    foreign = [space.sample(np.random.default_rng(i)) for i in range(5)]
    for name in ALL:
        opt = create_optimizer(name, space, {"f1": "min", "f2": "min"}, [], 0, {})
        opt.tell(foreign, evaluate(foreign[:4]) + [None])
        assert opt.n_told == 5 and opt.n_failed == 1
        assert len(opt.ask(3)) > 0


# --------------------------------------------------------------------------- warm start


@pytest.mark.parametrize("name", ["nsga2", "optuna-nsga2"])
def test_warm_start_breeds_from_the_recorded_history(name: str) -> None:
    ev, space, evaluate = bench("zdt1", n_var=4)
    objectives = {"f1": "min", "f2": "min"}
    opts = {"population": 20}
    history = drive(create_optimizer(name, space, objectives, [], 0, opts), evaluate, 400, 20)
    warm = create_optimizer(name, space, objectives, [], 1, opts)
    warm.warm_start([d for d, _ in history], [m for _, m in history])
    cold = create_optimizer(name, space, objectives, [], 1, opts)
    ref = [1.1, 1.1]
    warm_next = drive(warm, evaluate, 20, 20)
    cold_next = drive(cold, evaluate, 20, 20)
    # the first generation after a warm start is bred from the recorded elite: it keeps much
    # of the last recorded generation's quality, far above a cold start's random generation
    warm_hv, cold_hv = hv_fraction(ev, warm_next, ref), hv_fraction(ev, cold_next, ref)
    assert warm_hv > 0.5 * hv_fraction(ev, history[-20:], ref)
    assert warm_hv > cold_hv + 0.2


def test_random_warm_start_continues_the_same_sequence() -> None:
    objectives = {"f1": "min", "f2": "min"}
    whole = create_optimizer("random", MIXED, objectives, [], 7, {}).ask(30)
    resumed = create_optimizer("random", MIXED, objectives, [], 7, {})
    resumed.warm_start(whole[:12], [mixed_metrics(d) for d in whole[:12]])
    assert resumed.ask(18) == whole[12:]


def test_grid_is_exhaustive_and_resumes_without_repeats() -> None:
    objectives = {"f1": "min", "f2": "min"}
    size = MIXED.grid_size(3)
    opt = create_optimizer("grid", MIXED, objectives, [], 0, {"levels": 3})
    assert opt.size == size
    first = opt.ask(10)
    resumed = create_optimizer("grid", MIXED, objectives, [], 0, {"levels": 3})
    resumed.warm_start(first, [mixed_metrics(d) for d in first])
    rest = drive(resumed, lambda ds: [mixed_metrics(d) for d in ds], budget=10**6, batch=7)
    assert resumed.exhausted() and resumed.ask(5) == []
    keys = [str(sorted(d.items())) for d in first] + [str(sorted(d.items())) for d, _ in rest]
    assert len(keys) == len(set(keys)) == size
    shuffled = create_optimizer("grid", MIXED, objectives, [], 0, {"levels": 3, "shuffle": True})
    assert shuffled.ask(10) != first
    with pytest.raises(OptimizerError, match="shuffle needs the whole grid"):
        from evaluators.cim.space import cim_space

        create_optimizer("grid", cim_space(), objectives, [], 0, {"shuffle": True})


def test_tpe_warm_start_adds_history_to_its_study() -> None:
    ev, space, evaluate = bench("zdt1", n_var=3)
    history = [space.sample(np.random.default_rng(i)) for i in range(6)]
    opt = create_optimizer("tpe", space, {"f1": "min", "f2": "max"}, ["f1 <= 0.5"], 0, {})
    opt.warm_start(history, evaluate(history[:5]) + [None])
    trials = opt.study.trials
    assert len(trials) == 6 and sum(t.state.name == "FAIL" for t in trials) == 1
    done = [t for t in trials if t.state.name == "COMPLETE"]
    for t, m in zip(done, evaluate(history[:5]), strict=True):
        assert t.values == pytest.approx([m["f1"], -m["f2"]])  # max negated
        assert t.constraints == {"c0": pytest.approx(m["f1"] - 0.5)}


def test_qmc_covers_the_space_more_evenly_than_random() -> None:
    from scipy.stats import qmc

    space = SearchSpace.from_dict({"x": {"low": 0.0, "high": 1.0, "size": 2}})

    def points(name: str) -> np.ndarray:
        opt = create_optimizer(name, space, {"f1": "min"}, [], 0, {})
        told = drive(opt, lambda ds: [{"f1": d["x_0"]} for d in ds], budget=64, batch=16)
        return np.array([[d["x_0"], d["x_1"]] for d, _ in told])

    assert qmc.discrepancy(points("qmc")) < 0.5 * qmc.discrepancy(points("random"))


# Search-quality checks (ZDT1/2, DTLZ2, NSGA-II vs random) run through the whole engine in
# tests/test_search_quality.py, with the same budgets.


def test_options_are_typed_with_defaults_and_described() -> None:
    """Every backend's options are one typed model: defaults filled, wrong types refused
    with the option named, and each field says what is allowed (the error repeats it)."""
    from dse.optimizers.base import REGISTERED

    grid = create_optimizer("grid", MIXED, {"f1": "min"}, [], 0, {"levels": 3})
    assert grid.opts.levels == 3 and grid.opts.shuffle is False
    with pytest.raises(OptimizerError, match=r"population=True is not allowed.*integer >= 2"):
        create_optimizer("nsga2", MIXED, {"f1": "min"}, [], 0, {"population": True})
    with pytest.raises(OptimizerError, match=r"crossover_prob=2.0 .*probability in \[0, 1\]"):
        create_optimizer("optuna-nsga2", MIXED, {"f1": "min"}, [], 0, {"crossover_prob": 2.0})
    nsga2 = create_optimizer("optuna-nsga2", MIXED, {"f1": "min"}, [], 0, {"population": 12})
    assert nsga2.sampler._population_size == 12  # the typed value reaches the sampler
    for name, cls in REGISTERED.items():
        for field, info in cls.options_type.model_fields.items():
            assert info.description, (name, field)

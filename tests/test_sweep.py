"""Ray Tune sweeps into the study store, and multi-objective successive halving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dse.halving import RungBook, crowding_distance, nondominated_rank, rank_order

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- halving (pure)
def test_nondominated_rank_matches_pymoo():
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.random.default_rng(3).random((80, 3))
    expected = np.empty(80, dtype=int)
    for level, members in enumerate(NonDominatedSorting().do(F)):
        expected[members] = level
    assert (nondominated_rank(F) == expected).all()


def test_crowding_prefers_isolated_points_within_a_front():
    F = np.array([[0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [1.0, 0.0]])  # one front
    d = crowding_distance(F)
    assert np.isinf(d[0]) and np.isinf(d[3]) and d[2] > d[1]
    order = rank_order(np.vstack([F, [[1.0, 1.0]]]))  # add a dominated point
    assert order[-1] == 4 and order[2] == 2


def test_rungbook_keeps_top_fraction_by_rank_on_every_objective():
    book = RungBook({"err": "min", "eff": "max"}, rungs=[1, 3, 9], eta=2)
    assert book.record("a", 0, {"err": 0.5, "eff": 0.5})  # first eta arrivals continue
    assert book.record("b", 0, {"err": 0.6, "eff": 0.4})
    assert not book.record("c", 0, {"err": 0.7, "eff": 0.3})  # dominated by a and b
    # best on one objective only: kept although worse on the other (single-metric ASHA would stop it)
    assert book.record("d", 0, {"err": 0.9, "eff": 0.99})
    assert not book.record("a", 2, {"err": 0.1, "eff": 0.9})  # the last rung ends every trial
    assert book.rung_of(0.5) is None and book.rung_of(3) == 1 and book.rung_of(100) == 2
    with pytest.raises(ValueError, match="increasing"):
        RungBook({"err": "min"}, rungs=[3, 1])
    with pytest.raises(ValueError, match="allowed directions"):
        RungBook({"err": "down"}, rungs=[1])


def test_resource_budget_stopper_counts_cpu_time_times_resources():
    pytest.importorskip("ray")
    from dse.sweep import ResourceBudgetStopper

    stop = ResourceBudgetStopper(cpu_hours=1.0, gpu_hours=None, cpus_per_trial=4, gpus_per_trial=0)
    for i in range(8):
        assert stop(f"t{i}", {"time_this_iter_s": 100.0}) is False  # never stops one trial alone
    assert not stop.stop_all()  # 8 x 100 s x 4 CPUs = 3200 CPU-s < 3600
    stop("t9", {"time_this_iter_s": 100.0})
    assert stop.stop_all() and stop.cpu_s == pytest.approx(3600.0)


# --------------------------------------------------------------------------- sweeps (Ray Tune)
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    from dse.runners.ray_runner import start_local_ray

    start_local_ray(2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _study(name: str, budget: dict, space: dict | None = None, seconds: float = 0.2) -> dict:
    return {
        "name": name,
        "evaluator": {"name": "busy", "seconds": seconds},
        "space": space or {"x": {"low": 0.0, "high": 1.0}},
        "objectives": {"f1": "min", "f2": "min"},
        "budget": budget,
        "runner": {"kind": "ray", "max_retries": 1},
        "seed": 1,
    }


def _open(spec: dict, tmp_path: Path):
    from dse.spec import load_spec
    from dse.store import Store

    resolved = load_spec(spec)
    store = Store(str(tmp_path / spec["name"] / "study.db"))
    store.save_spec(spec["name"], resolved.spec.model_dump(mode="json", exclude_none=True))
    return resolved, store


def test_time_budget_stops_sweep_and_trials_land_in_store(local_ray, tmp_path: Path):
    from dse.sweep import run_sweep

    budget = 20.0  # generous: trial processes took > 12 s to start on a loaded 2-core machine
    resolved, store = _open(_study("budget", {"time": budget}, seconds=0.2), tmp_path)
    t0 = time.monotonic()
    out = run_sweep(
        resolved,
        store,
        time_budget_s=budget,
        num_samples=500,
        max_concurrent=2,
        study_dir=tmp_path / "budget",
    )
    assert time.monotonic() - t0 < budget + 30  # stopped by the budget, not by 500 trials
    assert 1 <= out.trials < 500
    frame = store.frame()
    assert frame["design_id"].is_unique
    assert (frame["status"] == "done").sum() >= 1
    assert set(frame["status"]) <= {"done", "failed", "queued", "running"} - {"queued"}
    done = frame[frame["status"] == "done"]
    assert np.allclose(done["f2"], (1 - done["x"]) ** 2)  # the study's own evaluator ran
    assert out.cpu_seconds >= 0.2 * len(done) * 0.5


def test_halving_stops_dominated_trials_early(local_ray, tmp_path: Path):
    from dse.halving import HalvingConfig
    from dse.sweep import run_sweep

    space = {"x": {"low": 0.0, "high": 1.0}, "train.epochs": {"low": 1, "high": 3, "type": "int"}}
    resolved, store = _open(_study("halving", {"evaluations": 8}, space, seconds=0.05), tmp_path)
    out = run_sweep(
        resolved,
        store,
        num_samples=8,
        max_concurrent=2,
        study_dir=tmp_path / "halving",
        halving=HalvingConfig(resource="train.epochs", rungs=(1, 3), eta=2),
    )
    frame = store.frame()
    at1 = frame[frame["train.epochs"] == 1]
    at3 = frame[frame["train.epochs"] == 3]
    assert out.trials == 8 and len(at1) == 8  # every trial evaluated at the first rung
    assert out.stopped_early >= 1 and len(at3) == 8 - out.stopped_early
    assert 1 <= len(at3) < 8
    assert np.allclose(at3["f2"], (1 - at3["x"]) ** 2 + 1 / 3)


_DRIVER = textwrap.dedent(
    """
    import sys, ray
    sys.path.insert(0, {root!r})
    from dse.spec import load_spec
    from dse.store import Store
    from dse.sweep import run_sweep
    ray.init(address={address!r}, logging_level="WARNING", log_to_driver=False)
    spec = {spec!r}
    resolved = load_spec(spec)
    store = Store({db!r})
    out = run_sweep(resolved, store, num_samples=10, max_concurrent=2, study_dir={study_dir!r})
    print("FINISHED", out.trials)
    """
)


@pytest.mark.slow
def test_interrupted_sweep_restores_without_loss_or_duplicates(local_ray, tmp_path: Path):
    from dse.sweep import run_sweep

    spec = _study("restore", {"evaluations": 10}, seconds=0.4)
    resolved, store = _open(spec, tmp_path)
    study_dir = tmp_path / "restore"
    script = _DRIVER.format(
        root=str(ROOT),
        address=local_ray,
        spec=spec,
        db=str(study_dir / "study.db"),
        study_dir=str(study_dir),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 90
        while store.counts().get("done", 0) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.3)
        assert store.counts().get("done", 0) >= 2
        proc.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves the experiment and stops
        out_text, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert "FINISHED 10" not in out_text  # it really was interrupted
    before = store.counts().get("done", 0)
    assert before < 10
    out = run_sweep(
        resolved, store, num_samples=10, max_concurrent=2, study_dir=study_dir, resume=True
    )
    assert out.restored
    frame = store.frame()
    assert frame["design_id"].is_unique
    assert (frame["status"] == "done").sum() == 10 == out.trials


def test_failed_designs_and_dead_trials_are_recorded_as_failed(local_ray, tmp_path: Path):
    from dse.sweep import run_sweep

    spec = {
        "name": "failing",
        "evaluator": {
            "name": "crash",
            "raise_on": [0],  # the evaluation raises: recorded, told to Optuna as FAIL
            "exit_on": [1],  # the trial process dies every time: Tune gives up on it
            "exit_times": 99,
            "marker_dir": str(tmp_path / "markers"),
        },
        "space": {"i": {"low": 0, "high": 1, "type": "int"}},
        "objectives": {"y": "min", "z": "min"},
        "budget": {"evaluations": 4},
        "runner": {"kind": "ray", "max_retries": 0},
    }
    resolved, store = _open(spec, tmp_path)
    out = run_sweep(
        resolved, store, num_samples=4, max_concurrent=2, study_dir=tmp_path / "failing"
    )
    assert out.trials == 4
    frame = store.frame()
    assert frame["design_id"].is_unique and set(frame["status"]) == {"failed"}
    for row in frame.itertuples():
        expected = "fails on purpose" if row.i == 0 else "trial error"
        assert expected in row.error


def test_sweep_searcher_gives_study_constraints_to_optuna():
    # no Ray needed: the searcher alone, as Tune drives it (suggest, then complete)
    from dse.spec import load_spec
    from dse.sweep import _searcher

    resolved = load_spec(
        {
            "name": "constrained",
            "evaluator": {"name": "zdt1", "n_var": 3},
            "objectives": {"f1": "min", "f2": "min"},
            "constraints": ["f1 >= 0.5"],
            "budget": {"evaluations": 4},
        }
    )
    searcher = _searcher(resolved, None)
    for i, f1 in enumerate((0.2, 0.9)):
        assert searcher.suggest(f"t{i}") is not None
        searcher.on_trial_complete(f"t{i}", result={"f1": f1, "f2": 1.0})
    trials = searcher._ot_study.trials
    assert [t.constraints["c0"] for t in trials] == [pytest.approx(0.3), pytest.approx(-0.4)]

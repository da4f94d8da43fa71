"""Multi-fidelity inside ``dse run`` (issue 15 item 2): rungs recorded, front from the last.

The ``busy`` evaluator burns ``seconds × train.epochs`` of CPU and its f2 falls with the
epochs (1/epochs), the shape a training budget gives: a low rung is a biased, cheap look.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dse.api import resume, run
from dse.query import pareto_front
from dse.spec import SpecError, load_spec
from dse.store import Store

RUNGS = [1, 4]


def _study(name: str, evaluations: int, seconds: float = 0.0, **extra) -> dict:
    return {
        "name": name,
        "evaluator": {"name": "busy", "seconds": seconds},
        "space": {"x": {"low": 0.0, "high": 1.0}},
        "objectives": {"f1": "min", "f2": "min"},
        "optimizer": {"name": "nsga2", "population": 8},
        "fidelity": {"resource": "train.epochs", "rungs": RUNGS, "eta": 2},
        "budget": {"evaluations": evaluations},
        "runner": {"kind": "serial"},
        "seed": 4,
        **extra,
    }


def _check_ladder(store: Store, frame: pd.DataFrame) -> None:
    """Every row is a rung of a candidate; a candidate's last rung has its first below it."""
    rungs = store.rungs()
    assert set(frame["design_id"]) == set(rungs)
    assert frame["design_id"].is_unique
    by_candidate: dict[str, set[int]] = {}
    for cid, rung, final in rungs.values():
        by_candidate.setdefault(cid, set()).add(rung)
        assert final == (rung == len(RUNGS) - 1)
    assert all(r == {0} or r == {0, 1} for r in by_candidate.values()), by_candidate
    epochs = frame["train.epochs"].astype(int)
    assert (epochs == frame["rung"].map(lambda r: RUNGS[r])).all()
    assert (frame["partial"] == (frame["rung"] < len(RUNGS) - 1)).all()


def test_rungs_are_recorded_and_the_front_uses_the_last_rung_only(tmp_path):
    view = run(_study("ladder", 40), runs_dir=tmp_path)
    frame = view.frame()
    _check_ladder(view.store, frame)
    first, last = (frame["rung"] == 0).sum(), (frame["rung"] == 1).sum()
    assert len(frame) == 40 and first > last >= 4  # halving: not every candidate climbs
    front = view.pareto()
    assert len(front) > 0 and (front["rung"] == 1).all() and (front["train.epochs"] == 4).all()
    full = frame[frame["rung"] == 1].drop(columns=["partial"])
    assert set(front["design_id"]) == set(pareto_front(full, view.objectives)["design_id"])
    hv = view.hypervolume()
    assert hv.value > 0
    html = view.report(tmp_path / "report").read_text()
    assert f"{last:,} at the full training budget" in html  # plots show last-rung rows only


def _assert_promotions_replay(view) -> int:
    """The halving rule replayed over the recorded rung-0 results in completion order
    promotes exactly the candidates that climbed — but for those decided once the budget
    had filled the store (refused). Returns the number of candidates that climbed."""
    from dse.fidelity import Ladder

    frame = view.frame()
    ladder = Ladder("train.epochs", tuple(RUNGS), 2.0, view.objectives)
    rungs = view.store.rungs()
    climbed = {c for c, r, _ in rungs.values() if r == 1}
    full_at = frame["created_at"].max()  # from here on the store refuses new rows
    promoted = set()
    for rec in view.store.history():
        cid, rung, _ = rungs[rec.design_id]
        if rung == 0 and ladder.promotes(cid, 0, rec.metrics):
            promoted.add(cid)
            if cid not in climbed:
                assert rec.finished_at >= full_at, f"candidate {cid} promoted, never climbed"
    assert climbed <= promoted  # nothing climbs that the rule did not promote
    return len(climbed)


def test_promotion_follows_the_non_dominated_rank_rule(tmp_path):
    view = run(_study("rank", 40), runs_dir=tmp_path)
    climbed = _assert_promotions_replay(view)
    assert 4 <= climbed < 40 - climbed


def test_fidelity_settings_are_checked_before_any_store(tmp_path):
    searched = _study("bad", 10)
    searched["space"]["train.epochs"] = {"low": 1, "high": 9, "type": "int"}
    with pytest.raises(
        SpecError, match="'train.epochs' is searched by the space; the rungs set it"
    ):
        load_spec(searched)
    down = _study("bad", 10)
    down["fidelity"]["rungs"] = [4, 1]
    with pytest.raises(SpecError, match=r"fidelity.rungs': value \[4.0, 1.0\]: allowed: positive"):
        load_spec(down)
    cim = {**_study("bad", 10), "evaluator": {"name": "cim", "epochs": 8}, "space": None}
    cim["objectives"] = {"accuracy_mean": "max", "energy_nj": "min"}
    with pytest.raises(SpecError, match="option epochs=8 overrides train.epochs at every rung"):
        load_spec(cim)
    cim["evaluator"] = {"name": "cim"}
    cim["space"] = {"dnn.hidden": {"value": 16}, "hw.adc_bits": {"low": 3, "high": 8}}
    cim["fidelity"]["resource"] = "dnn.hidden"
    with pytest.raises(SpecError, match="fidelity resource 'dnn.hidden'; allowed: train.epochs"):
        load_spec(cim)
    assert not list(tmp_path.iterdir())


_DRIVER = """
import sys
from dse.api import run
run({spec!r}, runs_dir={runs!r})
"""


def test_killed_mid_study_resumes_with_every_rung(tmp_path):
    spec = _study("killed", 36, seconds=0.05)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER.format(spec=spec, runs=str(runs))],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = runs / "killed" / "study.db"
    end = time.monotonic() + 300  # a hang guard
    while True:  # kill -9 once a candidate has climbed: a rung-1 row exists
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < end, "no rung-1 row appeared"
        if db.exists():
            with Store(db) as store:
                if any(r == 1 for _, r, _ in store.rungs().values()):
                    break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    with Store(db) as store:
        before = store.frame()
    assert len(before) < 36
    view = resume(runs / "killed")
    frame = view.frame()
    assert set(before["design_id"]) <= set(frame["design_id"])  # nothing recorded was lost
    assert len(frame) == 36 and set(frame["status"]) == {"done"}
    _check_ladder(view.store, frame)
    _assert_promotions_replay(view)  # the decisions survive the kill: replayed, not lost

"""Several ``dse`` drivers started at once on one study (issue 14: the budget is a limit).

Shared by the SQLite test (tests/test_concurrent_drivers.py) and the PostgreSQL one
(tests/test_postgres_store.py), so both backends face the same races.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from dse.store import Store

#: the driver mixes the issue asks for: two and three drivers, run and resume
COMBOS = [("run", "run"), ("run", "resume"), ("resume", "resume"), ("run", "resume", "resume")]
#: what a driver that lost the race may say (exit 2): the lease holder, or a study that a
#: faster driver already finished, or one that it has not yet created
REFUSALS = (
    "being driven by",
    "already holds",
    "holds no study",
    "is not a study directory",
)


def study_spec(evaluator: dict[str, Any], budget: int) -> dict[str, Any]:
    """The shared two-objective study the drivers race on (serial runner, 20 in flight)."""
    return {
        "name": "shared",
        "evaluator": evaluator,
        "space": {"x": {"low": 0.0, "high": 1.0, "size": 2}},
        "objectives": {"f1": "min", "f2": "min"},
        "optimizer": {"name": "random"},
        "budget": {"evaluations": budget},
        "runner": {"kind": "serial", "batch": 20},
        "seed": 0,
    }


def dse(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", *args, "--no-progress", "--no-report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def race(
    spec: dict[str, Any], workdir: Path, combo: tuple[str, ...], budget: int, storage: str | None
) -> Store:
    """Start ``combo``'s drivers at once on one study of ``budget`` designs; returns its store
    after every driver ended, checked: never above the budget, nothing duplicated, nothing
    left queued, and exactly the budget once a last ``resume`` (if needed) has run."""
    spec = dict(spec, budget={"evaluations": budget})
    if storage is not None:
        spec["storage"] = storage
    study_file = workdir / "s.yaml"
    study_file.write_text(yaml.safe_dump(spec))
    runs = workdir / "runs"
    study = runs / spec["name"]
    if combo[0] == "resume":  # resume/resume needs a recorded study to start from
        seed = dse("run", str(study_file), "--runs-dir", str(runs), "--evaluations", "20")
        _, err = seed.communicate(timeout=300)
        assert seed.returncode == 0, err
    argv = {
        "run": ["run", str(study_file), "--runs-dir", str(runs)],
        "resume": ["resume", str(study), "--evaluations", str(budget)],
    }
    drivers = [dse(*argv[kind]) for kind in combo]
    for kind, p in zip(combo, drivers, strict=True):
        _, err = p.communicate(timeout=300)
        assert "Traceback" not in err, err
        assert p.returncode == 0 or (
            p.returncode == 2 and any(r in err for r in REFUSALS) and err.count("\n") == 1
        ), (kind, p.returncode, err)
    store = Store(storage or study / "study.db")
    frame = store.frame()
    assert len(frame) <= budget, (combo, len(frame))
    assert frame["design_id"].is_unique
    if len(frame) < budget or store.counts()["done"] < budget:  # every driver refused early
        final = dse("resume", str(study), "--evaluations", str(budget))
        _, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
        frame = store.frame()
    counts = store.counts()
    assert counts["done"] == budget and counts["queued"] == counts["running"] == 0, counts
    assert len(frame) == budget and frame["design_id"].is_unique
    assert store.get_meta("driver") is None  # every lease released
    return store

"""Several drivers on one study (issue 14 item 1): the budget is a limit in the store and
one driver holds a study at a time.

Decision (also in docs/running.md): a second ``dse run`` / ``resume`` on a study that a
live driver holds is refused with a message naming the holder (pid, host, start); the
store itself admits designs only up to the budget (``Store.reserve_designs``: the count
and the insert are one transaction), so even drivers that bypass the lease cannot
overshoot. A holder whose process is gone (same host) or whose heartbeat is older than
``DRIVER_STALE_S`` is taken over, so ``dse resume`` after ``kill -9`` works at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import yaml
from driver_race import COMBOS, race, study_spec

from dse.store import Store
from dse.study import DRIVER_STALE_S


def _rows(prefix: str, n: int):
    return [(f"{prefix}{i}", {"x": i}, None) for i in range(n)]


def test_reservation_caps_the_budget_across_stores(tmp_path):
    db = tmp_path / "study.db"
    a, b = Store(db), Store(db)
    first = a.reserve_designs(_rows("a", 300), budget=400)
    second = b.reserve_designs(_rows("b", 300) + _rows("a", 5), budget=400)
    assert len(first.new) == 300 and not first.refused
    assert len(second.new) == 100 and len(second.refused) == 200
    assert second.existing == [f"a{i}" for i in range(5)]  # recorded ones are not refused
    assert sum(a.counts().values()) == 400
    assert b.reserve_designs(_rows("c", 1), budget=400).refused == ["c0"]
    assert len(b.reserve_designs(_rows("c", 3), budget=None).new) == 3  # no budget: no cap


def test_driver_lease_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    store = Store(tmp_path / "study.db")
    host = socket.gethostname()
    me = {"token": "t1", "pid": os.getpid(), "host": host, "started": 1.0, "beat": time.time()}
    assert store.acquire_driver(me, DRIVER_STALE_S) is None
    other = dict(me, token="t2")
    assert store.acquire_driver(other, DRIVER_STALE_S)["token"] == "t1"  # refused, holder named
    assert store.acquire_driver(dict(me, beat=time.time()), DRIVER_STALE_S) is None  # heartbeat
    # a holder process that is gone (same host): taken over at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    store.release_driver("t1")
    assert store.acquire_driver(dict(me, token="t3", pid=int(dead)), DRIVER_STALE_S) is None
    assert store.acquire_driver(other, DRIVER_STALE_S) is None
    # another host's holder: stale only when its heartbeat is old
    far = dict(me, token="t4", host="elsewhere", beat=time.time())
    store.release_driver("t2")
    assert store.acquire_driver(far, DRIVER_STALE_S) is None
    assert store.acquire_driver(other, DRIVER_STALE_S)["token"] == "t4"
    store.acquire_driver(dict(far, beat=time.time() - DRIVER_STALE_S - 1), DRIVER_STALE_S)
    assert store.acquire_driver(other, DRIVER_STALE_S) is None
    store.release_driver("t2")
    assert store.get_meta("driver") is None


def _dse(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_second_driver_is_refused_naming_the_holder(tmp_path):
    study_file = tmp_path / "s.yaml"
    # the first driver's evaluations wait at a gate until the second has been refused, so
    # the first cannot finish before the second arrives, however loaded the machine
    gate = tmp_path / "gate"
    study_file.write_text(
        yaml.safe_dump(study_spec({"name": "busy", "seconds": 0.0, "gate": str(gate)}, 60))
    )
    runs = tmp_path / "runs"
    first = _dse("run", str(study_file), "--runs-dir", str(runs), "--no-report")
    db = runs / "shared" / "study.db"
    _wait_for(lambda: db.exists() and Store(db).get_meta("driver") is not None, "the lease")
    second = _dse("resume", str(runs / "shared"), "--no-report")
    _, err = second.communicate(timeout=120)
    gate.touch()
    assert second.returncode == 2, err
    assert f"being driven by pid {first.pid}" in err and "Traceback" not in err
    assert err.count("\n") == 1
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    counts = Store(db).counts()
    assert counts["done"] == 60 and counts["queued"] == counts["running"] == 0
    assert Store(db).get_meta("driver") is None  # released


@pytest.mark.parametrize("combo", COMBOS, ids="+".join)
def test_concurrent_drivers_keep_the_budget_on_sqlite(tmp_path, combo):
    """Two and three drivers started at once (run/run, run/resume, resume/resume,
    run/resume/resume), 5 repetitions each: exactly the budget, nothing lost or duplicated."""
    spec = study_spec({"name": "noop"}, 0)
    for repetition in range(5):
        workdir = tmp_path / f"rep{repetition}"
        workdir.mkdir()
        race(spec, workdir, combo, budget=60, storage=None)

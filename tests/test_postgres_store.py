"""Two drivers writing one study on a real PostgreSQL server, then a resume after kill -9.

The server is started in the test from the Debian binaries (``initdb``/``pg_ctl``,
run as the ``postgres`` user when we are root, since initdb refuses root),
listening on 127.0.0.1 only, in a temporary directory, and stopped afterwards.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from driver_race import COMBOS, race, study_spec

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory):
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb) on this machine; apt-get install postgresql"
        )
    pytest.importorskip(
        "psycopg2", reason="psycopg2 (pip install psycopg2-binary) drives PostgreSQL"
    )
    base = tmp_path_factory.mktemp("pg")
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and no runuser to start PostgreSQL as the postgres user")
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(base, 0o755)
        for parent in list(base.parents)[:3]:  # the postgres user must reach the directory
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
        prefix = [runuser, "-u", "postgres", "--"]
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CREATE DATABASE dse"))
        admin.dispose()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dse"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )


def _dse(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "dse.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_run_and_sweep_write_one_study_then_resume_after_kill(pg_url: str, tmp_path: Path):
    from dse.store import Store

    study = {
        "name": "pgstudy",
        "evaluator": {"name": "busy", "seconds": 0.25},
        "space": {"x": {"low": 0.0, "high": 1.0}},
        "objectives": {"f1": "min", "f2": "min"},
        "optimizer": {"name": "random"},
        "budget": {"evaluations": 30},
        "runner": {"kind": "serial", "batch": 4},
        "storage": pg_url,
        "seed": 7,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    runs = tmp_path / "runs"
    store = Store(pg_url)

    run = _dse("run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report")
    sweep = None
    try:
        deadline = time.monotonic() + 60
        while store.counts().get("done", 0) < 3 and time.monotonic() < deadline:
            if run.poll() is not None:
                pytest.fail(f"dse run ended early (exit {run.returncode}): {run.stdout.read()}")
            time.sleep(0.2)
        # a second driver, Ray Tune this time, writes the same study while the run goes on
        sweep = _dse(
            "sweep", str(path), "--runs-dir", str(runs), "--samples", "4", "--max-concurrent", "1"
        )
        deadline = time.monotonic() + 120
        while store.counts().get("done", 0) < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.poll() is None, "the run ended before it could be killed; " + run.stdout.read()
        run.send_signal(signal.SIGKILL)  # kill -9 mid-batch: rows are left 'running'
        run.wait(timeout=10)
        sweep_out, _ = sweep.communicate(timeout=240)
        assert sweep.returncode == 0, sweep_out
    finally:
        for p in (run, sweep):
            if p is not None and p.poll() is None:
                p.kill()

    frame = store.frame()
    sweep_rows = frame[frame["worker"].astype(str).str.contains(":")]  # Tune trials name host:pid
    assert len(sweep_rows) >= 4  # every sweep trial landed in the shared store
    interrupted = store.counts()
    assert interrupted.get("running", 0) + interrupted.get("queued", 0) >= 0

    resumed = _dse("resume", str(runs / "pgstudy"), "--no-progress", "--no-report")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out

    final = store.frame()
    counts = store.counts()
    assert final["design_id"].is_unique  # none recorded twice
    assert counts.get("queued", 0) == 0 and counts.get("running", 0) == 0  # none lost in flight
    assert set(final["status"]) == {"done"}
    assert len(final) >= 30  # the run's budget counts every row, the sweep's included
    assert final["done_seq"].is_unique
    before = set(frame["design_id"])
    assert before <= set(final["design_id"])  # nothing recorded before the kill vanished


def test_reserve_designs_caps_the_budget_across_connections(pg_url: str):
    """Three stores (own engines, so own connections) reserve at once on the real server:
    the advisory lock makes count + insert atomic, so exactly the budget is recorded."""
    import threading

    import sqlalchemy as sa

    from dse.store import Store

    url = pg_url.rsplit("/", 1)[0] + "/budgetdb"
    admin = sa.create_engine(pg_url.rsplit("/", 1)[0] + "/postgres")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("CREATE DATABASE budgetdb"))
    admin.dispose()
    stores = [Store(url) for _ in range(3)]
    new: list[int] = []
    start = threading.Barrier(3)

    def drive(k: int) -> None:
        start.wait()
        for batch in range(20):
            rows = [(f"s{k}-{batch}-{i}", {"i": i}, None) for i in range(10)]
            new.append(len(stores[k].reserve_designs(rows, budget=250).new))

    threads = [threading.Thread(target=drive, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(new) == 250
    assert sum(stores[0].counts().values()) == 250
    for s in stores:
        s.close()


def test_bare_postgresql_url_uses_the_installed_driver(pg_url: str):
    """``postgresql://`` as the README writes it: SQLAlchemy 2.1 maps that scheme to
    psycopg 3, which cim-dse does not install; the store picks psycopg2 instead."""
    from dse.locations import check_storage, sqlalchemy_url
    from dse.store import Store

    bare = pg_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert check_storage(bare) == bare
    if importlib.util.find_spec("psycopg") is None:
        assert sqlalchemy_url(bare) == pg_url
    store = Store(bare)
    try:
        store.set_meta("probe", 1)
        assert store.get_meta("probe") == 1
    finally:
        store.close()


@pytest.mark.parametrize("combo", COMBOS, ids="+".join)
def test_concurrent_drivers_keep_the_budget_on_postgres(pg_url: str, tmp_path: Path, combo):
    """The SQLite race of test_concurrent_drivers on the real server: two and three drivers
    at once, 5 repetitions each, every one in a fresh database: exactly the budget."""
    import sqlalchemy as sa

    admin = sa.create_engine(pg_url.rsplit("/", 1)[0] + "/postgres")
    spec = study_spec({"name": "noop"}, 0)
    for repetition in range(5):
        name = f"race_{'_'.join(combo)}_{repetition}"
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        workdir = tmp_path / name
        workdir.mkdir()
        store = race(spec, workdir, combo, budget=60, storage=pg_url.rsplit("/", 1)[0] + "/" + name)
        store.close()
    admin.dispose()

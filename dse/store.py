"""The durable record of a study: spec, every design, its status, metrics and timings.

Why SQLAlchemy Core rather than an ORM or Optuna's storage: the engine commits
results in batches (one transaction per batch of ~10 designs, not per design)
and reads 100k-row frames for Pareto queries; both want plain multi-row SQL.
A plain path means an SQLite file (WAL journal, ``synchronous=NORMAL``, a busy
timeout and ``BEGIN IMMEDIATE`` write transactions, so a ``dse run`` and a
``dse sweep`` can write one file at once); any SQLAlchemy URL (e.g.
``postgresql+psycopg2://user@host/db``) selects another server. The SQL is
portable: idempotent inserts use ``ON CONFLICT DO NOTHING`` where the dialect
has it and a select-then-insert fallback elsewhere.

Schema (one study per store):

* ``study``: the single row ``id=1`` with name, spec JSON, created_at,
  evaluator, version.
* ``designs``: ``seq`` (integer primary key assigned by the database, so
  concurrent writers never collide), ``design_id`` (unique natural key),
  params JSON, status ``queued|running|done|failed``, attempts, error,
  training_key, worker, created/started/finished timestamps (epoch seconds),
  ``done_seq`` (completion order) and metrics JSON. Metrics live as one JSON
  text per design because ``frame()`` then decodes 100k rows with a single
  ``json.loads`` call, far faster than pivoting a narrow (design, name, value)
  table of a million rows.
* ``trainings``: training lineage, ``training_key`` -> ``parent_key`` (the model that
  training fine-tunes from, issue 15); the frame shows it as ``parent_key``. A table of
  its own because lineage belongs to a training, which many designs share, and because
  ``create_all`` adds it to a store written before it existed.
* ``rungs``: multi-fidelity (``fidelity:`` in the study file): the rung of each design row
  evaluated at a reduced budget, the candidate (the optimizer's design id) it belongs to,
  and whether it is the last rung; the frame shows ``rung`` and ``partial`` (a lower-rung
  result, which fronts and hypervolumes leave out).
* ``meta``: key -> JSON value for the study loop's bookkeeping.
* ``counters``: named integer counters (``done_seq``), bumped under the write
  lock so completion numbers stay unique across processes.

One :class:`Store` per process: connections are not shared across ``fork``
(the engine's pool is dropped in a child automatically).
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from dse.runners.base import EvalResult

__all__ = ["Store", "DesignRecord", "StoreError", "STATUSES", "META_COLUMNS"]

STATUSES = ("queued", "running", "done", "failed")
#: the frame's leading columns, in this order (docs/architecture.md, "Store contract")
META_COLUMNS = (
    "design_id",
    "seq",
    "status",
    "attempts",
    "error",
    "training_key",
    "parent_key",
    "worker",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "done_seq",
    "rung",
    "partial",
)
_CHUNK = 500  # ids per IN (...) list; well under SQLite's bound-variable limit
_SCHEMA_VERSION = 1


class StoreError(ValueError):
    """Bad input to the store (unknown design ids, a different study, a bad path)."""


class StoreUnavailable(RuntimeError):
    """The store could not be reached (server down, refused, unreadable file): a runtime
    failure (CLI exit 1), not bad input — the same command may work once it is up."""


@dataclass(frozen=True)
class DesignRecord:
    """One row of ``designs`` as Python values (timestamps in epoch seconds)."""

    design_id: str
    seq: int
    params: dict[str, Any]
    status: str
    attempts: int
    error: str | None
    training_key: str | None
    worker: str | None
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    done_seq: int | None
    metrics: dict[str, float] | None


def _json_default(value: Any) -> Any:
    # numpy scalars arrive from samplers and pandas; store them as plain JSON numbers
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _loads_many(texts: Sequence[str | None]) -> list[Any]:
    """Decode many JSON texts with one ``json.loads`` call (NULL -> None)."""
    if not texts:
        return []
    return json.loads("[" + ",".join(t if t is not None else "null" for t in texts) + "]")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while ``frame()`` builds ~10^5 row tuples and dicts: its
    sweeps over those fresh containers cost ~20% of the call at 100k rows."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: PostgreSQL advisory-lock key that serializes budget reservations ("dse1")
_BUDGET_LOCK = 0x64736531
#: PostgreSQL advisory-lock key that serializes schema creation ("dse0"): two drivers
#: creating one study's tables at once otherwise collide in the catalog (pg_type)
_SCHEMA_LOCK = 0x64736530
#: meta key of the driver lease
_DRIVER_KEY = "driver"


@dataclass(frozen=True)
class Reservation:
    """What :meth:`Store.reserve_designs` did with each id."""

    new: list[str]
    existing: list[str]
    refused: list[str]


def _alive(holder: dict[str, Any], stale_s: float) -> bool:
    """Whether a recorded driver still runs: a fresh heartbeat, and on this host a live pid."""
    import socket

    if time.time() - float(holder.get("beat", 0.0)) > stale_s:
        return False
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid", -1)), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, OverflowError):
            return True
    return True


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _metadata() -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    study = sa.Table(
        "study",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("evaluator", sa.String(255)),
        sa.Column("version", sa.String(64)),
    )
    designs = sa.Table(
        "designs",
        md,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("design_id", sa.String(128), nullable=False, unique=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("error", sa.Text),
        sa.Column("training_key", sa.String(128)),
        sa.Column("worker", sa.String(255)),
        sa.Column("created_at", sa.Double),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("done_seq", sa.Integer),
        sa.Column("metrics", sa.Text),
    )
    trainings = sa.Table(
        "trainings",
        md,
        sa.Column("training_key", sa.String(128), primary_key=True),
        sa.Column("parent_key", sa.String(128), nullable=False),
    )
    rungs = sa.Table(
        "rungs",
        md,
        sa.Column("design_id", sa.String(128), primary_key=True),
        sa.Column("candidate_id", sa.String(128), nullable=False, index=True),
        sa.Column("rung", sa.Integer, nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
    )
    meta = sa.Table(
        "meta",
        md,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    counters = sa.Table(
        "counters",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    return md, {
        "study": study,
        "designs": designs,
        "trainings": trainings,
        "rungs": rungs,
        "meta": meta,
        "counters": counters,
    }


def _make_engine(url_or_path: str | os.PathLike[str]) -> tuple[sa.Engine, Path | None]:
    text = os.fspath(url_or_path)
    if "://" in text:
        from dse.locations import sqlalchemy_url

        try:
            return sa.create_engine(sqlalchemy_url(text)), None
        except (sa.exc.ArgumentError, ImportError) as exc:  # a URL it cannot parse, no driver
            raise StoreError(
                f"storage {text!r} cannot be opened ({str(exc).strip().splitlines()[0]}); "
                "allowed: a SQLite file path or a postgresql:// URL with psycopg2 installed"
            ) from None
    path = Path(text).expanduser()
    if path.is_dir():
        raise StoreError(
            f"store path {str(path)!r} is a directory; give an SQLite file path "
            "(e.g. runs/my_study/study.db) or an SQLAlchemy URL"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.resolve()
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 60.0})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit
        # BEGIN is DEFERRED, which fails instantly instead of waiting when two
        # processes upgrade read locks to write locks at the same time).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        _use_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("dse_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine, path


def _use_wal(cur: Any, wait_s: float = 60.0) -> None:
    """Put the file in WAL mode, waiting for other processes. Switching the journal mode
    fails at once with "database is locked" while another connection writes — SQLite's
    busy handler does not cover it — which is what two drivers opening a new study at the
    same moment hit. WAL is a property of the file: once any process has set it, reading
    the mode is enough; otherwise retry until ``wait_s``."""
    import sqlite3

    deadline = time.monotonic() + wait_s
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Store:
    """A study's durable store; see the module docstring for the schema."""

    def __init__(self, url_or_path: str | os.PathLike[str]):
        self._engine, self.path = _make_engine(url_or_path)
        #: the SQLAlchemy URL (password hidden); ``path`` is the SQLite file or None
        self.url = self._engine.url.render_as_string(hide_password=True)
        self._dialect = self._engine.dialect.name
        self._writer = self._engine.execution_options(dse_write=True)
        self._md, t = _metadata()
        self._study, self._designs = t["study"], t["designs"]
        self._meta, self._counters = t["meta"], t["counters"]
        self._trainings, self._rungs = t["trainings"], t["rungs"]
        self._pid = os.getpid()
        self._name: str | None = None
        try:
            with self._write() as conn:
                if self._dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                self._md.create_all(conn, checkfirst=True)
            self._insert_ignore(
                self._meta, [{"key": "store.schema", "value": _dumps(_SCHEMA_VERSION)}], ("key",)
            )
            self._insert_ignore(self._counters, [{"name": "done_seq", "value": 0}], ("name",))
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            if self.path is not None and "not a database" in str(exc.orig):
                raise self._not_a_store(exc) from None
            # the server is down, refuses us, or the file cannot be opened: nothing was written
            cause = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise StoreUnavailable(
                f"cannot open the store {str(self.path) if self.path else self.url} "
                f"({cause}); check the path or that the server is up, its host, port, user "
                "and database — nothing was written"
            ) from None
        except sa.exc.DatabaseError as exc:  # a file that is not SQLite, a foreign schema
            self._engine.dispose()
            raise self._not_a_store(exc) from None

    def _not_a_store(self, exc: Exception) -> StoreError:
        what = str(self.path) if self.path is not None else self.url
        cause = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return StoreError(
            f"{what} is not a study store ({'SQLite' if self.path else self._dialect} "
            f"says: {cause}); it was left as it is — restore it from a backup or start "
            "the study again with 'dse run' into another directory"
        )

    # ------------------------------------------------------------------ plumbing
    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not reuse the parent's sockets/files
            self._engine.dispose(close=False)
            self._pid = os.getpid()

    def _write(self) -> Any:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        self._check_fork()
        return self._writer.begin()

    def _read(self) -> Any:
        self._check_fork()
        return self._engine.connect()

    def close(self) -> None:
        """Release pooled connections (the file stays)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _insert_ignore(
        self,
        table: sa.Table,
        rows: list[dict[str, Any]],
        keys: tuple[str, ...],
        returning: str | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Any]:
        """Insert rows, skipping ones whose ``keys`` already exist; return ``returning`` of new rows."""
        if not rows:
            return []
        if conn is None:
            with self._write() as c:
                return self._insert_ignore(table, rows, keys, returning, c)
        if self._dialect in ("sqlite", "postgresql"):
            if self._dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert
            # executemany: SQLAlchemy batches it ("insertmanyvalues") from one cached
            # compiled statement; a hand-built multi-row VALUES would be recompiled per call.
            stmt = insert(table).on_conflict_do_nothing(index_elements=keys)
            if returning:
                return list(conn.execute(stmt.returning(table.c[returning]), rows).scalars())
            conn.execute(stmt, rows)
            return []
        # Portable fallback: select existing keys, insert the rest (inside the write lock).
        key = keys[0]
        wanted = [r[key] for r in rows]
        existing: set[Any] = set()
        for chunk in _chunks(wanted):
            existing.update(
                conn.execute(sa.select(table.c[key]).where(table.c[key].in_(chunk))).scalars()
            )
        new: list[Any] = []
        for r in (r for r in rows if r[key] not in existing):
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(**r))
                new.append(r[returning] if returning else None)
            except IntegrityError:
                continue
        return new

    # ------------------------------------------------------------------ study spec
    def save_spec(
        self,
        name: str,
        spec: dict[str, Any],
        evaluator: str | None = None,
        version: str | None = None,
    ) -> None:
        """Record the study's spec (first call creates it; later calls update the spec).

        Refuses to overwrite a store that belongs to a study with another name.
        ``evaluator`` defaults to ``spec['evaluator']`` (a name or ``{name: ...}``).
        """
        if not isinstance(name, str) or not name.strip():
            raise StoreError(f"study name must be a non-empty string, got {name!r}")
        if evaluator is None:
            ev = spec.get("evaluator")
            evaluator = ev.get("name") if isinstance(ev, dict) else ev
        row = {
            "id": 1,
            "name": name,
            "spec": _dumps(spec),
            "created_at": time.time(),
            "evaluator": None if evaluator is None else str(evaluator),
            "version": None if version is None else str(version),
        }
        with self._write() as conn:
            current = conn.execute(
                sa.select(self._study.c.name).where(self._study.c.id == 1)
            ).first()
            if current is None:
                self._insert_ignore(self._study, [row], ("id",), conn=conn)
                current = conn.execute(
                    sa.select(self._study.c.name).where(self._study.c.id == 1)
                ).first()
            if current is not None and current[0] != name:
                raise StoreError(
                    f"store {self.url!r} holds study {current[0]!r}; refusing to save study "
                    f"{name!r} into it (use another path)"
                )
            conn.execute(
                self._study.update()
                .where(self._study.c.id == 1)
                .values(spec=row["spec"], evaluator=row["evaluator"], version=row["version"])
            )
        self._name = name

    def load_spec(self) -> dict[str, Any] | None:
        """The saved spec, or None for a store without one."""
        with self._read() as conn:
            text = conn.execute(sa.select(self._study.c.spec).where(self._study.c.id == 1)).scalar()
        return None if text is None else json.loads(text)

    @property
    def study_name(self) -> str | None:
        """Name given to :meth:`save_spec` (None before it)."""
        if self._name is None:
            with self._read() as conn:
                self._name = conn.execute(
                    sa.select(self._study.c.name).where(self._study.c.id == 1)
                ).scalar()
        return self._name

    def study_info(self) -> dict[str, Any] | None:
        """The ``study`` row (name, evaluator, version, created_at) without the spec."""
        s = self._study
        with self._read() as conn:
            row = conn.execute(
                sa.select(s.c.name, s.c.evaluator, s.c.version, s.c.created_at).where(s.c.id == 1)
            ).first()
        return None if row is None else dict(row._mapping)

    # ------------------------------------------------------------------ meta
    def record_lineage(self, parents: dict[str, str]) -> None:
        """Record ``training_key -> parent_key`` pairs (idempotent; a key keeps its first
        parent: both are content hashes, so a key has one parent)."""
        rows = [{"training_key": k, "parent_key": p} for k, p in parents.items() if k and p]
        self._insert_ignore(self._trainings, rows, ("training_key",))

    def lineage(self) -> dict[str, str]:
        """Every recorded ``training_key -> parent_key``."""
        t = self._trainings
        with self._read() as conn:
            return dict(conn.execute(sa.select(t.c.training_key, t.c.parent_key)).all())

    def record_rungs(self, rows: list[tuple[str, str, int, bool]]) -> None:
        """Record ``(design_id, candidate_id, rung, final)`` of multi-fidelity rows
        (idempotent; written before the designs themselves)."""
        self._insert_ignore(
            self._rungs,
            [
                {"design_id": d, "candidate_id": c, "rung": int(r), "final": bool(f)}
                for d, c, r, f in rows
            ],
            ("design_id",),
        )

    def rungs(self) -> dict[str, tuple[str, int, bool]]:
        """``design_id -> (candidate_id, rung, final)`` of every multi-fidelity row in the
        study (a rung recorded for a row the budget then refused is not one)."""
        t, d = self._rungs, self._designs
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.c.design_id, t.c.candidate_id, t.c.rung, t.c.final).join(
                    d, d.c.design_id == t.c.design_id
                )
            )
            return {d: (c, int(r), bool(f)) for d, c, r, f in rows}

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (overwrites)."""
        text = _dumps(value)
        with self._write() as conn:
            updated = conn.execute(
                self._meta.update().where(self._meta.c.key == key).values(value=text)
            ).rowcount
            if not updated:
                self._insert_ignore(self._meta, [{"key": key, "value": text}], ("key",), conn=conn)
                conn.execute(self._meta.update().where(self._meta.c.key == key).values(value=text))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, else ``default``."""
        with self._read() as conn:
            text = conn.execute(
                sa.select(self._meta.c.value).where(self._meta.c.key == key)
            ).scalar()
        return default if text is None else json.loads(text)

    # ------------------------------------------------------------------ designs
    def add_designs(self, rows: Iterable[tuple[str, dict[str, Any], str | None]]) -> list[str]:
        """Insert ``(design_id, params, training_key)`` rows as queued, in one transaction.

        Rows whose design_id already exists (in the store or earlier in ``rows``)
        are ignored, whatever their status. Returns the ids that were new, in
        input order; safe against another process inserting the same ids.
        """
        return self.reserve_designs(rows, budget=None).new

    def reserve_designs(
        self, rows: Iterable[tuple[str, dict[str, Any], str | None]], budget: int | None
    ) -> Reservation:
        """Insert rows as queued while the study holds fewer than ``budget`` designs.

        The count and the insert are one write transaction (``BEGIN IMMEDIATE`` on
        SQLite; a transaction-scoped advisory lock on PostgreSQL), so any number of
        drivers on one study never record more than the budget: the budget is a limit in
        the store, not in one process's head (issue 14). Ids already recorded are
        ``existing``; new ones past the budget are ``refused`` (nothing written for them).
        """
        batch = self._design_rows(rows)
        d = self._designs
        with self._write() as conn:
            if self._dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BUDGET_LOCK})
            existing: set[str] = set()
            for chunk in _chunks([r["design_id"] for r in batch]):
                existing.update(
                    conn.execute(sa.select(d.c.design_id).where(d.c.design_id.in_(chunk))).scalars()
                )
            fresh = [r for r in batch if r["design_id"] not in existing]
            refused: list[dict[str, Any]] = []
            if budget is not None and fresh:
                count = int(conn.execute(sa.select(sa.func.count()).select_from(d)).scalar_one())
                room = max(0, int(budget) - count)
                fresh, refused = fresh[:room], fresh[room:]
            new = set(self._insert_ignore(d, fresh, ("design_id",), "design_id", conn))
        return Reservation(
            new=[r["design_id"] for r in batch if r["design_id"] in new],
            existing=[r["design_id"] for r in batch if r["design_id"] in existing],
            refused=[r["design_id"] for r in refused],
        )

    @staticmethod
    def _design_rows(
        rows: Iterable[tuple[str, dict[str, Any], str | None]],
    ) -> list[dict[str, Any]]:
        """Validated queued rows, first occurrence of each id."""
        now = time.time()
        batch: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in rows:
            try:
                design_id, params, training_key = item
            except (TypeError, ValueError):
                raise StoreError(
                    f"add_designs wants (design_id, params, training_key) tuples, got {item!r}"
                ) from None
            if not isinstance(design_id, str) or not design_id:
                raise StoreError(f"design_id must be a non-empty string, got {design_id!r}")
            if not isinstance(params, dict):
                raise StoreError(f"params of design {design_id!r} must be a dict, got {params!r}")
            if design_id in seen:
                continue
            seen.add(design_id)
            batch.append(
                {
                    "design_id": design_id,
                    "params": _dumps(params),
                    "status": "queued",
                    "attempts": 0,
                    "training_key": training_key,
                    "created_at": now,
                }
            )
        return batch

    # ------------------------------------------------------------------ driver lease
    def acquire_driver(self, holder: dict[str, Any], stale_s: float) -> dict[str, Any] | None:
        """Claim the study for one driver (``dse run`` / ``resume``); return the current
        holder instead when another live driver has it. A holder is stale — and taken
        over — when its heartbeat is older than ``stale_s`` or, on this host, its process
        is gone (so ``dse resume`` right after ``kill -9`` just works)."""
        with self._write() as conn:
            text = conn.execute(
                sa.select(self._meta.c.value).where(self._meta.c.key == _DRIVER_KEY)
            ).scalar()
            current = json.loads(text) if text else None
            if current and current.get("token") != holder.get("token") and _alive(current, stale_s):
                return current
            value = _dumps(holder)
            if text is None:
                self._insert_ignore(
                    self._meta, [{"key": _DRIVER_KEY, "value": value}], ("key",), conn=conn
                )
            conn.execute(
                self._meta.update().where(self._meta.c.key == _DRIVER_KEY).values(value=value)
            )
        return None

    def release_driver(self, token: str) -> None:
        """Give the study up (only if ``token`` still holds it)."""
        with self._write() as conn:
            text = conn.execute(
                sa.select(self._meta.c.value).where(self._meta.c.key == _DRIVER_KEY)
            ).scalar()
            if text and json.loads(text).get("token") == token:
                conn.execute(self._meta.delete().where(self._meta.c.key == _DRIVER_KEY))

    def mark_running(self, ids: Sequence[str], worker: str = "") -> list[str]:
        """Claim queued (or failed, for a retry) designs for ``worker``; returns the ids claimed.

        Designs already running or done are left alone, so two processes
        claiming the same ids never both get them.
        """
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        d = self._designs
        claimed: list[str] = []
        now = time.time()
        with self._write() as conn:
            for chunk in _chunks(ids):
                stmt = (
                    d.update()
                    .where(d.c.design_id.in_(chunk), d.c.status.in_(("queued", "failed")))
                    .values(status="running", worker=worker, started_at=now)
                )
                if self._engine.dialect.update_returning:
                    claimed.extend(conn.execute(stmt.returning(d.c.design_id)).scalars())
                else:  # pragma: no cover - dialects without UPDATE ... RETURNING
                    mine = list(
                        conn.execute(
                            sa.select(d.c.design_id)
                            .where(d.c.design_id.in_(chunk), d.c.status.in_(("queued", "failed")))
                            .with_for_update()
                        ).scalars()
                    )
                    if mine:
                        conn.execute(
                            d.update()
                            .where(d.c.design_id.in_(mine))
                            .values(status="running", worker=worker, started_at=now)
                        )
                    claimed.extend(mine)
        order = {i: k for k, i in enumerate(ids)}
        return sorted(claimed, key=order.__getitem__)

    def record_results(self, results: Sequence[EvalResult]) -> int:
        """Commit a batch of results in ONE transaction; returns how many rows changed.

        Each recorded design gets the next ``done_seq`` (completion order, unique
        across processes), ``attempts + 1``, its timings, worker, metrics or
        error. A result for a design that is already ``done`` is ignored (first
        result wins, so a design evaluated by two processes is counted once).
        Unknown design ids raise :class:`StoreError` and nothing is written.
        """
        if not results:
            return 0
        latest: dict[str, EvalResult] = {}
        for r in results:
            if r.status not in ("done", "failed"):
                raise StoreError(
                    f"result for {r.design_id!r} has status {r.status!r}; allowed: done, failed"
                )
            if r.status == "done" and not isinstance(r.metrics, dict):
                raise StoreError(f"done result for {r.design_id!r} carries no metrics dict")
            latest[r.design_id] = r  # a later result for the same id in one batch wins
        d, c = self._designs, self._counters
        ids = sorted(latest)
        now = time.time()
        with self._write() as conn:
            status_of: dict[str, str] = {}
            for chunk in _chunks(ids):
                q = sa.select(d.c.design_id, d.c.status).where(d.c.design_id.in_(chunk))
                if self._dialect != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
                    # row locks taken in one global order, so two writers cannot deadlock
                    q = q.order_by(d.c.design_id).with_for_update()
                status_of.update((i, s) for i, s in conn.execute(q))
            missing = [i for i in ids if i not in status_of]
            if missing:
                raise StoreError(
                    f"record_results got {len(missing)} design id(s) not in the store "
                    f"(add_designs first): {', '.join(missing[:5])}"
                )
            todo = [
                r for r in results if latest[r.design_id] is r and status_of[r.design_id] != "done"
            ]
            if not todo:
                return 0
            conn.execute(
                c.update().where(c.c.name == "done_seq").values(value=c.c.value + len(todo))
            )
            top = conn.execute(sa.select(c.c.value).where(c.c.name == "done_seq")).scalar_one()
            first = top - len(todo) + 1
            params = []
            for k, r in enumerate(todo):
                done = r.status == "done"
                params.append(
                    {
                        "b_id": r.design_id,
                        "b_status": r.status,
                        "b_metrics": _dumps(r.metrics) if done else None,
                        "b_error": None if done else (r.error or "unknown error"),
                        "b_started": r.started_at or None,
                        "b_finished": r.finished_at or now,
                        "b_worker": r.worker or None,
                        "b_done_seq": first + k,
                    }
                )
            stmt = (
                d.update()
                .where(d.c.design_id == sa.bindparam("b_id"))
                .values(
                    status=sa.bindparam("b_status"),
                    metrics=sa.bindparam("b_metrics"),
                    error=sa.bindparam("b_error"),
                    started_at=sa.func.coalesce(
                        sa.bindparam("b_started", type_=sa.Double), d.c.started_at
                    ),
                    finished_at=sa.bindparam("b_finished", type_=sa.Double),
                    worker=sa.func.coalesce(sa.bindparam("b_worker", type_=sa.String), d.c.worker),
                    done_seq=sa.bindparam("b_done_seq"),
                    attempts=d.c.attempts + 1,
                )
            )
            conn.execute(stmt, params)
        return len(todo)

    def requeue_running(self, worker: str | None = None) -> int:
        """Crash recovery: designs left ``running`` (optionally only ``worker``'s) -> queued."""
        d = self._designs
        cond = d.c.status == "running"
        if worker is not None:
            cond = sa.and_(cond, d.c.worker == worker)
        with self._write() as conn:
            return conn.execute(
                d.update().where(cond).values(status="queued", worker=None, started_at=None)
            ).rowcount

    # ------------------------------------------------------------------ reads
    def _records(self, stmt: sa.Select) -> list[DesignRecord]:
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        params = _loads_many([r.params for r in rows])
        metrics = _loads_many([r.metrics for r in rows])
        # table columns and DesignRecord fields share names; only the JSON texts are decoded
        return [
            DesignRecord(**{**r._mapping, "params": p, "metrics": m})
            for r, p, m in zip(rows, params, metrics, strict=True)
        ]

    def queued(self, limit: int | None = None) -> list[DesignRecord]:
        """Queued designs, oldest first (by ``seq``)."""
        d = self._designs
        stmt = sa.select(d).where(d.c.status == "queued").order_by(d.c.seq)
        if limit is not None:
            stmt = stmt.limit(int(limit))
        return self._records(stmt)

    def history(self) -> list[DesignRecord]:
        """Finished designs (done and failed) in completion order, for optimizer warm starts."""
        d = self._designs
        stmt = (
            sa.select(d).where(d.c.status.in_(("done", "failed"))).order_by(d.c.done_seq, d.c.seq)
        )
        return self._records(stmt)

    def get(self, design_id: str) -> DesignRecord | None:
        """One design by id, or None."""
        found = self._records(
            sa.select(self._designs).where(self._designs.c.design_id == design_id)
        )
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        """Designs per status (every status present, zero included)."""
        d = self._designs
        with self._read() as conn:
            rows = conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status)).all()
            out = dict.fromkeys(STATUSES, 0)
            out.update({s: int(n) for s, n in rows})
        return out

    def cached_metrics(self, ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Metrics of those ``ids`` that are done (a resumed or repeated design costs nothing)."""
        ids = list(dict.fromkeys(ids))
        d = self._designs
        out: dict[str, dict[str, float]] = {}
        with self._read() as conn:
            for chunk in _chunks(ids):
                rows = conn.execute(
                    sa.select(d.c.design_id, d.c.metrics).where(
                        d.c.design_id.in_(chunk), d.c.status == "done"
                    )
                ).all()
                for (design_id, _), m in zip(rows, _loads_many([r[1] for r in rows]), strict=True):
                    out[design_id] = m
        return out

    def frame(self, status: str | Sequence[str] | None = None) -> pd.DataFrame:
        """All designs (or those with ``status``) as a typed DataFrame, ordered by ``seq``.

        Columns: :data:`META_COLUMNS` (timestamps as float epoch seconds,
        ``duration_s = finished_at - started_at``, ``done_seq`` nullable Int64),
        then one column per param, then one per metric (their names are in
        ``attrs['params']`` and ``attrs['metrics']``). A param or metric whose
        name clashes with an earlier column is prefixed ``param.`` / ``metric.``.
        """
        with _gc_paused():
            return self._frame(status)

    def _frame(self, status: str | Sequence[str] | None) -> pd.DataFrame:
        d = self._designs
        stmt = sa.select(
            d.c.design_id,
            d.c.seq,
            d.c.status,
            d.c.attempts,
            d.c.error,
            d.c.training_key,
            d.c.worker,
            d.c.created_at,
            d.c.started_at,
            d.c.finished_at,
            d.c.done_seq,
            d.c.params,
            d.c.metrics,
        ).order_by(d.c.seq)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise StoreError(f"unknown status {bad}; allowed: {', '.join(STATUSES)}")
            stmt = stmt.where(d.c.status.in_(wanted))
        # Raw DBAPI cursor: 100k SQLAlchemy Row objects would cost more than the
        # query itself. Literal binds are safe here: the only values are the
        # validated status names above.
        sql = str(
            stmt.compile(dialect=self._engine.dialect, compile_kwargs={"literal_binds": True})
        )
        with self._read() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(sql)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        cols = list(zip(*rows, strict=True)) if rows else [()] * 13

        def floats(values: Sequence[Any]) -> np.ndarray:
            return np.array(values, dtype=np.float64)  # None -> NaN

        started, finished = floats(cols[8]), floats(cols[9])
        parents = self.lineage()
        rungs = self.rungs()
        meta = pd.DataFrame(
            {
                "design_id": pd.array(cols[0], dtype="str"),
                "seq": np.asarray(cols[1], dtype=np.int64),
                "status": pd.array(cols[2], dtype="str"),
                "attempts": np.asarray(cols[3], dtype=np.int64),
                "error": pd.array(cols[4], dtype="str"),
                "training_key": pd.array(cols[5], dtype="str"),
                "parent_key": pd.array(
                    [parents.get(k) for k in cols[5]] if parents else [None] * len(rows),
                    dtype="str",
                ),
                "worker": pd.array(cols[6], dtype="str"),
                "created_at": floats(cols[7]),
                "started_at": started,
                "finished_at": finished,
                "duration_s": finished - started,
                "done_seq": pd.array(cols[10], dtype="Int64"),
                "rung": pd.array(
                    [rungs[d][1] if d in rungs else None for d in cols[0]]
                    if rungs
                    else [None] * len(rows),
                    dtype="Int64",
                ),
                "partial": pd.array(
                    [d in rungs and not rungs[d][2] for d in cols[0]]
                    if rungs
                    else np.zeros(len(rows), dtype=bool),
                    dtype="boolean",
                ),
            }
        )
        params = _typed_records(_loads_many(cols[11]), len(rows), nullable_int=True)
        metrics = _typed_records([m or {} for m in _loads_many(cols[12])], len(rows))
        taken = set(META_COLUMNS)
        params = params.rename(columns={c: f"param.{c}" for c in params.columns if c in taken})
        taken |= set(params.columns)
        metrics = metrics.rename(columns={c: f"metric.{c}" for c in metrics.columns if c in taken})
        out = pd.concat([meta, params, metrics], axis=1)
        out.attrs["params"] = list(params.columns)
        out.attrs["metrics"] = list(metrics.columns)
        return out


def _typed_records(
    records: list[dict[str, Any]], n: int, *, nullable_int: bool = False
) -> pd.DataFrame:
    """Records -> DataFrame with numeric columns as int64/float64, strings as str, bools as
    boolean. With ``nullable_int`` (design params), an integer column with missing values
    (a conditional param inactive in some designs) is pandas' nullable ``Int64`` — it
    stays an integer in the CSV, the printed front and Parquet instead of ``6.0``."""
    if n == 0:
        return pd.DataFrame(index=pd.RangeIndex(0))
    df = pd.DataFrame.from_records(records, index=pd.RangeIndex(n))
    for col in df.columns:
        s = df[col]
        if s.dtype == np.float64 and nullable_int and s.isna().any():
            # pandas made ints with gaps float64; the records say whether they were ints
            values = [r[col] for r in records if r.get(col) is not None]
            if values and all(type(v) is int for v in values):
                df[col] = s.astype("Int64")
            continue
        if s.dtype != object:
            continue
        present = s.dropna()
        kinds = {type(v) for v in present}
        if kinds <= {bool}:
            df[col] = s.astype("boolean")
        elif kinds <= {int, float} and kinds:
            has_missing = len(present) < len(s)
            if float in kinds:
                df[col] = s.astype("float64")
            elif has_missing:
                df[col] = s.astype("Int64" if nullable_int else "float64")
            else:
                df[col] = s.astype("int64")
        elif kinds <= {str}:
            df[col] = s.astype("str")
        else:  # mixed kinds (e.g. categorical choices [1, "a"]): keep text so the column is uniform
            df[col] = s.map(
                lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            ).astype("str")
    return df

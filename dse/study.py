"""The study loop: ask a batch, dispatch, tell results as they arrive, commit, stop on budget.

Invariants that make ``kill -9`` + ``dse resume`` safe:

* a design is written to the store (``queued`` then ``running``) *before* it is
  dispatched, and its result is committed *before* the optimizer hears of it;
* on resume, ``running`` rows are re-queued, the backlog of queued rows is
  finished first, and only then is the optimizer rebuilt from the recorded
  history (``warm_start``) — so nothing recorded is re-evaluated and every
  design ever dispatched ends up ``done`` or ``failed`` exactly once;
* the evaluation budget counts rows in the store, so a resumed study ends with
  exactly the budgeted number of evaluations.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.fidelity import Ladder
from dse.query import HypervolumeTracker
from dse.runners.base import EvalResult, EvalTask, Runner
from dse.spec import ResolvedStudy, SpecError
from dse.termination import FailFast, budget_rules, first_stop, state_now
from evaluators.base import Evaluator, stable_hash

if TYPE_CHECKING:
    from dse.store import Store

__all__ = ["StudyLoop", "StudyOutcome", "design_id_for", "make_runner"]


def record_lineage(
    store: Store, evaluator: Evaluator, rows: list[tuple[str, dict[str, Any], str | None]]
) -> None:
    """Record which model each row's training fine-tunes from, before the rows themselves,
    so a design in the store never lacks its lineage (issue 15: ``parent_key``)."""
    parents = {key: evaluator.parent_key(d) for _, d, key in rows if key is not None}
    store.record_lineage({k: p for k, p in parents.items() if p is not None})


def design_id_for(resolved: ResolvedStudy, design: dict[str, Any]) -> str:
    """Stable id: canonical design + evaluator name, version and options."""
    ev = resolved.evaluator_spec
    return stable_hash(
        {
            "design": design,
            "evaluator": ev.name,
            "version": resolved.evaluator.version,
            "options": dict(ev.options),
        }
    )


def make_runner(resolved: ResolvedStudy) -> Runner:
    """Build the runner the spec asks for (``runner.kind``)."""
    r = resolved.spec.runner
    if r.kind == "serial":
        from dse.runners.serial import SerialRunner

        return SerialRunner(
            resolved.evaluator_spec, batch=r.batch or 16, evaluator=resolved.evaluator
        )
    from dse.runners.ray_runner import RayRunner

    return RayRunner(
        resolved.evaluator_spec,
        address=r.address,
        workers=r.workers,
        num_cpus=r.num_cpus,
        num_gpus=r.num_gpus,
        timeout_s=r.timeout,
        max_retries=r.max_retries,
        shared_cache_dir=r.shared_cache_dir,
    )


@dataclass
class StudyOutcome:
    """What a run of the loop did (the store holds the full record)."""

    stopped_by: str
    evaluated: int
    failed: int
    cache_hits: int
    elapsed_s: float
    counts: dict[str, int] = field(default_factory=dict)


class StudyLoop:
    """Runs one study against a store with a runner until the budget is spent."""

    def __init__(
        self,
        resolved: ResolvedStudy,
        store: Any,
        runner: Runner,
        *,
        progress: bool | Callable[[dict[str, Any]], None] = False,
    ):
        self.resolved = resolved
        self.spec = resolved.spec
        self.store = store
        self.runner = runner
        self.progress = progress
        self.objectives = dict(self.spec.objectives)
        from dse.optimizers import create_optimizer

        self.optimizer = create_optimizer(
            self.spec.optimizer.name,
            resolved.space,
            self.objectives,
            resolved.constraints,
            self.spec.seed,
            self.spec.optimizer.options(),
        )
        # the number `dse status` prints: feasible designs, the study's reference point
        stagnation = self.spec.budget.stagnation  # its window decides which fronts are kept
        self.hv = HypervolumeTracker(
            self.objectives,
            resolved.constraints,
            self.spec.ref_point,
            window=None if stagnation is None else stagnation.window,
        )
        # design_id -> (design, times it was asked again while in flight)
        self._in_flight: dict[str, tuple[dict[str, Any], int]] = {}
        # multi-fidelity (dse/fidelity.py): rung row id -> (candidate design, rung, candidate id)
        self.ladder = (
            None
            if self.spec.fidelity is None
            else Ladder.from_spec(self.spec.fidelity, self.objectives)
        )
        self._rung_of: dict[str, tuple[dict[str, Any], int, str]] = {}
        self._pending_promotions: list[tuple[dict[str, Any], int, str]] = []
        # candidate id -> times it was asked again while a lower rung was in flight: told
        # that many extra times with its final result, as the single-fidelity loop does
        self._carried: dict[str, int] = {}
        self._promotions_open = True
        self.cache_hits = 0
        self._eval_seconds = 0.0
        self._bar: Any = None
        self._warned: set[str] = set()  # evaluator warnings already printed this run

    # ------------------------------------------------------------------ helpers
    def _counts(self) -> dict[str, int]:
        c = self.store.counts()
        return {k: int(c.get(k, 0)) for k in ("queued", "running", "done", "failed")}

    def _dispatch(
        self,
        rows: list[tuple[str, dict[str, Any], str | None]],
        attempt_of: dict[str, int],
        repeats: dict[str, int] | None = None,
    ) -> None:
        if not rows:
            return
        self.store.mark_running([r[0] for r in rows], worker=self.spec.runner.kind)
        tasks = []
        for design_id, design, key in rows:
            self._in_flight[design_id] = (design, (repeats or {}).get(design_id, 0))
            tasks.append(EvalTask(design_id, design, key, attempt_of.get(design_id, 0) + 1))
        self.runner.submit(tasks)

    def _collect(self, timeout: float) -> list[EvalResult]:
        results = self.runner.results(timeout=timeout)
        if results:
            self.store.record_results(results)
            self._eval_seconds += sum(max(0.0, r.finished_at - r.started_at) for r in results)
            self._print_warnings(results)
        return results

    def _print_warnings(self, results: list[EvalResult]) -> None:
        """Each distinct evaluator warning once per run, from whichever worker raised it."""
        for r in results:
            for text in r.extra.get("warnings", ()):
                if text in self._warned:
                    continue
                self._warned.add(text)
                line = f"warning: {text}"
                if self._bar is not None:
                    self._bar.write(line, file=sys.stderr)
                else:
                    print(line, file=sys.stderr)

    def _tell(
        self, results: list[EvalResult]
    ) -> tuple[
        list[tuple[dict[str, Any], dict[str, float]]], list[tuple[dict[str, Any], int, str]]
    ]:
        """Tell the optimizer; returns the full-budget done ``(design, metrics)`` for the
        hypervolume and, in a multi-fidelity study, the candidates that climb a rung."""
        designs, metrics, done, climb = [], [], [], []
        for r in results:
            design, repeats = self._in_flight.pop(r.design_id, (None, 0))
            if design is None:
                continue
            m = r.metrics if r.status == "done" else None
            if r.design_id in self._rung_of:
                design, rung, cid = self._rung_of.pop(r.design_id)
                if self._promotions_open and self.ladder.promotes(cid, rung, m):  # type: ignore[union-attr]
                    climb.append((design, rung + 1, cid))
                    self._carried[cid] = self._carried.get(cid, 0) + repeats
                    continue  # the optimizer hears of it at the highest rung it reaches
                repeats += self._carried.pop(cid, 0)
                if m and rung == self.ladder.last:  # type: ignore[union-attr]
                    done.append((design, m))  # only full-budget results count for the front
            elif m:
                done.append((design, m))
            for _ in range(1 + repeats):
                designs.append(design)
                metrics.append(m)
        if designs:
            self.optimizer.tell(designs, metrics)
        return done, climb

    def _queue_rungs(
        self, items: list[tuple[dict[str, Any], int, str]], budget_n: float
    ) -> tuple[list[tuple[str, dict[str, Any], str | None]], set[str], list[str]]:
        """Record the rung rows of ``items`` (candidate, rung, candidate id) and reserve
        them in the store: ``(rows, one per item; ids new in the store; ids it held)``."""
        evaluator = self.resolved.evaluator
        rows, marks = [], []
        for cand, rung, cid in items:
            design = self.ladder.at(cand, rung)  # type: ignore[union-attr]
            did = design_id_for(self.resolved, design)
            self._rung_of[did] = (cand, rung, cid)
            rows.append((did, design, evaluator.training_key(design)))
            marks.append((did, cid, rung, rung == self.ladder.last))  # type: ignore[union-attr]
        record_lineage(self.store, evaluator, rows)
        self.store.record_rungs(marks)
        claim = self.store.reserve_designs(rows, _as_limit(budget_n))
        return rows, set(claim.new), list(claim.existing)

    def _climb(self, items: list[tuple[dict[str, Any], int, str]], budget_n: float) -> int:
        """Dispatch promoted candidates at their next rung; returns how many rows it added.

        A next rung the store already holds (a repeated candidate) is told from the store;
        one it refuses (the budget is spent) ends the climb: the optimizer hears the
        candidate's result at the rung below."""
        rows, new, existing = self._queue_rungs(items, budget_n)
        fresh = [r for r in rows if r[0] in new]
        cached = self.store.cached_metrics(existing) if existing else {}
        told_d, told_m = [], []
        for (cand, rung, cid), (did, _, _) in zip(items, rows, strict=True):
            if did in new:
                continue
            self._rung_of.pop(did, None)
            m = cached.get(did) if did in cached else self._rung_metrics(cid, rung - 1)
            times = 1 + self._carried.pop(cid, 0)
            told_d += [cand] * times
            told_m += [m] * times
        if told_d:
            self.optimizer.tell(told_d, told_m)
        self._dispatch(fresh, {})
        return len(fresh)

    def _rung_metrics(self, candidate_id: str, rung: int) -> dict[str, float] | None:
        """The recorded metrics of ``candidate_id`` at ``rung`` (None if absent or failed)."""
        ids = [d for d, (c, r, _) in self.store.rungs().items() if c == candidate_id and r == rung]
        return self.store.cached_metrics(ids).get(ids[0]) if ids else None

    def _report_progress(self, budget_n: float, t_end: float | None, hv: float) -> None:
        counts = self._counts()
        info = {
            "done": counts["done"],
            "failed": counts["failed"],
            "hypervolume": hv,
            "budget": budget_n,
            "time_left_s": None if t_end is None else max(0.0, t_end - time.time()),
        }
        if callable(self.progress):
            self.progress(info)
        elif self.progress:
            if self._bar is None:
                from tqdm.auto import tqdm

                total = None if math.isinf(budget_n) else int(budget_n)
                self._bar = tqdm(
                    total=total, desc=self.spec.name, unit="design", dynamic_ncols=True
                )
            self._bar.n = counts["done"] + counts["failed"]
            post = {"failed": counts["failed"], "HV": f"{hv:.4g}"}
            if info["time_left_s"] is not None:
                post["left"] = f"{info['time_left_s']:.0f}s"
            self._bar.set_postfix(post, refresh=False)
            self._bar.refresh()

    # ------------------------------------------------------------------ main loop
    def run(self) -> StudyOutcome:
        t0 = time.time()
        budget = self.spec.budget
        budget_n = float(budget.evaluations) if budget.evaluations else math.inf
        elapsed_before = float(self.store.get_meta("elapsed_s") or 0.0)
        t_end = None if budget.time is None else t0 + max(0.0, budget.time - elapsed_before)
        stopped_by = "budget"
        self._claim_study()
        try:
            self._resume_backlog(t_end)
            self._warm_start()
            stopped_by = self._main(budget_n, t_end)
        finally:
            self.store.release_driver(self._holder["token"])
            self.store.set_meta("elapsed_s", elapsed_before + (time.time() - t0))
            if self._bar is not None:
                self._bar.close()
        counts = self._counts()
        return StudyOutcome(
            stopped_by, counts["done"], counts["failed"], self.cache_hits, time.time() - t0, counts
        )

    def _claim_study(self) -> None:
        """One driver per study (decided in issue 14): a second ``dse run`` / ``resume`` /
        ``sweep`` on a study being driven is refused, naming the holder, before it touches
        a design; the budget is also enforced by the store itself (``reserve_designs``)."""
        import socket
        import uuid

        self._holder = {
            "token": uuid.uuid4().hex,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "beat": time.time(),
        }
        self._last_beat = time.time()
        other = self.store.acquire_driver(self._holder, DRIVER_STALE_S)
        if other is not None:
            raise StudyBusyError(_busy_message(other))

    def _heartbeat(self) -> None:
        """Refresh the lease every ``DRIVER_BEAT_S``; stop if another driver took it."""
        now = time.time()
        if now - self._last_beat < DRIVER_BEAT_S:
            return
        self._last_beat = now
        other = self.store.acquire_driver(dict(self._holder, beat=now), DRIVER_STALE_S)
        if other is not None:
            raise StudyBusyError(_busy_message(other))

    def _resume_backlog(self, t_end: float | None) -> None:
        """Finish designs recorded but never completed (a crash left them queued/running)."""
        self.store.requeue_running()
        while True:
            backlog = self.store.queued(limit=max(1, self.runner.capacity()))
            if not backlog:
                break
            attempts = {r.design_id: r.attempts for r in backlog}
            self._dispatch([(r.design_id, r.params, r.training_key) for r in backlog], attempts)
            while self.runner.pending():
                self._collect(timeout=1.0)
            self._in_flight.clear()

    def _warm_start(self) -> None:
        """Rebuild the optimizer from the recorded history, in completion order."""
        history = self.store.history()
        if not history:
            return
        if self.ladder is not None:
            self._warm_start_ladder(history)
            return
        designs = [self.resolved.space.canonicalize(r.params) for r in history]
        metrics = [r.metrics if r.status == "done" else None for r in history]
        self._eval_seconds = sum(
            (r.finished_at or 0.0) - (r.started_at or 0.0) for r in history if r.started_at
        )
        self.optimizer.warm_start(designs, metrics)
        self.hv.add([(d, m) for d, m in zip(designs, metrics, strict=True) if m], len(metrics))

    def _warm_start_ladder(self, history: list[Any]) -> None:
        """Multi-fidelity resume: replay the rung results in completion order through the
        halving book (the same decisions as before the stop), tell the optimizer each
        candidate's highest recorded rung, and queue the promotions decided but never
        recorded (the driver died between a result and its next rung)."""
        ladder, space = self.ladder, self.resolved.space
        assert ladder is not None
        rungs = self.store.rungs()
        recorded = {(cid, rung) for cid, rung, _ in rungs.values()}
        top: dict[str, tuple[dict[str, Any], int, bool, dict[str, float] | None]] = {}
        full = []
        for r in history:
            if r.design_id not in rungs:
                continue
            cid, rung, _ = rungs[r.design_id]
            cand = ladder.candidate(r.params, space)
            m = r.metrics if r.status == "done" else None
            climbs = ladder.promotes(cid, rung, m)
            if cid not in top or rung >= top[cid][1]:
                top[cid] = (cand, rung, climbs, m)
            if m and rung == ladder.last:
                full.append((cand, m))
        designs, metrics = [], []
        for cid, (cand, rung, climbs, m) in top.items():
            if climbs and (cid, rung + 1) not in recorded:
                self._pending_promotions.append((cand, rung + 1, cid))
            elif not climbs:
                designs.append(cand)
                metrics.append(m)
        self._eval_seconds = sum(
            (r.finished_at or 0.0) - (r.started_at or 0.0) for r in history if r.started_at
        )
        self.optimizer.warm_start(designs, metrics)
        self.hv.add(full, len(history))

    def _main(self, budget_n: float, t_end: float | None) -> str:
        space = self.resolved.space
        evaluator = self.resolved.evaluator
        counts = self._counts()
        recorded = counts["done"] + counts["failed"]
        total = recorded + counts["queued"] + counts["running"]
        reason = "budget"
        idle_rounds = 0
        space_size = finite_space_size(space)
        rules = budget_rules(self.spec.budget, self.hv, evaluations=budget_n, deadline=t_end)
        fail_fast = FailFast(self.spec.budget.fail_fast)
        while True:
            halted = first_stop(rules, state_now(total, self._cpu_seconds))
            can_ask = halted is None
            free = self.runner.capacity() - self.runner.pending()
            if can_ask and free > 0 and not self.optimizer.exhausted():
                asked = self.optimizer.ask(int(min(free, budget_n - total)))
                unique: dict[str, list[Any]] = {}  # design_id -> [design, times asked]
                told_as: dict[str, dict[str, Any]] = {}  # design_id -> the optimizer's design
                for raw in asked:
                    design = space.canonicalize(raw)
                    row = design if self.ladder is None else self.ladder.at(design, 0)
                    did = design_id_for(self.resolved, row)
                    told_as[did] = design
                    if did in self._in_flight:
                        d, rep = self._in_flight[did]
                        self._in_flight[did] = (d, rep + 1)
                    elif did in unique:
                        unique[did][1] += 1
                    else:
                        unique[did] = [row, 1]
                rows = [(did, d, evaluator.training_key(d)) for did, (d, _) in unique.items()]
                record_lineage(self.store, evaluator, rows)
                if self.ladder is not None:  # each row is its candidate's first rung
                    marks = []
                    for did in unique:
                        cid = design_id_for(self.resolved, told_as[did])
                        self._rung_of[did] = (told_as[did], 0, cid)
                        marks.append((did, cid, 0, self.ladder.last == 0))
                    self.store.record_rungs(marks)
                # the store admits designs only up to the budget, whoever else drives
                claim = self.store.reserve_designs(rows, _as_limit(budget_n))
                inserted = set(claim.new)
                fresh = [r for r in rows if r[0] in inserted]
                repeats = claim.existing
                if claim.refused:
                    total = budget_n  # the store is full: stop asking
                if repeats:
                    # designs already recorded: free, told from the evaluation cache
                    cached = self.store.cached_metrics(repeats)
                    designs_c, metrics_c = [], []
                    for did in repeats:
                        times = unique[did][1]
                        self._rung_of.pop(did, None)
                        self.cache_hits += times
                        designs_c += [told_as[did]] * times
                        metrics_c += [cached.get(did)] * times
                    self.optimizer.tell(designs_c, metrics_c)
                for did in unique:
                    if did not in inserted and did not in repeats:
                        self._rung_of.pop(did, None)  # refused: the budget is spent
                self._dispatch(fresh, {}, {did: unique[did][1] - 1 for did, _, _ in fresh})
                total += len(fresh)
                # repeats of recorded designs cost nothing but bring nothing new either
                idle_rounds = 0 if fresh else idle_rounds + 1
            if self._pending_promotions and halted is None:
                total += self._climb(self._pending_promotions, budget_n)
                self._pending_promotions = []
            if self.runner.pending() == 0 and not self._in_flight:
                if halted is not None:
                    reason = halted
                    break
                if self.optimizer.exhausted():
                    reason = "optimizer_exhausted"
                    break
                candidates = total - self._climbed_rows()
                if space_size is not None and candidates >= space_size:
                    reason = f"space exhausted after {candidates} distinct designs"
                    break
                if idle_rounds > MAX_IDLE_ROUNDS:
                    # the optimizer keeps proposing only recorded designs
                    reason = "no_new_designs"
                    break
                continue
            self._heartbeat()
            results = self._collect(timeout=0.5)
            if results:
                self._promotions_open = halted is None
                done, climb = self._tell(results)
                if climb:
                    total += self._climb(climb, budget_n)
                recorded += len(results)
                hv = self.hv.add(done, recorded)
                self._report_progress(budget_n, t_end, hv)
                fail_fast.update(results)
                if fail_fast.triggered:
                    # designs still in flight stay recorded as running: resume re-queues them
                    return fail_fast.describe()
        return reason

    def _climbed_rows(self) -> int:
        """Rows that are a candidate's second or later rung (0 without multi-fidelity)."""
        if self.ladder is None:
            return 0
        return sum(1 for _, rung, _ in self.store.rungs().values() if rung > 0)

    def _cpu_seconds(self) -> float:
        """CPU-seconds spent on evaluations so far (recorded durations × CPUs per evaluation)."""
        return self._eval_seconds * self.spec.runner.num_cpus


#: the driver lease's heartbeat period and after how long without one it is stale (a driver
#: on another host that died; on this host a dead pid is stale at once)
DRIVER_BEAT_S = 10.0
DRIVER_STALE_S = 120.0


class StudyBusyError(ValueError):
    """Another live driver holds the study."""


def _busy_message(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
    return (
        f"the study is being driven by pid {holder.get('pid')} on host {holder.get('host')!r} "
        f"(started {started}); one driver per study: wait for it to finish or stop it, then "
        f"'dse resume' (a driver that died is taken over after {DRIVER_STALE_S:.0f} s; on the "
        f"same host at once)"
    )


def _as_limit(budget_n: float) -> int | None:
    return None if math.isinf(budget_n) else int(budget_n)


#: asks in a row that bring no new design before the run ends ("no_new_designs"): an
#: optimizer that can only re-propose recorded designs must not spin
MAX_IDLE_ROUNDS = 200
#: a space with at most this many designs counts as finite (enumerated exactly)
FINITE_SPACE_LIMIT = 10**6


def finite_space_size(space: Any) -> int | None:
    """Number of distinct designs of a space without continuous params, else None."""
    from search_spaces import Int, Real

    if any(isinstance(p, Real) for p in space):
        return None
    # enumerate every integer: the grid's levels must cover the widest Int param
    widths = [(p.effective_high - p.low) // (p.step or 1) + 1 for p in space if isinstance(p, Int)]
    levels = max(widths, default=1)
    if levels > FINITE_SPACE_LIMIT:
        return None
    try:
        size = space.grid_size(levels_per_real=levels)
    except Exception:
        return None
    return size if 0 < size <= FINITE_SPACE_LIMIT else None


def study_dir_for(resolved: ResolvedStudy, runs_dir: Path | str = "runs") -> Path:
    from dse.layout import StudyLayout

    return StudyLayout.for_study(resolved.spec.name, runs_dir).root


def check_not_started(store: Any, where: str) -> None:
    counts = store.counts()
    if sum(counts.values()):
        raise SpecError(
            f"{where} already holds {sum(counts.values())} recorded designs; "
            "use 'dse resume' to continue it (nothing recorded is ever overwritten)"
        )

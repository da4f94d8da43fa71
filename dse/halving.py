"""Multi-objective successive halving: early stopping over training epochs for sweeps.

Why our own rule: Tune's schedulers (ASHA, HyperBand, median stopping) rank
trials on ONE metric, and ``OptunaSearch`` ignores intermediate results when it
optimizes several objectives. A trial that is mediocre on accuracy but the best
on energy must survive a rung, so trials are ranked by **non-dominated rank**
(NSGA-II's fronts, Deb et al. 2002, IEEE TEVC 6(2)) with **crowding distance**
as the tie-break inside a front (larger = more isolated = kept first).

The rule is asynchronous, like ASHA (Li et al. 2020, "A System for Massively
Parallel Hyperparameter Tuning", MLSys): when a trial reaches rung ``r`` (its
resource, e.g. ``train.epochs``, reached ``rungs[r]``) it is compared with every
trial recorded at that rung so far and continues only if it sits in the top
``1/eta`` of them (at least one survives; the first ``eta`` arrivals at a rung
always continue, since there is nothing yet to compare with). No trial waits
for stragglers, so workers never idle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "nondominated_rank",
    "crowding_distance",
    "rank_order",
    "RungBook",
    "HalvingConfig",
    "MultiObjectiveHalving",
]


def nondominated_rank(F: np.ndarray) -> np.ndarray:
    """Front index (0 = non-dominated) of each row of ``F`` (all objectives minimized);
    the one Pareto ranking of the project, :func:`dse.query.pareto_rank` (moocore)."""
    from dse.query import pareto_rank

    return pareto_rank(F)


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of one front (boundary points: inf)."""
    F = np.asarray(F, dtype=float)
    n, m = F.shape if F.ndim == 2 else (len(F), 0)
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return dist


def rank_order(F: np.ndarray) -> np.ndarray:
    """Indices of ``F``'s rows, best first: by front, then by crowding distance (descending)."""
    F = np.asarray(F, dtype=float)
    rank = nondominated_rank(F)
    crowd = np.zeros(len(F))
    for level in np.unique(rank):
        members = np.flatnonzero(rank == level)
        crowd[members] = crowding_distance(F[members])
    return np.lexsort((-crowd, rank))


@dataclass
class RungBook:
    """Asynchronous multi-objective halving bookkeeping (no Ray needed; unit-testable).

    ``objectives`` maps metric name -> 'min'/'max'; ``rungs`` are increasing
    resource milestones (e.g. epochs 1, 3, 9); ``eta`` the reduction factor.
    """

    objectives: Mapping[str, str]
    rungs: Sequence[float]
    eta: float = 3.0
    recorded: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.objectives.items() if v not in ("min", "max")}
        if not self.objectives or bad:
            raise ValueError(
                f"halving objectives {dict(self.objectives)!r}; allowed directions: min, max"
            )
        if not self.rungs or any(b <= a for a, b in zip(self.rungs, self.rungs[1:], strict=False)):
            raise ValueError(
                f"halving rungs {list(self.rungs)!r} must be a non-empty increasing list"
            )
        if not self.eta > 1:
            raise ValueError(f"halving eta={self.eta!r}; allowed: a number > 1")
        self._sign = np.array([1.0 if d == "min" else -1.0 for d in self.objectives.values()])

    def rung_of(self, resource: float) -> int | None:
        """Highest rung whose milestone ``resource`` has reached (None: below the first)."""
        idx = None
        for i, r in enumerate(self.rungs):
            if resource >= r:
                idx = i
        return idx

    def record(self, trial_id: str, rung: int, metrics: Mapping[str, Any]) -> bool:
        """Record ``trial_id`` at ``rung``; True if it should continue to the next rung.

        A trial with a missing or non-finite objective ranks last (it cannot be
        compared), so it is stopped once others have reached the rung.
        """
        vec = np.array(
            [
                float(metrics.get(k, math.nan)) if metrics.get(k) is not None else math.nan
                for k in self.objectives
            ]
        )
        vec = vec * self._sign
        vec = np.where(np.isfinite(vec), vec, np.inf)
        at = self.recorded.setdefault(rung, {})
        at[trial_id] = vec
        if rung >= len(self.rungs) - 1:
            return False  # the last rung: the trial has had its full budget
        n = len(at)
        if n <= self.eta:
            return True
        ids = list(at)
        order = rank_order(np.vstack([at[i] for i in ids]))
        keep = max(1, math.floor(n / self.eta))
        return ids.index(trial_id) in set(order[:keep].tolist())


@dataclass(frozen=True)
class HalvingConfig:
    """How a sweep stops trials early: ``resource`` param stepped through ``rungs``."""

    resource: str = "train.epochs"
    rungs: tuple[float, ...] = (1, 3, 9)
    eta: float = 3.0


def _tune_scheduler_base() -> type:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler


class MultiObjectiveHalving(_tune_scheduler_base()):  # type: ignore[misc]
    """Ray Tune scheduler applying :class:`RungBook` to results carrying ``resource_attr``."""

    def __init__(
        self,
        objectives: Mapping[str, str],
        rungs: Sequence[float],
        eta: float = 3.0,
        resource_attr: str = "dse_resource",
    ):
        super().__init__()
        self.book = RungBook(dict(objectives), list(rungs), eta)
        self.resource_attr = resource_attr
        self.stopped: list[str] = []

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # our objectives are fixed at construction; Tune's single metric is unused

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        from ray.tune.schedulers import TrialScheduler

        if result.get("dse_failed"):
            return TrialScheduler.STOP
        resource = result.get(self.resource_attr)
        if resource is None:
            return TrialScheduler.CONTINUE
        rung = self.book.rung_of(float(resource))
        if rung is None:
            return TrialScheduler.CONTINUE
        if self.book.record(trial.trial_id, rung, result):
            return TrialScheduler.CONTINUE
        if rung < len(self.book.rungs) - 1:
            self.stopped.append(trial.trial_id)
        return TrialScheduler.STOP

    def debug_string(self) -> str:
        sizes = {self.book.rungs[r]: len(v) for r, v in sorted(self.book.recorded.items())}
        return f"MultiObjectiveHalving: trials per rung {sizes}, stopped early {len(self.stopped)}"

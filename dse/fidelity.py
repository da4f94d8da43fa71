"""Multi-fidelity inside ``dse run``: candidates climb the rungs of a training budget.

Why: what a CIM study costs is trainings, and a design that is poor after a short training
is rarely on the front after a long one. With ``fidelity: {resource: train.epochs, rungs:
[2, 8], eta: 3}`` every design the optimizer proposes (a *candidate*) is first evaluated
with ``resource`` at the first rung; the successive-halving rule of :mod:`dse.halving`
(asynchronous, non-dominated rank then crowding distance, top ``1/eta`` go on) decides
whether it climbs to the next rung. The optimizer (NSGA-II, TPE, ...) is told each
candidate's result at the highest rung it reached; fronts and hypervolumes use last-rung
results only (the store marks the others ``partial``). Each rung is its own design row
(its own design id and training key), recorded in the store's ``rungs`` table before it
runs, so a study killed at any point resumes: rows in flight are re-run, and promotions
decided but not yet recorded are re-derived from the recorded results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dse.halving import RungBook

__all__ = ["Ladder"]


@dataclass
class Ladder:
    """The rungs of one study and the halving book that promotes candidates between them."""

    resource: str
    rungs: tuple[float, ...]
    eta: float
    objectives: Mapping[str, str]
    book: RungBook = field(init=False)

    def __post_init__(self) -> None:
        self.book = RungBook(dict(self.objectives), list(self.rungs), self.eta)

    @classmethod
    def from_spec(cls, fidelity: Any, objectives: Mapping[str, str]) -> Ladder:
        return cls(fidelity.resource, tuple(fidelity.rungs), float(fidelity.eta), objectives)

    @property
    def last(self) -> int:
        return len(self.rungs) - 1

    def at(self, candidate: Mapping[str, Any], rung: int) -> dict[str, Any]:
        """The design row of ``candidate`` at ``rung``: its resource set to that rung's value
        (an integer where the value is one, so ``train.epochs`` stays an int)."""
        value = self.rungs[rung]
        return {**candidate, self.resource: int(value) if float(value).is_integer() else value}

    def candidate(self, params: Mapping[str, Any], space: Any) -> dict[str, Any]:
        """The optimizer's design behind a recorded rung row: the resource back to the
        space's fixed value, or removed where the space does not name it."""
        design = dict(params)
        if self.resource in space.names:
            design[self.resource] = space[self.resource].value
        else:
            design.pop(self.resource, None)
        return space.canonicalize(design)

    def promotes(self, candidate_id: str, rung: int, metrics: Mapping[str, Any] | None) -> bool:
        """Record a rung result; True if the candidate climbs to ``rung + 1``."""
        if metrics is None or rung >= self.last:
            return False
        return self.book.record(candidate_id, rung, metrics)

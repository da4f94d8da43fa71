"""Model-free optimizers: ``random`` (seeded uniform sampling) and ``grid`` (exhaustive).

Why these are native rather than Optuna samplers: they need no history, so
an Optuna study would only add per-trial overhead; and the grid must follow
the space's conditional structure (an inactive param does not multiply the
grid), which ``SearchSpace.grid`` already does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from dse.optimizers.base import (
    Design,
    Optimizer,
    OptimizerError,
    OptimizerOptions,
    design_key,
    register_optimizer,
)
from search_spaces import SearchSpace
from search_spaces.expressions import Constraint

__all__ = ["RandomOptimizer", "GridOptimizer"]

_MAX_SHUFFLE = 1_000_000


@register_optimizer("random")
class RandomOptimizer(Optimizer):
    """Independent uniform (log-uniform where declared) samples of the space."""

    name = "random"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str],
        constraints: Sequence[Constraint | str] = (),
        seed: int = 0,
        **options: Any,
    ):
        super().__init__(space, objectives, constraints, seed, **options)
        self._rng = np.random.default_rng(self.seed)

    def ask(self, n: int) -> list[Design]:
        return [self.space.sample(self._rng) for _ in range(self._check_n(n))]

    def tell(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        for _, m in self._pairs(designs, metrics):
            self.n_told += 1
            self.n_failed += self.objective_vector(m) is None

    def warm_start(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        """Advance the generator past the recorded designs (same seed: same continuation)."""
        self.tell(designs, metrics)
        for _ in range(len(designs)):
            self.space.sample(self._rng)


class GridOptions(OptimizerOptions):
    levels: int = Field(
        5, ge=1, description="an integer >= 1 (points per continuous param; default 5)"
    )
    shuffle: bool = Field(False, description="true or false (default false)")


@register_optimizer("grid")
class GridOptimizer(Optimizer):
    """Every design of ``space.grid(levels)``; ``shuffle`` visits them in a seeded random order.

    Shuffling matters when the budget is smaller than the grid: an in-order
    prefix only varies the last params, a shuffled one covers the whole space.
    """

    name = "grid"
    options_type = GridOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str],
        constraints: Sequence[Constraint | str] = (),
        seed: int = 0,
        **options: Any,
    ):
        super().__init__(space, objectives, constraints, seed, **options)
        levels, shuffle = self.opts.levels, self.opts.shuffle
        self.levels = levels
        self.shuffle = shuffle
        self.size = space.grid_size(levels)
        if shuffle and self.size > _MAX_SHUFFLE:
            raise OptimizerError(
                f"optimizer 'grid': shuffle needs the whole grid in memory but it has {self.size} "
                f"designs (at most {_MAX_SHUFFLE} allowed); lower 'levels', drop 'shuffle', "
                "or use 'random'/'qmc'"
            )
        self._iter: Iterator[Design] | None = None
        self._done = False
        self._seen: set[str] = set()

    def _designs(self) -> Iterator[Design]:
        if self.shuffle:
            grid = list(self.space.grid(self.levels))
            order = np.random.default_rng(self.seed).permutation(len(grid))
            return (grid[i] for i in order)
        return self.space.grid(self.levels)

    def ask(self, n: int) -> list[Design]:
        n = self._check_n(n)
        if self._iter is None:
            self._iter = self._designs()
        out: list[Design] = []
        while len(out) < n and not self._done:
            try:
                d = next(self._iter)
            except StopIteration:
                self._done = True
                break
            key = design_key(d)
            if key not in self._seen:  # skip designs recorded before a resume
                self._seen.add(key)
                out.append(d)
        return out

    def tell(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        for d, m in self._pairs(designs, metrics):
            self.n_told += 1
            self.n_failed += self.objective_vector(m) is None
            self._seen.add(design_key(self.canonical(d)))

    def exhausted(self) -> bool:
        return self._done

"""The one place that turns a search space into Optuna trials and constraints into
Optuna's native constraint handling; used by the Optuna optimizers (``dse run``) and by
``dse sweep`` (Ray Tune's ``OptunaSearch``), so both sample and constrain alike.

* Define-by-run: :func:`suggest_design` suggests params in the space's dependency
  order and skips a param whose ``when`` condition is false, so conditional params
  are sampled only when active.
* Constraints: violations (``<= 0`` feasible; see
  :func:`dse.optimizers.base.constraint_violations`, one rule for both) go to ``trial.set_constraint``
  (Optuna 5) or ``create_trial(constraints=...)`` under the names ``c0, c1, ...``;
  NSGAIISampler and TPESampler read them (constrained domination,
  feasibility-aware splitting).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from search_spaces import Fixed, Param, SearchSpace

__all__ = ["quiet_optuna", "suggest", "suggest_design", "set_constraints", "constraints_arg"]


@contextmanager
def quiet_optuna(level: int) -> Iterator[None]:
    """Raise the ``optuna`` logger's threshold for a block; Optuna's global setting is untouched."""
    logger = logging.getLogger("optuna")
    before = logger.level
    logger.setLevel(max(before, level))
    try:
        yield
    finally:
        logger.setLevel(before)


def suggest(trial: Any, p: Param, dist: Any | None = None) -> Any:
    """Suggest ``p`` on ``trial`` through its Optuna distribution (``p.to_optuna()``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = p.to_optuna() if dist is None else dist
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(p.name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(p.name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(p.name, list(dist.choices))
    raise TypeError(f"param {p.name!r}: unsupported Optuna distribution {dist!r}")


def suggest_design(
    trial: Any,
    space: SearchSpace,
    distributions: Mapping[str, Any] | None = None,
    *,
    skip: Iterable[str] = (),
    suggest_fixed: bool = False,
) -> dict[str, Any]:
    """One design, define-by-run: only the params active given the earlier choices.

    ``Fixed`` params take their value without a suggestion unless ``suggest_fixed``
    (Tune's ``OptunaSearch`` then carries them in the trial's config).
    """
    skip = set(skip)
    design: dict[str, Any] = {}
    for p in space.params:
        if p.name in skip or not space.is_active(p, design):
            continue
        if isinstance(p, Fixed) and not suggest_fixed:
            design[p.name] = p.value
            continue
        design[p.name] = suggest(trial, p, (distributions or {}).get(p.name))
    return design


def set_constraints(trial: Any, violations: Sequence[float]) -> None:
    """Hand a finished trial's constraint violations to Optuna (names ``c0, c1, ...``)."""
    for i, v in enumerate(violations):
        trial.set_constraint(f"c{i}", float(v))


def constraints_arg(violations: Sequence[float] | None) -> dict[str, float] | None:
    """The ``constraints=`` argument of ``optuna.trial.create_trial`` (None: unconstrained)."""
    if violations is None or not len(violations):
        return None
    return {f"c{i}": float(v) for i, v in enumerate(violations)}

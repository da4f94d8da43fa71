"""The optimizer contract: batched ask/tell over canonical designs.

Why ask/tell rather than "run the optimizer": the study loop owns evaluation
(runners, store, resume), so an optimizer only proposes designs and learns
from results, in whatever batches and order they arrive. ``ask(n)`` may
return fewer than ``n`` designs (a generational algorithm waiting for its
generation to be told returns ``[]``); ``exhausted()`` says nothing more will
ever come (a finished grid).

Conventions shared by every backend:

* designs handed out are canonical (``space.canonicalize``); ``tell`` matches
  them back by value, once per ask (a design asked twice is told twice);
* objectives are minimized internally: ``"max"`` objectives are negated;
* ``metrics=None`` (or a non-finite objective) is a failed design;
* constraints are :class:`~search_spaces.expressions.Constraint` (violation
  ``<= 0`` feasible), evaluated on the design and metrics together, and go to
  the backend's native handling (pymoo ``G``, Optuna ``set_constraint``);
* a told design that was never asked (history on resume, designs from another
  optimizer) is still learned from (``warm_start`` is built on that).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from search_spaces import SearchSpace
from search_spaces.expressions import Constraint, ExpressionError, parse_constraint

__all__ = [
    "Optimizer",
    "OptimizerError",
    "register_optimizer",
    "design_key",
]

Design = dict[str, Any]
_DIRECTIONS = {"min": 1.0, "minimize": 1.0, "max": -1.0, "maximize": -1.0}


class OptimizerError(ValueError):
    """Unknown optimizer, bad options, objectives or constraints."""


def design_key(design: Mapping[str, Any]) -> str:
    """Order-independent text key of a canonical design (matches tells to asks)."""
    return json.dumps(
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in design.items()},
        sort_keys=True,
        separators=(",", ":"),
        default=repr,
    )


class OptimizerOptions(BaseModel):
    """A backend's options (the study file's ``optimizer:`` keys besides ``name``), typed.

    Each backend subclasses this with its fields, defaults and bounds (pydantic), so the
    options are checked once, when the optimizer is made (``dse run`` does it before any
    store exists): unknown keys, wrong types (``true`` for an integer) and out-of-range
    values are one message naming the option and what is allowed.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _options_error(name: str, kind: type[OptimizerOptions], exc: ValidationError) -> str:
    allowed = ", ".join(kind.model_fields) or "none"
    unknown = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
    if unknown:
        return f"optimizer {name!r}: unknown option(s) {', '.join(unknown)}; allowed: {allowed}"
    parts = []
    for e in exc.errors():
        key = str(e["loc"][0]) if e["loc"] else "?"
        field = kind.model_fields.get(key)
        what = (field.description or "") if field is not None else ""
        parts.append(
            f"option {key}={e.get('input')!r} is not allowed ({e['msg']}); "
            f"allowed: {what or e['msg']}"
        )
    return f"optimizer {name!r}: " + "; ".join(parts)


class Optimizer(ABC):
    """Base of every backend; see the module docstring for the shared conventions."""

    #: registry name
    name: str = ""
    #: the backend's typed options (anything else is an error naming these)
    options_type: type[OptimizerOptions] = OptimizerOptions

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str],
        constraints: Sequence[Constraint | str] = (),
        seed: int = 0,
        **options: Any,
    ):
        if not isinstance(space, SearchSpace):
            raise OptimizerError(f"{self.name}: space must be a SearchSpace, got {space!r}")
        if not isinstance(objectives, Mapping) or not objectives:
            raise OptimizerError(
                f"{self.name}: objectives must be a non-empty mapping metric -> 'min'|'max', "
                f"got {objectives!r}"
            )
        for metric, direction in objectives.items():
            if direction not in _DIRECTIONS:
                raise OptimizerError(
                    f"{self.name}: objective {metric!r} has direction {direction!r}; "
                    "allowed: min, max"
                )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise OptimizerError(f"{self.name}: seed={seed!r} must be an integer")
        try:
            #: the validated options, attributes with their defaults filled in
            self.opts = self.options_type(**options)
        except ValidationError as exc:
            raise OptimizerError(_options_error(self.name, self.options_type, exc)) from None
        self.space = space
        self.objectives = {str(k): str(v) for k, v in objectives.items()}
        self.objective_names = list(self.objectives)
        self._signs = np.array([_DIRECTIONS[v] for v in self.objectives.values()])
        self.constraints: list[Constraint] = [
            parse_constraint(c) if isinstance(c, str) else c for c in constraints
        ]
        for c in self.constraints:
            if not isinstance(c, Constraint):
                raise OptimizerError(f"{self.name}: constraint {c!r} is not a Constraint")
        self.seed = int(seed)
        #: the options as given (only the keys the user set), for backends passing them on
        self.options = dict(options)
        self.n_told = 0
        self.n_failed = 0

    # -- contract -------------------------------------------------------------------------
    @abstractmethod
    def ask(self, n: int) -> list[Design]:
        """Up to ``n`` canonical designs (fewer, even none, while waiting for tells)."""

    @abstractmethod
    def tell(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        """Results for designs (``None`` = failed). Each asked design is told once per ask."""

    def warm_start(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        """Replay recorded history on resume (default: learn from it as told designs)."""
        self.tell(list(designs), list(metrics))

    def exhausted(self) -> bool:
        """True when ``ask`` will never return another design."""
        return False

    # -- helpers for backends ---------------------------------------------------------------
    @staticmethod
    def _check_n(n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise OptimizerError(f"ask(n): n={n!r} must be an integer >= 0")
        return int(n)

    @staticmethod
    def _pairs(designs: Sequence[Design], metrics: Sequence[Any]) -> Iterable[tuple[Design, Any]]:
        if len(designs) != len(metrics):
            raise OptimizerError(
                f"tell: got {len(designs)} designs but {len(metrics)} metrics; one per design"
            )
        return zip(designs, metrics, strict=True)

    def canonical(self, design: Mapping[str, Any]) -> Design:
        return self.space.canonicalize(design, strict=False)

    def objective_vector(self, metrics: Mapping[str, float] | None) -> np.ndarray | None:
        """Minimization vector (max objectives negated); None when the design failed."""
        if metrics is None:
            return None
        values = []
        for name in self.objective_names:
            if name not in metrics:
                raise OptimizerError(
                    f"objective {name!r} is missing from the metrics; got: "
                    f"{', '.join(sorted(metrics))}"
                )
            try:
                values.append(float(metrics[name]))
            except (TypeError, ValueError):
                return None
        vec = np.asarray(values) * self._signs
        return vec if np.all(np.isfinite(vec)) else None

    def violations(self, design: Mapping[str, Any], metrics: Mapping[str, float]) -> np.ndarray:
        """Constraint violations (``<= 0`` feasible), evaluated on design + metrics."""
        return constraint_violations(self.constraints, {**design, **metrics})


#: the violation recorded for a constraint that cannot be evaluated (NaN, a missing metric)
UNKNOWN_VIOLATION = 1e12


def constraint_violations(
    constraints: Sequence[Constraint], values: Mapping[str, Any]
) -> np.ndarray:
    """Violations (``<= 0`` feasible) of ``constraints`` on one design's params + metrics.

    The one rule for every optimizer backend and ``dse sweep``: a constraint that cannot be
    evaluated (NaN, or a name missing from ``values``) counts as violated by
    ``UNKNOWN_VIOLATION``, since NaN would poison the backends' comparisons.
    """
    out = np.empty(len(constraints), dtype=float)
    for i, c in enumerate(constraints):
        try:
            out[i] = float(c.violation(values))
        except (ExpressionError, TypeError, ArithmeticError):  # a metric missing, None, x/0
            out[i] = np.nan
    return np.where(np.isnan(out), UNKNOWN_VIOLATION, out)


#: name -> optimizer class, filled by ``@register_optimizer`` (the backends), read by ``registry``
REGISTERED: dict[str, Callable[..., Optimizer]] = {}


def register_optimizer(name: str) -> Callable[[type[Optimizer]], type[Optimizer]]:
    """Class decorator: make the optimizer available under ``name``."""

    def deco(cls: type[Optimizer]) -> type[Optimizer]:
        REGISTERED[name] = cls
        return cls

    return deco

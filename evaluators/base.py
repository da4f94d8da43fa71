"""The evaluator contract: a design (flat dict) in, flat float metrics out.

Why a registry of factories rather than instances: runners (serial, Ray) must
rebuild the evaluator inside worker processes from a picklable
:class:`EvaluatorSpec` (name + options), so evaluators never travel by pickle.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Design = dict[str, Any]
Metrics = dict[str, float]


class EvaluatorError(ValueError):
    """Unknown evaluator or bad evaluator options."""


def stable_hash(payload: Any, length: int = 16) -> str:
    """Hex digest of a JSON-canonical payload (sorted keys, floats by repr)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class Evaluator(ABC):
    """Turns a design into metrics. Must be pure given (design, options, seed)."""

    #: registry name, e.g. "zdt1" or "cim"
    name: str = ""
    #: bump when results for the same design would change; part of design_id
    version: str = "1"

    @abstractmethod
    def metric_names(self) -> list[str]:
        """Every metric ``evaluate`` returns (objectives/constraints are checked against it)."""

    @abstractmethod
    def evaluate(self, design: Design) -> Metrics:
        """Evaluate one design. Raise on failure; the engine records the error text."""

    def default_space(self) -> Any | None:
        """A :class:`search_spaces.SearchSpace` to use when the study file gives none."""
        return None

    def training_key(self, design: Design) -> str | None:
        """Hash of the train-stage part of ``design`` (None: nothing is trained)."""
        return None

    def parent_key(self, design: Design) -> str | None:
        """Training key of the model ``design``'s training fine-tunes from (None: from
        scratch, or nothing is trained); the engine records it as the design's lineage."""
        return None

    def check_fidelity(self, resource: str) -> None:
        """Raise :class:`EvaluatorError` if design key ``resource`` cannot serve as a
        multi-fidelity budget (the study's ``fidelity.resource``). Default: accept."""
        return None

    def check_space(self, space: Any) -> None:
        """Raise :class:`EvaluatorError` if ``space`` can propose designs this evaluator
        rejects (a key, a choice, a bound). Called before any store exists, so a bad study
        file is one message instead of a run of failed designs. Default: accept all."""
        return None

    def evaluate_batch(self, designs: list[Design]) -> list[Metrics | BaseException]:
        """Evaluate several designs; evaluators sharing work (one training) override it."""
        out: list[Metrics | BaseException] = []
        for d in designs:
            try:
                out.append(self.evaluate(d))
            except Exception as exc:  # recorded per design by the runner
                out.append(exc)
        return out


@dataclass(frozen=True)
class EvaluatorSpec:
    """Picklable recipe for an evaluator: registry name + keyword options.

    ``plugins`` are modules imported before the evaluator is built (in the driver and in
    every Ray worker), so evaluators registered by a user's own module work everywhere.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()

    def create(self) -> Evaluator:
        import_plugins(self.plugins)
        return create_evaluator(self.name, **dict(self.options))


def import_plugins(modules: tuple[str, ...] | list[str]) -> None:
    """Import user modules (by dotted name) whose import registers evaluators/optimizers."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EvaluatorError(
                f"plugin module {module!r} cannot be imported ({exc}); it must be importable "
                "on the driver and on every worker (on PYTHONPATH or pip-installed)"
            ) from None


_REGISTRY: dict[str, Callable[..., Evaluator]] = {}


def register_evaluator(name: str) -> Callable[[Callable[..., Evaluator]], Callable[..., Evaluator]]:
    """Decorator: make ``factory(**options)`` available under ``name``."""

    def deco(factory: Callable[..., Evaluator]) -> Callable[..., Evaluator]:
        _REGISTRY[name] = factory
        return factory

    return deco


#: where each built-in evaluator lives; imported only when asked for, so resolving a
#: ZDT study does not pay for importing torch (the ``cim`` evaluator's dependency)
_BUILTIN_MODULES: dict[str, str] = {
    "zdt1": "evaluators.benchmarks",
    "zdt2": "evaluators.benchmarks",
    "zdt3": "evaluators.benchmarks",
    "dtlz2": "evaluators.benchmarks",
    "noop": "evaluators.benchmarks",
    "sleep": "evaluators.benchmarks",
    "cim": "evaluators.cim",
    "busy": "evaluators.testing",
    "crash": "evaluators.testing",
    "trainkey": "evaluators.testing",
}


def available_evaluators() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN_MODULES))


def _factory(name: str) -> Callable[..., Evaluator]:
    if name not in _REGISTRY and name in _BUILTIN_MODULES:
        import importlib

        importlib.import_module(_BUILTIN_MODULES[name])
    if name not in _REGISTRY:
        raise EvaluatorError(
            f"unknown evaluator {name!r}; allowed: {', '.join(available_evaluators())}"
        )
    return _REGISTRY[name]


def evaluator_accepts(spec: EvaluatorSpec, option: str) -> bool:
    """Does the evaluator ``spec`` names take keyword ``option`` (e.g. ``cache_dir``)?"""
    import inspect

    import_plugins(spec.plugins)
    try:
        params = inspect.signature(_factory(spec.name)).parameters
    except (EvaluatorError, TypeError, ValueError):
        return False
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def create_evaluator(name: str, **options: Any) -> Evaluator:
    """Build a registered evaluator; unknown names list what is allowed."""
    import inspect

    factory = _factory(name)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    if params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        known = [
            n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = [o for o in options if o not in known]
        if unknown:
            raise EvaluatorError(
                f"evaluator {name!r} has no option {unknown[0]!r}; allowed: "
                + (", ".join(known) if known else "no options")
            )
    try:
        return factory(**options)
    except TypeError as exc:
        raise EvaluatorError(f"bad options for evaluator {name!r}: {exc}") from None

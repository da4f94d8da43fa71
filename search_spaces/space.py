"""``SearchSpace``: an ordered set of params with conditions, and its study-file form.

Why params are kept in dependency order: a ``when`` condition reads other
params, so sampling, canonicalising and Optuna's define-by-run suggestions
must visit a param only after the params its condition names. The space
sorts itself once (stable topological order) and rejects unknown names and
cycles up front, so every later walk is a single pass.

A design is *canonical* when it holds exactly the active params, with values
cast and snapped (ints as ``int``, steps on the lattice, categorical choices as
the declared objects). Equal designs then hash equal, which is what makes
``design_id`` caching and resume work.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from search_spaces.expressions import ExpressionError, parse_expression
from search_spaces.params import (
    _SCALARS,
    STAGES,
    Categorical,
    Fixed,
    Int,
    Param,
    Real,
    expand_vector,
)

__all__ = ["SearchSpace"]

_ENTRY_KEYS = ("low", "high", "log", "step", "type", "size", "choices", "value", "when", "stage")
_TYPES = ("float", "int")


class SearchSpace:
    """Ordered, validated collection of :class:`~search_spaces.params.Param`."""

    def __init__(self, params: Iterable[Param]):
        params = list(params)
        seen: set[str] = set()
        for p in params:
            if not isinstance(p, Param):
                raise ValueError(
                    f"search space entries must be Real/Int/Categorical/Fixed, got {p!r}"
                )
            if p.name in seen:
                raise ValueError(f"param {p.name!r} is declared twice")
            seen.add(p.name)
        self._params: tuple[Param, ...] = tuple(_dependency_order(params))
        self._by_name: dict[str, Param] = {p.name: p for p in self._params}

    # -- basic container behaviour ----------------------------------------------------------
    @property
    def params(self) -> tuple[Param, ...]:
        return self._params

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._params]

    @property
    def free_params(self) -> list[Param]:
        """Params an optimizer searches (everything but ``Fixed``)."""
        return [p for p in self._params if not p.is_fixed]

    @property
    def is_conditional(self) -> bool:
        return any(p.condition is not None for p in self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown param {name!r}; known: {', '.join(self.names)}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.hash())

    def __repr__(self) -> str:
        return f"SearchSpace({', '.join(self.names)})"

    # -- conditions ------------------------------------------------------------------------
    @staticmethod
    def is_active(param: Param, context: Mapping[str, Any]) -> bool:
        """Is ``param`` active given the (canonical, partial) design ``context``?

        A condition naming an absent (inactive) param is false: a param that
        depends on an inactive one is inactive too.
        """
        cond = param.condition
        if cond is None:
            return True
        if not cond.names <= context.keys():
            return False
        try:
            return bool(cond.evaluate(context))
        except (ExpressionError, TypeError):
            return False

    def active(self, design: Mapping[str, Any]) -> list[str]:
        """Names of the params active for ``design`` (in space order)."""
        return list(self.canonicalize(design, strict=False).keys())

    # -- designs ---------------------------------------------------------------------------
    def canonicalize(self, design: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """Drop inactive params, cast types, snap to steps; fill missing ``Fixed`` values.

        No range check (use :meth:`validate` for user input). Unknown names and
        missing active params raise ValueError when ``strict``.
        """
        return self._walk(design, strict=strict, check=False)

    def validate(self, design: Mapping[str, Any]) -> dict[str, Any]:
        """Check every value against its param; return the canonical design.

        Raises ValueError naming the param, the value and the allowed range or
        choices; unknown names and missing active params are errors too.
        """
        return self._walk(design, strict=True, check=True)

    def _walk(self, design: Mapping[str, Any], *, strict: bool, check: bool) -> dict[str, Any]:
        if not isinstance(design, Mapping):
            raise ValueError(f"a design must be a mapping of param name -> value, got {design!r}")
        if strict:
            unknown = [k for k in design if k not in self._by_name]
            if unknown:
                raise ValueError(
                    f"unknown param(s) {', '.join(map(repr, unknown))} in design; "
                    f"known: {', '.join(self.names)}"
                )
        out: dict[str, Any] = {}
        for p in self._params:
            if not self.is_active(p, out):
                continue
            if p.name not in design:
                if p.is_fixed:
                    out[p.name] = p.value  # type: ignore[attr-defined]
                    continue
                if strict:
                    raise ValueError(f"design lacks param {p.name!r} ({p.describe()})")
                continue
            value = design[p.name]
            out[p.name] = p.validate(value) if check else p.canonical(value)
        return out

    def sample(self, rng: np.random.Generator | int | None = None) -> dict[str, Any]:
        """One random canonical design (active params only)."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        out: dict[str, Any] = {}
        for p in self._params:
            if self.is_active(p, out):
                out[p.name] = p.sample(rng)
        return out

    def grid(self, levels_per_real: int = 5) -> Iterator[dict[str, Any]]:
        """Every canonical design of the grid, lazily and without duplicates.

        Reals get ``levels_per_real`` evenly spaced values (geometric when
        log-scaled); integers all their values when there are at most that
        many, else the same number of spaced values; categoricals every choice.
        Inactive conditional params do not multiply the grid.
        """
        if (
            isinstance(levels_per_real, bool)
            or not isinstance(levels_per_real, int)
            or levels_per_real < 1
        ):
            raise ValueError(f"grid levels_per_real={levels_per_real!r} must be an integer >= 1")
        values = {p.name: p.grid_values(levels_per_real) for p in self._params}
        params = self._params

        def rec(i: int, design: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(params):
                yield dict(design)
                return
            p = params[i]
            if not self.is_active(p, design):
                yield from rec(i + 1, design)
                return
            for v in values[p.name]:
                design[p.name] = v
                yield from rec(i + 1, design)
                del design[p.name]

        return rec(0, {})

    def grid_size(self, levels_per_real: int = 5) -> int:
        """Number of designs :meth:`grid` yields, counted without enumerating them.

        Only params that some condition reads are branched on; the rest
        multiply. Memoised on the condition-relevant part of the partial design.
        """
        values = {p.name: p.grid_values(levels_per_real) for p in self._params}
        params = self._params
        later_refs: list[frozenset[str]] = []
        acc: frozenset[str] = frozenset()
        for p in reversed(params):
            later_refs.append(acc)
            if p.condition is not None:
                acc = acc | p.condition.names
        later_refs.reverse()  # later_refs[i]: names read by conditions of params after i
        first_refs = acc
        memo: dict[tuple[int, tuple[tuple[str, Any], ...]], int] = {}

        def count(i: int, ctx: dict[str, Any]) -> int:
            if i == len(params):
                return 1
            needed = later_refs[i - 1] if i > 0 else first_refs
            key = (i, tuple(sorted((k, repr(v)) for k, v in ctx.items() if k in needed)))
            if key in memo:
                return memo[key]
            p = params[i]
            if not self.is_active(p, ctx):
                total = count(i + 1, ctx)
            elif p.name in later_refs[i]:
                total = 0
                for v in values[p.name]:
                    ctx[p.name] = v
                    total += count(i + 1, ctx)
                del ctx[p.name]
            else:
                total = len(values[p.name]) * count(i + 1, ctx)
            memo[key] = total
            return total

        return count(0, {})

    # -- stages ----------------------------------------------------------------------------
    def train_params(self) -> list[Param]:
        return [p for p in self._params if p.stage == "train"]

    def deploy_params(self) -> list[Param]:
        return [p for p in self._params if p.stage == "deploy"]

    def train_part(self, design: Mapping[str, Any]) -> dict[str, Any]:
        """The train-stage entries of ``design`` (what a training cache key is built from)."""
        names = {p.name for p in self.train_params()}
        return {k: v for k, v in design.items() if k in names}

    # -- conversions -----------------------------------------------------------------------
    def to_pymoo_vars(self) -> dict[str, Any]:
        """``pymoo.core.variable`` per free param, in the encoded space of ``Param.encode``."""
        return {p.name: p.to_pymoo() for p in self.free_params}

    def to_optuna_distributions(self) -> dict[str, Any]:
        """Optuna distribution per param (``Fixed`` as a one-choice categorical)."""
        return {p.name: p.to_optuna() for p in self._params}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The study-file ``space:`` mapping (``from_dict`` round-trips it)."""
        return {p.name: p.to_dict() for p in self._params}

    def hash(self) -> str:
        """Stable hex digest of the space definition (same across processes and runs)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], path: str = "space") -> SearchSpace:
        """Parse the study file's ``space:`` block.

        Entries: ``{low, high}`` (float; ``type: int`` for integers; ``log``,
        ``step``), ``{choices: [...]}``, ``{value: v}``; any of them with
        ``size: n`` (vector ``x_0..x_{n-1}``), ``when: "<condition>"`` and
        ``stage: train|deploy``. Shorthands: a list is a categorical, a bare
        scalar a fixed value. Errors name the key path, the value and what is
        allowed.
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError(
                f"{path}: expected a non-empty mapping of param name -> spec, got {mapping!r}"
            )
        params: list[Param] = []
        origin: dict[str, str] = {}
        for name, entry in mapping.items():
            for p in _parse_entry(name, entry, f"{path}.{name}"):
                params.append(p)
                origin[p.name] = f"{path}.{name}"
        names = set(origin)
        for p in params:
            missing = sorted(p.condition.names - names) if p.condition is not None else []
            if missing:
                raise ValueError(
                    f"{origin[p.name]}.when: {p.when!r} refers to unknown param(s) "
                    f"{', '.join(map(repr, missing))}; allowed: names of params in {path} "
                    f"({', '.join(sorted(names))})"
                )
        try:
            return cls(params)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


# -- helpers ------------------------------------------------------------------------------------


def _dependency_order(params: list[Param]) -> list[Param]:
    names = {p.name for p in params}
    for p in params:
        if p.condition is not None:
            missing = sorted(p.condition.names - names)
            if missing:
                raise ValueError(
                    f"param {p.name!r}: 'when' condition {p.when!r} refers to unknown param(s) "
                    f"{', '.join(map(repr, missing))}; known: {', '.join(sorted(names))}"
                )
    placed: set[str] = set()
    order: list[Param] = []
    remaining = list(params)
    while remaining:
        for i, p in enumerate(remaining):
            deps = p.condition.names if p.condition is not None else frozenset()
            if deps <= placed:
                order.append(p)
                placed.add(p.name)
                del remaining[i]
                break
        else:
            cycle = ", ".join(repr(p.name) for p in remaining)
            raise ValueError(f"'when' conditions form a cycle among params {cycle}")
    return order


def _number(value: Any, key_path: str, *, integer: bool = False) -> float | int:
    # PyYAML (YAML 1.1) reads `1e-3` (no dot) as a string; accept numeric strings for bounds.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{key_path}: {value!r} is not allowed; allowed: {kind}")
    return int(value) if integer else value


def _parse_entry(name: Any, entry: Any, path: str) -> list[Param]:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{path}: param names must be non-empty strings, got {name!r}")
    if isinstance(entry, (list, tuple)):
        entry = {"choices": list(entry)}
    elif isinstance(entry, _SCALARS) and not isinstance(entry, Mapping):
        entry = {"value": entry}
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{path}: {entry!r} is not allowed; allowed: a mapping with low/high, choices or value"
        )
    for key in entry:
        if key not in _ENTRY_KEYS:
            raise ValueError(
                f"{path}.{key}: unknown key {key!r}; allowed keys: {', '.join(_ENTRY_KEYS)}"
            )

    common: dict[str, Any] = {}
    if "stage" in entry:
        if entry["stage"] not in STAGES:
            raise ValueError(
                f"{path}.stage: {entry['stage']!r} is not allowed; allowed: {', '.join(STAGES)}"
            )
        common["stage"] = entry["stage"]
    if "when" in entry:
        when = entry["when"]
        if not isinstance(when, str):
            raise ValueError(f"{path}.when: {when!r} is not allowed; allowed: a condition string")
        try:
            parse_expression(when)
        except ExpressionError as exc:
            raise ValueError(f"{path}.when: {exc}") from None
        common["when"] = when
    size = entry.get("size")
    if "size" in entry and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{path}.size: {size!r} is not allowed; allowed: an integer >= 1")

    kinds = [k for k in ("choices", "value") if k in entry]
    bounded = [k for k in ("low", "high", "log", "step", "type") if k in entry]
    if len(kinds) + (1 if bounded else 0) > 1:
        given = kinds + bounded
        raise ValueError(
            f"{path}: keys {', '.join(given)} cannot be combined; give either low/high "
            "(with optional type, log, step), or choices, or value"
        )

    try:
        if "choices" in entry:
            choices = entry["choices"]
            if not isinstance(choices, (list, tuple)) or not choices:
                raise ValueError(
                    f"{path}.choices: {choices!r} is not allowed; allowed: a non-empty list"
                )
            for i, c in enumerate(choices):
                if not isinstance(c, _SCALARS):
                    raise ValueError(
                        f"{path}.choices[{i}]: {c!r} is not allowed; allowed: "
                        "str, int, float, bool or null"
                    )
            param: Param = Categorical(name, tuple(choices), **common)
        elif "value" in entry:
            value = entry["value"]
            if not isinstance(value, _SCALARS):
                raise ValueError(
                    f"{path}.value: {value!r} is not allowed; allowed: str, int, float, bool or null"
                )
            param = Fixed(name, value, **common)
        elif bounded:
            param = _parse_bounded(name, entry, path, common)
        else:
            raise ValueError(
                f"{path}: {dict(entry)!r} is not allowed; allowed: low/high (with optional "
                "type, log, step), or choices, or value"
            )
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if text.startswith(path) else f"{path}: {text}") from None
    return expand_vector(param, size) if size is not None else [param]


def _parse_bounded(name: str, entry: Mapping[str, Any], path: str, common: dict[str, Any]) -> Param:
    for key in ("low", "high"):
        if key not in entry:
            raise ValueError(f"{path}.{key}: missing; a bounded param needs both low and high")
    kind = entry.get("type", "float")
    if kind not in _TYPES:
        raise ValueError(f"{path}.type: {kind!r} is not allowed; allowed: {', '.join(_TYPES)}")
    integer = kind == "int"
    low = _number(entry["low"], f"{path}.low", integer=integer)
    high = _number(entry["high"], f"{path}.high", integer=integer)
    if low > high:
        raise ValueError(f"{path}.low: {low!r} is not allowed; allowed: low <= high ({high!r})")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{path}.log: {log!r} is not allowed; allowed: true or false")
    if log and low <= 0:
        raise ValueError(f"{path}.low: {low!r} is not allowed with log: true; allowed: low > 0")
    step = entry.get("step")
    if step is not None:
        step = _number(step, f"{path}.step", integer=integer)
        if step <= 0:
            raise ValueError(f"{path}.step: {step!r} is not allowed; allowed: a number > 0")
        if log and step != 1:
            raise ValueError(
                f"{path}.step: {step!r} is not allowed with log: true; drop step or log"
            )
    cls = Int if integer else Real
    return cls(name, low, high, log=log, step=step, **common)

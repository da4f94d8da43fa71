"""Parameter types of a search space: ``Real``, ``Int``, ``Categorical``, ``Fixed``.

Why each param knows how to talk to pymoo and Optuna itself: the optimizer
backends then never special-case a param type, and a new type needs changes in
one place only. pymoo has no log scale, so log-scaled params are *encoded*
(``encode``/``decode``) as a pymoo ``Real`` over ``[log(low), log(high)]``;
Optuna gets the native ``log=True`` distribution.

Every param has a ``stage``: ``train`` params change the trained weights,
``deploy`` params only the chip (the engine groups designs by the train-stage
part so one training serves many hardware variants). When no stage is given
it is inferred from the name: ``dnn.*`` and ``train.*`` are train stage,
everything else deploy.

A ``when`` condition (safe expression over other params, e.g.
``"train.method != 'ideal'"``) makes a param conditional: when it is false the
param is absent from the canonical design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral
from numbers import Real as _RealNumber
from typing import Any, Literal

import numpy as np

from search_spaces.expressions import Expression, parse_expression

__all__ = [
    "Param",
    "Real",
    "Int",
    "Categorical",
    "Fixed",
    "Stage",
    "STAGES",
    "infer_stage",
    "expand_vector",
]

Stage = Literal["train", "deploy"]
STAGES: tuple[str, ...] = ("train", "deploy")
_TRAIN_PREFIXES = ("dnn.", "train.")
#: scalar types a categorical choice / fixed value may have (what YAML and Optuna both carry)
_SCALARS = (str, bool, int, float, type(None))


def infer_stage(name: str) -> str:
    """``dnn.*``/``train.*`` change trained weights (train stage); the rest is deploy."""
    return "train" if name.startswith(_TRAIN_PREFIXES) else "deploy"


def _is_number(value: Any) -> bool:
    return isinstance(value, _RealNumber) and not isinstance(value, (bool, np.bool_))


def _fmt(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


@dataclass(frozen=True)
class Param:
    """Common part of every parameter: name, optional condition, stage."""

    name: str
    when: str | None = field(default=None, kw_only=True)
    stage: str | None = field(default=None, kw_only=True)
    condition: Expression | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"param name {self.name!r} must be a non-empty string without spaces")
        stage = infer_stage(self.name) if self.stage is None else self.stage
        if stage not in STAGES:
            raise ValueError(
                f"param {self.name!r}: stage {self.stage!r} is not allowed; allowed: train, deploy"
            )
        object.__setattr__(self, "stage", stage)
        if self.when is not None:
            try:
                cond = parse_expression(self.when)
            except ValueError as exc:
                raise ValueError(f"param {self.name!r}: bad 'when' condition: {exc}") from None
            if self.name in cond.names:
                raise ValueError(
                    f"param {self.name!r}: 'when' condition refers to the param itself"
                )
            object.__setattr__(self, "condition", cond)

    # -- overridden by subclasses ------------------------------------------------------------
    @property
    def is_fixed(self) -> bool:
        return False

    def describe(self) -> str:
        """Human text of the allowed values (used in every error message)."""
        raise NotImplementedError

    def canonical(self, value: Any) -> Any:
        """Cast ``value`` to the param's type and snap it (step, choice object); no range check."""
        raise NotImplementedError

    def validate(self, value: Any) -> Any:
        """Return the canonical value, or raise ValueError naming param, value and allowed values."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def grid_values(self, levels: int) -> list[Any]:
        raise NotImplementedError

    def to_pymoo(self) -> Any:
        """A ``pymoo.core.variable`` in the *encoded* space (see ``encode``/``decode``)."""
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        """Design value -> pymoo variable value."""
        return value

    def decode(self, x: Any) -> Any:
        """pymoo variable value -> canonical design value."""
        return self.canonical(x)

    def to_optuna(self) -> Any:
        """The ``optuna.distributions.BaseDistribution`` of this param."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The study-file mapping of this param (``SearchSpace.from_dict`` round-trips it)."""
        raise NotImplementedError

    # -- shared helpers ----------------------------------------------------------------------
    def _common_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.when is not None:
            out["when"] = self.when
        if self.stage != infer_stage(self.name):
            out["stage"] = self.stage
        return out

    def _error(self, value: Any, why: str = "") -> ValueError:
        extra = f" ({why})" if why else ""
        return ValueError(
            f"param {self.name!r}: value {_fmt(value)} is not allowed{extra}; allowed: {self.describe()}"
        )


def _check_bounds(name: str, low: Any, high: Any, log: bool, step: Any, integer: bool) -> None:
    kind = "an integer" if integer else "a number"
    for key, v in (("low", low), ("high", high)):
        ok = _is_number(v) and math.isfinite(float(v))
        if integer:
            ok = ok and float(v).is_integer()
        if not ok:
            raise ValueError(f"param {name!r}: {key}={_fmt(v)} must be {kind}")
    if low > high:
        raise ValueError(f"param {name!r}: low={_fmt(low)} must be <= high={_fmt(high)}")
    if not isinstance(log, (bool, np.bool_)):
        raise ValueError(f"param {name!r}: log={log!r} must be true or false")
    if log and low <= 0:
        raise ValueError(f"param {name!r}: log scale needs low > 0, got low={_fmt(low)}")
    if step is not None:
        ok = _is_number(step) and math.isfinite(float(step)) and step > 0
        if integer:
            ok = ok and float(step).is_integer()
        if not ok:
            raise ValueError(f"param {name!r}: step={_fmt(step)} must be {kind} > 0")
        if log and step != 1:
            raise ValueError(
                f"param {name!r}: log scale and step={_fmt(step)} cannot be combined "
                "(Optuna rejects it too); drop one of them"
            )


def _coerce_range(p: Param, cast: type) -> None:
    """Store a frozen range param's low/high/step as ``cast`` (YAML may give 1 for 1.0)."""
    for attr in ("low", "high", "step"):
        value = getattr(p, attr)
        if value is not None:
            object.__setattr__(p, attr, cast(value))


@dataclass(frozen=True)
class Real(Param):
    """A float in ``[low, high]``; ``log`` samples log-uniformly; ``step`` snaps to a lattice."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bounds(self.name, self.low, self.high, self.log, self.step, integer=False)
        _coerce_range(self, float)

    @property
    def effective_high(self) -> float:
        """Highest reachable value: with a step, the last lattice point <= high."""
        if self.step is None:
            return self.high
        n = math.floor((self.high - self.low) / self.step + 1e-9)
        return _tidy(self.low + n * self.step)

    def describe(self) -> str:
        text = f"a float in [{self.low!r}, {self.high!r}]"
        if self.log:
            text += " (log scale)"
        if self.step is not None:
            text += f" on steps of {self.step!r} from {self.low!r}"
        return text

    def canonical(self, value: Any) -> float:
        if not _is_number(value) or not math.isfinite(float(value)):
            raise self._error(value, "not a finite number")
        v = float(value)
        if self.step is not None:
            k = round((v - self.low) / self.step)
            v = _tidy(self.low + k * self.step)
            v = min(max(v, self.low), self.effective_high)
        return v

    def validate(self, value: Any) -> float:
        v = self.canonical(value)
        tol = 1e-12 * max(1.0, abs(self.low), abs(self.high))
        if not (self.low - tol <= float(value) <= self.high + tol):
            raise self._error(value, "out of range")
        if self.step is not None and abs(float(value) - v) > 1e-9 * max(1.0, abs(self.step)):
            raise self._error(value, "not on the step lattice")
        return min(max(v, self.low), self.high)

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return self.canonical(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return self.canonical(rng.uniform(self.low, self.effective_high))

    def grid_values(self, levels: int) -> list[float]:
        if self.low == self.high:
            return [self.low]
        if self.step is not None:
            n_lattice = round((self.effective_high - self.low) / self.step) + 1
            if n_lattice <= levels:
                return [_tidy(self.low + k * self.step) for k in range(n_lattice)]
        if self.log:
            raw = np.geomspace(self.low, self.high, levels)
        else:
            raw = np.linspace(self.low, self.effective_high, levels)
        return list(dict.fromkeys(self.canonical(float(v)) for v in raw))

    def to_pymoo(self) -> Any:
        from pymoo.core.variable import Real as PymooReal

        if self.log:
            return PymooReal(bounds=(math.log(self.low), math.log(self.high)))
        return PymooReal(bounds=(self.low, self.effective_high))

    def encode(self, value: Any) -> float:
        return math.log(float(value)) if self.log else float(value)

    def decode(self, x: Any) -> float:
        v = math.exp(float(x)) if self.log else float(x)
        return min(max(self.canonical(v), self.low), self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.effective_high, log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out | self._common_dict()


@dataclass(frozen=True)
class Int(Param):
    """An integer in ``[low, high]`` (inclusive); ``log`` samples log-uniformly; ``step`` >= 1."""

    low: int
    high: int
    log: bool = False
    step: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_bounds(self.name, self.low, self.high, self.log, self.step, integer=True)
        _coerce_range(self, int)

    @property
    def _step(self) -> int:
        return self.step or 1

    @property
    def effective_high(self) -> int:
        return self.low + ((self.high - self.low) // self._step) * self._step

    def describe(self) -> str:
        text = f"an integer in [{self.low}, {self.high}]"
        if self.log:
            text += " (log scale)"
        if self._step != 1:
            text += f" on steps of {self._step} from {self.low}"
        return text

    def canonical(self, value: Any) -> int:
        if not _is_number(value) or not math.isfinite(float(value)):
            raise self._error(value, "not a finite number")
        k = round((float(value) - self.low) / self._step)
        return min(max(self.low + k * self._step, self.low), self.effective_high)

    def validate(self, value: Any) -> int:
        if not _is_number(value) or not float(value).is_integer():
            raise self._error(value, "not an integer")
        v = int(value)
        if not self.low <= v <= self.high:
            raise self._error(value, "out of range")
        if (v - self.low) % self._step:
            raise self._error(value, "not on the step lattice")
        return v

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            return self._sample_log(rng)
        n = (self.effective_high - self.low) // self._step + 1
        return self.low + int(rng.integers(n)) * self._step

    def _sample_log(self, rng: np.random.Generator) -> int:
        # Log-uniform over the continuous range [low - 0.5, high + 0.5] then rounded, as Optuna
        # does, so every integer gets a share proportional to its log-width.
        lo, hi = math.log(self.low - 0.5), math.log(self.effective_high + 0.5)
        return self.canonical(math.exp(rng.uniform(lo, hi)))

    def grid_values(self, levels: int) -> list[int]:
        n = (self.effective_high - self.low) // self._step + 1
        if n <= levels:
            return [self.low + k * self._step for k in range(n)]
        if self.log:
            raw = np.geomspace(self.low, self.effective_high, levels)
        else:
            raw = np.linspace(self.low, self.effective_high, levels)
        return list(dict.fromkeys(self.canonical(float(v)) for v in raw))

    def to_pymoo(self) -> Any:
        from pymoo.core.variable import Integer
        from pymoo.core.variable import Real as PymooReal

        if self.log:
            # pymoo has no log integers: search log(value) as a real, round on decode.
            return PymooReal(bounds=(math.log(self.low), math.log(self.high)))
        if self._step != 1:
            # search the lattice index so crossover/mutation stay on the lattice
            return Integer(bounds=(0, (self.effective_high - self.low) // self._step))
        return Integer(bounds=(self.low, self.high))

    def encode(self, value: Any) -> Any:
        if self.log:
            return math.log(float(value))
        if self._step != 1:
            return (int(value) - self.low) // self._step
        return int(value)

    def decode(self, x: Any) -> int:
        if self.log:
            return self.canonical(math.exp(float(x)))
        if self._step != 1:
            return self.canonical(self.low + round(float(x)) * self._step)
        return self.canonical(x)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.effective_high, log=self.log, step=self._step)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high, "type": "int"}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out | self._common_dict()


def _tidy(x: float) -> float:
    # Snap away float noise from lattice arithmetic (0.1 * 3 -> 0.3) so equal designs hash equal.
    return float(f"{x:.12g}")


def _same_choice(a: Any, b: Any) -> bool:
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or (type(a) is type(b) and a == b)
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Categorical(Param):
    """One of a list of scalar choices (str, int, float, bool or None)."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        choices = self.choices
        if isinstance(choices, (str, bytes)) or not isinstance(choices, (list, tuple)):
            raise ValueError(
                f"param {self.name!r}: choices={choices!r} must be a non-empty list of scalars"
            )
        if not choices:
            raise ValueError(f"param {self.name!r}: choices must be a non-empty list of scalars")
        for c in choices:
            if not isinstance(c, _SCALARS):
                raise ValueError(
                    f"param {self.name!r}: choice {c!r} is a {type(c).__name__}; allowed: "
                    "str, int, float, bool or null"
                )
        for i, c in enumerate(choices):
            if any(_same_choice(c, d) for d in choices[:i]):
                raise ValueError(f"param {self.name!r}: choice {c!r} is listed twice")
        object.__setattr__(self, "choices", tuple(choices))

    def describe(self) -> str:
        return "one of [" + ", ".join(repr(c) for c in self.choices) + "]"

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if _same_choice(value, c):
                return i
        raise self._error(value)

    def canonical(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def validate(self, value: Any) -> Any:
        return self.canonical(value)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def grid_values(self, levels: int) -> list[Any]:
        return list(self.choices)

    def to_pymoo(self) -> Any:
        from pymoo.core.variable import Choice

        # pymoo mixes choice values in numpy object arrays; indices keep types exact.
        return Choice(options=list(range(len(self.choices))))

    def encode(self, value: Any) -> int:
        return self.index(value)

    def decode(self, x: Any) -> Any:
        return self.choices[int(x)]

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        return {"choices": list(self.choices)} | self._common_dict()


@dataclass(frozen=True)
class Fixed(Param):
    """A constant: part of every design (so it enters design ids), never searched."""

    value: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.value, _SCALARS):
            raise ValueError(
                f"param {self.name!r}: value {self.value!r} is a {type(self.value).__name__}; "
                "allowed: str, int, float, bool or null"
            )

    @property
    def is_fixed(self) -> bool:
        return True

    def describe(self) -> str:
        return f"exactly {self.value!r}"

    def canonical(self, value: Any) -> Any:
        if not _same_choice(value, self.value):
            raise self._error(value)
        return self.value

    def validate(self, value: Any) -> Any:
        return self.canonical(value)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def grid_values(self, levels: int) -> list[Any]:
        return [self.value]

    def to_pymoo(self) -> Any:
        from pymoo.core.variable import Choice

        return Choice(options=[0])

    def encode(self, value: Any) -> int:
        return 0

    def decode(self, x: Any) -> Any:
        return self.value

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution([self.value])

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value} | self._common_dict()


def expand_vector(template: Param, size: int) -> list[Param]:
    """``x`` with ``size=n`` -> scalar params ``x_0 .. x_{n-1}`` (same bounds, condition, stage)."""
    if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
        raise ValueError(f"param {template.name!r}: size={size!r} must be an integer >= 1")
    from dataclasses import replace

    return [replace(template, name=f"{template.name}_{i}") for i in range(int(size))]

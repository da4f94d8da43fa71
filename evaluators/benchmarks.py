"""Benchmark evaluators: ZDT1-3 and DTLZ2 from ``pymoo.problems``, plus ``noop`` and ``sleep``.

Why benchmarks are evaluators: the engine (optimizers, store, runners,
resume) can then be tested end to end in milliseconds, against problems whose
true Pareto front is known, so search quality is measured as a fraction of the
true front's hypervolume rather than eyeballed.

``noop`` and ``sleep`` measure the engine's own overhead and scaling: their
metrics are trivial functions of the design so the evaluation cost is zero
(``noop``) or a fixed, known wall time (``sleep``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from evaluators.base import Design, Evaluator, EvaluatorError, Metrics, register_evaluator
from search_spaces import Real, SearchSpace

__all__ = [
    "PymooBenchmark",
    "ZDT1",
    "ZDT2",
    "ZDT3",
    "DTLZ2",
    "NoopEvaluator",
    "SleepEvaluator",
]


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EvaluatorError(
            f"option {name}={value!r} is not allowed; allowed: an integer >= {minimum}"
        )
    return value


def _param_extremes(param: Any) -> list[float]:
    """The numeric values a param can take at its ends (bounds, or every choice)."""
    if hasattr(param, "choices"):
        values = list(param.choices)
    elif hasattr(param, "value"):
        values = [param.value]
    else:
        values = [param.low, getattr(param, "effective_high", param.high)]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


class PymooBenchmark(Evaluator):
    """A pymoo test problem over params ``x_0..x_{n-1}``, metrics ``f1..fm`` (all minimized).

    pymoo's ZDT and DTLZ problems take any number of variables, so without ``n_var`` the
    number of variables follows the space (a design's ``x_0..x_{n-1}`` is an n-variable
    problem; ``n_var`` then only sizes the default space). With ``n_var`` given, the space
    must have exactly those variables. :meth:`check_space` refuses, before any store
    exists, keys that are not variables, gaps, too few variables and bounds outside the
    problem's.
    """

    problem_name: str = ""
    default_n_var: int = 30
    min_n_var: int = 2

    def __init__(self, n_var: int | None = None):
        self.n_var_given = n_var is not None
        self.n_var = _positive_int(
            "n_var", self.default_n_var if n_var is None else n_var, self.min_n_var
        )
        self._problems: dict[int, Any] = {}
        self.problem = self._problem(self.n_var)
        self.n_obj = int(self.problem.n_obj)
        self._x_names = [f"x_{i}" for i in range(self.n_var)]

    def _problem_options(self) -> dict[str, Any]:
        return {}

    def _problem(self, n_var: int) -> Any:
        """pymoo's problem with ``n_var`` variables (built once per size)."""
        if n_var not in self._problems:
            from pymoo.problems import get_problem

            self._problems[n_var] = get_problem(
                self.problem_name, n_var=n_var, **self._problem_options()
            )
        return self._problems[n_var]

    def metric_names(self) -> list[str]:
        return [f"f{j + 1}" for j in range(self.n_obj)]

    def default_space(self) -> SearchSpace:
        xl, xu = np.asarray(self.problem.xl, float), np.asarray(self.problem.xu, float)
        return SearchSpace(
            Real(n, float(lo), float(hi)) for n, lo, hi in zip(self._x_names, xl, xu, strict=True)
        )

    def check_space(self, space: Any) -> None:
        """Keys are x_0..x_{n-1} (n >= the problem's minimum, = n_var when given), every
        value inside the problem's bounds."""
        names = list(space.names)
        index: dict[int, str] = {}
        for name in names:
            tail = name[2:] if name.startswith("x_") else ""
            if not tail.isdigit() or str(int(tail)) != tail:
                raise EvaluatorError(
                    f"{self.name}: space key {name!r} is not a variable of {self.name}; "
                    f"allowed: x_0, x_1, ... (e.g. x: {{low: 0.0, high: 1.0, size: {self.n_var}}})"
                )
            index[int(tail)] = name
        n = len(index)
        missing = [f"x_{i}" for i in range(n) if i not in index]
        if missing:
            raise EvaluatorError(
                f"{self.name}: the space has {n} variables but lacks {missing[0]}; "
                f"allowed: x_0..x_{n - 1} with no gaps"
            )
        if n < self.min_n_var:
            raise EvaluatorError(
                f"{self.name}: the space has {n} variable{'s' if n != 1 else ''} "
                f"({', '.join(names) or 'none'}); {self.name} needs at least {self.min_n_var} "
                f"(x_0..x_{self.min_n_var - 1})"
            )
        if self.n_var_given and n != self.n_var:
            raise EvaluatorError(
                f"{self.name}: option n_var={self.n_var} but the space has variables "
                f"x_0..x_{n - 1}; allowed: a space of x_0..x_{self.n_var - 1} "
                f"(x: {{size: {self.n_var}}}), or no n_var (the variables then follow the space)"
            )
        problem = self._problem(n)
        xl, xu = np.asarray(problem.xl, float), np.asarray(problem.xu, float)
        for i, name in sorted(index.items()):
            lo, hi = float(xl[i]), float(xu[i])
            for value in _param_extremes(space[name]):
                if not lo <= value <= hi:
                    raise EvaluatorError(
                        f"{self.name}: space {name} = {value:g} is outside the problem's "
                        f"bounds; allowed: [{lo:g}, {hi:g}]"
                    )

    def _names_for(self, design: Design) -> list[str]:
        if self.n_var_given:
            return self._x_names
        n = 0
        while f"x_{n}" in design:
            n += 1
        return self._x_names if n < self.min_n_var else [f"x_{i}" for i in range(n)]

    def _matrix(self, designs: list[Design], names: list[str]) -> np.ndarray:
        try:
            return np.array([[float(d[n]) for n in names] for d in designs], dtype=float)
        except KeyError as exc:
            raise EvaluatorError(
                f"{self.name}: design lacks {exc.args[0]!r}; it needs {names[0]}..{names[-1]}"
            ) from None

    def _metrics(self, F: np.ndarray) -> list[Metrics]:
        names = self.metric_names()
        return [{n: float(v) for n, v in zip(names, row, strict=True)} for row in F]

    def evaluate(self, design: Design) -> Metrics:
        names = self._names_for(design)
        X = self._matrix([design], names)
        return self._metrics(self._problem(len(names)).evaluate(X, return_values_of=["F"]))[0]

    def evaluate_batch(self, designs: list[Design]) -> list[Metrics | BaseException]:
        """One vectorised pymoo call per number of variables; per-design errors if it fails."""
        groups: dict[int, list[int]] = {}
        for i, d in enumerate(designs):
            groups.setdefault(len(self._names_for(d)), []).append(i)
        out: list[Metrics | BaseException] = [None] * len(designs)  # type: ignore[list-item]
        for n, members in groups.items():
            batch = [designs[i] for i in members]
            try:
                X = self._matrix(batch, self._names_for(batch[0]))
            except EvaluatorError:
                results = super().evaluate_batch(batch)
            else:
                results = self._metrics(self._problem(n).evaluate(X, return_values_of=["F"]))
            for i, r in zip(members, results, strict=True):
                out[i] = r
        return out

    def pareto_front(self, n_points: int = 2000) -> np.ndarray:
        """Dense sample of the problem's true Pareto front (pymoo's analytic front)."""
        return np.asarray(self.problem.pareto_front(n_points), dtype=float)

    def true_front_hypervolume(self, ref_point: Any, n_points: int = 2000) -> float:
        """Hypervolume of the true front w.r.t. ``ref_point`` (pymoo ``HV``).

        A dense analytic front slightly under-estimates the continuous front's
        hypervolume (by < 0.1 % at the default density), so fractions compare fairly.
        """
        from pymoo.indicators.hv import HV

        ref = np.asarray(ref_point, dtype=float)
        if ref.shape != (self.n_obj,):
            raise ValueError(f"ref_point {ref_point!r} must have {self.n_obj} entries")
        return float(HV(ref_point=ref)(self.pareto_front(n_points)))


@register_evaluator("zdt1")
class ZDT1(PymooBenchmark):
    name = "zdt1"
    problem_name = "zdt1"


@register_evaluator("zdt2")
class ZDT2(PymooBenchmark):
    name = "zdt2"
    problem_name = "zdt2"


@register_evaluator("zdt3")
class ZDT3(PymooBenchmark):
    name = "zdt3"
    problem_name = "zdt3"

    def pareto_front(self, n_points: int = 2000) -> np.ndarray:
        return np.asarray(self.problem.pareto_front(n_points=n_points), dtype=float)


@register_evaluator("dtlz2")
class DTLZ2(PymooBenchmark):
    """DTLZ2 with ``n_obj`` objectives (default 3) and ``n_var`` (default n_obj + 9, Deb et al.)."""

    name = "dtlz2"
    problem_name = "dtlz2"

    def __init__(self, n_var: int | None = None, n_obj: int = 3):
        n_obj = _positive_int("n_obj", n_obj, 2)
        n_var = n_obj + 9 if n_var is None else n_var
        if isinstance(n_var, int) and not isinstance(n_var, bool) and n_var < n_obj:
            raise EvaluatorError(
                f"option n_var={n_var!r} is not allowed; allowed: n_var >= n_obj ({n_obj})"
            )
        self.min_n_var = n_obj
        self._n_obj = n_obj
        super().__init__(n_var=n_var)

    def _problem_options(self) -> dict[str, Any]:
        return {"n_obj": self._n_obj}

    def true_front_hypervolume(self, ref_point: Any, n_points: int = 2000) -> float:
        """Exact when every ref coordinate is >= 1, else from the dense front.

        The DTLZ2 front is the unit sphere in the positive orthant (Deb, Thiele,
        Laumanns, Zitzler 2002), so it dominates prod(ref) minus the orthant's
        share of the unit ball, pi^(m/2) / Gamma(m/2 + 1) / 2^m.
        """
        ref = np.asarray(ref_point, dtype=float)
        if ref.shape == (self.n_obj,) and np.all(ref >= 1.0):
            m = self.n_obj
            ball = math.pi ** (m / 2) / math.gamma(m / 2 + 1) / 2**m
            return float(np.prod(ref) - ball)
        return super().true_front_hypervolume(ref_point, n_points)

    def pareto_front(self, n_points: int = 2000) -> np.ndarray:
        from pymoo.util.ref_dirs import get_reference_directions

        # Das-Dennis partitions giving about n_points directions on the simplex.
        m, p = self.n_obj, 1
        while math.comb(p + 1 + m - 1, m - 1) <= n_points:
            p += 1
        ref_dirs = get_reference_directions("das-dennis", m, n_partitions=p)
        return np.asarray(self.problem.pareto_front(ref_dirs), dtype=float)


def _numeric_values(design: Design) -> list[float]:
    return [
        float(v) for v in design.values() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


@register_evaluator("noop")
class NoopEvaluator(Evaluator):
    """Instant evaluator for overhead benchmarks: ``f1`` = sum, ``f2`` = sum of (1 - v)².

    The two metrics conflict on ``[0, 1]`` params, so optimizers still have a
    front to chase, but evaluating costs nothing.
    """

    name = "noop"

    def __init__(self, n_var: int = 2):
        self.n_var = _positive_int("n_var", n_var)

    def metric_names(self) -> list[str]:
        return ["f1", "f2"]

    def default_space(self) -> SearchSpace:
        return SearchSpace(Real(f"x_{i}", 0.0, 1.0) for i in range(self.n_var))

    def evaluate(self, design: Design) -> Metrics:
        values = _numeric_values(design)
        return {"f1": float(sum(values)), "f2": float(sum((1.0 - v) ** 2 for v in values))}


@register_evaluator("sleep")
class SleepEvaluator(NoopEvaluator):
    """``noop`` metrics after sleeping ``seconds`` (a known cost for scaling measurements)."""

    name = "sleep"

    def __init__(self, seconds: float = 0.1, n_var: int = 2):
        super().__init__(n_var=n_var)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise EvaluatorError(
                f"option seconds={seconds!r} is not allowed; allowed: a number >= 0"
            )
        self.seconds = float(seconds)

    def evaluate(self, design: Design) -> Metrics:
        time.sleep(self.seconds)
        return super().evaluate(design)

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


class PymooBenchmark(Evaluator):
    """A pymoo test problem over params ``x_0..x_{n-1}``, metrics ``f1..fm`` (all minimized)."""

    problem_name: str = ""
    default_n_var: int = 30
    min_n_var: int = 2

    def __init__(self, n_var: int | None = None):
        from pymoo.problems import get_problem

        self.n_var = _positive_int(
            "n_var", self.default_n_var if n_var is None else n_var, self.min_n_var
        )
        self.problem = get_problem(self.problem_name, n_var=self.n_var, **self._problem_options())
        self.n_obj = int(self.problem.n_obj)
        self._x_names = [f"x_{i}" for i in range(self.n_var)]

    def _problem_options(self) -> dict[str, Any]:
        return {}

    def metric_names(self) -> list[str]:
        return [f"f{j + 1}" for j in range(self.n_obj)]

    def default_space(self) -> SearchSpace:
        xl, xu = np.asarray(self.problem.xl, float), np.asarray(self.problem.xu, float)
        return SearchSpace(
            Real(n, float(lo), float(hi)) for n, lo, hi in zip(self._x_names, xl, xu, strict=True)
        )

    def _matrix(self, designs: list[Design]) -> np.ndarray:
        try:
            return np.array([[float(d[n]) for n in self._x_names] for d in designs], dtype=float)
        except KeyError as exc:
            raise EvaluatorError(
                f"{self.name}: design lacks {exc.args[0]!r}; it needs {self._x_names[0]}.."
                f"{self._x_names[-1]}"
            ) from None

    def _metrics(self, F: np.ndarray) -> list[Metrics]:
        names = self.metric_names()
        return [{n: float(v) for n, v in zip(names, row, strict=True)} for row in F]

    def evaluate(self, design: Design) -> Metrics:
        return self._metrics(self.problem.evaluate(self._matrix([design]), return_values_of=["F"]))[
            0
        ]

    def evaluate_batch(self, designs: list[Design]) -> list[Metrics | BaseException]:
        """One vectorised pymoo call for the whole batch; per-design errors if it fails."""
        if not designs:
            return []
        try:
            X = self._matrix(designs)
        except EvaluatorError:
            return super().evaluate_batch(designs)
        return list(self._metrics(self.problem.evaluate(X, return_values_of=["F"])))

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

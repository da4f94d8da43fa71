"""Optuna backends: ``optuna-nsga2`` (NSGAIISampler), ``tpe`` (TPESampler), ``qmc`` (QMCSampler).

Why an in-memory Optuna study: Optuna's samplers keep their state in a study,
but the durable record of a cim-dse study is our own store (Optuna's RDB
storage costs ~30 ms per trial on SQLite and has no heartbeat for our
runners). So each optimizer owns a throw-away in-memory study, rebuilt from
the store's history by ``warm_start`` on resume.

Trials and constraints go through :mod:`dse.optimizers.optuna_glue` (define-by-run
over the space's active params; violations to ``trial.set_constraint``), the same
module ``dse sweep`` uses. All objectives are minimized (max negated).
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from dse.optimizers.base import (
    Design,
    Optimizer,
    OptimizerOptions,
    design_key,
    register_optimizer,
)
from dse.optimizers.optuna_glue import (
    constraints_arg,
    quiet_optuna,
    set_constraints,
    suggest_design,
)
from search_spaces import SearchSpace
from search_spaces.expressions import Constraint

__all__ = ["OptunaOptimizer", "OptunaNSGA2", "OptunaTPE", "OptunaQMC"]


class OptunaOptimizer(Optimizer):
    """Ask/tell over an in-memory Optuna study with the backend's sampler."""

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str],
        constraints: Sequence[Constraint | str] = (),
        seed: int = 0,
        **options: Any,
    ):
        super().__init__(space, objectives, constraints, seed, **options)
        import optuna

        self._optuna = optuna
        with warnings.catch_warnings():
            # QMCSampler and some options are marked experimental; that is noise for users here.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.sampler = self._make_sampler()
        # create_study logs an INFO line per study; quiet it here only
        with quiet_optuna(logging.WARNING):
            self.study = optuna.create_study(
                directions=["minimize"] * len(self.objective_names), sampler=self.sampler
            )
        self._pending: dict[str, deque[Any]] = {}
        self._distributions = {p.name: p.to_optuna() for p in space.free_params}

    def _make_sampler(self) -> Any:
        raise NotImplementedError

    # -- ask/tell --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Design]:
        n = self._check_n(n)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            for _ in range(n):
                trial = self.study.ask()
                design = suggest_design(trial, self.space, self._distributions)
                d = self.space.canonicalize(design, strict=False)
                self._pending.setdefault(design_key(d), deque()).append(trial)
                out.append(d)
        return out

    def tell(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        from optuna.trial import TrialState

        for design, m in self._pairs(designs, metrics):
            d = self.canonical(design)
            values = self.objective_vector(m)
            violations = None if values is None else self.violations(d, m or {})
            self.n_told += 1
            self.n_failed += values is None
            slots = self._pending.get(design_key(d))
            if not slots:
                self._add_external(d, values, violations)
                continue
            trial = slots.popleft()
            if values is None:
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            set_constraints(trial, violations)
            self.study.tell(trial, values.tolist())

    def _add_external(
        self, design: Design, values: np.ndarray | None, violations: np.ndarray | None, **attrs: Any
    ) -> None:
        """Record a design Optuna never asked for (history, other optimizers) as a finished trial."""
        from optuna.trial import TrialState, create_trial

        params = {k: v for k, v in design.items() if k in self._distributions}
        dists = {k: self._distributions[k] for k in params}
        if values is None:
            trial = create_trial(
                state=TrialState.FAIL, params=params, distributions=dists, system_attrs=attrs
            )
        else:
            trial = create_trial(
                values=values.tolist(),
                params=params,
                distributions=dists,
                system_attrs=attrs,
                constraints=constraints_arg(violations),
            )
        self.study.add_trial(trial)


class OptunaNSGA2Options(OptimizerOptions):
    """``NSGAIISampler``'s options, with Optuna's defaults."""

    population: int = Field(50, ge=2, description="an integer >= 2 (default 50)")
    mutation_prob: float | None = Field(
        None, ge=0, le=1, description="a probability in [0, 1] (default 1/number of params)"
    )
    crossover_prob: float = Field(0.9, ge=0, le=1, description="a probability in [0, 1]")
    swapping_prob: float = Field(0.5, ge=0, le=1, description="a probability in [0, 1]")


@register_optimizer("optuna-nsga2")
class OptunaNSGA2(OptunaOptimizer):
    """Optuna's ``NSGAIISampler`` (constrained domination when constraints are set)."""

    name = "optuna-nsga2"
    options_type = OptunaNSGA2Options

    def _make_sampler(self) -> Any:
        from optuna.samplers import NSGAIISampler

        o = self.opts
        self.population = o.population
        return NSGAIISampler(
            population_size=o.population,
            mutation_prob=o.mutation_prob,
            crossover_prob=o.crossover_prob,
            swapping_prob=o.swapping_prob,
            seed=self.seed,
        )

    def warm_start(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        """History enters as finished generations so NSGA-II selects parents from it.

        Trials added without a generation tag are invisible to NSGAIISampler;
        tagging recorded trials ``i // population`` makes the next asks breed
        from the recorded elite instead of restarting from random.
        """
        key = self.sampler._get_generation_key()  # the tag NSGAIISampler reads
        for i, (design, m) in enumerate(self._pairs(designs, metrics)):
            d = self.canonical(design)
            values = self.objective_vector(m)
            violations = None if values is None else self.violations(d, m or {})
            self.n_told += 1
            self.n_failed += values is None
            self._add_external(d, values, violations, **{key: i // self.population})


class OptunaTPEOptions(OptimizerOptions):
    """``TPESampler``'s options; unset ones take the installed Optuna's defaults."""

    n_startup_trials: int | None = Field(None, ge=0, description="an integer >= 0 (default 10)")
    n_ei_candidates: int | None = Field(None, ge=1, description="an integer >= 1 (default 24)")
    multivariate: bool | None = Field(None, description="true or false (default: Optuna's)")
    group: bool | None = Field(
        None, description="true or false (default: true for multivariate on a conditional space)"
    )
    constant_liar: bool | None = Field(None, description="true or false (default: Optuna's)")


@register_optimizer("tpe")
class OptunaTPE(OptunaOptimizer):
    """Optuna's ``TPESampler`` (MOTPE for several objectives; feasibility-aware)."""

    name = "tpe"
    options_type = OptunaTPEOptions

    def _make_sampler(self) -> Any:
        from optuna.samplers import TPESampler

        kwargs = self.opts.model_dump(exclude_none=True)
        if self.space.is_conditional and kwargs.get("multivariate"):
            kwargs.setdefault("group", True)  # multivariate TPE needs groups for conditional spaces
        return TPESampler(seed=self.seed, **kwargs)


class OptunaQMCOptions(OptimizerOptions):
    qmc_type: Literal["sobol", "halton"] = Field("sobol", description="sobol, halton")
    scramble: bool = Field(True, description="true or false (default true)")


@register_optimizer("qmc")
class OptunaQMC(OptunaOptimizer):
    """Optuna's ``QMCSampler``: scrambled Sobol (or Halton) low-discrepancy points.

    Conditional params fall back to Optuna's independent (random) sampler.
    """

    name = "qmc"
    options_type = OptunaQMCOptions

    def _make_sampler(self) -> Any:
        from optuna.samplers import QMCSampler

        return QMCSampler(
            qmc_type=self.opts.qmc_type,
            scramble=self.opts.scramble,
            seed=self.seed,
            warn_independent_sampling=False,
        )

    def ask(self, n: int) -> list[Design]:
        # QMCSampler warns on every trial of a conditional space; the class docstring says
        # what happens instead (independent sampling of conditional params).
        with quiet_optuna(logging.ERROR if self.space.is_conditional else logging.NOTSET):
            return super().ask(n)

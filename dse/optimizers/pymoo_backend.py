"""pymoo backends: NSGA-II (``nsga2``) and NSGA-III (``nsga3``) through pymoo's ask/tell.

Why generations are buffered here: pymoo asks a whole generation at once and
must be told all of it before it can breed the next. ``ask(n)`` hands the
current generation out in slices and returns ``[]`` once it is all out and
results are still missing; the last tell of a generation advances pymoo.

Variables: a space of reals only (log-scaled ints included, searched as
log-reals) uses plain real-coded NSGA-II/III (SBX + polynomial mutation on one
float vector); a space with integers or categoricals uses pymoo's
mixed-variable machinery (``MixedVariableSampling``/``Mating``/duplicate
elimination, per-type crossover and mutation) under the same survival.
pymoo samples every param, conditional or not; ``canonicalize`` then drops the
inactive ones.

Failures and constraints: every problem carries one extra inequality column
that is 0 for an evaluated design and huge for a failed one, so pymoo's
feasibility-first survival ranks failed designs below everything else without
special cases, and user constraints are ordinary ``G`` columns.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
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
from search_spaces import Categorical, Int, SearchSpace
from search_spaces.expressions import Constraint

__all__ = ["PymooOptimizer", "PymooNSGA2", "PymooNSGA3"]

#: G value of the failure column for a failed design (dominates any real violation)
_FAILED_G = 1e12

#: Resume seeds the first population from what elitist survival can still hold — the
#: feasible non-dominated designs and the last few generations — never the whole
#: history: pymoo's initialization compares every seeded pair for duplicates (O(n²)
#: time and memory: 38 s and 6.9 GB to resume a 20,000-design study).
RESUME_RECENT_GENERATIONS = 4
#: at most this many front designs (× population) enter the seed survival; a larger front
#: is thinned to its most crowding-distant members (pymoo's crowding distance, O(n log n))
RESUME_MAX_FRONT_POPULATIONS = 10


class PymooOptions(OptimizerOptions):
    """Options of the pymoo genetic algorithms (``nsga2``, ``nsga3``)."""

    population: int | None = Field(
        None, ge=2, description="an integer >= 2 (default 50; nsga3: from its directions)"
    )
    n_offsprings: int | None = Field(
        None, ge=1, description="an integer >= 1 (default: the population)"
    )
    # SBX / polynomial-mutation distribution indices; pymoo's defaults for NSGA-II
    # (Deb & Agrawal 1995); NSGA-III uses eta_c 30 (Deb & Jain 2014) unless set
    crossover_eta: float | None = Field(
        None, gt=0, description="a number > 0 (default 15; nsga3: 30)"
    )
    mutation_eta: float = Field(20.0, gt=0, description="a number > 0 (default 20)")


class NSGA3Options(PymooOptions):
    partitions: int | None = Field(
        None, ge=1, description="an integer >= 1 (Das-Dennis partitions; default: fit population)"
    )


class PymooOptimizer(Optimizer):
    """Shared ask/tell bookkeeping for pymoo genetic algorithms."""

    options_type: type[OptimizerOptions] = PymooOptions
    default_population = 50

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, str],
        constraints: Sequence[Constraint | str] = (),
        seed: int = 0,
        **options: Any,
    ):
        super().__init__(space, objectives, constraints, seed, **options)
        self._free = space.free_params
        if not self._free:
            raise OptimizerError(
                f"optimizer {self.name!r}: the space has no free params (all Fixed); nothing to search"
            )
        # real-coded when every free param encodes to a pymoo Real (reals, log-ints)
        self.mixed = any(
            isinstance(p, Categorical) or (isinstance(p, Int) and not p.log) for p in self._free
        )
        self.n_obj = len(self.objective_names)
        self.n_constr = len(self.constraints) + 1  # + failure column
        self._history: list[tuple[Design, np.ndarray, np.ndarray]] = []
        self._rng_fill = np.random.default_rng(self.seed)
        self._problem = self._make_problem()
        self._algorithm: Any = None
        self._setup(sampling=None)

    # -- construction ----------------------------------------------------------------------
    def _make_problem(self) -> Any:
        from pymoo.core.problem import Problem

        if self.mixed:
            return Problem(
                vars=self.space.to_pymoo_vars(), n_obj=self.n_obj, n_ieq_constr=self.n_constr
            )
        bounds = [p.to_pymoo().bounds for p in self._free]
        return Problem(
            n_var=len(self._free),
            n_obj=self.n_obj,
            n_ieq_constr=self.n_constr,
            xl=np.array([b[0] for b in bounds], dtype=float),
            xu=np.array([b[1] for b in bounds], dtype=float),
        )

    def _operators(self) -> dict[str, Any]:
        """Crossover/mutation (real-coded) or mixed-variable sampling/mating kwargs."""
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM

        eta_c = 15.0 if self.opts.crossover_eta is None else self.opts.crossover_eta
        eta_m = self.opts.mutation_eta
        if not self.mixed:
            return {"crossover": SBX(eta=eta_c, prob=0.9), "mutation": PM(eta=eta_m)}
        from pymoo.core.mixed import (
            MixedVariableDuplicateElimination,
            MixedVariableMating,
            MixedVariableSampling,
        )
        from pymoo.core.variable import Choice, Integer
        from pymoo.core.variable import Real as PReal
        from pymoo.operators.crossover.ux import UX
        from pymoo.operators.mutation.rm import ChoiceRandomMutation
        from pymoo.operators.repair.rounding import RoundingRepair

        dedup = MixedVariableDuplicateElimination()
        mating = MixedVariableMating(
            selection=self._selection(),
            crossover={
                PReal: SBX(eta=eta_c, prob=0.9),
                Integer: SBX(eta=eta_c, prob=0.9, vtype=float, repair=RoundingRepair()),
                Choice: UX(),
            },
            mutation={
                PReal: PM(eta=eta_m),
                Integer: PM(eta=eta_m, vtype=float, repair=RoundingRepair()),
                Choice: ChoiceRandomMutation(),
            },
            eliminate_duplicates=dedup,
        )
        return {
            "sampling": MixedVariableSampling(),
            "mating": mating,
            "eliminate_duplicates": dedup,
        }

    def _selection(self) -> Any:
        raise NotImplementedError

    def _build(self, population: int, sampling: Any, operators: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _setup(self, sampling: Any) -> None:
        from pymoo.core.termination import NoTermination

        population = self.opts.population or self._default_population()
        operators = self._operators()
        if sampling is not None:
            operators["sampling"] = sampling
        if self.opts.n_offsprings is not None:
            operators["n_offsprings"] = self.opts.n_offsprings
        self.population = population
        self._algorithm = self._build(population, sampling, operators)
        self._algorithm.setup(
            self._problem, termination=NoTermination(), seed=self.seed, verbose=False
        )
        self._gen: Any = None  # Population being handed out / told
        self._gen_designs: list[Design] = []
        self._queue: deque[int] = deque()
        self._pending: dict[str, deque[int]] = {}
        self._missing = 0  # individuals of the generation still waiting for results
        self._extras: list[tuple[Design, np.ndarray, np.ndarray]] = []
        self._exhausted = False
        self._started = False

    def _default_population(self) -> int:
        return self.default_population

    # -- encoding --------------------------------------------------------------------------
    def _decode(self, x: Any) -> Design:
        design: Design = {}
        if self.mixed:
            for p in self._free:
                design[p.name] = p.decode(x[p.name])
        else:
            for p, v in zip(self._free, np.asarray(x, dtype=float), strict=True):
                design[p.name] = p.decode(v)
        return self.space.canonicalize(design, strict=False)

    def _encode(self, design: Design) -> Any:
        # Inactive conditional params are absent from canonical designs; any value in their
        # range stands in for them (they do not change the design).
        values = {}
        for p in self._free:
            if p.name in design:
                values[p.name] = p.encode(p.canonical(design[p.name]))
            else:
                values[p.name] = p.encode(p.sample(self._rng_fill))
        if self.mixed:
            return values
        return np.array([values[p.name] for p in self._free], dtype=float)

    def _fg(
        self, design: Design, metrics: Mapping[str, float] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        f = self.objective_vector(metrics)
        G = np.zeros(self.n_constr)
        if f is None:
            self.n_failed += 1
            G[-1] = _FAILED_G
            return np.zeros(self.n_obj), G
        G[:-1] = self.violations(design, metrics or {})
        return f, G

    @staticmethod
    def _set(ind: Any, F: np.ndarray, G: np.ndarray) -> None:
        ind.F = np.asarray(F, dtype=float)
        ind.G = np.asarray(G, dtype=float)
        ind.H = np.zeros(0)
        ind.CV = None  # recomputed from G on next access
        ind.evaluated.update({"F", "G", "H"})

    def _population(self, rows: list[tuple[Design, np.ndarray, np.ndarray]]) -> Any:
        from pymoo.core.population import Population

        pop = (
            Population.new(X=[self._encode(d) for d, _, _ in rows])
            if self.mixed
            else (Population.new(X=np.array([self._encode(d) for d, _, _ in rows])))
        )
        for ind, (_, F, G) in zip(pop, rows, strict=True):
            self._set(ind, F, G)
        return pop

    # -- ask/tell --------------------------------------------------------------------------
    def ask(self, n: int) -> list[Design]:
        n = self._check_n(n)
        out: list[Design] = []
        while len(out) < n:
            if self._gen is None and not self._next_generation():
                break
            if not self._queue:
                break  # whole generation handed out; wait for tells
            i = self._queue.popleft()
            d = self._gen_designs[i]
            self._pending.setdefault(design_key(d), deque()).append(i)
            out.append(dict(d))
        return out

    def _next_generation(self) -> bool:
        if self._exhausted:
            return False
        pop = self._algorithm.ask()
        self._started = True
        if pop is None or len(pop) == 0:
            # mating found no new unique offspring: the (discrete) space is used up
            self._exhausted = True
            return False
        self._gen = pop
        self._gen_designs = [self._decode(ind.X) for ind in pop]
        self._queue = deque()
        self._missing = 0
        for i, ind in enumerate(pop):
            if "F" in ind.evaluated:  # seeded from history: already known
                continue
            self._queue.append(i)
            self._missing += 1
        if self._missing == 0:
            self._finish_generation()
            return self._next_generation()
        return True

    def tell(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        for design, m in self._pairs(designs, metrics):
            d = self.canonical(design)
            F, G = self._fg(d, m)
            self.n_told += 1
            self._history.append((d, F, G))
            slots = self._pending.get(design_key(d))
            if slots:
                i = slots.popleft()
                self._set(self._gen[i], F, G)
                self._missing -= 1
            else:
                self._extras.append((d, F, G))
        if self._gen is not None and self._missing == 0 and not self._queue:
            self._finish_generation()

    def _finish_generation(self) -> None:
        from pymoo.core.population import Population

        infills = self._gen
        if self._extras:
            infills = Population.merge(infills, self._population(self._extras))
            self._extras = []
        self._gen, self._gen_designs, self._pending = None, [], {}
        self._algorithm.tell(infills=infills)

    def warm_start(self, designs: list[Design], metrics: list[Mapping[str, float] | None]) -> None:
        """Seed the first population with the recorded history (elitist survival picks from it).

        Before anything was asked, the history *is* the initial population, so
        the next ``ask`` breeds offspring from the best recorded designs instead
        of sampling afresh. Later, history joins the next survival like any
        told-but-not-asked design.
        """
        if self._started or not designs:
            self.tell(list(designs), list(metrics))
            return
        rows = []
        for design, m in self._pairs(designs, metrics):
            d = self.canonical(design)
            F, G = self._fg(d, m)
            rows.append((d, F, G))
        self.n_told += len(rows)
        self._history.extend(rows)
        self._setup(sampling=self._population(self._seed_rows(rows)))

    def _seed_rows(
        self, rows: list[tuple[Design, np.ndarray, np.ndarray]]
    ) -> list[tuple[Design, np.ndarray, np.ndarray]]:
        """The resumed first population: the algorithm's own survival over the feasible
        front (thinned by crowding when huge) and the last ``RESUME_RECENT_GENERATIONS``
        generations, one row per distinct design (the latest). Linear in the history
        apart from the bounded survival (see ``RESUME_RECENT_GENERATIONS``)."""
        n = self.population
        if len(rows) <= n:
            return rows
        from dse.query import nondominated_mask

        latest = {design_key(d): i for i, (d, _, _) in enumerate(rows)}
        unique = sorted(latest.values())
        F = np.array([rows[i][1] for i in unique], dtype=float)
        feasible = np.array([bool(np.all(rows[i][2] <= 0)) for i in unique])
        keep = set(unique[-RESUME_RECENT_GENERATIONS * n :])
        idx = np.flatnonzero(feasible)
        if idx.size:
            front = idx[nondominated_mask(F[idx])]
            cap = RESUME_MAX_FRONT_POPULATIONS * n
            if front.size > cap:
                from pymoo.operators.survival.rank_and_crowding.metrics import (
                    calc_crowding_distance,
                )

                spread = calc_crowding_distance(F[front])
                front = front[np.argsort(-spread, kind="stable")[:cap]]
            keep.update(unique[i] for i in front)
        candidates = [rows[i] for i in sorted(keep)]
        if len(candidates) <= n:
            return candidates
        pop = self._population(candidates)
        survivors = self._algorithm.survival.do(self._problem, pop, n_survive=n)
        chosen = {id(ind) for ind in survivors}
        return [row for ind, row in zip(pop, candidates, strict=True) if id(ind) in chosen]

    def exhausted(self) -> bool:
        return self._exhausted


@register_optimizer("nsga2")
class PymooNSGA2(PymooOptimizer):
    """pymoo NSGA-II (Deb et al. 2002): rank + crowding survival, binary tournaments."""

    name = "nsga2"

    def _selection(self) -> Any:
        from pymoo.algorithms.moo.nsga2 import binary_tournament
        from pymoo.operators.selection.tournament import TournamentSelection

        return TournamentSelection(func_comp=binary_tournament)

    def _build(self, population: int, sampling: Any, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        if "eliminate_duplicates" not in operators:
            operators["eliminate_duplicates"] = True
        return NSGA2(pop_size=population, **operators)


@register_optimizer("nsga3")
class PymooNSGA3(PymooOptimizer):
    """pymoo NSGA-III (Deb & Jain 2014): survival by Das-Dennis reference directions.

    ``partitions`` sets the reference directions; without it, the largest
    partition count whose direction count fits ``population`` is used.
    """

    name = "nsga3"
    options_type = NSGA3Options
    default_population = 92

    def _ref_dirs(self) -> np.ndarray:
        from pymoo.util.ref_dirs import get_reference_directions

        m = len(self.objective_names)
        if self.opts.partitions is not None:
            p = self.opts.partitions
        else:
            cap = self.opts.population or self.default_population
            p = 1
            while math.comb(p + 1 + m - 1, m - 1) <= cap:
                p += 1
        return get_reference_directions("das-dennis", m, n_partitions=p)

    def _default_population(self) -> int:
        n_dirs = len(self._ref_dirs())
        return (
            n_dirs + (n_dirs % 2) if self.opts.partitions is not None else self.default_population
        )

    def _selection(self) -> Any:
        from pymoo.algorithms.moo.nsga3 import comp_by_cv_then_random
        from pymoo.operators.selection.tournament import TournamentSelection

        return TournamentSelection(func_comp=comp_by_cv_then_random)

    def _build(self, population: int, sampling: Any, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga3 import NSGA3

        ref_dirs = self._ref_dirs()
        if population < len(ref_dirs):
            raise OptimizerError(
                f"optimizer 'nsga3': population={population} is smaller than the "
                f"{len(ref_dirs)} reference directions; allowed: population >= {len(ref_dirs)} "
                "(or fewer partitions)"
            )
        if not self.mixed:
            from pymoo.operators.crossover.sbx import SBX

            # NSGA-III's reference setting: SBX eta 30, probability 1 (Deb & Jain 2014)
            operators["crossover"] = SBX(
                eta=30.0 if self.opts.crossover_eta is None else self.opts.crossover_eta, prob=1.0
            )
        return NSGA3(ref_dirs=ref_dirs, pop_size=population, **operators)

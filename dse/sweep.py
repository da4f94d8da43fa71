"""Budgeted Ray Tune sweeps whose results land in the study's store.

Why Tune beside the study loop: Tune brings cluster-wide trial scheduling,
``time_budget_s``, per-trial resources, ``FailureConfig`` retries and
experiment checkpoints that ``Tuner.restore`` resumes — the tools cluster users
already know. What Tune lacks we add: the search is ``OptunaSearch`` over the
study's own space with one metric per objective, results are written into the
study's store (so ``dse pareto``/``dse report`` work on sweeps, and a
``dse run`` may write the same study at the same time), early stopping over
epochs is multi-objective (:mod:`dse.halving`), and budgets can be given in
evaluations, wall time or CPU/GPU-hours.

The store is written by the *driver* (a Tune callback), never by trial
processes: the database may be a SQLite file on the driver's disk that cluster
nodes cannot see, and results reach the store in the order Tune receives them.
After ``fit`` every trial's final result is reconciled into the store again
(idempotent by ``design_id``), so a driver killed between a trial's end and
its callback loses nothing on ``--resume``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.halving import HalvingConfig, MultiObjectiveHalving
from dse.layout import StudyLayout
from dse.optimizers.base import constraint_violations
from dse.optimizers.optuna_glue import set_constraints, suggest_design
from dse.runners.base import EvalResult
from evaluators.base import EvaluatorSpec

__all__ = ["run_sweep", "run_sweep_cli", "SweepOutcome", "ResourceBudgetStopper"]

log = logging.getLogger(__name__)

_DESIGN = "dse_design"  # JSON text of the evaluated (canonical) design
_ERROR = "dse_error"
_FAILED = "dse_failed"
_RESOURCE = "dse_resource"
_STARTED, _FINISHED, _WORKER = "dse_started", "dse_finished", "dse_worker"


@dataclass
class SweepOutcome:
    """What a sweep did; the store holds every design it evaluated."""

    trials: int
    done: int
    failed: int
    stopped_early: int
    elapsed_s: float
    experiment_path: str
    restored: bool
    cpu_seconds: float
    counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- trial side
def _trial(
    config: dict[str, Any],
    evaluator_spec: EvaluatorSpec,
    space_dict: dict[str, Any],
    halving: HalvingConfig | None,
) -> None:
    """One Tune trial: evaluate a design (at each halving rung) and report its metrics."""
    from ray import tune

    from dse.runners.ray_runner import _worker_evaluator
    from search_spaces import SearchSpace

    space = SearchSpace.from_dict(space_dict)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    design = space.canonicalize({k: v for k, v in config.items() if k in space}, strict=False)
    steps: list[float | None] = [None] if halving is None else list(halving.rungs)
    for step in steps:
        d = dict(design)
        if step is not None:
            d[halving.resource] = step  # type: ignore[union-attr]
        d = space.canonicalize(d)
        started = time.time()
        base = {_DESIGN: json.dumps(d, sort_keys=True), _STARTED: started, _WORKER: worker}
        if step is not None:
            base[_RESOURCE] = step
        try:
            evaluator = _worker_evaluator(evaluator_spec)
            metrics = {k: float(v) for k, v in evaluator.evaluate(d).items()}
        except Exception as exc:  # a failed design: recorded, told to Optuna as FAIL, not retried
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            tune.report(
                {
                    **base,
                    _FAILED: 1,
                    _ERROR: f"{type(exc).__name__}: {exc}\n{tb[-4000:]}",
                    _FINISHED: time.time(),
                }
            )
            return
        tune.report({**metrics, **base, _FAILED: 0, _FINISHED: time.time()})


def _searcher(resolved: Any, halving: HalvingConfig | None) -> Any:
    """``OptunaSearch`` over the study space, one metric per objective; failed designs told as FAIL."""
    from ray.tune.search.optuna import OptunaSearch

    constraints = list(resolved.constraints)

    class _DseOptunaSearch(OptunaSearch):
        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
            if result and result.get(_FAILED):
                result, error = None, True
            ot_trial = self._ot_trials.get(trial_id)
            if result and constraints and ot_trial is not None:
                # the study's constraints go to Optuna's native handling, as in `dse run`
                set_constraints(ot_trial, constraint_violations(constraints, result))
            return super().on_trial_complete(trial_id, result=result, error=error)

    space = resolved.space
    skip = {halving.resource} if halving is not None else set()
    objectives = dict(resolved.spec.objectives)
    if space.is_conditional:
        search_space: Any = _define_by_run(space, skip)
    else:
        search_space = {k: v for k, v in space.to_optuna_distributions().items() if k not in skip}
    return _DseOptunaSearch(
        space=search_space,
        metric=list(objectives),
        mode=list(objectives.values()),
        seed=resolved.spec.seed,
    )


def _define_by_run(space: Any, skip: set[str]) -> Any:
    """Suggest only the params active given earlier choices (conditional spaces); fixed
    params are suggested too, so Tune carries them in the trial's config."""
    dists = space.to_optuna_distributions()

    def define(trial: Any) -> None:
        suggest_design(trial, space, dists, skip=skip, suggest_fixed=True)

    return define


# --------------------------------------------------------------------------- driver side
def _tune_callback_base() -> type:
    from ray.tune import Callback

    return Callback


class _StoreCallback(_tune_callback_base()):  # type: ignore[misc]
    """Writes every trial result into the study's store (driver side, idempotent by design_id).

    Picklable (Tune saves callbacks with the experiment for ``Tuner.restore``):
    it keeps the store URL and the spec dict and reopens both lazily.
    """

    def __init__(self, store_url: str, spec_dict: dict[str, Any]):
        self.store_url = store_url
        self.spec_dict = spec_dict
        self._store: Any = None
        self._resolved: Any = None
        self.recorded = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"store_url": self.store_url, "spec_dict": self.spec_dict, "recorded": self.recorded}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["store_url"], state["spec_dict"])
        self.recorded = state.get("recorded", 0)

    def _open(self) -> tuple[Any, Any]:
        if self._store is None:
            from dse.spec import load_spec
            from dse.store import Store

            self._resolved = load_spec(self.spec_dict)
            self._store = Store(self.store_url)
        return self._store, self._resolved

    def record(
        self, result: dict[str, Any], error: str | None = None, design: dict | None = None
    ) -> None:
        from dse.study import design_id_for, record_lineage

        store, resolved = self._open()
        if design is None:
            text = result.get(_DESIGN)
            if text is None:
                return
            design = json.loads(text)
        did = design_id_for(resolved, design)
        key = resolved.evaluator.training_key(design)
        record_lineage(store, resolved.evaluator, [(did, design, key)])
        store.add_designs([(did, design, key)])
        names = set(resolved.evaluator.metric_names())
        failed = error is not None or bool(result.get(_FAILED))
        metrics = None if failed else {k: float(result[k]) for k in names if k in result}
        r = EvalResult(
            did,
            "failed" if failed else "done",
            metrics,
            (error or result.get(_ERROR) or "trial failed") if failed else None,
            float(result.get(_STARTED) or 0.0),
            float(result.get(_FINISHED) or time.time()),
            str(result.get(_WORKER) or "tune"),
        )
        self.recorded += store.record_results([r])

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self.record(result)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial that kept failing after ``max_failures`` (dead workers/nodes): record why."""
        _, resolved = self._open()
        design = resolved.space.canonicalize(
            {k: v for k, v in trial.config.items() if k in resolved.space}, strict=False
        )
        try:
            design = resolved.space.canonicalize(design)
        except ValueError:
            return  # halving resource not chosen by the searcher: nothing evaluable to record
        self.record({}, error=f"trial error: {_trial_error_text(trial)}"[-4000:], design=design)


def _trial_error_text(trial: Any) -> str:
    """The error Tune saved for a trial (its error file), else a generic line."""
    try:
        path = trial.error_file
        if path and Path(path).exists():
            return Path(path).read_text()
        err = trial.get_error()
        if err is not None:
            return f"{type(err).__name__}: {err}"
    except Exception:  # an unreadable error file must not stop the sweep
        pass
    return f"trial {trial.trial_id} errored (no error text saved)"


def _tune_stopper_base() -> type:
    from ray.tune import Stopper

    return Stopper


class ResourceBudgetStopper(_tune_stopper_base()):  # type: ignore[misc]
    """Stops the sweep once trials have used ``cpu_hours``/``gpu_hours`` (time × resources per trial)."""

    def __init__(
        self,
        cpu_hours: float | None,
        gpu_hours: float | None,
        cpus_per_trial: float,
        gpus_per_trial: float,
    ):
        self.cpu_budget_s = None if cpu_hours is None else cpu_hours * 3600.0
        self.gpu_budget_s = None if gpu_hours is None else gpu_hours * 3600.0
        self.cpus, self.gpus = cpus_per_trial, gpus_per_trial
        self.cpu_s = 0.0
        self.gpu_s = 0.0

    def __call__(self, trial_id: str, result: dict) -> bool:
        dt = float(result.get("time_this_iter_s") or 0.0)
        self.cpu_s += dt * self.cpus
        self.gpu_s += dt * self.gpus
        return False

    def stop_all(self) -> bool:
        over_cpu = self.cpu_budget_s is not None and self.cpu_s >= self.cpu_budget_s
        over_gpu = (
            self.gpu_budget_s is not None and self.gpus > 0 and self.gpu_s >= self.gpu_budget_s
        )
        return over_cpu or over_gpu


def run_sweep(
    spec: Any,
    store: Any,
    time_budget_s: float | None = None,
    num_samples: int | None = None,
    max_concurrent: int | None = None,
    address: str | None = None,
    resume: bool = False,
    *,
    study_dir: str | Path | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    max_failures: int | None = None,
    cpu_hours: float | None = None,
    gpu_hours: float | None = None,
    halving: HalvingConfig | None = None,
) -> SweepOutcome:
    """Run (or ``resume``) a Tune sweep of the study ``spec`` into ``store``.

    ``spec`` is a :class:`dse.spec.ResolvedStudy`; ``store`` a :class:`dse.store.Store`
    or its URL/path. Budgets default to the study's own: ``num_samples`` to
    ``budget.evaluations``, ``time_budget_s`` to ``budget.time``, ``cpu_hours``
    to ``budget.cpu_hours``; resources and retries to the study's ``runner``
    section. The Tune experiment lives in ``<study_dir>/sweep/tune``.
    """
    import ray
    from ray import tune

    from dse.runners.ray_runner import _init_ray

    resolved = spec
    s = resolved.spec
    store_url = store if isinstance(store, (str, os.PathLike)) else store.url
    store_url = str(store_url)
    num_samples = num_samples or s.budget.evaluations
    time_budget_s = time_budget_s if time_budget_s is not None else s.budget.time
    cpu_hours = cpu_hours if cpu_hours is not None else s.budget.cpu_hours
    if num_samples is None and time_budget_s is None and cpu_hours is None and gpu_hours is None:
        raise ValueError("sweep: give a budget: num_samples, time_budget_s, cpu_hours or gpu_hours")
    if num_samples is not None and num_samples < 1:
        raise ValueError(f"sweep: num_samples={num_samples!r}; allowed: a whole number >= 1")
    if max_concurrent is not None and max_concurrent < 1:
        raise ValueError(f"sweep: max_concurrent={max_concurrent!r}; allowed: a whole number >= 1")
    cpus = s.runner.num_cpus if cpus_per_trial is None else cpus_per_trial
    gpus = s.runner.num_gpus if gpus_per_trial is None else gpus_per_trial
    max_failures = s.runner.max_retries if max_failures is None else max_failures
    if halving is not None and halving.resource not in resolved.space:
        raise ValueError(
            f"sweep: halving resource {halving.resource!r} is not a param of the space; "
            f"allowed: {', '.join(resolved.space.names)}"
        )

    layout = (
        StudyLayout(Path(study_dir)) if study_dir is not None else StudyLayout.for_study(s.name)
    )
    experiment = layout.tune_experiment
    storage_path = experiment.parent
    storage_path.mkdir(parents=True, exist_ok=True)

    owns_ray = not ray.is_initialized()
    if owns_ray:
        _init_ray(address, None)
    t0 = time.time()
    try:
        trainable = tune.with_resources(
            tune.with_parameters(
                _trial,
                evaluator_spec=resolved.evaluator_spec,
                space_dict=resolved.space.to_dict(),
                halving=halving,
            ),
            {"cpu": cpus, "gpu": gpus},
        )
        callback = _StoreCallback(
            store_url, resolved.spec.model_dump(mode="json", exclude_none=True)
        )
        stopper = ResourceBudgetStopper(cpu_hours, gpu_hours, cpus, gpus)
        restored = bool(resume and tune.Tuner.can_restore(str(experiment)))
        if resume and not restored:
            log.warning("no restorable sweep under %s; starting a new one", experiment)
        if restored:
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
        else:
            scheduler = None
            if halving is not None:
                scheduler = MultiObjectiveHalving(
                    s.objectives, halving.rungs, halving.eta, resource_attr=_RESOURCE
                )
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=_searcher(resolved, halving),
                    scheduler=scheduler,
                    num_samples=num_samples if num_samples is not None else -1,
                    time_budget_s=time_budget_s,
                    max_concurrent_trials=max_concurrent,
                    reuse_actors=True,  # a fresh trial process costs seconds; evaluators stay loaded
                ),
                run_config=tune.RunConfig(
                    name="tune",
                    storage_path=str(storage_path),
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    callbacks=[callback],
                    stop=stopper,
                    verbose=0,
                ),
            )
        grid = tuner.fit()
        # reconcile: every trial's last result, in case the driver died before a callback ran
        trials = len(grid)
        stopped_early = 0
        for res in grid:
            metrics = res.metrics or {}
            if metrics.get(_DESIGN):
                callback.record(metrics)
            if halving is not None and metrics.get(_RESOURCE) is not None:
                stopped_early += float(metrics[_RESOURCE]) < float(halving.rungs[-1])
    finally:
        if owns_ray and ray.is_initialized():
            ray.shutdown()
    st, _ = callback._open()
    counts = {k: int(v) for k, v in st.counts().items()}
    return SweepOutcome(
        trials=trials,
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        stopped_early=int(stopped_early),
        elapsed_s=time.time() - t0,
        experiment_path=str(experiment),
        restored=restored,
        cpu_seconds=stopper.cpu_s,
        counts=counts,
    )


def run_sweep_cli(args: Any) -> int:
    """``dse sweep STUDY``: flags override the study's budget; the store is the study's."""
    from dse.spec import load_spec
    from dse.store import Store

    overrides = {"storage": args.storage} if getattr(args, "storage", None) else None
    resolved = load_spec(args.study, overrides=overrides)
    layout = StudyLayout.for_study(resolved.spec.name, args.runs_dir)
    storage = layout.storage(resolved.spec.storage)
    store = layout.open_new(storage, Store)  # nothing left behind when the store cannot open
    spec_dict = resolved.saved_spec()
    if store.load_spec() is None:
        store.save_spec(resolved.spec.name, spec_dict)
        layout.write_spec(spec_dict)
    from dse.spec import parse_duration

    sweep_spec = resolved.spec.sweep
    halving = None
    if sweep_spec is not None and sweep_spec.halving is not None:
        h = sweep_spec.halving
        halving = HalvingConfig(resource=h.resource, rungs=tuple(h.rungs), eta=h.eta)
    out = run_sweep(
        resolved,
        store,
        halving=halving,
        max_failures=sweep_spec.max_failures if sweep_spec else None,
        time_budget_s=parse_duration(args.time_budget) if args.time_budget else None,
        num_samples=args.samples,
        max_concurrent=args.max_concurrent,
        address=args.address,
        resume=args.resume,
        study_dir=layout.root,
    )
    print(
        f"sweep {resolved.spec.name}: {out.trials} trials ({'restored' if out.restored else 'new'}), "
        f"store has {out.done} done, {out.failed} failed; {out.elapsed_s:.1f}s; "
        f"experiment {out.experiment_path}"
    )
    if math.isfinite(out.cpu_seconds):
        print(f"trial CPU time: {out.cpu_seconds / 3600:.3f} CPU-hours")
    return 0

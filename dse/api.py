"""Python entry points: ``dse.run(path)``, ``dse.resume(dir)``, ``dse.load(dir).pareto(...)``.

A study lives in a *study directory* (``runs/<name>/`` by default) holding the
SQLite store ``study.db`` — or, for a server store, a ``storage.url`` file with
the SQLAlchemy URL — plus ``study.yaml`` (the validated spec) and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dse.layout import StudyLayout, locate_store
from dse.spec import ResolvedStudy, SpecError, load_spec
from dse.study import StudyLoop, StudyOutcome, check_not_started, make_runner

__all__ = ["StudyView", "run", "resume", "load", "storage_for_dir"]


def storage_for_dir(study_dir: Path) -> str:
    """The store URL/path of a study directory (``storage.url`` file or ``study.db``)."""
    return StudyLayout(Path(study_dir)).recorded_storage()


def _open_store(storage: str) -> Any:
    from dse.store import Store

    return Store(storage)


@dataclass
class StudyView:
    """Read access to a recorded study: frames, Pareto queries, hypervolume, reports."""

    store: Any
    study_dir: Path | None = None
    outcome: StudyOutcome | None = None
    _spec: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            self._spec = self.store.load_spec() or {}
        return self._spec

    @property
    def objectives(self) -> dict[str, str]:
        return dict(self.spec.get("objectives", {}))

    def frame(self, status: str | None = None) -> pd.DataFrame:
        return self.store.frame(status=status)

    def pareto(
        self,
        objectives: list[str] | dict[str, str] | None = None,
        *,
        where: str | None = None,
        constraints: list[str] | None = None,
    ) -> pd.DataFrame:
        """Pareto-optimal done designs on ``objectives`` (a subset of the study's, by default all).

        ``constraints`` default to the study's; ``where`` is a safe filter expression.
        """
        from dse.query import pareto_front

        objs = self._objectives(objectives)
        cons = self.spec.get("constraints", []) if constraints is None else constraints
        return pareto_front(self.frame(), objs, constraints=cons, where=where)

    def hypervolume(self, objectives: Any = None, ref_point: list[float] | None = None) -> Any:
        """Hypervolume of the feasible front (study constraints) with its reference point:
        ``ref_point``, else the study's ``ref_point``, else the nadir of all done designs +
        10% of their range — the number the run's stagnation stop watched."""
        from dse.query import hypervolume

        objs = self._objectives(objectives)
        stated = self.spec.get("ref_point")
        if ref_point is None and stated and set(objs) <= set(stated):
            ref_point = {k: stated[k] for k in objs}
        return hypervolume(
            self.frame(),
            objs,
            ref_point=ref_point,
            constraints=self.spec.get("constraints", []),
        )

    def knee(self, objectives: Any = None) -> pd.Series:
        from dse.query import knee_point

        objs = self._objectives(objectives)
        return knee_point(self.pareto(objs), objs)

    def report(self, out_dir: Path | str | None = None) -> Path:
        from dse.report import write_report

        out = Path(out_dir) if out_dir else StudyLayout(self.study_dir or Path(".")).report_dir
        return write_report(self.frame(), self.spec, out)

    def _objectives(self, objectives: list[str] | dict[str, str] | None) -> dict[str, str]:
        known = self.objectives
        if objectives is None:
            return known
        if isinstance(objectives, dict):
            return dict(objectives)
        unknown = [o for o in objectives if o not in known]
        if unknown:
            raise SpecError(
                f"objectives {unknown} are not study objectives; allowed: {', '.join(known)}"
            )
        return {o: known[o] for o in objectives}


def _prepare_dir(resolved: ResolvedStudy, runs_dir: Path | str) -> tuple[StudyLayout, str, Any]:
    layout = StudyLayout.for_study(resolved.spec.name, runs_dir)
    storage = layout.storage(resolved.spec.storage)
    return layout, storage, layout.open_new(storage, _open_store)


def run(
    source: str | Path | dict[str, Any],
    *,
    runs_dir: Path | str = "runs",
    overrides: dict[str, Any] | None = None,
    progress: Any = False,
    runner: Any = None,
) -> StudyView:
    """Validate a study file and run it to its budget. Refuses to overwrite a started study."""
    resolved = load_spec(source, overrides=overrides)
    layout, storage, store = _prepare_dir(resolved, runs_dir)
    check_not_started(store, f"study {resolved.spec.name!r} at {storage}")
    spec = resolved.saved_spec()
    store.save_spec(resolved.spec.name, spec)
    layout.write_spec(spec)
    return _execute(resolved, store, layout.root, progress, runner)


def resume(
    study_dir: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    progress: Any = False,
    runner: Any = None,
) -> StudyView:
    """Continue a study after a crash or ``kill -9`` (or with a larger budget via ``overrides``)."""
    study_dir = Path(study_dir)
    store = _open_store(locate_store(study_dir))
    spec = store.load_spec()
    if not spec:
        raise SpecError(f"{study_dir} holds no study spec; start it with 'dse run <study.yaml>'")
    resolved = load_spec(spec, overrides=overrides)
    if overrides:
        store.save_spec(resolved.spec.name, resolved.saved_spec())
    return _execute(resolved, store, study_dir if study_dir.is_dir() else None, progress, runner)


def _execute(
    resolved: ResolvedStudy, store: Any, study_dir: Path | None, progress: Any, runner: Any
) -> StudyView:
    own_runner = runner is None
    runner = runner or make_runner(resolved)
    try:
        outcome = StudyLoop(resolved, store, runner, progress=progress).run()
    finally:
        if own_runner:
            runner.close()
    return StudyView(store, study_dir, outcome)


def load(target: str | Path) -> StudyView:
    """Open a recorded study (directory, ``.db`` file, or SQLAlchemy URL) read-only."""
    target_path = Path(target)
    store = _open_store(locate_store(target_path))
    return StudyView(store, target_path if target_path.is_dir() else None)

"""Exports of a study store: Parquet files and Optuna storages.

Why both: Parquet (pyarrow, typed columns) is what pandas/polars/DuckDB users
load for their own analysis; an Optuna storage lets ``optuna-dashboard`` and
``optuna.load_study`` browse a study the engine ran outside Optuna.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dse.store import Store

__all__ = ["to_parquet", "to_optuna", "ExportError"]

_TEXT_META = ("design_id", "status", "error", "training_key", "worker")
_TIME_META = ("created_at", "started_at", "finished_at")


class ExportError(ValueError):
    """The store cannot be exported as asked (no spec, a study exists, ...)."""


# ---------------------------------------------------------------------- Parquet
def _nullable(s: pd.Series) -> list[Any]:
    return s.astype(object).where(s.notna(), None).tolist()


def _arrow_column(name: str, s: pd.Series) -> pa.Array:
    if name in _TIME_META:  # epoch seconds -> UTC timestamps
        us = (s.to_numpy(dtype=np.float64) * 1e6).round()
        mask = np.isnan(us)
        return pa.array(
            np.where(mask, 0, us).astype(np.int64), pa.timestamp("us", tz="UTC"), mask=mask
        )
    if name not in _TEXT_META:
        if pd.api.types.is_bool_dtype(s):
            return pa.array(_nullable(s), pa.bool_())
        if pd.api.types.is_integer_dtype(s):
            return pa.array(_nullable(s), pa.int64())
        if pd.api.types.is_numeric_dtype(s):
            return pa.array(s.to_numpy(dtype=np.float64, na_value=np.nan), pa.float64())
    # ids, status, error text, categoricals: strings, nulls kept
    return pa.array([None if v is None else str(v) for v in _nullable(s)], pa.string())


def to_parquet(store: Store, path: str | os.PathLike[str]) -> int:
    """Write every design of ``store`` to a Parquet file; returns the row count.

    Column types: ids, status, error, training key, worker and categorical
    params as string; seq, attempts, done_seq and integer params as int64;
    real params and metrics as float64; booleans as bool; created/started/
    finished as UTC timestamps (microseconds). The spec and the param/metric
    column names travel in the schema metadata (``dse.spec``, ``dse.params``,
    ``dse.metrics``).
    """
    df = store.frame()
    arrays = [_arrow_column(c, df[c]) for c in df.columns]
    meta = {
        "dse.study": store.study_name or "",
        "dse.spec": json.dumps(store.load_spec()),
        "dse.params": json.dumps(df.attrs.get("params", [])),
        "dse.metrics": json.dumps(df.attrs.get("metrics", [])),
    }
    table = pa.Table.from_arrays(arrays, names=[str(c) for c in df.columns])
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return len(df)


# ---------------------------------------------------------------------- Optuna
def _spec_objectives(spec: Mapping[str, Any]) -> dict[str, str]:
    objectives = spec.get("objectives")
    if not isinstance(objectives, Mapping) or not objectives:
        raise ExportError(
            f"the saved spec has no objectives mapping {{metric: min|max}}: {objectives!r}"
        )
    return {str(k): str(v) for k, v in objectives.items()}


def _space_distributions(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions from the saved spec's canonical space, without the evaluator.

    A store saved without a space (older versions left an evaluator's default space out)
    gives ``{}``: the caller then uses the observed values' ranges.
    """
    from search_spaces import SearchSpace

    if not spec.get("space"):
        return {}
    return SearchSpace.from_dict(spec["space"]).to_optuna_distributions()


def _observed_distribution(values: list[Any]) -> Any:
    """A distribution covering the values a param actually took."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if any(v is None or isinstance(v, (bool, str)) for v in values):
        return CategoricalDistribution(sorted(set(values), key=repr))
    if all(isinstance(v, int) for v in values):
        return IntDistribution(min(values), max(values))
    return FloatDistribution(float(min(values)), float(max(values)))


def _contains(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _distributions(spec: Mapping[str, Any], records: list[Any]) -> dict[str, Any]:
    """One distribution per param, valid for every recorded value (Optuna checks)."""
    from_space = _space_distributions(spec)
    observed: dict[str, list[Any]] = {}
    for r in records:
        for k, v in r.params.items():
            observed.setdefault(k, []).append(v)
    out: dict[str, Any] = {}
    for name, values in observed.items():
        dist = from_space.get(name)
        if dist is not None and all(_contains(dist, v) for v in values):
            out[name] = dist
            continue
        if dist is not None:
            warnings.warn(
                f"param {name!r} has recorded values outside its space distribution {dist}; "
                "exporting it with the observed range",
                stacklevel=3,
            )
        out[name] = _observed_distribution(values)
    return out


def _time(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts)


def _optuna_storage(storage_url: str | Any) -> Any:
    """Optuna's storage for a URL, checked first (scheme, driver) so that a bad URL is one
    message and an unreachable server a :class:`~dse.store.StoreUnavailable`."""
    import optuna
    import sqlalchemy as sa

    from dse.locations import check_storage, sqlalchemy_url
    from dse.store import StoreUnavailable

    if not isinstance(storage_url, str):
        return optuna.storages.get_storage(storage_url)
    if "://" not in storage_url:
        raise ExportError(
            f"Optuna storage {storage_url!r} is not a URL; allowed: sqlite:///file.db or "
            "postgresql://user@host/db"
        )
    try:
        check_storage(storage_url)
    except ValueError as exc:
        raise ExportError(f"Optuna {exc}") from None
    try:
        return optuna.storages.get_storage(sqlalchemy_url(storage_url))
    except sa.exc.OperationalError as exc:
        cause = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreUnavailable(
            f"cannot open the Optuna storage {storage_url!r} ({cause}); check that the "
            "server is up, its host, port, user and database"
        ) from None


def to_optuna(
    store: Store,
    storage_url: str | Any,
    study_name: str | None = None,
    if_exists: Literal["error", "append", "replace"] = "error",
) -> Any:
    """Copy the store's finished designs into an Optuna study; returns the ``optuna.Study``.

    Directions come from the spec's ``objectives`` (in their order, also set
    as metric names); distributions from its space via
    :meth:`search_spaces.SearchSpace.to_optuna_distributions`. Done designs
    become COMPLETE trials with the objective values, failed ones (and done
    ones missing an objective value) FAIL trials. Every trial carries
    ``user_attrs``: ``design_id``, ``training_key``, ``worker``, ``done_seq``,
    ``error`` and all metrics (dotted names kept); constraint violations (the
    spec's constraint text as key, <= 0 feasible) go through
    ``create_trial(constraints=...)`` so ``optuna-dashboard`` shows feasibility.
    Queued/running designs are not exported. ``storage_url`` is an Optuna
    storage URL (``sqlite:///optuna.db``) or an ``optuna.storages`` object. ``if_exists``: ``error`` (default),
    ``append`` (add only design_ids the study lacks) or ``replace``.
    """
    from dse.optimizers.optuna_glue import quiet_optuna

    with quiet_optuna(logging.WARNING):  # no "[I ...] A new study created" lines on stderr
        return _write_optuna(store, storage_url, study_name, if_exists)


def _write_optuna(
    store: Store,
    storage_url: str | Any,
    study_name: str | None = None,
    if_exists: Literal["error", "append", "replace"] = "error",
) -> Any:
    import optuna
    from optuna.trial import TrialState, create_trial

    from search_spaces.expressions import parse_constraint

    spec = store.load_spec()
    if spec is None:
        raise ExportError(f"store {store.url!r} has no saved spec; nothing tells the objectives")
    objectives = _spec_objectives(spec)
    constraints = [parse_constraint(c) for c in spec.get("constraints") or []]
    name = study_name or store.study_name or str(spec.get("name") or "dse")
    directions = ["minimize" if d == "min" else "maximize" for d in objectives.values()]
    if if_exists not in ("error", "append", "replace"):
        raise ExportError(f"if_exists={if_exists!r}; allowed: error, append, replace")

    storage = _optuna_storage(storage_url)
    existing = {s.study_name for s in storage.get_all_studies()}
    if name in existing:
        if if_exists == "error":
            raise ExportError(
                f"Optuna storage {storage_url!r} already has study {name!r}; allowed: another "
                "study name (dse export --study-name, Python study_name=), or add to or replace "
                "it (dse export --if-exists append|replace, Python if_exists=)"
            )
        if if_exists == "replace":
            optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(
        storage=storage, study_name=name, directions=directions, load_if_exists=True
    )
    if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
        raise ExportError(
            f"existing study {name!r} has directions {study.directions}, the spec {directions}"
        )
    with warnings.catch_warnings():  # set_metric_names is marked experimental (optuna >= 3.2)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    study.set_user_attr("dse_spec", spec)
    have = (
        {t.user_attrs.get("design_id") for t in study.get_trials(deepcopy=False)}
        if name in existing
        else set()
    )

    records = [r for r in store.history() if r.design_id not in have]
    dists = _distributions(spec, records)
    trials = []
    for r in records:
        metrics = r.metrics or {}
        attrs: dict[str, Any] = {
            "design_id": r.design_id,
            "training_key": r.training_key,
            "worker": r.worker,
            "done_seq": r.done_seq,
            "error": r.error,
        }
        attrs.update(
            {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        )
        values = [metrics.get(o) for o in objectives]
        complete = r.status == "done" and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values
        )
        if r.status == "done" and not complete:
            attrs["error"] = (
                f"objective value missing or not finite: {dict(zip(objectives, values, strict=True))}"
            )
        cons = None
        if complete and constraints:
            try:
                cons = {c.text: float(c.violation(metrics)) for c in constraints}
            except (ValueError, TypeError):
                cons = (
                    None  # a constraint names a metric this design lacks: leave feasibility unknown
                )
            if cons and any(math.isnan(v) for v in cons.values()):
                cons = None
        trials.append(
            create_trial(
                state=TrialState.COMPLETE if complete else TrialState.FAIL,
                values=[float(v) for v in values] if complete else None,
                params=dict(r.params),
                distributions={k: dists[k] for k in r.params},
                user_attrs=attrs,
                constraints=cons,
            )
        )
        t0, t1 = _time(r.started_at), _time(r.finished_at)
        trials[-1].datetime_start = t0 or t1
        trials[-1].datetime_complete = t1
    study.add_trials(trials)
    return study

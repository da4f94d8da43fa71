"""dse.export: typed Parquet and an Optuna storage that optuna.load_study reads back."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dse.export import ExportError, to_optuna, to_parquet
from dse.runners.base import EvalResult
from dse.store import Store

SPEC = {
    "name": "export_demo",
    "evaluator": "zdt1",
    "space": {
        "x": {"low": 0.0, "high": 1.0, "size": 2},
        "device": {"choices": ["reram", "pcm"]},
        "bits": {"low": 2, "high": 8, "type": "int"},
    },
    "objectives": {"f1": "min", "acc": "max"},
    "constraints": ["acc >= 0.5"],
}


@pytest.fixture
def store(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = Store(tmp_path / "study.db")
    s.save_spec(SPEC["name"], SPEC)
    rng = np.random.default_rng(0)
    rows = [
        (
            f"d{i}",
            {
                "x_0": float(rng.random()),
                "x_1": float(rng.random()),
                "device": ["reram", "pcm"][i % 2],
                "bits": int(2 + i % 7),
            },
            f"tk{i % 3}",
        )
        for i in range(24)
    ]
    s.add_designs(rows)
    s.mark_running([r[0] for r in rows[:22]], "w0")
    now = time.time()
    results = [
        EvalResult(
            r[0],
            "done",
            {"f1": r[1]["x_0"], "acc": r[1]["x_1"], "energy.adc_nj": 0.5 * r[1]["bits"]},
            started_at=now - 3,
            finished_at=now - 1,
            worker="w0",
        )
        for r in rows[:18]
    ]
    results += [EvalResult(r[0], "failed", error="diverged", worker="w0") for r in rows[18:20]]
    s.record_results(results)  # d20, d21 running; d22, d23 queued
    yield s
    s.close()


def test_parquet_types_and_round_trip(store, tmp_path):
    path = tmp_path / "out" / "designs.parquet"
    assert to_parquet(store, path) == 24
    table = pq.read_table(path)
    schema = table.schema
    assert schema.field("design_id").type == pa.string()
    assert schema.field("seq").type == pa.int64() and schema.field("done_seq").type == pa.int64()
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("finished_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("x_0").type == pa.float64() and schema.field("bits").type == pa.int64()
    assert schema.field("device").type == pa.string()
    assert schema.field("energy.adc_nj").type == pa.float64()
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert json.loads(meta["dse.spec"]) == SPEC
    assert json.loads(meta["dse.metrics"]) == ["f1", "acc", "energy.adc_nj"]
    df = table.to_pandas()
    frame = store.frame()
    assert list(df.columns) == list(frame.columns)
    np.testing.assert_allclose(df["f1"], frame["f1"])
    assert df["done_seq"].isna().sum() == 4  # running + queued designs have no completion number
    assert df["finished_at"].isna().sum() == 4
    done = frame["status"] == "done"
    got = df.loc[done, "finished_at"].map(lambda t: t.timestamp())  # UTC timestamps -> epoch s
    np.testing.assert_allclose(got.to_numpy(), frame.loc[done, "finished_at"].to_numpy(), atol=1e-5)


def test_optuna_round_trip(store, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    to_optuna(store, url)
    study = optuna.load_study(study_name="export_demo", storage=url)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["f1", "acc"]
    trials = study.get_trials()
    by_id = {t.user_attrs["design_id"]: t for t in trials}
    frame = store.frame().set_index("design_id")
    assert set(by_id) == {f"d{i}" for i in range(20)}  # done + failed, not running/queued
    for did, t in by_id.items():
        row = frame.loc[did]
        assert t.params == store.get(did).params
        if row["status"] == "done":
            assert t.state == optuna.trial.TrialState.COMPLETE
            assert t.values == [row["f1"], row["acc"]]
            assert t.user_attrs["energy.adc_nj"] == row["energy.adc_nj"]
            assert t.constraints == {"acc >= 0.5": pytest.approx(0.5 - row["acc"])}
            assert t.datetime_complete is not None and t.duration.total_seconds() == pytest.approx(
                2, abs=0.01
            )
        else:
            assert t.state == optuna.trial.TrialState.FAIL and t.user_attrs["error"] == "diverged"
    dist = trials[0].distributions
    assert dist["device"] == optuna.distributions.CategoricalDistribution(["reram", "pcm"])
    assert dist["bits"] == optuna.distributions.IntDistribution(2, 8)
    assert dist["x_0"] == optuna.distributions.FloatDistribution(0.0, 1.0)
    # Optuna's own front (feasible COMPLETE trials) equals ours
    from dse.query import pareto_front

    ours = set(pareto_front(store.frame(), SPEC["objectives"], SPEC["constraints"])["design_id"])
    assert {t.user_attrs["design_id"] for t in study.best_trials} == ours


def test_optuna_existing_study_policies(store, tmp_path):
    url = optuna.storages.InMemoryStorage()  # policies do not depend on the backend; RDB is slow
    to_optuna(store, url, study_name="s")
    with pytest.raises(ExportError, match="already has study 's'"):
        to_optuna(store, url, study_name="s")
    # append adds only designs finished since the last export
    store.record_results(
        [EvalResult("d20", "done", {"f1": 0.1, "acc": 0.9}, finished_at=time.time())]
    )
    to_optuna(store, url, study_name="s", if_exists="append")
    ids = [t.user_attrs["design_id"] for t in optuna.load_study(study_name="s", storage=url).trials]
    assert len(ids) == 21 and len(set(ids)) == 21
    to_optuna(store, url, study_name="s", if_exists="replace")
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 21


def test_optuna_values_outside_space_fall_back_to_observed_range(tmp_path):
    s = Store(tmp_path / "s.db")
    s.save_spec("odd", {**SPEC, "space": {"x": {"low": 0.0, "high": 1.0}}})
    s.add_designs([("a", {"x": 2.0}, None), ("b", {"x": 0.5}, None)])
    s.mark_running(["a", "b"], "w")
    s.record_results([EvalResult(i, "done", {"f1": 1.0, "acc": 0.9}) for i in ("a", "b")])
    url = f"sqlite:///{tmp_path / 'o.db'}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_optuna(s, url)
    assert any("outside its space distribution" in str(w.message) for w in caught)
    t = optuna.load_study(study_name="odd", storage=url).trials[0]
    assert t.distributions["x"] == optuna.distributions.FloatDistribution(0.5, 2.0)


def test_optuna_needs_a_spec(tmp_path):
    with pytest.raises(ExportError, match="no saved spec"):
        to_optuna(Store(tmp_path / "empty.db"), f"sqlite:///{tmp_path / 'o.db'}")


def test_report_and_export_read_the_saved_canonical_space_not_the_evaluator(tmp_path, monkeypatch):
    """A study file without ``space:`` saves the evaluator's default space, expanded; the
    report and the Optuna export then read it without building the evaluator."""
    import dse
    from dse.report import _params
    from evaluators import base as evaluators

    spec = {
        "name": "zdt",
        "evaluator": {"name": "zdt1", "n_var": 2},
        "objectives": {"f1": "min", "f2": "min"},
        "optimizer": {"name": "random"},
        "budget": {"evaluations": 6},
        "runner": {"kind": "serial"},
    }
    view = dse.run(spec, runs_dir=tmp_path)
    saved = view.store.load_spec()
    assert saved["space"] == {n: {"low": 0.0, "high": 1.0} for n in ("x_0", "x_1")}
    assert "space:" in (tmp_path / "zdt" / "study.yaml").read_text()

    def no_evaluator(*args, **kwargs):
        raise AssertionError("report/export built the evaluator")

    monkeypatch.setattr(evaluators.EvaluatorSpec, "create", no_evaluator)
    monkeypatch.setattr(evaluators, "create_evaluator", no_evaluator)
    study = to_optuna(view.store, optuna.storages.InMemoryStorage())
    dist = study.trials[0].distributions
    assert dist == {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in ("x_0", "x_1")}
    assert _params(view.store.frame(), saved) == (["x_0", "x_1"], [])
    monkeypatch.undo()  # a resume evaluates, so it builds the evaluator
    resumed = dse.resume(tmp_path / "zdt", overrides={"budget": {"evaluations": 8}})
    assert len(resumed.store.frame()) == 8  # a resume reads the same canonical space
    view.store.close()
    resumed.store.close()

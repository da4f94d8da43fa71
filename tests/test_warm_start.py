"""Training lineage (issue 15 item 1): warm-started trainings fine-tune their digital parent.

What must hold: a warm-started training's first step sees exactly the parent's weights;
the parent is one training however many workers fine-tune from it at once; the store
records which model each design's training fine-tuned from; the fine-tuned noise-aware
models are as accurate as the from-scratch ones (within 0.02) for less training time.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import evaluators.cim.training as training
from dse.api import run
from dse.runners.base import EvalTask
from evaluators.base import EvaluatorError, EvaluatorSpec
from evaluators.cim.evaluator import CimEvaluator
from evaluators.cim.model_cache import ModelCache
from evaluators.cim.training.lineage import FROM_SCRATCH_METHODS

TINY = {"dataset": "digits", "epochs": 4, "max_train": 200, "max_test": 60, "mc_instances": 2}
NET = {
    "dnn.model": "mlp",
    "dnn.hidden": 16,
    "train.lr": 0.02,
    "hw.device": "reram",
    "hw.adc_bits": 6,
    "hw.act_bits": 6,
    "hw.array_size": 64,
}
HWA = {**NET, "train.method": "hwa", "train.sigma": 0.05}
IDEAL = {**NET, "train.method": "ideal"}


def _record_starts(monkeypatch) -> list[tuple[str, dict[str, torch.Tensor], int]]:
    """Wrap train_model: record (method, weights at step 0, epochs) of every training."""
    calls: list[tuple[str, dict[str, torch.Tensor], int]] = []
    real = training.train_model

    def spy(model, data, config, device_model=None):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        calls.append((config.method, state, config.epochs))
        return real(model, data, config, device_model)

    monkeypatch.setattr(training, "train_model", spy)
    return calls


def test_warm_started_training_starts_from_its_parent(tmp_path, monkeypatch):
    ev = CimEvaluator(cache_dir=str(tmp_path), **TINY)
    parent = ev.parent_key(HWA)
    assert parent is not None and parent == ev.training_key(IDEAL)  # an ideal design shares it
    assert ev.training_recipe(HWA)["fine_tuned_from"] == parent
    calls = _record_starts(monkeypatch)
    metrics = ev.evaluate(HWA)
    (p_method, p_start, p_epochs), (c_method, c_start, c_epochs) = calls
    assert (p_method, p_epochs) == ("ideal", 4)  # the parent: digital, from-scratch budget
    assert (c_method, c_epochs) == ("hwa", 1)  # the child: a quarter of it, at least 1
    parent_weights = ModelCache(tmp_path / "models").load(parent).state_dict
    assert set(c_start) == set(parent_weights)
    assert all(torch.equal(c_start[k], parent_weights[k]) for k in parent_weights)
    assert not all(torch.equal(p_start[k], parent_weights[k]) for k in parent_weights)  # trained
    assert metrics["warm_started"] == 1.0 and ev.stats["parents_trained"] == 1
    log = ModelCache(tmp_path / "models").trainings()
    assert [(r["key"], r["parent"]) for r in log] == [
        (parent, None),
        (ev.training_key(HWA), parent),
    ]
    # the ideal design is the parent: nothing more is trained for it
    assert ev.evaluate(IDEAL)["warm_started"] == 0.0 and len(calls) == 2


def test_warm_start_off_trains_from_scratch_and_keeps_todays_keys(tmp_path, monkeypatch):
    cold = CimEvaluator(cache_dir=str(tmp_path), warm_start=False, **TINY)
    assert cold.parent_key(HWA) is None
    assert "fine_tuned_from" not in cold.training_recipe(HWA)
    assert cold.training_key(HWA) != CimEvaluator(cache_dir=str(tmp_path), **TINY).training_key(HWA)
    calls = _record_starts(monkeypatch)
    assert cold.evaluate(HWA)["warm_started"] == 0.0
    assert [(m, e) for m, _, e in calls] == [("hwa", 4)]


def test_which_trainings_have_a_parent(tmp_path):
    ev = CimEvaluator(cache_dir=str(tmp_path), finetune_epochs=3, **TINY)
    assert ev.parent_key(IDEAL) is None  # the digital model is the root
    for method in FROM_SCRATCH_METHODS:  # measured: fine-tuning loses accuracy (lineage.py)
        assert ev.parent_key({**NET, "train.method": method, "train.sigma": 0.05}) is None
    pruned = {**IDEAL, "dnn.group_hs": 1e-3}
    bsq = {**IDEAL, "dnn.bsq_alpha": 5e-3}
    assert ev.parent_key(pruned) == ev.parent_key(bsq) == ev.training_key(IDEAL)
    train = ev.training_recipe(bsq)["train"]
    # BSQ starts from the parent quantized to 8 bits: no digital phase, BSQ's own for 3
    assert (train["epochs"], train["bsq_epochs"], train["bsq_init_bits"]) == (0, 3, 8)
    assert ev.training_recipe(pruned)["train"]["epochs"] == 3
    with pytest.raises(EvaluatorError, match="finetune_epochs=0 must be None or an integer"):
        CimEvaluator(finetune_epochs=0)
    with pytest.raises(EvaluatorError, match="warm_start='yes'; allowed: true, false"):
        CimEvaluator(warm_start="yes")


def test_parent_trained_once_under_concurrent_ray_workers(tmp_path):
    from ray_helpers import drain

    from dse.runners.ray_runner import RayRunner

    spec = EvaluatorSpec("cim", {**TINY, "cache_dir": str(tmp_path), "epochs": 2})
    runner = RayRunner(spec, workers=2, shared_cache_dir=str(tmp_path))
    designs = [
        {**NET, "train.method": m, "train.sigma": s, "train.samples": 2}
        for m in ("hwa", "ha_sgd")
        for s in (0.05, 0.1)
    ]
    ev = spec.create()
    keys = [ev.training_key(d) for d in designs]
    assert len(set(keys)) == 4 and len({ev.parent_key(d) for d in designs}) == 1
    runner.submit(
        [EvalTask(f"d{i}", d, k) for i, (d, k) in enumerate(zip(designs, keys, strict=True))]
    )
    out = drain(runner)
    runner.close()
    assert all(r.status == "done" for r in out), [r.error for r in out]
    log = ModelCache(tmp_path / "models").trainings()
    parent = ev.parent_key(designs[0])
    assert sorted(r["key"] for r in log) == sorted([parent, *keys])  # each trained once
    assert {r["parent"] for r in log if r["key"] != parent} == {parent}
    assert all(r.metrics["warm_started"] == 1.0 for r in out)


def test_store_records_each_designs_parent(tmp_path):
    study = {
        "name": "lineage",
        "evaluator": {"name": "cim", **TINY, "cache_dir": str(tmp_path / "cache")},
        "space": {
            **{k: {"value": v} for k, v in NET.items()},
            "train.method": {"choices": ["ideal", "hwa"]},
            "train.sigma": {"value": 0.05, "when": "train.method != 'ideal'"},
        },
        "objectives": {"accuracy_mean": "max", "energy_nj": "min"},
        "optimizer": {"name": "grid"},
        "budget": {"evaluations": 2},
        "runner": {"kind": "serial"},
    }
    view = run(study, runs_dir=tmp_path / "runs")
    df = view.frame().set_index("train.method")
    assert df.loc["hwa", "parent_key"] == df.loc["ideal", "training_key"]
    assert pd.isna(df.loc["ideal", "parent_key"])  # the digital model is trained from scratch
    assert df.loc["hwa", "warm_started"] == 1.0 and df.loc["ideal", "warm_started"] == 0.0


@pytest.mark.slow
def test_warm_started_noise_aware_accuracy_within_002_of_from_scratch(tmp_path):
    """hwa and HA-SGD at σ = 5 % and 10 % on digits: fine-tuned 2 epochs from the 8-epoch digital
    parent vs 8 epochs from scratch, same chips (accuracy_mean over 8 instances)."""
    options = {**TINY, "epochs": 8, "max_train": 600, "max_test": 200, "mc_instances": 8}
    net = {**NET, "dnn.hidden": 32}
    designs = [
        {**net, "train.method": m, "train.sigma": s, "train.samples": 2}
        for m in ("hwa", "ha_sgd")
        for s in (0.05, 0.1)
    ]
    runs = {}
    for warm in (False, True):
        ev = CimEvaluator(cache_dir=str(tmp_path / str(warm)), warm_start=warm, **options)
        runs[warm] = ev.evaluate_batch(designs)
    for d, scratch, fine in zip(designs, runs[False], runs[True], strict=True):
        label = f"{d['train.method']} σ={d['train.sigma']}"
        assert fine["accuracy_mean"] >= scratch["accuracy_mean"] - 0.02, label
    assert sum(r["warm_started"] for r in runs[True]) == 4

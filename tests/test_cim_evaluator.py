"""The trained-model cache and the registered ``cim`` evaluator."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import torch

from evaluators.cim.layers import crossbar_layers
from evaluators.cim.model_cache import ModelCache, TrainedModel
from evaluators.cim.models import build_model


def _trained(seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    model = build_model("mlp", (1, 8, 8), 10, hidden=8)
    dict(crossbar_layers(model))["3"].weight_bits = 5
    return TrainedModel.from_model(model, {"train_time_s": 1.5, "sparsity": 0.25})


# -- model cache --------------------------------------------------------------------------
def test_cache_roundtrip_restores_weights_and_bits(tmp_path):
    cache = ModelCache(tmp_path)
    original = _trained(0)
    path = cache.save("abc123", original)
    assert path == tmp_path / "abc123.pt" and not list(tmp_path.glob("*.tmp"))
    loaded = cache.load("abc123")
    model = build_model("mlp", (1, 8, 8), 10, hidden=8)
    loaded.apply(model)
    layers = dict(crossbar_layers(model))
    assert layers["3"].weight_bits == 5 and layers["1"].weight_bits is None
    assert torch.equal(layers["1"].weight, original.state_dict["1.weight"])
    assert loaded.metrics == {"train_time_s": 1.5, "sparsity": 0.25}
    assert cache.load("missing") is None
    with pytest.raises(ValueError, match="training key"):
        cache.path("../etc/passwd")


def test_corrupt_cache_file_warns_and_retrains(tmp_path):
    cache = ModelCache(tmp_path)
    (tmp_path / "k1.pt").write_bytes(b"not a torch file")
    calls = []

    def train():
        calls.append(1)
        return _trained(1)

    with pytest.warns(RuntimeWarning, match="k1.pt is unreadable") as caught:
        trained, fresh = cache.get_or_train("k1", train)
    assert fresh and calls == [1]
    assert len(caught) == 1  # once, though the file is read before and under the lock
    again, fresh = cache.get_or_train("k1", train)
    assert not fresh and calls == [1]
    assert torch.equal(again.state_dict["1.weight"], trained.state_dict["1.weight"])


def test_cache_refuses_pickled_code(tmp_path):
    # a file carrying an arbitrary object is rejected by weights_only=True, then recomputed
    torch.save(
        {"format": 1, "state_dict": {}, "weight_bits": {}, "metrics": ModelCache},
        tmp_path / "k2.pt",
    )
    with pytest.warns(RuntimeWarning, match="unreadable") as caught:
        assert ModelCache(tmp_path).load("k2") is None
    (message,) = [str(w.message) for w in caught]
    assert "UnpicklingError" in message
    assert "Please file an issue" not in message  # torch's page of advice is cut to a line
    assert "\n" not in message


def _worker(directory: str, log: str, out: multiprocessing.Queue) -> None:
    def train():
        with open(log, "a") as fh:
            fh.write("trained\n")
        time.sleep(0.4)  # long enough that the other process arrives while we hold the lock
        return _trained(2)

    trained, fresh = ModelCache(directory).get_or_train("shared", train)
    out.put((fresh, float(trained.state_dict["1.weight"].sum())))


def test_two_processes_train_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    log = tmp_path / "log.txt"
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), str(log), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert log.read_text().count("trained") == 1
    assert sorted(fresh for fresh, _ in results) == [False, True]
    assert results[0][1] == results[1][1]  # the waiter loaded the same weights


# -- the cim evaluator ------------------------------------------------------------------------
from evaluators.base import EvaluatorError, create_evaluator  # noqa: E402
from evaluators.cim.evaluator import CimEvaluator  # noqa: E402

OPTIONS = {"max_train": 500, "max_test": 120, "mc_instances": 6, "epochs": 6}
BASE = {
    "dnn.model": "mlp",
    "dnn.hidden": 16,
    "train.method": "ideal",
    "train.lr": 0.02,
    "hw.device": "reram",
    "hw.adc_bits": 6,
    "hw.act_bits": 4,
    "hw.array_size": 64,
}


@pytest.fixture(scope="module")
def cim_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cim-cache")


def test_registered_and_options_checked(tmp_path):
    ev = create_evaluator("cim", cache_dir=str(tmp_path), **OPTIONS)
    assert isinstance(ev, CimEvaluator) and ev.name == "cim"
    assert {
        "accuracy_mean",
        "energy_nj",
        "energy.adc_nj",
        "area.cells_mm2",
        "energy.interconnect_nj",
        "latency.adc_us",
    } <= set(ev.metric_names())
    with pytest.raises(
        EvaluatorError, match="allowed: digits, mnist5k, mnist1d, mnist, fashion_mnist, cifar10"
    ):
        create_evaluator("cim", dataset="svhn")
    with pytest.raises(EvaluatorError, match="mc_instances=0 must be an integer >= 1"):
        create_evaluator("cim", mc_instances=0)
    assert "dnn.model" in ev.default_space().names


def test_training_key_follows_train_stage_only(tmp_path):
    ev = CimEvaluator(cache_dir=str(tmp_path), **OPTIONS)
    key = ev.training_key(BASE)
    for deploy in (
        {"hw.adc_bits": 3},
        {"hw.array_size": 256},
        {"hw.device": "pcm"},
        {"hw.variation_scale": 5.0},
        {"hw.weight_bits": 4},
    ):
        assert ev.training_key({**BASE, **deploy}) == key, deploy
    for train in (
        {"dnn.hidden": 32},
        {"train.lr": 0.05},
        {"dnn.group_hs": 1e-4},
        {"dnn.model": "rnn", "dnn.time_steps": 4},
    ):
        assert ev.training_key({**BASE, **train}) != key, train
    # defaults are resolved: spelling out a default does not change the key
    assert ev.training_key({**BASE, "train.seed": 0}) == key
    # evaluator options that change the weights join the key
    assert (
        CimEvaluator(cache_dir=str(tmp_path), **{**OPTIONS, "epochs": 7}).training_key(BASE) != key
    )
    assert CimEvaluator(cache_dir=str(tmp_path), **{**OPTIONS, "seed": 1}).training_key(BASE) != key
    # device noise joins the key only for methods that read it while training
    noisy = {**BASE, "train.method": "preact_noise"}
    assert ev.training_key(noisy) != ev.training_key({**noisy, "hw.device": "pcm"})
    assert ev.training_key({**noisy, "hw.variation_scale": 2.0}) != ev.training_key(noisy)
    fixed_sigma = {**noisy, "train.sigma": 0.05}
    assert ev.training_key(fixed_sigma) == ev.training_key({**fixed_sigma, "hw.device": "pcm"})
    ha = {**BASE, "train.method": "ha_sgd", "train.sigma": 0.05}
    assert ev.training_key(ha) != ev.training_key({**ha, "hw.adc_bits": 3})  # low-res forward
    with pytest.raises(EvaluatorError, match="unknown design key.*hw.adcbits.*allowed: dnn.model"):
        ev.training_key({**BASE, "hw.adcbits": 4})


def test_deploy_only_changes_never_retrain(cim_cache):
    ev = CimEvaluator(cache_dir=str(cim_cache), **OPTIONS)
    variants = [
        BASE,
        {**BASE, "hw.adc_bits": 3},
        {**BASE, "hw.device": "pcm", "hw.variation_scale": 4.0},
        {**BASE, "hw.array_size": 128, "hw.input_mode": "dac"},
    ]
    results = ev.evaluate_batch(variants)
    assert ev.stats["trained"] == 1
    for r in results:
        assert not isinstance(r, BaseException), r
        assert set(r) == set(ev.metric_names())
        assert 0.0 <= r["accuracy_p5"] <= r["accuracy_mean"] <= 1.0 and r["energy_nj"] > 0
    base, low_adc, noisy, _ = results
    assert low_adc["energy.adc_nj"] < base["energy.adc_nj"]  # the cost model sees hw.adc_bits
    assert noisy["accuracy_std"] > 0.0  # chips differ from one another
    assert base["accuracy_ideal"] == low_adc["accuracy_ideal"] > 0.8  # same trained weights
    assert base["compression"] == 32.0 / 8  # BSQ off: hw.weight_bits (default 8) everywhere
    ev.evaluate({**BASE, "hw.cell_bits": 1})  # one more hardware variant, from memory
    assert ev.stats["trained"] == 1 and ev.stats["memo"] == 1
    # a fresh evaluator (another worker) loads the weights from disk and agrees exactly
    other = CimEvaluator(cache_dir=str(cim_cache), **OPTIONS)
    assert other.evaluate(BASE) == base
    assert other.stats == {"trained": 0, "loaded": 1, "memo": 0, "parents_trained": 0}
    # seed 002's external test-set noise is deploy-only too: same weights, lower accuracy
    corrupted = CimEvaluator(
        cache_dir=str(cim_cache), test_noise="salt_pepper", test_noise_level=0.4, **OPTIONS
    )
    assert corrupted.training_key(BASE) == ev.training_key(BASE)
    assert corrupted.evaluate(BASE)["accuracy_ideal"] < base["accuracy_ideal"] - 0.2
    assert corrupted.stats["trained"] == 0


def test_batch_failures_stay_per_design(cim_cache):
    ev = CimEvaluator(cache_dir=str(cim_cache), **OPTIONS)
    good, bad, bad_model = ev.evaluate_batch(
        [BASE, {**BASE, "hw.adc_bits": 99}, {**BASE, "dnn.model": "rnn", "dnn.time_steps": 7}]
    )
    assert isinstance(good, dict)
    assert isinstance(bad, ValueError) and "hw.adc_bits" in str(bad)
    assert isinstance(bad_model, ValueError) and "valid values: 1, 2, 4, 8, 16, 32, 64" in str(
        bad_model
    )
    with pytest.raises(ValueError, match="hw.adc_bits"):
        ev.evaluate({**BASE, "hw.adc_bits": 99})

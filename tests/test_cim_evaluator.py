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

    with pytest.warns(RuntimeWarning, match="k1.pt is unreadable"):
        trained, fresh = cache.get_or_train("k1", train)
    assert fresh and calls == [1]
    again, fresh = cache.get_or_train("k1", train)
    assert not fresh and calls == [1]
    assert torch.equal(again.state_dict["1.weight"], trained.state_dict["1.weight"])


def test_cache_refuses_pickled_code(tmp_path):
    # a file carrying an arbitrary object is rejected by weights_only=True, then recomputed
    torch.save(
        {"format": 1, "state_dict": {}, "weight_bits": {}, "metrics": ModelCache},
        tmp_path / "k2.pt",
    )
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert ModelCache(tmp_path).load("k2") is None


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

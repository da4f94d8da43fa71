"""Training methods: each trains, and each differs from ideal training as its seed intends."""

from __future__ import annotations

import pytest
import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.models import build_model
from evaluators.cim.training import TrainConfig, TrainConfigError, train_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _acc(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def test_ideal_trains_and_reports_metrics(digits):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=32)
    before = _acc(model, digits.test_x, digits.test_y)
    out = train_model(model, digits, TrainConfig(epochs=4, seed=0))
    after = _acc(model, digits.test_x, digits.test_y)
    assert before < 0.3 and after > 0.9
    for key in (
        "sparsity",
        "sparsity_rows",
        "sparsity_cols",
        "avg_weight_bits",
        "compression",
        "train_time_s",
        "train_loss",
        "train_accuracy",
    ):
        assert key in out
    assert out["train_accuracy"] > 0.85 and out["train_time_s"] > 0


def test_ideal_is_seeded(digits):
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=16)
        train_model(model, digits, TrainConfig(epochs=1, seed=3))
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_config_from_design_and_errors():
    cfg = TrainConfig.from_design(
        {"train.method": "ha_sgd", "train.samples": 3, "hw.adc_bits": 4, "dnn.group_hs": 1e-3},
        {"epochs": 2},
    )
    assert (cfg.method, cfg.samples, cfg.adc_bits, cfg.group_hs, cfg.epochs) == (
        "ha_sgd",
        3,
        4,
        1e-3,
        2,
    )
    # ADC bits only join the training of ha_sgd
    assert TrainConfig.from_design({"train.method": "ddhr", "hw.adc_bits": 4}).adc_bits is None
    with pytest.raises(TrainConfigError, match="train.method='bogus'.*allowed: ideal"):
        TrainConfig(method="bogus")
    with pytest.raises(TrainConfigError, match="prune_threshold"):
        TrainConfig(prune_threshold=1.5)
    with pytest.raises(TrainConfigError, match="unknown training default"):
        TrainConfig.from_design({}, {"epoch": 3})

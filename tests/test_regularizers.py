"""Group-HS / Hoyer-Square / group Lasso on crossbar rows and columns, pruning, fine-tuning."""

from __future__ import annotations

import pytest
import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.layers import CrossbarConv2d, crossbar_layers
from evaluators.cim.models import build_model
from evaluators.cim.training import TrainConfig, train_model
from evaluators.cim.training.regularizers import (
    Pruner,
    group_hs,
    group_lasso,
    hoyer_square,
    structure_metrics,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, max_train=600, max_test=200)


def test_regularizer_values():
    dense = torch.ones(4, 3)
    one_row = torch.zeros(4, 3)
    one_row[1] = 1.0
    # Group-HS = (Σ‖w_g‖)²/‖W‖²: #groups for equal groups, 1 for a single live group
    assert float(group_hs(dense)) == pytest.approx(4 + 3, rel=1e-4)
    assert float(group_hs(one_row)) == pytest.approx(1 + 3, rel=1e-4)
    # Hoyer-Square behaves like L0 and is scale invariant
    assert float(hoyer_square(dense)) == pytest.approx(12, rel=1e-4)
    assert float(hoyer_square(5 * one_row)) == pytest.approx(3, rel=1e-4)
    assert float(group_lasso(one_row)) == pytest.approx(3**0.5 + 3, rel=1e-4)


def test_conv_groups_are_crossbar_rows():
    conv = CrossbarConv2d(2, 3, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.weight[:, 1] = 1e-9  # input channel 1: rows (c_in=1, kh, kw) of the crossbar
    pr = Pruner.from_model(torch.nn.Sequential(conv), 0.01)
    pr.apply()
    m = structure_metrics(torch.nn.Sequential(conv))
    assert m["sparsity_rows"] == pytest.approx(9 / 18)
    assert m["sparsity_cols"] == 0.0


def _sparsity(data, **kw):
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, data.num_classes, hidden=32)
    out = train_model(model, data, TrainConfig(epochs=4, finetune_epochs=1, **kw))
    return out, model


@pytest.mark.slow
def test_group_hs_lambda_raises_row_and_col_sparsity(digits):
    outs = [_sparsity(digits, group_hs=lam, prune_threshold=0.1)[0] for lam in (0.0, 3e-3, 3e-2)]
    rows = [o["sparsity_rows"] for o in outs]
    cols = [o["sparsity_cols"] for o in outs]
    assert rows[0] <= rows[1] <= rows[2] and rows[2] > rows[0] + 0.1, rows
    assert cols[0] <= cols[1] <= cols[2] and cols[2] > cols[0] + 0.05, cols
    assert outs[2]["train_accuracy_clean"] > 0.5  # still a working classifier (chance 0.1)


def test_pruned_groups_stay_zero_through_finetuning(digits):
    out, model = _sparsity(digits, group_lasso=1e-3, prune_threshold=0.2)
    assert out["sparsity_rows"] > 0.05
    # every pruned row/column is still exactly zero after fine-tuning
    for _, layer in crossbar_layers(model):
        w = layer.matrix().detach()
        zero_rows = (w == 0).all(1)
        assert int(zero_rows.sum()) == int((w.abs().sum(1) == 0).sum())
    m = structure_metrics(model)
    assert m["sparsity_rows"] == pytest.approx(out["sparsity_rows"])


def test_hoyer_square_raises_elementwise_sparsity(digits):
    base, _ = _sparsity(digits, prune_threshold=0.0)
    hs, model = _sparsity(digits, hoyer=3e-3)
    # HS drives weights towards zero (auto-trimming): many tiny weights
    w = torch.cat([layer.matrix().detach().flatten() for _, layer in crossbar_layers(model)])
    small = float((w.abs() < 1e-2 * w.abs().max()).float().mean())
    torch.manual_seed(0)
    plain = build_model("mlp", digits.input_shape, digits.num_classes, hidden=32)
    train_model(plain, digits, TrainConfig(epochs=4))
    wp = torch.cat([layer.matrix().detach().flatten() for _, layer in crossbar_layers(plain)])
    small_plain = float((wp.abs() < 1e-2 * wp.abs().max()).float().mean())
    assert small > small_plain + 0.1, (small, small_plain)
    assert base["sparsity"] == 0.0


def test_deephoyer_rule_prunes_below_quarter_std():
    # Yang et al.'s released rule: |w| < 0.25·std(W) of the layer -> 0 (prun_tune_V.py)
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10, hidden=16)
    pruner = Pruner.deephoyer(model, 0.25)
    for (_, layer), (masked, m) in zip(crossbar_layers(model), pruner.masks, strict=True):
        assert masked is layer
        w = layer.weight.detach()
        assert torch.equal(m.bool(), w.abs() >= 0.25 * w.std())
    pruner.apply()
    assert all(
        float(layer.weight.detach().abs().min()) == 0.0 for _, layer in crossbar_layers(model)
    )


def test_group_hs_alone_prunes_rows_and_cols(digits):
    """dnn.group_hs with no dnn.prune_threshold: DeepHoyer's rule prunes, fine-tuning keeps
    the zeros and the accuracy; with the rule switched off nothing is pruned."""
    out, model = _sparsity(digits, group_hs=1e-2)
    assert out["sparsity_rows"] > 0.1 and out["sparsity_cols"] > 0.05, out
    assert out["train_accuracy_clean"] > 0.85, out
    off, _ = _sparsity(digits, group_hs=1e-2, hoyer_prune_sensitivity=0.0)
    assert off["sparsity_rows"] == 0.0 and off["sparsity_cols"] == 0.0
    none, _ = _sparsity(digits)  # no regularizer: no pruning at all
    assert none["sparsity"] == 0.0

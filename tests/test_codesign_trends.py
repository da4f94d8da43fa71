"""Seed 003's co-design knobs through the `cim` evaluator: Group-HS and BSQ change the chip.

Group-HS (λ) prunes crossbar rows/columns, so the *same Mapping* the simulator uses has
fewer tiles, and the cost model reads less energy and area, for a small loss of digital
accuracy. BSQ (α) lowers the learned bits per layer, so weights need fewer cell slices.
"""

from __future__ import annotations

import pytest

from evaluators.base import create_evaluator

BASE = {
    "dnn.model": "mlp",
    "dnn.hidden": 64,
    "train.method": "ideal",
    "hw.device": "reram",
    "hw.array_size": 64,
    "hw.adc_bits": 8,
    "hw.act_bits": 8,
}


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    return create_evaluator(
        "cim", dataset="digits", epochs=8, mc_instances=4, cache_dir=str(cache), max_test=200
    )


def _assert_less_silicon(sparse, dense):
    """Fewer arrays in use; the chip (a grid of whole tiles, NeuroSim's floorplan) shrinks
    only when a tile is freed, else the freed arrays show up as unused tile area."""
    assert sparse["area_mm2"] <= dense["area_mm2"] + 1e-12
    assert (
        sparse["area_mm2"] < dense["area_mm2"]
        or sparse["array_utilization"] < dense["array_utilization"]
    )


def test_group_hs_prunes_rows_and_lowers_tiles_energy_area(evaluator):
    dense = evaluator.evaluate({**BASE, "hw.weight_bits": 8, "dnn.group_hs": 0.0})
    sparse = evaluator.evaluate(
        {**BASE, "hw.weight_bits": 8, "dnn.group_hs": 1e-2, "dnn.prune_threshold": 0.05}
    )
    assert sparse["sparsity_rows"] + sparse["sparsity_cols"] > 0.1
    assert sparse["tiles"] < dense["tiles"]
    assert sparse["energy_nj"] < 0.8 * dense["energy_nj"]
    _assert_less_silicon(sparse, dense)
    assert sparse["accuracy_ideal"] > dense["accuracy_ideal"] - 0.05  # small accuracy loss


def test_group_hs_alone_lowers_tiles_energy_area(evaluator):
    # no dnn.prune_threshold: DeepHoyer's default pruning rule + fine-tuning (issue 12)
    dense = evaluator.evaluate({**BASE, "hw.weight_bits": 8, "dnn.group_hs": 0.0})
    sparse = evaluator.evaluate({**BASE, "hw.weight_bits": 8, "dnn.group_hs": 1e-2})
    assert sparse["sparsity_rows"] > 0.1 and sparse["sparsity_cols"] > 0.1, sparse
    assert sparse["tiles"] < dense["tiles"]
    assert sparse["energy_nj"] < 0.9 * dense["energy_nj"]
    _assert_less_silicon(sparse, dense)
    assert sparse["accuracy_ideal"] > dense["accuracy_ideal"] - 0.05


def test_bsq_lowers_bits_raises_compression_and_lowers_energy(evaluator):
    fixed = evaluator.evaluate({**BASE, "hw.weight_bits": 8, "dnn.bsq_alpha": 0.0})
    learned = evaluator.evaluate({**BASE, "dnn.bsq_alpha": 0.3})
    assert fixed["avg_weight_bits"] == 8
    assert learned["avg_weight_bits"] < 7
    assert learned["compression"] > fixed["compression"]
    assert learned["energy_nj"] < fixed["energy_nj"]

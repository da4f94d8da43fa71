"""The cost model against recorded DNN+NeuroSim V1.4 runs (tests/data/neurosim/).

NeuroSim is not built in CI: its outputs at 288 grid points per duplication setting
(digits MLP 64-256-256-10, the digits CNN and a wider CNN that NeuroSim maps at every
point; SAR and flash (MLSA) ADCs; 32/22 nm;
arrays 64/128/256; 1- and 4-bit cells; ADC 3–8 bits) were recorded with the commit, the
settings, the export recipe and the instrumentation patch. We compare like with like
(``evaluators/cim/cost/reference.py``): NeuroSim's offset encoding and its conv mapping,
no weight duplication (speedUpDegree = 1, as our chip does not duplicate).
"""

from __future__ import annotations

import itertools

import pytest

from evaluators.cim.cost.crosscheck import compare, load_runs, neurosim_for, ok_runs, ours_for

NETWORKS = ("mlp", "cnn", "cnn_wide")


@pytest.fixture(scope="module")
def comparisons():
    return {net: [c for r in ok_runs(net, speedup=1) for c in compare(r)] for net in NETWORKS}


def _ratios(comparisons, net, quantity, terms):
    return [c.ratio for c in comparisons[net] if c.quantity == quantity and c.ours_terms == terms]


def _within(ratios, lo=0.5, hi=2.0):
    return bool(ratios) and all(lo <= r <= hi for r in ratios)


def test_record_is_complete_and_traceable():
    data = load_runs()
    ns = data["neurosim"]
    assert ns["repo"] == "neurosim/DNN_NeuroSim_V1.4" and len(ns["commit"]) == 40
    assert data["recipe"]["grid"]["adc_type"] == ["sar", "mlsa"]
    assert len(ok_runs("mlp", speedup=1)) == 144  # the whole grid ran for the MLP
    assert len(ok_runs("cnn", speedup=1)) >= 48
    assert len(ok_runs("cnn_wide", speedup=1)) == 143  # one overflowed (crosscheck.plausible)


@pytest.mark.parametrize("net", NETWORKS)
@pytest.mark.parametrize("quantity", ["energy", "area", "latency"])
def test_totals_within_2x_at_every_recorded_setting(comparisons, net, quantity):
    ratios = _ratios(comparisons, net, quantity, ("total",))
    assert _within(ratios), (min(ratios), max(ratios))


ENERGY_TERMS_OK = [
    ("cells",), ("adc",), ("cells", "adc"), ("wordline",), ("mux",), ("shift_add",),
    ("buffer",), ("interconnect",),
]  # fmt: skip


@pytest.mark.parametrize("net", NETWORKS)
@pytest.mark.parametrize("terms", ENERGY_TERMS_OK, ids=lambda t: "+".join(t))
def test_energy_terms_within_2x(comparisons, net, terms):
    ratios = _ratios(comparisons, net, "energy", terms)
    assert _within(ratios), (min(ratios), max(ratios))


@pytest.mark.parametrize("net", NETWORKS)
def test_adder_tree_energy_within_2x(comparisons, net):
    """PE, tile and chip trees where NeuroSim's floorplan puts them (counts.py)."""
    ratios = _ratios(comparisons, net, "energy", ("adder_tree",))
    assert _within(ratios), (min(ratios), max(ratios))


@pytest.mark.parametrize("net", NETWORKS)
@pytest.mark.parametrize("terms", [("pipelined",), ("adc",)], ids=lambda t: "+".join(t))
def test_latency_terms_within_2x(comparisons, net, terms):
    ratios = _ratios(comparisons, net, "latency", terms)
    assert _within(ratios), (min(ratios), max(ratios))


@pytest.mark.parametrize("net", NETWORKS)
def test_buffer_latency_within_2x(comparisons, net):
    ratios = _ratios(comparisons, net, "latency", ("buffer",))
    assert _within(ratios), (min(ratios), max(ratios))


@pytest.mark.parametrize("net", NETWORKS)
def test_array_and_adc_area_within_2x(comparisons, net):
    for terms in (("cells",), ("adc",)):
        ratios = _ratios(comparisons, net, "area", terms)
        # 1e-4 covers the rounding of NeuroSim's printed µm² (6 digits)
        assert _within(ratios, 0.5 / (1 + 1e-4), 2.0 * (1 + 1e-4)), (
            terms,
            min(ratios),
            max(ratios),
        )


@pytest.mark.parametrize("net", NETWORKS)
def test_accumulation_and_interconnect_area_within_2x(comparisons, net):
    for terms in (("shift_add", "adder_tree"), ("interconnect",)):
        ratios = _ratios(comparisons, net, "area", terms)
        assert _within(ratios), (terms, min(ratios), max(ratios))


def test_array_area_is_neurosims_at_every_setting(comparisons):
    """Same floorplan (floorplan.py) → the same cell area, to NeuroSim's print rounding."""
    for net in NETWORKS:
        ratios = _ratios(comparisons, net, "area", ("cells",))
        assert all(abs(r - 1) < 1e-3 for r in ratios), (net, min(ratios), max(ratios))


# -- trends: the ratio between two settings, ours against NeuroSim's ------------------------
AXES = {
    "adc_bits": (3, 8),
    "tech_nm": (32, 22),
    "adc_type": ("sar", "mlsa"),
    "cell_bits": (1, 4),
    "array_size": (64, 256),
}


def _trend_factors(net: str, axis: str, quantity: str) -> list[float]:
    runs = ok_runs(net, speedup=1)
    index = {tuple(sorted(r["settings"].items())): r for r in runs}
    lo, hi = AXES[axis]
    out = []
    for r in runs:
        if r["settings"][axis] != lo:
            continue
        other = dict(r["settings"], **{axis: hi})
        r2 = index.get(tuple(sorted(other.items())))
        if r2 is None:
            continue
        key = "chip" if quantity == "area" else "total"
        ours = ours_for(r2)[quantity]["total"] / ours_for(r)[quantity]["total"]
        ref = neurosim_for(r2)[quantity][key] / neurosim_for(r)[quantity][key]
        out.append(ours / ref)
    return out


TRENDS_OK = [
    (net, axis, quantity)
    for net, axes in (
        ("mlp", ("adc_bits", "tech_nm", "adc_type", "cell_bits", "array_size")),
        ("cnn", ("adc_bits", "tech_nm", "adc_type")),
        ("cnn_wide", ("adc_bits", "tech_nm", "adc_type", "cell_bits", "array_size")),
    )
    for axis in axes
    for quantity in ("energy", "area", "latency")
]


@pytest.mark.parametrize("net,axis,quantity", TRENDS_OK, ids=lambda x: str(x))
def test_trend_within_1p5x_of_neurosim(net, axis, quantity):
    factors = _trend_factors(net, axis, quantity)
    assert _within(factors, 1 / 1.5, 1.5), (min(factors), max(factors))


def test_every_setting_pair_exists_for_the_trends():
    for net, axis in itertools.product(("mlp", "cnn_wide"), AXES):
        assert _trend_factors(net, axis, "energy"), (net, axis)

"""cim-dse's cost model beside recorded DNN+NeuroSim V1.4 runs, term by term.

One place says which of our terms answers which of NeuroSim's (``TERMS``), so the test
suite (``tests/test_cost_neurosim.py``) and ``benchmarks/cost_crosscheck.py`` compare the
same things. Runs are the records of ``tests/data/neurosim/runs.json``; the network is
rebuilt in NeuroSim's offset encoding from the recorded codes (``reference.py``).
NeuroSim's ``mlsa`` is our ``flash``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..hw.config import HardwareConfig
from .estimate import estimate_breakdown
from .floorplan import NEUROSIM_FLOORPLAN
from .reference import mapping_from_record

#: (quantity, our terms summed, NeuroSim keys summed, applies to ADC kinds)
TERMS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("energy", ("total",), ("total",), ("sar", "flash")),
    ("energy", ("cells",), ("adc_cell_current",), ("sar",)),
    ("energy", ("adc",), ("adc_bias",), ("sar",)),
    ("energy", ("cells", "adc"), ("adc_circuit",), ("sar", "flash")),
    ("energy", ("wordline",), ("array_wl", "wl_switchmatrix"), ("sar", "flash")),
    ("energy", ("mux",), ("mux",), ("sar", "flash")),
    ("energy", ("shift_add",), ("shiftadd",), ("sar", "flash")),
    ("energy", ("adder_tree",), ("addertree",), ("sar", "flash")),
    ("energy", ("buffer",), ("buffer",), ("sar", "flash")),
    ("energy", ("interconnect",), ("ic",), ("sar", "flash")),
    ("area", ("total",), ("chip",), ("sar", "flash")),
    ("area", ("cells",), ("cim_array",), ("sar", "flash")),
    ("area", ("adc",), ("adc",), ("sar", "flash")),
    ("area", ("shift_add", "adder_tree"), ("accumulation",), ("sar", "flash")),
    ("area", ("interconnect",), ("ic",), ("sar", "flash")),
    ("latency", ("total",), ("total",), ("sar", "flash")),
    ("latency", ("pipelined",), ("pipelined",), ("sar", "flash")),
    ("latency", ("adc",), ("adc",), ("sar", "flash")),
    ("latency", ("buffer",), ("buffer",), ("sar", "flash")),
)

DATA_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "neurosim"


@dataclass(frozen=True)
class Comparison:
    network: str
    settings: tuple[tuple[str, Any], ...]
    quantity: str
    ours_terms: tuple[str, ...]
    neurosim_terms: tuple[str, ...]
    ours: float
    neurosim: float

    @property
    def ratio(self) -> float:
        return self.ours / self.neurosim if self.neurosim else float("nan")


@lru_cache(maxsize=4)
def load_runs(path: str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or DATA_DIR / "runs.json").read_text())


@lru_cache(maxsize=8)
def _record(network: str) -> dict[str, np.ndarray]:
    with np.load(DATA_DIR / f"{network}_digits.npz") as z:
        return {k: z[k] for k in z.files}


def hardware_of(run: dict[str, Any]) -> HardwareConfig:
    s = run["settings"]
    return HardwareConfig(
        device="reram",
        array_size=int(s["array_size"]),
        adc_type="flash" if s["adc_type"] == "mlsa" else s["adc_type"],
        adc_bits=int(s["adc_bits"]),
        cols_per_adc=int(s["cols_per_adc"]),
        act_bits=int(s["input_bits"]),
        weight_bits=int(s["weight_bits"]),
        cell_bits=int(s["cell_bits"]),
        tech_nm=float(s["tech_nm"]),
    )


def ours_for(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Our energy (pJ), area (µm²) and latency (ns) per term for the run's settings."""
    return _ours(run["network"], tuple(sorted(run["settings"].items())))


@lru_cache(maxsize=4096)
def _ours(network: str, settings: tuple[tuple[str, Any], ...]) -> dict[str, dict[str, float]]:
    run = {"network": network, "settings": dict(settings)}
    hw = hardware_of(run)
    mapping = mapping_from_record(_record(run["network"]), hw)
    b = estimate_breakdown(mapping, hw, hw.device_model(), NEUROSIM_FLOORPLAN)
    energy = dict(b.energy_pj, total=b.energy_total_pj)
    area = dict(b.area_um2, total=b.area_total_um2)
    lat = dict(b.latency_ns, total=sum(b.layer_latency_ns), pipelined=max(b.layer_latency_ns))
    return {"energy": energy, "area": area, "latency": lat}


def neurosim_for(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """NeuroSim's terms: layer-by-layer energy and latency (our latency_us is one image
    end to end), pipelined cycle as ``latency.pipelined``."""
    lbl = run["layer_by_layer"]
    energy = dict(
        run["energy_pj"], total=lbl["energy_pj"]["total"], leakage=lbl["energy_pj"]["leakage"]
    )
    lat = dict(lbl["latency_ns"], pipelined=run["latency_ns"]["total"])
    return {"energy": energy, "area": dict(run["area_um2"]), "latency": lat}


def compare(run: dict[str, Any]) -> Iterator[Comparison]:
    ours = ours_for(run)
    ns = neurosim_for(run)
    kind = "flash" if run["settings"]["adc_type"] == "mlsa" else run["settings"]["adc_type"]
    settings = tuple(sorted(run["settings"].items()))
    for quantity, mine, theirs, kinds in TERMS:
        if kind not in kinds:
            continue
        ref = sum(float(ns[quantity].get(k, 0.0) or 0.0) for k in theirs)
        if ref <= 0:
            continue  # NeuroSim has no such term at this setting (e.g. no adder tree)
        val = sum(float(ours[quantity].get(k, 0.0)) for k in mine)
        yield Comparison(run["network"], settings, quantity, mine, theirs, val, ref)


#: a per-inference energy above this (1 mJ) is a numerical overflow in NeuroSim's output,
#: not a chip: 2 of 864 recorded runs (cnn_wide, MLSA 7-bit, 64 arrays, 1-bit cells) print
#: ~1e169 pJ in the MLSA term
IMPLAUSIBLE_PJ = 1e9


def plausible(run: dict[str, Any]) -> bool:
    values = [v for v in run["energy_pj"].values() if isinstance(v, int | float)]
    return all(abs(v) < IMPLAUSIBLE_PJ for v in values)


def ok_runs(network: str | None = None, speedup: int | None = 1) -> list[dict[str, Any]]:
    """Recorded runs NeuroSim completed with plausible numbers (optionally one network /
    duplication setting)."""
    out = []
    for r in load_runs()["runs"]:
        if r.get("status") != "ok" or not plausible(r):
            continue
        if network is not None and r["network"] != network:
            continue
        if speedup is not None and r["settings"].get("speedup_degree", 8) != speedup:
            continue
        out.append(r)
    return out

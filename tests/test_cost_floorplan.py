"""The floorplan search against NeuroSim's own choices (recorded in tests/data/neurosim/).

NeuroSim 1.4 sizes tiles and PEs per network (Chip.cpp ChipFloorPlan); our
``cost/floorplan.py`` runs the same search, so at every recorded (network, array, cell)
combination the tile and PE sides, the tiles per layer and the tile grid must be NeuroSim's.
"""

from __future__ import annotations

import pytest

from evaluators.cim.cost.crosscheck import _record, hardware_of, ok_runs
from evaluators.cim.cost.estimate import floorplan
from evaluators.cim.cost.floorplan import NEUROSIM_FLOORPLAN, LayerShape, neurosim_floorplan
from evaluators.cim.cost.reference import mapping_from_record
from evaluators.cim.hw.periphery import FloorplanSpec


def _one_run_per_geometry():
    seen, out = set(), []
    for net in ("mlp", "cnn", "cnn_wide"):
        for r in ok_runs(net, speedup=1):
            s = r["settings"]
            key = (net, s["array_size"], s["cell_bits"])
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


RUNS = _one_run_per_geometry()


def test_every_recorded_geometry_is_covered():
    assert len(RUNS) == 14  # mlp 6, cnn 2 (NeuroSim mapped only 64/128 with 1-bit), wide 6


@pytest.mark.parametrize(
    "run",
    RUNS,
    ids=lambda r: f"{r['network']}-{r['settings']['array_size']}-c{r['settings']['cell_bits']}",
)
def test_floorplan_is_neurosims(run):
    hw = hardware_of(run)
    fp = floorplan(
        mapping_from_record(_record(run["network"]), hw), hw, hw.device_model(), NEUROSIM_FLOORPLAN
    )
    ref = run["floorplan"]
    chip = fp.chip
    assert [p.tiles for p in chip.layers] == ref["tiles_per_layer"]
    assert chip.grid == (ref["numTileRow"], ref["numTileCol"])
    assert chip.nm is not None and chip.nm.pe_side == ref["desiredPESizeNM"]
    assert chip.nm.pes == ref["numPENM"]
    if chip.cm is not None:  # NeuroSim prints its (unused) CM sizes even with no CM layer
        assert chip.cm_tile_side == ref["desiredTileSizeCM"]
        assert chip.cm.pe_side == ref["desiredPESizeCM"]


def test_search_prefers_utilization_and_respects_the_floors():
    # one FC layer 100 x 300 on 64-arrays: CM is impossible (rows >= 64 -> NM, taps 1)
    fp = neurosim_floorplan([LayerShape(100, 1, 300)], 64, NEUROSIM_FLOORPLAN)
    assert fp.cm is None and fp.nm is not None
    # PE side: from 512 down to 256 (> 2 arrays a side); 256 fills 100x300 better than 512
    assert fp.nm.pe_side == 256 and fp.layers[0].tiles == 2
    # a layer too small for NM (rows < one array) goes conventional, tile >= 4 arrays a side
    small = neurosim_floorplan([LayerShape(9, 1, 40)], 64, NEUROSIM_FLOORPLAN)
    assert small.nm is None and small.cm is not None and small.cm_tile_side == 256
    # without novel mapping every layer is conventional
    cm_only = neurosim_floorplan([LayerShape(100, 1, 300)], 64, FloorplanSpec(novel_mapping=False))
    assert cm_only.nm is None and cm_only.cm is not None


def test_cm_tile_tree_sums_every_pe_row_and_nm_tree_the_taps():
    fp = neurosim_floorplan(
        [LayerShape(4, 9, 64), LayerShape(64, 9, 128), LayerShape(128, 1, 10)], 64
    )
    # 4·9 = 36 unrolled rows < one array: conventional; the 9-tap kernel is the common one
    first, conv, fc = fp.layers
    assert first.kind.name == "cm" and first.tile_tree_inputs == fp.cm.pes_per_side
    assert fc.kind.name == "cm"  # taps 1 is not the network's kernel
    assert conv.kind.name == "nm" and conv.tile_tree_inputs == 9 and conv.pes == 9 * conv.tiles


def test_our_chip_tries_the_minimum_tile_so_pruning_never_grows_it():
    """NeuroSim turns a pruned MLP (rows < one array) conventional and skips its own
    minimum tile: 512-cell tiles, 192 arrays; ours keeps the FC layers NM, tries the
    minimum PE and places it in no more arrays than the dense one (the case Group-HS hit,
    tests/test_codesign_trends.py)."""
    dense = [LayerShape(65, 1, 512), LayerShape(65, 1, 512), LayerShape(65, 1, 80)]
    pruned = [LayerShape(53, 1, 512), LayerShape(47, 1, 512), LayerShape(32, 1, 80)]
    ours_dense, ours_pruned = (neurosim_floorplan(n, 64) for n in (dense, pruned))
    theirs_pruned = neurosim_floorplan(pruned, 64, NEUROSIM_FLOORPLAN)
    assert theirs_pruned.cm_tile_side == 512 and theirs_pruned.arrays == 192
    assert ours_pruned.cm is None and ours_pruned.nm.pe_side == 128
    assert ours_pruned.arrays <= ours_dense.arrays == 36  # the dense net fills its arrays

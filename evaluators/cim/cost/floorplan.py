"""How many tiles, PEs and arrays a network takes: DNN+NeuroSim V1.4's floorplan search.

NeuroSim sizes its hierarchy to the network it maps (``Chip.cpp`` ChipDesignInitialize,
ChipFloorPlan, TileDesignCM/NM, PEDesign; neurosim/DNN_NeuroSim_V1.4 @ ac828e6): a tile
and a PE are square power-of-two blocks of cells, chosen per network for the best
utilization, and each layer takes whole tiles of its own. Two kinds of tile:

* *novel mapping* (NM, Param.cpp novelMapping = true): the layers whose kernel has the
  network's most common tap count ``numPENM`` (kh·kw; 1 for an MLP) and at least one
  subarray of rows. A tile holds ``numPENM`` PEs, one per kernel tap, each PE holding that
  tap's C_in × C_out weights; the PE side is searched from the widest such layer's columns
  (rounded up to a power of two) down to 4 subarrays, keeping the best utilization;
* *conventional mapping* (CM): every other layer, im2col-unrolled. The tile side is
  searched from the widest CM layer's columns down to 8 subarrays, the PE side from half
  the tile down to 4 subarrays (PE sizes only win where weight duplication raises the
  utilization, as NeuroSim's search does).

Ours is the same search over the same shapes. With ``FloorplanSpec.exact_neurosim``
(``NEUROSIM_FLOORPLAN``, what the cross-check against NeuroSim uses) the recorded NeuroSim
floorplans are reproduced exactly (``tests/test_cost_floorplan.py``). Our chips differ in
two choices, because with NeuroSim's a pruned network could take a chip 2.6× larger than
the dense one (Group-HS, ``tests/test_codesign_trends.py``):

* NeuroSim's loop never tries its own minimum size (4 subarrays a side for a tile, 2 for
  a PE) unless it starts there; ours tries it;
* NeuroSim maps an FC layer with fewer rows than a subarray conventionally (tiles of at
  least 4×4 subarrays) while its wider neighbours get 2×2-subarray NM tiles; for a
  single-tap kernel the two hold the same matrix, so ours keeps such layers NM.

Where NeuroSim prints an error (no layer of a kind) we place no tile of that kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..hw.periphery import FloorplanSpec

#: NeuroSim 1.4's search exactly (the cross-check's floorplan; see module docstring)
NEUROSIM_FLOORPLAN = FloorplanSpec(exact_neurosim=True)


@dataclass(frozen=True)
class LayerShape:
    """One layer as the floorplan sees it (NeuroSim's netStructure row): ``rows`` per
    kernel tap (C_in · rows per input), ``taps`` (kh·kw mapped apart, 1 when the kernel is
    unrolled into the rows), ``cols`` physical columns (C_out · columns per weight)."""

    rows: int
    taps: int
    cols: int

    @property
    def unrolled_rows(self) -> int:
        return self.rows * self.taps


@dataclass(frozen=True)
class TileKind:
    """A tile: ``pes`` PEs of ``pe_arrays × pe_arrays`` subarrays (``pe_side`` cells)."""

    name: str  # "nm" | "cm"
    pe_side: int
    pes: int
    pe_arrays: int

    @property
    def pes_per_side(self) -> int:
        """PE rows of the tile (CM: square grid; NM: the taps, summed by one adder tree)."""
        return math.isqrt(self.pes) if self.name == "cm" else self.pes

    @property
    def arrays(self) -> int:
        return self.pes * self.pe_arrays**2

    @property
    def input_rows(self) -> int:
        """Inputs the tile takes per vector (NM: each tap PE reads its own inputs)."""
        return self.pes_per_side * self.pe_side

    @property
    def output_cols(self) -> int:
        """Columns the tile delivers (NM: the tap PEs share their columns)."""
        return self.pe_side * (self.pes_per_side if self.name == "cm" else 1)


@dataclass(frozen=True)
class LayerPlacement:
    """Where one layer sits: its tile kind, how many tiles, and how many PE and subarray
    rows its partial sums cross (the adder-tree operands, NeuroSim Tile/ProcessingUnit)."""

    kind: TileKind
    tiles: int
    #: PE slots holding the layer's weights, over all its tiles (NM: one per tap and tile)
    pes: int
    #: operands of the PE adder tree (subarray rows of the layer inside one PE)
    pe_tree_inputs: int
    #: operands of the tile adder tree (NM: the taps; CM: every PE row of the tile)
    tile_tree_inputs: int
    #: operands of the chip-level accumulation (tile rows of the layer)
    chip_tree_inputs: int


@dataclass(frozen=True)
class ChipFloorplan:
    """NeuroSim's choice for one network (see module docstring)."""

    nm: TileKind | None
    cm: TileKind | None
    #: CM tile side in cells (NeuroSim desiredTileSizeCM)
    cm_tile_side: int
    layers: tuple[LayerPlacement, ...]
    grid: tuple[int, int]

    @property
    def tiles(self) -> int:
        return sum(p.tiles for p in self.layers)

    @property
    def arrays(self) -> int:
        """Subarray slots of every allocated tile, used or not."""
        return sum(p.tiles * p.kind.arrays for p in self.layers)


def _pow2_ceil(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1))))


def _num_pe_nm(shapes: Sequence[LayerShape]) -> int:
    """Chip.cpp: the tap count shared by most layers (a first layer's count wins ties;
    taps = 1 never counts as shared, so an MLP gets 1)."""
    most, num_pe = 0, 0
    for s in shapes:
        count = 1
        for t in shapes:
            if s.taps == t.taps and s.taps != 1:
                count += 1
            if most < count:
                most, num_pe = count, s.taps
    return num_pe


def _search(sizes_from: int, floor: int, utilization, try_floor: bool) -> tuple[int, float]:
    """NeuroSim's descending power-of-two search: start at max(widest, floor) and keep a
    size only when it is strictly better. NeuroSim never tries ``floor`` itself after the
    first (``for (s = MAX(max, floor); s > floor; s /= 2)``); ``try_floor`` does."""
    best_size = max(sizes_from, floor)
    best = 0.0
    size = best_size
    while size > floor or (try_floor and size == floor):
        u = utilization(size)
        if u > best:  # NaN (no layer of this kind) never wins
            best, best_size = u, size
        size //= 2
    return best_size, best


def neurosim_floorplan(
    shapes: Sequence[LayerShape], array_size: int, spec: FloorplanSpec | None = None
) -> ChipFloorplan:
    """Tile and PE sizes, tiles per layer and the tile grid, as NeuroSim 1.4 chooses them."""
    spec = spec or FloorplanSpec()
    sub = array_size
    num_pe_nm = _num_pe_nm(shapes) if spec.novel_mapping else 0
    # NeuroSim maps a layer of the common kernel as NM only with a subarray of rows; for
    # single-tap layers NM and CM hold the same matrix, so ours keeps them NM (see above)
    nm_mark = [
        spec.novel_mapping
        and s.taps == num_pe_nm
        and (s.unrolled_rows >= sub or (s.taps == 1 and not spec.exact_neurosim))
        for s in shapes
    ]
    nm_layers = [s for s, m in zip(shapes, nm_mark, strict=True) if m]
    cm_layers = [s for s, m in zip(shapes, nm_mark, strict=True) if not m]
    nm_floor = spec.min_pe_arrays * sub
    cm_floor = spec.min_tile_arrays * sub

    def nm_util(pe: int) -> float:
        tiles = sum(math.ceil(s.rows / pe) * math.ceil(s.cols / pe) for s in nm_layers)
        matrix = sum(s.unrolled_rows * s.cols for s in nm_layers)
        return matrix / (tiles * pe * pe * num_pe_nm) if tiles else math.nan

    def cm_util(tile: int) -> float:
        tiles = sum(math.ceil(s.unrolled_rows / tile) * math.ceil(s.cols / tile) for s in cm_layers)
        matrix = sum(s.unrolled_rows * s.cols for s in cm_layers)
        return matrix / (tiles * tile * tile) if tiles else math.nan

    nm_kind = None
    if nm_layers:
        widest = max(_pow2_ceil(s.cols) for s in nm_layers)
        pe_nm, _ = _search(widest, nm_floor, nm_util, not spec.exact_neurosim)
        nm_kind = TileKind("nm", pe_nm, num_pe_nm, pe_nm // sub)
    widest_cm = max((_pow2_ceil(s.cols) for s in cm_layers), default=0)
    tile_cm, best_cm = _search(widest_cm, cm_floor, cm_util, not spec.exact_neurosim)
    cm_tiles = sum(
        math.ceil(s.unrolled_rows / tile_cm) * math.ceil(s.cols / tile_cm) for s in cm_layers
    )
    pe_cm = tile_cm // 2
    # PEDesign: a smaller PE wins only where duplicating small layers into idle PEs beats
    # the tile's utilization (the running best carries over from the tile search)
    size, pe_floor = tile_cm // 2, spec.min_pe_arrays * sub
    while (size > pe_floor or (not spec.exact_neurosim and size == pe_floor)) and cm_tiles:
        u = _pe_utilization(cm_layers, size, tile_cm, cm_tiles)
        if u > best_cm:
            best_cm, pe_cm = u, size
        size //= 2
    cm_kind = None
    if cm_layers:
        per_side = math.ceil(tile_cm / pe_cm)
        cm_kind = TileKind("cm", pe_cm, per_side**2, pe_cm // sub)

    placements = []
    for s, is_nm in zip(shapes, nm_mark, strict=True):
        if is_nm:
            assert nm_kind is not None
            pe = nm_kind.pe_side
            row_tiles = math.ceil(s.rows / pe)
            tiles = row_tiles * math.ceil(s.cols / pe)
            pe_rows = min(s.rows, pe)
            placements.append(
                LayerPlacement(
                    nm_kind, tiles, tiles * s.taps, math.ceil(pe_rows / sub), s.taps, row_tiles
                )
            )
        else:
            assert cm_kind is not None
            rows = s.unrolled_rows
            row_tiles = math.ceil(rows / tile_cm)
            tiles = row_tiles * math.ceil(s.cols / tile_cm)
            tile_rows = min(rows, tile_cm)
            pe_rows = min(tile_rows, pe_cm)
            # Tile.cpp without duplication ("tell PE to further partition"): the layer is
            # spread over the tile's numPE × numPE PE slots and the tile tree always sums
            # numPE operands, whether or not the layer reaches every PE row
            tile_in = cm_kind.pes_per_side
            placements.append(
                LayerPlacement(
                    cm_kind,
                    tiles,
                    _pes_used(rows, s.cols, tile_cm, pe_cm),
                    math.ceil(pe_rows / sub),
                    tile_in,
                    row_tiles,
                )
            )
    n = sum(p.tiles for p in placements)
    grid_rows = math.ceil(math.sqrt(n))
    grid_cols = math.ceil(n / grid_rows) if grid_rows else 0
    return ChipFloorplan(nm_kind, cm_kind, tile_cm, tuple(placements), (grid_rows, grid_cols))


def _pe_utilization(layers: Sequence[LayerShape], pe: int, tile: int, tiles: int) -> float:
    """Chip.cpp PEDesign: utilization when small layers are copied into idle PEs."""
    matrix = 0.0
    for s in layers:
        rows = s.unrolled_rows
        dup = 1
        if rows <= tile or s.cols <= tile:
            per_side = math.ceil(tile / pe)
            dup_r = max(1, per_side // math.ceil(rows / pe))
            dup_c = max(1, per_side // math.ceil(s.cols / pe))
            dup = dup_r * dup_c
        matrix += dup * rows * s.cols
    return matrix / (tiles * tile * tile)


def _pes_used(rows: int, cols: int, tile: int, pe: int) -> int:
    """PE slots with weights over a CM layer's tiles (Tile.cpp visits only those)."""
    n = 0
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            n += math.ceil(min(tile, rows - r0) / pe) * math.ceil(min(tile, cols - c0) / pe)
    return n

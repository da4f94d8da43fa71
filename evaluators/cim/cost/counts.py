"""Action counts per layer and inference, from the Mapping and measured input statistics.

Accelergy/Timeloop split: this module counts *what happens* on the chip for one
inference (cell reads, word-line pulses, ADC conversions, adds, buffer and wire traffic);
``components.py`` says what each action costs; ``estimate.py`` multiplies. Nothing here
knows a price, so a new component model never changes a count and vice versa.

Counting rules (each the chip the simulator evaluates, ``simulator.py``):

* a *read cycle* is one input bit plane (bit-serial: act_bits cycles, twice for signed
  inputs) or one DAC vector; every tile of a layer is read in every cycle;
* the cells read in a cycle are those on driven rows (input bit = 1): their number and
  mean conductance come from the calibration inputs (``LayerMapping.input_bit_activity``,
  ``read_g_fraction``), not from an assumed 0.5 activity;
* one ADC conversion per (row tile, column pair — or single column in offset encoding —,
  slice, read cycle); the ADC serves ``cols_per_adc`` columns one after the other (column
  mux steps), each conversion followed by one shift-and-add;
* partial sums meet in adder trees at three levels, PE, tile and chip, as NeuroSim's
  floorplan places them (:func:`tree_adds_per_vector`);
* each vector's inputs are written to the buffer, read by and sent to each of the
  layer's tiles (``hw.act_bits`` wide); its outputs come back as partial sums
  (``psum_bits`` wide) through the buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..hw.config import HardwareConfig
from ..mapping import LayerMapping
from .floorplan import LayerPlacement

#: bit activity assumed when a layer was mapped without calibration inputs
UNMEASURED_ACTIVITY = 0.5

#: psum bits beyond ADC + weight + input + log2(rows) that partial sums carry
#: (NeuroSim's accumulator widths; fitted to its recorded buffer traffic)
PSUM_EXTRA_BITS = 2


@dataclass(frozen=True)
class LayerCounts:
    """What one layer does per inference (see module docstring)."""

    name: str
    vectors: int
    #: read cycles per vector (bit planes or 1 for DAC)
    read_cycles: int
    row_tiles: int
    col_tiles: int
    #: physical rows and columns the layer occupies
    rows: int
    cols: int
    #: Σ over read cycles of the cells on driven rows (cell·reads)
    cell_reads: float
    #: Σ over read cycles of the conductance on driven rows, in µS·reads
    read_g_us: float
    #: ADC conversions (one per column pair and slice per row tile and cycle)
    conversions: float
    #: array activations (array · read cycle)
    array_reads: float
    #: word-line pulses: driven rows × column tiles (each tile has its own drivers)
    wl_pulses: float
    #: multi-level DAC conversions (DAC mode), one per driven row and column tile
    dac_conversions: float
    shift_adds: float
    #: adds in the adder tree that joins row tiles, and their width in bits
    tree_adds: float
    tree_add_bits: int
    #: outputs through the activation unit
    activations: float
    #: bits through the buffers: inputs written once and read by each of the layer's
    #: tiles, outputs written as partial sums (``psum_bits`` wide)
    buffer_bits: float
    #: bits on the wires: inputs sent to each tile, partial sums sent back
    wire_in_bits: float
    wire_out_bits: float
    psum_bits: int


def psum_bits(lm: LayerMapping, hw: HardwareConfig) -> int:
    """Width of a layer's partial sums: ADC + weight + input bits + log2(rows) + carry."""
    rows = max(lm.rows_logical, 1)
    return hw.adc_bits + lm.weight_bits + hw.act_bits + math.ceil(math.log2(rows)) + PSUM_EXTRA_BITS


def tree_adds_per_vector(
    lm: LayerMapping, hw: HardwareConfig, placement: LayerPlacement | None, share: int = 1
) -> float:
    """Adds per vector in NeuroSim's three adder-tree levels (ProcessingUnit.cpp,
    Tile.cpp, Chip.cpp; AdderTree.cpp: a tree of n operands makes n − 1 adds):

    * each PE holding weights joins its subarray rows, in one tree per ADC column group
      over the PE's whole width (the trees are sized once per PE, not per layer), read
      ceil(cols_per_adc / columns per weight) times per vector;
    * each tile joins its PE rows (every PE row of a CM tile; the taps of an NM tile) the
      same way over the tile's output width;
    * the chip joins the layer's tile rows, one add per output and vector.

    ``share``: the layer is one of ``share`` kernel-tap PEs sharing the tile and chip
    trees. Without a placement only the row tiles are joined, per output column."""
    if placement is None:
        return max(lm.row_tiles - 1, 0) * lm.cols_logical
    p, k = placement, placement.kind
    reads = math.ceil(hw.cols_per_adc / max(lm.slices * lm.cols_per_weight, 1))
    pe_trees = reads * k.pe_side / hw.cols_per_adc
    tile_trees = reads * k.output_cols / hw.cols_per_adc
    pe = p.pes / share * pe_trees * max(p.pe_tree_inputs - 1, 0)
    tile = p.tiles * tile_trees * max(p.tile_tree_inputs - 1, 0) / share
    chip = lm.cols_logical * max(p.chip_tree_inputs - 1, 0) / share
    return pe + tile + chip


def layer_counts(
    lm: LayerMapping,
    hw: HardwareConfig,
    g_min_us: float,
    g_range_us: float,
    tiles: int = 1,
    placement: LayerPlacement | None = None,
    share: int = 1,
) -> LayerCounts:
    """Counts of one mapped layer; ``g_*`` are the cell conductance limits (µS), ``tiles``
    the tiles the floorplan gave the layer (its inputs are sent to each), ``placement``
    where it sits (adder-tree levels, :func:`tree_adds_per_vector`)."""
    v = lm.vectors_per_inference
    cycles = lm.input_cycles(hw)
    rows, cols = lm.rows_physical, lm.cols_physical
    activity = lm.input_bit_activity or (UNMEASURED_ACTIVITY,) * max(1, _planes(lm, hw))
    # Σ over cycles of the driven fraction: each plane's activity once per sign cycle pair
    # (a signed input drives its row in the positive or the negative cycle, not both)
    driven = sum(activity)
    if lm.binary_mram and lm.pm1_input:
        driven = 0.5  # one of the two rows (WL or WL̄) per input
    g_frac = lm.read_g_fraction if lm.read_g_fraction >= 0 else lm.mean_g_fraction
    g_cell = g_min_us + g_frac * g_range_us
    cell_reads = v * driven * rows * cols
    conversions = v * lm.adc_conversions_per_vector(hw)
    tree_bits = (
        hw.adc_bits
        + lm.weight_bits
        + hw.act_bits
        + max(0, math.ceil(math.log2(max(lm.row_tiles, 1))))
    )
    dac = hw.periphery().driver.mode == "dac" and not (lm.binary_mram and lm.pm1_input)
    in_bits = v * lm.rows_logical * hw.act_bits
    psum = psum_bits(lm, hw)
    out_bits = v * lm.cols_logical * psum
    return LayerCounts(
        name=lm.name,
        vectors=v,
        read_cycles=cycles,
        row_tiles=lm.row_tiles,
        col_tiles=lm.col_tiles,
        rows=rows,
        cols=cols,
        cell_reads=cell_reads,
        read_g_us=cell_reads * g_cell,
        conversions=conversions,
        array_reads=v * cycles * lm.tiles,
        wl_pulses=v * driven * rows * lm.col_tiles,
        dac_conversions=v * rows * lm.col_tiles if dac else 0.0,
        shift_adds=conversions,
        tree_adds=v * tree_adds_per_vector(lm, hw, placement, share),
        tree_add_bits=tree_bits,
        activations=v * lm.cols_logical,
        buffer_bits=in_bits * (1 + tiles) + out_bits,
        wire_in_bits=in_bits * tiles,
        wire_out_bits=out_bits,
        psum_bits=psum,
    )


def _planes(lm: LayerMapping, hw: HardwareConfig) -> int:
    if hw.periphery().driver.mode == "dac":
        return 1
    return hw.act_bits - 1 if lm.signed_input and hw.act_bits > 1 else hw.act_bits

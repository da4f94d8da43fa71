"""The periphery around each crossbar, described once (CrossSim ``parameters/`` style).

These are *descriptions*: which kind of ADC, how many bits, how its full scale is chosen,
how many columns share it, how inputs are driven, where activations are buffered, how the
chip is wired. Prices (energy per action, area per instance, time per action) are in
``evaluators/cim/cost/components.py``; the simulator reads the quantization rules from here.

ADC kinds (``hw.adc_type``):

* ``sar``: successive-approximation ADC, one comparator cycle per bit — NeuroSim 1.4's
  ``SarADC`` (conversion in (bits + 1) clock-less steps of 1 ns, SarADC.cpp
  CalculateLatency); energy grows about linearly with bits.
* ``flash``: flash / multi-level sense amplifier, 2^bits − 1 comparators against reference
  columns read at once — NeuroSim 1.4's ``MultilevelSenseAmp`` (MLSA); energy and area grow
  with 2^bits.
* ``survey``: an ADC at the state of the art of Murmann's ADC Performance Survey
  (1997–2024) for its resolution, node and sample rate — the fitted model of the
  ``hwcomponents-adc`` package (Accelergy/CiMLoop, arXiv 2404.06553), which has an energy
  floor at low resolution; for comparing with published accelerators (ISAAC).
"""

from __future__ import annotations

from dataclasses import dataclass

#: ADC kinds and what they are (the cost model has one price model per kind)
ADC_TYPES: dict[str, str] = {
    "sar": "successive-approximation ADC (NeuroSim 1.4 SarADC)",
    "flash": "flash / multi-level sense amplifier (NeuroSim 1.4 MultilevelSenseAmp)",
    "survey": "state of the art of Murmann's ADC survey (hwcomponents-adc fit)",
}

#: ADC full scale = this percentile of |ideal partial sums| of each tile on the
#: calibration inputs (the simulator's calibration, ``simulator._calibrate``): the top
#: 0.01 % clip rather than stretching every step for a rare outlier.
ADC_RANGE_PERCENTILE = 99.99

#: input drive modes (``hw.input_mode``)
INPUT_MODES: dict[str, str] = {
    "bit_serial": "one input bit per read cycle on every row, MSB..LSB (NeuroSim's default)",
    "dac": "one multi-level analog input per row per vector (b-bit DAC)",
}


@dataclass(frozen=True)
class ADCSpec:
    """One column ADC: kind, resolution, full-scale rule and how many columns share it."""

    kind: str
    bits: int
    #: columns multiplexed onto one ADC (NeuroSim ``numColMuxed``): conversions per ADC
    #: per read cycle, and the column-mux width
    cols_per_adc: int
    range_percentile: float = ADC_RANGE_PERCENTILE

    @property
    def levels(self) -> int:
        return 2**self.bits


@dataclass(frozen=True)
class DriverSpec:
    """Row drivers: bit-serial word-line pulses (1 bit/cycle) or a b-bit DAC per row."""

    mode: str
    act_bits: int

    @property
    def dac_bits(self) -> int:
        return 1 if self.mode == "bit_serial" else self.act_bits


@dataclass(frozen=True)
class BufferSpec:
    """Activation buffers. NeuroSim 1.4's defaults are register files at every level
    (Param.cpp: globalBufferType = tileBufferType = peBufferType = false → register file),
    sized here from the largest layer's inputs + outputs, double-buffered."""

    kind: str = "register_file"
    double_buffered: bool = True


@dataclass(frozen=True)
class InterconnectSpec:
    """Wiring between arrays, PEs and tiles: H-trees (NeuroSim 1.4 HTree.cpp) with the
    global bus folded ``tree_folded_ratio`` times in layout (Param.cpp treeFoldedRatio = 4)
    and inputs toggling at ``input_toggle`` (Param.cpp inputtoggle = 0.18)."""

    kind: str = "htree"
    input_toggle: float = 0.18
    output_toggle: float = 0.5


@dataclass(frozen=True)
class FloorplanSpec:
    """Arrays → processing elements → tiles → chip, sized per network as NeuroSim 1.4
    sizes them (Chip.cpp ChipFloorPlan; the search is ``cost/floorplan.py``).

    Tile and PE sides are powers of two searched for the best utilization, never below
    ``min_tile_arrays`` (conventional tiles) and ``min_pe_arrays`` (PEs) subarrays a side
    (Chip.cpp: 4·numRowSubArray and 2·numRowSubArray); ``novel_mapping`` maps the layers
    with the network's most common kernel as one PE per kernel tap (Param.cpp novelMapping
    = true, NeuroSim's default). Each layer gets whole tiles of its own, so a small layer
    leaves array slots unused, which is reported. ``exact_neurosim``: NeuroSim's search
    to the letter (the cross-check uses it); ours tries the minimum sizes and keeps small
    FC layers in NM tiles, so pruning never grows the chip (``cost/floorplan.py``).
    """

    novel_mapping: bool = True
    exact_neurosim: bool = False
    min_tile_arrays: int = 4
    min_pe_arrays: int = 2


@dataclass(frozen=True)
class Periphery:
    """Everything around the cells of one chip."""

    adc: ADCSpec
    driver: DriverSpec
    buffer: BufferSpec
    interconnect: InterconnectSpec
    floorplan: FloorplanSpec

"""Counts × prices: energy, area and latency of one inference, with a breakdown per term.

Composition follows DNN+NeuroSim V1.4's chip (the reference the tests hold us to): arrays
with their column periphery (ADCs shared by ``cols_per_adc`` columns, shift-adders) and
row drivers form *subarrays*; ``pe_arrays²`` subarrays with an adder tree and buffers form
a PE; 2×2 PEs with buffers and an H-tree form a tile; tiles sit in a grid on the chip with
a global buffer and bus (``hw.periphery().floorplan``). Every layer gets whole tiles of
its own: array slots it leaves empty show in ``array_utilization``, the layout's slack
(subarray bounding boxes, empty grid slots) in ``area.unused_mm2``.

Latency: NeuroSim's synchronous clock is beta·(line delay + ADC conversion); each input bit
plane reads every array of a layer once, the ADC serving its columns one after another
(``cols_per_adc`` clock cycles); buffers and wires add their own time. Layer-by-layer
latency (``latency_us``) is the sum over layers; ``latency.pipelined_us`` is the slowest
layer, the time per image of a pipelined chip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..devices import DeviceModel
from ..hw.config import HardwareConfig
from ..hw.periphery import FloorplanSpec
from ..mapping import LayerMapping, Mapping
from . import components as C
from .counts import PSUM_EXTRA_BITS, layer_counts
from .floorplan import ChipFloorplan, LayerPlacement, LayerShape, TileKind, neurosim_floorplan

#: energy terms (``energy.<term>_nj``); NeuroSim counterparts in docs/concepts.md
ENERGY_TERMS = (
    "cells", "adc", "wordline", "mux", "dac", "shift_add", "adder_tree",
    "activation", "buffer", "interconnect", "leakage",
)  # fmt: skip
AREA_TERMS = (
    "cells", "adc", "drivers", "shift_add", "adder_tree", "activation", "buffer",
    "interconnect", "unused",
)  # fmt: skip
LATENCY_TERMS = ("adc", "accumulation", "buffer", "interconnect")

#: 1T1R cell aspect (NeuroSim Param.cpp: 4 F high × 12 F wide = 48 F²); cells of other
#: devices keep the 1:3 aspect at their own area
CELL_ASPECT_H_OVER_W = 4.0 / 12.0
#: interconnect energy per bit and mm of H-tree / bus (fJ) at the recorded nodes: NeuroSim
#: HTree.cpp / Bus.cpp / XYBus.cpp, repeated wires at V_dd, fitted to the recorded
#: interconnect energies over the grid at NeuroSim's toggle rates (Param.cpp inputtoggle =
#: 0.18, outputtoggle = 0.5); a chip's ``InterconnectSpec`` toggles scale them linearly
WIRE_IN_FJ_PER_BIT_MM = {32.0: 2.08, 22.0: 1.73}
WIRE_OUT_FJ_PER_BIT_MM = {32.0: 20.1, 22.0: 17.5}
FITTED_INPUT_TOGGLE, FITTED_OUTPUT_TOGGLE = 0.18, 0.5
#: leakage power per mm² of periphery (µW), fitted to NeuroSim's recorded tile leakage
LEAK_UW_PER_MM2 = {32.0: 0.5, 22.0: 0.3}
#: ReLU / requantize unit per output (fJ), NeuroSim BitShifter + max-pool, fitted
ACTIVATION_FJ = {32.0: 27.0, 22.0: 14.0}
#: register-file buffer area per bit (µm²), NeuroSim Buffer/DFF register files, fitted
BUFFER_UM2_PER_BIT = {32.0: 1.6, 22.0: 0.75}
#: adder area per bit (µm²), NeuroSim AdderTree, fitted
ADDER_UM2_PER_BIT = {32.0: 2.6, 22.0: 1.25}
#: interconnect area (global X-Y bus + H-trees, NeuroSim XYBus/HTree), fitted power law
#: exp(c)·(chip side µm)^a·(tile rows + cols)^b·(node nm)^d, our chip side against
#: NeuroSim's recorded IC area over the three networks (max error 2.1×): wider chips need
#: longer and wider buses
IC_AREA_FIT = (1.872, 1.53, -0.908, 0.666)
#: clock cycles a layer spends in buffers, on wires and in accumulation: power laws in
#: (vectors, kept rows, kept columns, tiles, row tiles), fitted to NeuroSim's recorded
#: per-layer latencies of the MLP, CNN and wide CNN (a conv's kernel taps as one layer;
#: max error 2.4×, 3.4×, 3.4× per layer, totals within 0.8-1.2×)
BUFFER_CYCLES_FIT = (3.011, 0.61, -0.009, 0.399, -0.377, 0.469)
WIRE_CYCLES_FIT = (1.892, 0.702, -0.09, -0.016, 0.073, 0.532)
ACCUM_CYCLES_FIT = (0.072, 1.034, 0.046, 0.274, -0.696, 0.514)


def _cycles(fit: tuple[float, ...], v: int, rows: int, cols: int, tiles: int, rt: int) -> float:
    c, *p = fit
    x = (v, max(rows, 1), max(cols, 1), max(tiles, 1), max(rt, 1))
    return math.exp(c + sum(pi * math.log(xi) for pi, xi in zip(p, x, strict=True)))


@dataclass
class Floorplan:
    """The network placed on the chip: NeuroSim's tile/PE choice (``floorplan.py``), one
    placement per mapped layer (members of a kernel-tap group share the group's tiles,
    held by the first member) and the areas of the pieces."""

    chip: ChipFloorplan
    #: per mapped layer, aligned with ``Mapping.layers``: (placement, group size)
    layers: list[tuple[LayerPlacement, int]]
    tiles_per_layer: list[int]
    subarray_um2: float
    tile_um2: dict[str, float]
    chip_um2: float

    @property
    def tiles(self) -> int:
        return self.chip.tiles

    @property
    def arrays(self) -> int:
        """Subarray slots of every allocated tile, used or not."""
        return self.chip.arrays

    @property
    def grid(self) -> tuple[int, int]:
        return self.chip.grid


@dataclass
class CostBreakdown:
    energy_pj: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ENERGY_TERMS, 0.0))
    area_um2: dict[str, float] = field(default_factory=lambda: dict.fromkeys(AREA_TERMS, 0.0))
    latency_ns: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LATENCY_TERMS, 0.0))
    layer_latency_ns: list[float] = field(default_factory=list)
    floorplan: Floorplan | None = None

    @property
    def energy_total_pj(self) -> float:
        return sum(self.energy_pj.values())

    @property
    def area_total_um2(self) -> float:
        return sum(self.area_um2.values())


# -- ADC ---------------------------------------------------------------------------------
def conversion_ns(hw: HardwareConfig) -> float:
    """Time of one ADC conversion of the chip's ADC (``hw.periphery().adc``)."""
    adc = hw.periphery().adc
    if adc.kind == "sar":
        return C.sar_conversion_ns(adc.bits)
    if adc.kind == "flash":
        return C.flash_conversion_ns(adc.bits, hw.tech_nm, hw.array_size)
    return 1e9 / adc_rate_hz(hw)


def clock_ns(hw: HardwareConfig) -> float:
    """Synchronous read cycle: beta·(line delay + conversion), never faster than ``freq_mhz``."""
    t = C.CLOCK_BETA * (C.line_delay_ns(hw.array_size, hw.tech_nm) + conversion_ns(hw))
    return max(t, 1e3 / hw.freq_mhz)


def adc_rate_hz(hw: HardwareConfig) -> float:
    """Survey ADC: converts once per clock of the digital periphery."""
    return hw.freq_mhz * 1e6


def converter_energy_pj(hw: HardwareConfig) -> float:
    adc = hw.periphery().adc
    if adc.kind == "sar":
        return C.sar_energy_pj(adc.bits, hw.tech_nm)
    if adc.kind == "flash":
        return C.flash_energy_pj(adc.bits, hw.tech_nm, hw.array_size)
    return C.survey_energy_pj(adc.bits, hw.tech_nm, adc_rate_hz(hw))


def adc_area_um2(hw: HardwareConfig) -> float:
    adc = hw.periphery().adc
    if adc.kind == "sar":
        return C.sar_area_um2(adc.bits, hw.tech_nm)
    if adc.kind == "flash":
        return C.flash_area_um2(adc.bits, hw.tech_nm)
    return C.survey_area_um2(adc.bits, hw.tech_nm, adc_rate_hz(hw))


# -- floorplan -----------------------------------------------------------------------------
def _cell_dims_f(dev: DeviceModel) -> tuple[float, float]:
    w = math.sqrt(dev.cell_area_f2 / CELL_ASPECT_H_OVER_W)
    return w, dev.cell_area_f2 / w


def subarray_area_um2(hw: HardwareConfig, dev: DeviceModel, cells_per_weight: int) -> float:
    """NeuroSim's subarray bounding box: column periphery stacked under the array at the
    array's width, row drivers and mux decoder in a side column (components.SIDE_WIDTH_F)."""
    f = hw.tech_nm * 1e-3
    w_cell, h_cell = _cell_dims_f(dev)
    a = hw.array_size
    width = (a * w_cell + C.SIDE_WIDTH_F) * f
    per_col = (
        adc_area_um2(hw) / hw.cols_per_adc
        + C.shift_add_area_um2(hw.adc_bits, cells_per_weight, hw.tech_nm)
        + C.column_periphery_area_um2(hw.tech_nm)
    )
    height = a * h_cell * f + per_col / (w_cell * f)
    return width * height


def floorplan(
    mapping: Mapping, hw: HardwareConfig, dev: DeviceModel, spec: FloorplanSpec | None = None
) -> Floorplan:
    """NeuroSim's floorplan of the mapped network (``floorplan.neurosim_floorplan``): a
    kernel-tap group is one layer of ``taps`` PEs, every other layer one of its own.
    ``spec`` overrides the chip's (``hw.periphery().floorplan``)."""
    layers = list(mapping.layers.values())
    groups = list(_groups(layers).values())
    shapes = [
        LayerShape(layers[m[0]].rows_physical, len(m), layers[m[0]].cols_physical) for m in groups
    ]
    chip = neurosim_floorplan(shapes, hw.array_size, spec or hw.periphery().floorplan)
    placed: list[tuple[LayerPlacement, int] | None] = [None] * len(layers)
    tiles_per_layer = [0] * len(layers)
    for members, p in zip(groups, chip.layers, strict=True):
        for i in members:
            placed[i] = (p, len(members))
        tiles_per_layer[members[0]] = p.tiles
    cpw = max((lm.slices * lm.cols_per_weight for lm in layers), default=1)
    sub = subarray_area_um2(hw, dev, cpw)
    kinds = [k for k in (chip.nm, chip.cm) if k is not None]
    tile_um2 = {k.name: k.arrays * sub + _tile_overhead_um2(hw, k) for k in kinds}
    n = chip.tiles
    rows, cols = chip.grid
    tile_sum = sum(p.tiles * tile_um2[p.kind.name] for p in chip.layers)
    # the chip is the tile grid; its empty slots (rows·cols − n) are as large as the mean tile
    chip_um2 = tile_sum * (rows * cols) / max(n, 1)
    return Floorplan(chip, placed, tiles_per_layer, sub, tile_um2, chip_um2)  # type: ignore[arg-type]


def _groups(layers: list[LayerMapping]) -> dict[object, list[int]]:
    """Indices of layers per group (``extra['group']``; ungrouped layers stand alone)."""
    out: dict[object, list[int]] = {}
    for i, lm in enumerate(layers):
        out.setdefault(lm.extra.get("group", ("layer", i)), []).append(i)
    return out


def _tile_adder_and_buffer_bits(hw: HardwareConfig, kind: TileKind) -> tuple[float, float]:
    """Adder bits and buffer bits of one tile (NeuroSim ProcessingUnit / Tile): each PE's
    trees join its subarray rows, one tree per ADC column group; the tile's trees join its
    PE rows (NM: the taps); buffers hold the tile's inputs and partial sums, twice over when
    double-buffered (``BufferSpec``)."""
    a = hw.array_size
    psum = hw.adc_bits + hw.weight_bits + hw.act_bits + PSUM_EXTRA_BITS
    pe_trees = kind.pe_arrays * a / hw.cols_per_adc
    pe_adders = kind.pes * (kind.pe_arrays - 1) * pe_trees * psum
    tile_adders = (kind.pes_per_side - 1) * (kind.output_cols / hw.cols_per_adc) * psum
    copies = 2 if hw.periphery().buffer.double_buffered else 1
    buffers = copies * (kind.input_rows * hw.act_bits + kind.output_cols * psum)
    return pe_adders + tile_adders, buffers


def _tile_overhead_um2(hw: HardwareConfig, kind: TileKind) -> float:
    """Adder trees and buffers of the tile's PEs and of the tile itself."""
    adders, buffers = _tile_adder_and_buffer_bits(hw, kind)
    t = hw.tech_nm
    return adders * C.by_node(t, ADDER_UM2_PER_BIT, "area") + buffers * C.by_node(
        t, BUFFER_UM2_PER_BIT, "area"
    )


# -- the estimate ------------------------------------------------------------------------------
def estimate_breakdown(
    mapping: Mapping, hw: HardwareConfig, dev: DeviceModel, spec: FloorplanSpec | None = None
) -> CostBreakdown:
    """Energy (pJ), area (µm²) and latency (ns) of one inference, per term (``spec``: a
    floorplan rule other than the chip's, e.g. NeuroSim's exact one)."""
    out = CostBreakdown()
    if not dev.analog:
        return _digital(mapping, hw, dev, out)
    t = hw.tech_nm
    fp = floorplan(mapping, hw, dev, spec)
    out.floorplan = fp
    e, ar, lat = out.energy_pj, out.area_um2, out.latency_ns
    w_cell, _ = _cell_dims_f(dev)
    t_conv = conversion_ns(hw)
    clk = clock_ns(hw)
    e_conv = converter_energy_pj(hw)
    e_wl = C.wordline_energy_fj(hw.array_size, w_cell, t) * 1e-3
    e_sw = C.wl_switch_fj(t) * 1e-3
    wires = hw.periphery().interconnect
    wire_in = C.by_node(t, WIRE_IN_FJ_PER_BIT_MM) * wires.input_toggle / FITTED_INPUT_TOGGLE
    wire_out = C.by_node(t, WIRE_OUT_FJ_PER_BIT_MM) * wires.output_toggle / FITTED_OUTPUT_TOGGLE
    chip_side_mm = math.sqrt(fp.chip_um2) * 1e-3
    layer_terms: list[dict[str, float]] = []
    for lm, tiles, (place, share) in zip(
        mapping.layers.values(), fp.tiles_per_layer, fp.layers, strict=True
    ):
        c = layer_counts(lm, hw, dev.g_min_us, dev.g_range_us, tiles, place, share)
        g_per_conv = c.read_g_us / c.conversions if c.conversions else 0.0
        e["cells"] += c.conversions * C.column_current_energy_pj(
            g_per_conv, dev.read_voltage_v, t_conv, t
        )
        e["adc"] += c.conversions * e_conv
        # every row driver of a read array switches each mux step (NeuroSim
        # wlNewSwitchMatrix.CalculatePower(numColMuxed, ...)); driven rows charge their WL
        e["wordline"] += c.wl_pulses * hw.cols_per_adc * e_wl
        e["wordline"] += c.array_reads * hw.array_size * hw.cols_per_adc * e_sw
        e["mux"] += c.array_reads * C.mux_fj(hw.array_size, t) * 1e-3
        if c.dac_conversions:
            e["dac"] += c.dac_conversions * _dac_pj(hw)
        e["shift_add"] += c.shift_adds * C.shift_add_fj(hw.adc_bits, t) * 1e-3
        e["adder_tree"] += c.tree_adds * C.adder_fj(c.tree_add_bits, t) * 1e-3
        e["activation"] += c.activations * C.by_node(t, ACTIVATION_FJ) * 1e-3
        e["buffer"] += c.buffer_bits * C.buffer_fj_per_bit(t) * 1e-3
        e["interconnect"] += (
            (c.wire_in_bits * wire_in + c.wire_out_bits * wire_out) * chip_side_mm * 1e-3
        )
        # latency of this layer: every bit plane reads every array, the ADC converting its
        # columns one per clock; buffers, wires and adders add their cycles
        data = hw.act_bits / 8.0  # the fits were recorded at 8-bit activations
        geo = (c.vectors, lm.rows_logical, lm.cols_logical, tiles, lm.row_tiles)
        t_adc = c.vectors * c.read_cycles * hw.cols_per_adc * clk
        t_buf = _cycles(BUFFER_CYCLES_FIT, *geo) * data * clk
        t_wire = _cycles(WIRE_CYCLES_FIT, *geo) * data * clk
        t_acc = _cycles(ACCUM_CYCLES_FIT, *geo) * clk if lm.row_tiles > 1 or lm.slices > 1 else 0.0
        layer_terms.append(
            {"adc": t_adc, "accumulation": t_acc, "buffer": t_buf, "interconnect": t_wire}
        )
    _areas(mapping, hw, dev, fp, ar)
    # grouped layers (kernel taps in parallel PEs) take the time of their slowest member
    layers = list(mapping.layers.values())
    for members in _groups(layers).values():
        slowest = max((layer_terms[i] for i in members), key=lambda d: sum(d.values()))
        for k, v in slowest.items():
            lat[k] += v
        out.layer_latency_ns.append(sum(slowest.values()))
    total_ns = sum(out.layer_latency_ns)
    e["leakage"] = C.by_node(t, LEAK_UW_PER_MM2) * (fp.chip_um2 * 1e-6) * total_ns * 1e-3
    return out


def _dac_pj(hw: HardwareConfig) -> float:
    """b-bit capacitive DAC per driven row: 2^b unit capacitors of 1 fF at V_dd (Saberi et
    al., IEEE TCAS-I 58(8), 2011; unit capacitance an order of magnitude)."""
    return 1e-15 * 2 ** hw.periphery().driver.dac_bits * C.vdd(hw.tech_nm) ** 2 * 1e12


def _areas(mapping: Mapping, hw: HardwareConfig, dev: DeviceModel, fp: Floorplan, ar: dict) -> None:
    t = hw.tech_nm
    f = t * 1e-3
    n_arrays = fp.arrays
    adcs = n_arrays * hw.array_size / hw.cols_per_adc
    cpw = max((lm.slices * lm.cols_per_weight for lm in mapping.layers.values()), default=1)
    ar["cells"] = n_arrays * hw.array_size**2 * dev.cell_area_f2 * f**2
    ar["adc"] = adcs * adc_area_um2(hw)
    ar["shift_add"] = n_arrays * hw.array_size * C.shift_add_area_um2(hw.adc_bits, cpw, t)
    ar["drivers"] = n_arrays * hw.array_size * C.column_periphery_area_um2(t)
    for p in fp.chip.layers:
        adders, buffers = _tile_adder_and_buffer_bits(hw, p.kind)
        ar["adder_tree"] += p.tiles * adders * C.by_node(t, ADDER_UM2_PER_BIT, "area")
        ar["buffer"] += p.tiles * buffers * C.by_node(t, BUFFER_UM2_PER_BIT, "area")
    lanes = max(lm.cols_logical for lm in mapping.layers.values())
    ar["activation"] = lanes * 300.0 * C.area_scale(t, 45.0)  # ~ one 8-bit multiplier per lane
    chip_side_um = math.sqrt(fp.chip_um2)
    c0, a, b, d = IC_AREA_FIT
    ar["interconnect"] = math.exp(
        c0 + a * math.log(chip_side_um) + b * math.log(sum(fp.grid)) + d * math.log(t)
    )
    used = sum(v for k, v in ar.items() if k != "unused")
    ar["unused"] = max(fp.chip_um2 - used, 0.0)  # the chip is the tile grid's bounding box


def _digital(
    mapping: Mapping, hw: HardwareConfig, dev: DeviceModel, out: CostBreakdown
) -> CostBreakdown:
    """Digital SRAM baseline: every stored weight bit read once per vector, one 8-bit MAC
    each (Horowitz ISSCC 2014, 45 nm: 8-bit multiply 0.2 pJ, 16-bit add 0.05 pJ)."""
    t = hw.tech_nm
    s = C.energy_scale(t, 45.0)
    e, ar, lat = out.energy_pj, out.area_um2, out.latency_ns
    for lm in mapping.layers.values():
        v = lm.vectors_per_inference
        e["cells"] += v * lm.cells * dev.cell_read_energy_pj() * s
        e["adder_tree"] += v * lm.macs_per_vector * (0.2 + 0.05) * s
        e["buffer"] += (
            v * (lm.rows_logical + lm.cols_logical) * hw.act_bits * C.buffer_fj_per_bit(t) * 1e-3
        )
        ar["cells"] += lm.tiles * hw.array_size**2 * dev.cell_area_f2 * (t * 1e-3) ** 2
        n_ns = v * math.ceil(lm.rows_logical / hw.array_size) * lm.weight_bits * 1e3 / hw.freq_mhz
        lat["accumulation"] += n_ns
        out.layer_latency_ns.append(n_ns)
    lanes = max(lm.cols_logical for lm in mapping.layers.values())
    ar["adder_tree"] = lanes * 300.0 * C.area_scale(t, 45.0)
    return out


def estimate_cost(
    mapping: Mapping, hw: HardwareConfig, device_model: DeviceModel
) -> dict[str, float]:
    """Flat metrics: energy (nJ), area (mm²), latency (µs) and every term of each."""
    b = estimate_breakdown(mapping, hw, device_model)
    energy_pj = b.energy_total_pj
    macs = mapping.mac_count
    lat = b.layer_latency_ns
    out: dict[str, float] = {
        "energy_nj": energy_pj * 1e-3,
        "area_mm2": b.area_total_um2 * 1e-6,
        "latency_us": sum(lat) * 1e-3,
        "latency.pipelined_us": (max(lat) if lat else 0.0) * 1e-3,
        "tops_per_w": (2.0 * macs / (energy_pj * 1e-12) / 1e12) if energy_pj > 0 else 0.0,
        "tiles": float(mapping.tiles),
        "mac_count": float(macs),
        # arrays holding weights / arrays placed in the allocated tiles: pruning that frees
        # arrays but no whole tile lowers this, not the chip area
        "array_utilization": (
            mapping.tiles / b.floorplan.arrays if b.floorplan and b.floorplan.arrays else 1.0
        ),
    }
    out.update({f"energy.{k}_nj": v * 1e-3 for k, v in b.energy_pj.items()})
    out.update({f"area.{k}_mm2": v * 1e-6 for k, v in b.area_um2.items()})
    out.update({f"latency.{k}_us": v * 1e-3 for k, v in b.latency_ns.items()})
    return out

"""Analytic energy, area and latency of one inference, from the same Mapping the simulator uses.

Per layer and per crossbar vector (input vector × output positions × invocations):

* array: every programmed cell on a driven row dissipates V²·G·t_pulse per read cycle
  (NeuroSim's array read term); G is the layer's mean programmed conductance
  (``LayerMapping.mean_g_fraction``) and half of the input bits are assumed to be 1;
* DAC / word lines: every read cycle charges the word line of each driven physical row
  *in every column tile the row spans* (each tile has its own row drivers, as the DAC
  area term assumes): C_WL·V_WL², with C_WL = array_size·(pitch·C_wire + C_gate) and
  V_WL the device's own word-line swing (``DeviceModel.wl_voltage``; logic V_dd for 1T1R
  access gates); in ``dac`` mode each row also pays one b-bit DAC conversion
  (capacitive-DAC energy ∝ 2^b, Saberi et al., IEEE TCAS-I 58(8), 2011);
* ADC: one conversion per (row tile, weight column, slice, input cycle); Walden figure of
  merit E = FOM·2^b (Walden, IEEE JSAC 17(4), 1999);
* shift-and-add: one ~16-bit add per conversion; activation: one requantising
  multiply + add per output; buffers: inputs read from and outputs written to SRAM;
* digital SRAM baseline: weight bits read from SRAM plus a digital 8-bit MAC per MAC
  (no DAC/ADC).

Technology scaling (``hw.tech_nm``): digital and mixed-signal energies scale as C·V_dd²
with C ∝ feature size and the nominal V_dd of each node (Stillmaker & Baas,
Integration 58, 2017, Table of nominal supplies); areas scale as (feature size)²
(Dennard constant-field scaling). Cell energies use the device's own read voltage and
conductance, which do not scale with the CMOS node.
"""

from __future__ import annotations

import math

import numpy as np

from .devices import DeviceModel
from .mapping import HardwareConfig, Mapping

# Nominal supply per node (Stillmaker & Baas 2017: 180 nm 1.8 V ... 7 nm 0.7 V).
_VDD_TABLE = (
    (7.0, 0.70), (10.0, 0.75), (14.0, 0.80), (22.0, 0.80), (32.0, 0.90), (45.0, 1.00),
    (65.0, 1.10), (90.0, 1.20), (130.0, 1.30), (180.0, 1.80),
)  # fmt: skip


def vdd(tech_nm: float) -> float:
    """Nominal supply (V) at ``tech_nm``, log-interpolated between table nodes."""
    nodes = np.log([n for n, _ in _VDD_TABLE])
    volts = [v for _, v in _VDD_TABLE]
    return float(np.interp(math.log(tech_nm), nodes, volts))


def energy_scale(tech_nm: float, ref_nm: float) -> float:
    """E(tech)/E(ref) for CMOS circuits: (L/L_ref)·(V_dd/V_dd,ref)²."""
    return (tech_nm / ref_nm) * (vdd(tech_nm) / vdd(ref_nm)) ** 2


def area_scale(tech_nm: float, ref_nm: float) -> float:
    return (tech_nm / ref_nm) ** 2


# --- component constants, each with its source -----------------------------------------
#: Walden FOM of the SAR ADC (J per conversion step), at 32 nm. Murmann's ADC Performance
#: Survey (1997-2024) places SAR ADCs at 28-65 nm and 0.1-1 GS/s at roughly 1-10 fJ/step;
#: we take 5 fJ/step. Cross-checked against ISAAC's 8-bit ADC in tests (1.56 pJ/conv).
ADC_FOM_J = 5e-15
ADC_REF_NM = 32.0
#: ISAAC (Shafiee et al., ISCA 2016, Table 1): 8 ADCs (8-bit, 1.28 GS/s) = 0.0096 mm² at 32 nm.
ADC_AREA_8B_MM2 = 0.0012
#: Word lines are modelled physically: one driver event charges the row's word line,
#: C_WL = array_size · (cell pitch · C_wire + C_gate), to the device's word-line voltage.
#: C_wire = 0.2 fF/µm is NeuroSim's array wire capacitance (DNN_NeuroSim 1.4 SubArray.cpp:
#: capRow2 = lengthRow · 0.2e-15/1e-6, "WL for 1T1R"); C_gate ≈ 0.1 fF per minimum-width
#: access gate (NeuroSim's PTM LP gate + fringe capacitance ≈ 2 fF/µm of width at 45-65 nm,
#: Technology.cpp, times a ~0.05 µm wide gate; order of magnitude).
C_WIRE_F_PER_UM = 0.2e-15
C_GATE_F = 0.1e-15
#: b-bit capacitive DAC: 2^b unit capacitors of ~1 fF switched per conversion
#: (energy ∝ C_u·2^b·V_dd², Saberi et al., IEEE TCAS-I 58(8), 2011; C_u order of magnitude).
C_UNIT_DAC_F = 1e-15
#: ISAAC Table 1: DAC array of 8×128 1-bit DACs = 0.00017 mm² at 32 nm.
DAC1_AREA_MM2 = 0.00017 / 1024
DAC_REF_NM = 32.0
#: Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: 8-bit add 0.03 pJ,
#: 32-bit add 0.1 pJ (16-bit ≈ 0.05 pJ), 8-bit multiply 0.2 pJ, 8 KB SRAM 64-bit read 10 pJ.
ADD16_PJ = 0.05
ADD8_PJ = 0.03
MUL8_PJ = 0.2
SRAM_PJ_PER_BIT = 10.0 / 64
HOROWITZ_NM = 45.0
#: ISAAC Table 1: 4 shift-and-add units = 0.00024 mm² at 32 nm.
SHIFT_ADD_AREA_MM2 = 0.00006
#: Buffers are SRAM: 6T cell ≈ 140 F² (ITRS) ×1.5 for peripheral circuits (our assumption).
SRAM_BIT_AREA_F2 = 140.0 * 1.5
#: fraction of input bits that are 1 in bit-serial mode (uniform bits; our assumption)
INPUT_ACTIVITY = 0.5
#: Digital activation unit (ReLU/requantise) area per output lane: ~ one 8-bit multiplier,
#: ~ 300 µm² at 45 nm (order of magnitude from standard-cell multipliers).
ACT_AREA_MM2_45 = 300e-6


def adc_energy_pj(bits: int, tech_nm: float) -> float:
    """One ADC conversion: Walden FOM·2^bits, scaled from 32 nm."""
    return ADC_FOM_J * 2**bits * 1e12 * energy_scale(tech_nm, ADC_REF_NM)


def adc_area_mm2(bits: int, tech_nm: float) -> float:
    """SAR ADC area: capacitive DAC ∝ 2^b (Ginsburg & Chandrakasan, JSSC 42(4), 2007) plus
    SAR logic ∝ b, split 50/50 at 8 bits (our assumption), anchored to ISAAC's 8-bit ADC."""
    return (
        ADC_AREA_8B_MM2 * (0.5 * 2 ** (bits - 8) + 0.5 * bits / 8) * area_scale(tech_nm, ADC_REF_NM)
    )


def row_driver_energy_pj(
    array_size: int, cell_area_f2: float, tech_nm: float, wl_voltage_v: float | None = None
) -> float:
    """One word-line charge: C_WL·V_WL², C_WL from wire and gate capacitance of one array row.

    ``wl_voltage_v`` is the word-line swing; None = logic V_dd of ``tech_nm``.
    """
    pitch_um = math.sqrt(cell_area_f2) * tech_nm * 1e-3  # square-cell pitch
    c_row = array_size * (pitch_um * C_WIRE_F_PER_UM + C_GATE_F)
    v = vdd(tech_nm) if wl_voltage_v is None else wl_voltage_v
    return c_row * v**2 * 1e12


def dac_energy_pj(
    bits: int,
    array_size: int,
    cell_area_f2: float,
    tech_nm: float,
    wl_voltage_v: float | None = None,
) -> float:
    """One input event on one row of one tile: word line, plus a b-bit capacitive DAC when
    bits > 1 (the DAC runs at logic V_dd)."""
    e = row_driver_energy_pj(array_size, cell_area_f2, tech_nm, wl_voltage_v)
    if bits > 1:
        e += C_UNIT_DAC_F * 2**bits * vdd(tech_nm) ** 2 * 1e12
    return e


def dac_area_mm2(bits: int, tech_nm: float) -> float:
    return DAC1_AREA_MM2 * max(1.0, 2 ** (bits - 1)) * area_scale(tech_nm, DAC_REF_NM)


def estimate_cost(
    mapping: Mapping, hw: HardwareConfig, device_model: DeviceModel
) -> dict[str, float]:
    """Energy (nJ), area (mm²), latency (µs) per inference with component breakdowns."""
    dev = device_model
    t = hw.tech_nm
    e_dig = energy_scale(t, HOROWITZ_NM)
    f_hz = hw.freq_mhz * 1e6
    e = dict.fromkeys(("array", "adc", "dac", "shift_add", "activation", "buffer"), 0.0)
    a = dict.fromkeys(("array", "adc", "dac", "shift_add", "activation", "buffer"), 0.0)
    latency_s = 0.0
    f_mm = t * 1e-6  # feature size in mm
    max_buf_bits = 0.0
    max_lanes = 0
    for lm in mapping.layers.values():
        v = lm.vectors_per_inference
        cyc = lm.input_cycles(hw)
        rows, cols = lm.rows_physical, lm.cols_physical
        max_buf_bits = max(max_buf_bits, (lm.rows_logical + lm.cols_logical) * v * hw.act_bits)
        max_lanes = max(max_lanes, lm.cols_logical)
        a["array"] += lm.tiles * hw.array_size**2 * dev.cell_area_f2 * f_mm**2
        if dev.analog:
            g = dev.g_min_us + lm.mean_g_fraction * dev.g_range_us
            activity = (
                INPUT_ACTIVITY if (hw.input_mode == "bit_serial" or lm.pm1_input) else 1.0 / 3.0
            )
            # DAC mode: mean V² of a uniform amplitude in [0, V] is V²/3
            e["array"] += v * cyc * rows * cols * activity * dev.cell_read_energy_pj(g)
            dac_bits = (
                1
                if (hw.input_mode == "bit_serial" or (lm.binary_mram and lm.pm1_input))
                else hw.act_bits
            )
            # each physical row has one word line per column tile it spans
            e["dac"] += (
                v
                * cyc
                * rows
                * lm.col_tiles
                * dac_energy_pj(
                    dac_bits, hw.array_size, dev.cell_area_f2, t, dev.wl_voltage(vdd(t))
                )
            )
            conv = v * lm.adc_conversions_per_vector(hw)
            e["adc"] += conv * adc_energy_pj(hw.adc_bits, t)
            e["shift_add"] += conv * ADD16_PJ * e_dig
            adcs_per_tile = math.ceil(hw.array_size / hw.cols_per_adc)
            a["adc"] += lm.tiles * adcs_per_tile * adc_area_mm2(hw.adc_bits, t)
            a["dac"] += lm.row_tiles * lm.col_tiles * hw.array_size * dac_area_mm2(dac_bits, t)
            a["shift_add"] += lm.tiles * adcs_per_tile * SHIFT_ADD_AREA_MM2 * area_scale(t, 32.0)
            conv_per_adc_cycle = math.ceil(hw.cols_per_adc / lm.cols_per_weight)
            latency_s += v * cyc * conv_per_adc_cycle / f_hz
        else:
            # digital SRAM: every stored weight bit read once per vector, one 8-bit MAC each
            e["array"] += v * lm.cells * dev.cell_read_energy_pj() * e_dig
            e["shift_add"] += v * lm.macs_per_vector * (MUL8_PJ + ADD16_PJ) * e_dig
            # one MAC per clock per column lane of each tile
            latency_s += v * math.ceil(lm.rows_logical / hw.array_size) * lm.weight_bits / f_hz
        e["activation"] += v * lm.cols_logical * (MUL8_PJ + ADD8_PJ) * e_dig
        e["buffer"] += (
            v * (lm.rows_logical + lm.cols_logical) * hw.act_bits * SRAM_PJ_PER_BIT * e_dig
        )
    a["buffer"] = 2 * max_buf_bits * SRAM_BIT_AREA_F2 * f_mm**2  # double-buffered
    a["activation"] = max_lanes * ACT_AREA_MM2_45 * area_scale(t, HOROWITZ_NM)
    energy_pj = sum(e.values())
    macs = mapping.mac_count
    out: dict[str, float] = {
        "energy_nj": energy_pj * 1e-3,
        "area_mm2": sum(a.values()),
        "latency_us": latency_s * 1e6,
        "tops_per_w": (2.0 * macs / (energy_pj * 1e-12) / 1e12) if energy_pj > 0 else 0.0,
        "tiles": float(mapping.tiles),
        "mac_count": float(macs),
    }
    out.update({f"energy.{k}_nj": v * 1e-3 for k, v in e.items()})
    out.update({f"area.{k}_mm2": v for k, v in a.items()})
    return out


def yan_vlsi2019_config() -> HardwareConfig:
    """Preset of the 256×256 HfO2 ReRAM macro of B. Yan et al., VLSI 2019 (seed 003):
    0.15 µm CMOS, 64K cells (256×256), 50 MHz, 8-bit precision, 1.52 mW, 0.257 pJ/MAC.

    The macro integrates each column current over a rate-coded 8-bit input window and
    converts it once with an integrate-and-fire converter: one 8-bit conversion per
    column per input vector, i.e. our ``dac`` input mode with an 8-bit converter. Cells
    are 1T1R HfO2 with one weight per differential pair; ternary weights (2 bits) on
    1-bit cells is our assumption (the slide does not give the weight precision).
    """
    return HardwareConfig(
        device="reram",
        array_size=256,
        adc_bits=8,
        act_bits=8,
        weight_bits=2,
        cell_bits=1,
        cols_per_adc=8,
        input_mode="dac",
        tech_nm=150.0,
        freq_mhz=50.0,
    )

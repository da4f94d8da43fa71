"""Cited prices: energy per action, area per instance, time per action, by CMOS node.

Accelergy's component-model role: every function here prices *one* action or instance
of one part, and says where its form and numbers come from. Counts live in
``counts.py``; nothing here knows the network.

Main source: DNN+NeuroSim V1.4 (github neurosim/DNN_NeuroSim_V1.4, commit in
``tests/data/neurosim/runs.json``), whose circuit models are fits to SPICE (PTM LP
transistors, its ``Technology.cpp``). Where a form is NeuroSim's own closed form (the
SAR ADC power fit, the column-current term, conversion times, supplies) it is copied
with the file it comes from; where NeuroSim computes a part from transistor sizing we
use a closed form of the same shape whose coefficients were fitted to NeuroSim's
recorded per-term outputs over the grid in ``tests/data/neurosim/`` (the fit script is
``benchmarks/neurosim/fit_components.py``; each constant says so). Other sources:
Murmann's ADC Performance Survey via the ``hwcomponents-adc`` fit (Accelergy/CiMLoop,
Andrulis et al., arXiv 2404.06553), Horowitz ISSCC 2014 for digital arithmetic.

Units: energy pJ, area µm², time ns, conductance µS, node nm.
"""

from __future__ import annotations

import math

import numpy as np

# -- supplies and scaling --------------------------------------------------------------------
#: LP nominal supply per node (NeuroSim 1.4 Technology.cpp, PTM LP models 130..22 nm, IRDS
#: 2016/2017/2021 below); 150/180 nm from Stillmaker & Baas, Integration 58 (2017)
_VDD_LP = (
    (7.0, 0.70), (10.0, 0.70), (14.0, 0.75), (22.0, 0.85), (32.0, 0.90), (45.0, 1.00),
    (65.0, 1.10), (90.0, 1.20), (130.0, 1.30), (150.0, 1.50), (180.0, 1.80),
)  # fmt: skip


def _interp_log(node_nm: float, table: tuple[tuple[float, float], ...]) -> float:
    """Value at ``node_nm``, linear in log(node) between table nodes (clamped at the ends)."""
    xs = np.log([n for n, _ in table])
    ys = [v for _, v in table]
    return float(np.interp(math.log(node_nm), xs, ys))


def _interp_loglog(node_nm: float, table: tuple[tuple[float, float], ...]) -> float:
    """Power-law interpolation (log value vs log node) for quantities spanning decades."""
    xs = np.log([n for n, _ in table])
    ys = np.log([v for _, v in table])
    return float(math.exp(np.interp(math.log(node_nm), xs, ys)))


def vdd(node_nm: float) -> float:
    """Logic supply (V) of the periphery at ``node_nm``."""
    return _interp_log(node_nm, _VDD_LP)


def energy_scale(node_nm: float, ref_nm: float) -> float:
    """CMOS switching energy ratio C·V² with C ∝ feature size (Dennard)."""
    return (node_nm / ref_nm) * (vdd(node_nm) / vdd(ref_nm)) ** 2


def area_scale(node_nm: float, ref_nm: float) -> float:
    """Layout area ratio ∝ (feature size)²."""
    return (node_nm / ref_nm) ** 2


# -- SAR ADC ---------------------------------------------------------------------------------
#: NeuroSim 1.4 SarADC.cpp GetColumnPower, LP branch: converter power (a·bits + c) µW per
#: node, fitted there to Cadence simulations of a SAR ADC
_SAR_POWER_UW = {
    130.0: (8.4483, 65.243), 90.0: (5.9869, 37.462), 65.0: (3.7506, 25.844),
    45.0: (2.1691, 16.693), 32.0: (1.1294, 8.8998), 22.0: (0.538, 4.3753),
    14.0: (0.3132, 2.5681), 10.0: (0.1823, 1.5073), 7.0: (0.1061, 0.8847),
}  # fmt: skip
#: same file: column-current power k·(R·0.5/V_read)^(−p/ln 10), the current the selected
#: cells draw through the ADC input while it converts, (k, p) per node (LP branch)
_COLUMN_POWER = {
    130.0: (0.169380, 2.303), 90.0: (0.144323, 2.303), 65.0: (0.121272, 2.303),
    45.0: (0.100225, 2.303), 32.0: (0.079449, 2.297), 22.0: (0.072341, 2.303),
    14.0: (0.061085, 2.303), 10.0: (0.051580, 2.303), 7.0: (0.043555, 2.303),
}  # fmt: skip


def _node_pair(node_nm: float, table: dict[float, tuple[float, float]]) -> tuple[float, float]:
    items = tuple(sorted(table.items()))
    a = _interp_loglog(node_nm, tuple((n, v[0]) for n, v in items))
    b = _interp_log(node_nm, tuple((n, v[1]) for n, v in items))
    return a, b


def sar_conversion_ns(bits: int) -> float:
    """One SAR conversion: bits + 1 steps of 1 ns (NeuroSim 1.4 SarADC.cpp CalculateLatency)."""
    return (bits + 1) * 1.0


def sar_energy_pj(bits: int, node_nm: float) -> float:
    """Converter energy of one SAR conversion, without the column current (SarADC.cpp)."""
    a, c = _node_pair(node_nm, _SAR_POWER_UW)
    return (a * bits + c) * 1e-6 * sar_conversion_ns(bits) * 1e-9 * 1e12


def column_current_energy_pj(
    g_us: float, read_voltage_v: float, t_ns: float, node_nm: float
) -> float:
    """Energy of the current of cells of total conductance ``g_us`` sensed for ``t_ns``.

    NeuroSim 1.4 (SarADC.cpp / MultilevelSenseAmp.cpp GetColumnPower) charges the selected
    cells' current inside the ADC as P = k·(R_col·0.5/V_read)^(−p/ln 10) over the
    conversion time, R_col = 1/G_col; p/ln 10 ≈ 1, so P is linear in G_col and the sum
    over reads of G is what matters (counts.py ``read_g_us``). Exact for p = ln 10.
    """
    if g_us <= 0:
        return 0.0
    k, p = _node_pair(node_nm, _COLUMN_POWER)
    expo = p / math.log(10.0)
    r_eff = 0.5 / read_voltage_v / (g_us * 1e-6)
    return k * r_eff ** (-expo) * t_ns * 1e-9 * 1e12


# -- survey ADC (Murmann's ADC Performance Survey, hwcomponents-adc fit) ---------------------
#: Coefficients of hwcomponents-adc 1.0.21 ``adc_data/model.yaml`` (Andrulis et al.,
#: "CiMLoop", arXiv 2404.06553, fitted to B. Murmann, "ADC Performance Survey 1997-2024"):
#: Schreier FOM (dB) = intercept + slope·ln(f), capped per ENOB; energy from FOM and SNDR,
#: times a technology factor exp(tech_intercept + tech_slope·ln(node) + enob_slope·ln(ENOB)
#: + residual); area (µm²) = exp(Σ coefficient·ln(x)). The package declares Python ≥ 3.12,
#: so its model is restated here, not imported.
_SURVEY_FOMS = {"intercept": 213.7806687348118, "ln_f": -2.8719030399529957}
_SURVEY_FOMS_MAX_BY_ENOB = (
    128.3068287398817, 131.52734025085925, 134.7478517618368, 137.96836327281437,
    141.18887478379193, 144.4093862947695, 147.62989780574708, 150.85040931672464,
    154.0709208277022, 157.29143233867975, 160.5119438496573, 163.73245536063487,
    166.95296687161243, 170.17347838259, 173.39398989356755, 176.61450140454514,
    179.83501291552267, 183.05552442650026, 186.27603593747781, 189.49654744845537,
    192.71705895943293,
)  # fmt: skip
_SURVEY_TECH = {
    "intercept": 26.0496215686518,
    "ln_node": 1.8800369206815004,
    "ln_enob": -2.8291256050594527,
    "residual": -1.4702022133784405,
}
_SURVEY_AREA = {
    "ln_node": 0.9932794744745022,
    "ln_f": 0.18071538424508238,
    "ln_energy": 0.29912426192653485,
    "intercept": 1.3461916439910742,
}


def survey_energy_pj(bits: int, node_nm: float, rate_hz: float) -> float:
    """Energy per conversion of a survey-state-of-the-art ADC (hwcomponents-adc model.py
    get_energy: SNDR = 6.02·ENOB + 1.76 dB, E = 1 / (2·10^((FOMS − SNDR)/10)) times the
    technology factor, which the package calibrates in pJ)."""
    foms = _SURVEY_FOMS["intercept"] + _SURVEY_FOMS["ln_f"] * math.log(rate_hz)
    cap = _SURVEY_FOMS_MAX_BY_ENOB[max(0, min(math.ceil(bits), len(_SURVEY_FOMS_MAX_BY_ENOB) - 1))]
    foms = min(foms, cap)
    sndr = bits * 20 * math.log10(2) + 10 * math.log10(1.5)
    e_fom = 1.0 / (2.0 * 10 ** ((foms - sndr) / 10.0))
    t = _SURVEY_TECH
    factor = math.exp(
        t["intercept"]
        + t["ln_node"] * math.log(node_nm)
        + t["ln_enob"] * math.log(bits)
        + t["residual"]
    )
    return e_fom * factor


def survey_area_um2(bits: int, node_nm: float, rate_hz: float) -> float:
    """Area of the survey ADC (hwcomponents-adc model.py get_area)."""
    a = _SURVEY_AREA
    e = survey_energy_pj(bits, node_nm, rate_hz)
    return math.exp(
        a["intercept"]
        + a["ln_node"] * math.log(node_nm)
        + a["ln_f"] * math.log(rate_hz)
        + a["ln_energy"] * math.log(e)
    )


# -- prices fitted to NeuroSim's recorded component outputs --------------------------------
# Each entry: {node_nm: value} at the two nodes recorded (tests/data/neurosim/runs.json, MLP
# grid, speedUpDegree 8 and 1 agree on these per-action prices); other nodes follow by
# power-law interpolation between them and C·V² (energy) or F² (area) scaling outside.
# Values are per-action averages over the grid (printed by
# benchmarks/neurosim/fit_components.py), spread ±10 % over array size and bits.

#: WL switch matrix (1T1R row driver, NeuroSim wlNewSwitchMatrix) per driven row and
#: column-mux step, fJ (NeuroSim 3.5–3.9 at 32 nm, 2.1–2.5 at 22 nm)
WL_SWITCH_FJ = {32.0: 3.70, 22.0: 2.32}
#: column mux + mux decoder per array read, fJ per (array size)² (NeuroSim Mux/ NewMux)
MUX_FJ_PER_A2 = {32.0: 0.0236, 22.0: 0.0165}
#: shift-and-add per ADC conversion: k·(adc_bits + 4.3) fJ (NeuroSim ShiftAdd: adder and
#: DFFs as wide as the ADC output plus the shifted partial sum)
SHIFT_ADD_FJ_PER_BIT = {32.0: 3.44, 22.0: 1.80}
SHIFT_ADD_BITS_OFFSET = 4.3
#: adder-tree add per bit of operand width, fJ (NeuroSim AdderTree, PE/tile/chip)
ADDER_FJ_PER_BIT = {32.0: 1.87, 22.0: 0.99}
#: register-file buffer access per bit, fJ (NeuroSim Buffer / DFF buffers, register file)
BUFFER_FJ_PER_BIT = {32.0: 3.45, 22.0: 1.80}
#: flash (MLSA) conversion: (2^b − 1) comparators against reference columns, each
#: sensing longer at higher resolution and — NeuroSim's reference columns follow the array's
#: rows — on smaller arrays (NeuroSim MultilevelSenseAmp). Energy per comparator level, fJ,
#: recorded at b = 3..8 (rows) on 64/128/256 arrays (columns) with the column current
#: (column_current_energy_pj over the sensing time) taken out; mean over the MLP, CNN and
#: wide-CNN runs (tests/data/neurosim, speedUpDegree 1)
FLASH_FJ_PER_LEVEL = {
    32.0: (
        (1.758, 1.590, 1.379), (2.120, 2.045, 1.904), (2.363, 2.281, 2.161),
        (2.706, 2.532, 2.385), (3.588, 3.068, 2.757), (6.434, 4.693, 3.751),
    ),
    22.0: (
        (1.397, 1.343, 1.362), (1.729, 1.709, 1.783), (1.973, 1.912, 1.968),
        (2.351, 2.173, 2.052), (3.316, 2.760, 2.425), (6.374, 4.520, 3.499),
    ),
}  # fmt: skip
FLASH_BITS = (3, 8)
FLASH_ARRAYS = (64, 128, 256)
#: flash sensing time, ns: MLSA + encoder latency as recorded (NeuroSim
#: MultilevelSenseAmp::CalculateLatency, ColumnLatency_Table of the reference columns), per
#: bits 3..8 (rows) and array size 64/128/256 (columns)
FLASH_NS = {
    32.0: (
        (1.385, 1.256, 1.348), (1.500, 1.438, 1.403), (1.755, 1.630, 1.540),
        (2.378, 2.069, 1.888), (4.079, 3.176, 2.696), (9.314, 6.303, 4.770),
    ),
    22.0: (
        (0.972, 0.927, 1.019), (1.049, 0.998, 1.055), (1.203, 1.100, 1.110),
        (1.570, 1.352, 1.213), (2.541, 1.977, 1.650), (5.435, 3.701, 2.790),
    ),
}  # fmt: skip
#: NeuroSim's synchronous clock: beta·(max(WL switch, column mux + decoder) delay + ADC),
#: beta = 1.4 (Param.cpp validated calibration factor). The row/mux delay grows with the
#: array (RC of longer lines); recorded per (node, array size), ns
CLOCK_BETA = 1.4
LINE_DELAY_NS = {
    32.0: {64: 0.643, 128: 2.133, 256: 8.090},
    22.0: {64: 0.079, 128: 0.088, 256: 0.122},
}


def by_node(node_nm: float, table: dict[float, float], kind: str = "energy") -> float:
    """Table value at ``node_nm``: power law between the recorded nodes; outside them C·V²
    scaling (energy), F² scaling (area) or the nearest node's value (time)."""
    nodes = sorted(table)
    lo, hi = nodes[0], nodes[-1]
    if kind == "time" and not lo <= node_nm <= hi:
        return table[lo] if node_nm < lo else table[hi]
    if node_nm < lo:
        s = energy_scale(node_nm, lo) if kind == "energy" else area_scale(node_nm, lo)
        return table[lo] * s
    if node_nm > hi:
        s = energy_scale(node_nm, hi) if kind == "energy" else area_scale(node_nm, hi)
        return table[hi] * s
    return _interp_loglog(node_nm, tuple((n, table[n]) for n in nodes))


def wordline_energy_fj(array_size: int, cell_width_f: float, node_nm: float) -> float:
    """One word line charged to V_dd: C_row·V_dd², C_row = array_size·cell width·0.2 fF/µm
    (NeuroSim 1.4 SubArray.cpp capRow2 = lengthRow·0.2e-15/1e-6; readDynamicEnergyArray =
    capRow2·V_dd² per driven row and column-mux step)."""
    length_um = array_size * cell_width_f * node_nm * 1e-3
    return length_um * 0.2 * vdd(node_nm) ** 2  # 0.2 fF/µm → fF·V² = fJ


def wl_switch_fj(node_nm: float) -> float:
    return by_node(node_nm, WL_SWITCH_FJ)


def mux_fj(array_size: int, node_nm: float) -> float:
    return by_node(node_nm, MUX_FJ_PER_A2) * array_size**2


def shift_add_fj(adc_bits: int, node_nm: float) -> float:
    return by_node(node_nm, SHIFT_ADD_FJ_PER_BIT) * (adc_bits + SHIFT_ADD_BITS_OFFSET)


def adder_fj(bits: int, node_nm: float) -> float:
    return by_node(node_nm, ADDER_FJ_PER_BIT) * bits


def buffer_fj_per_bit(node_nm: float) -> float:
    return by_node(node_nm, BUFFER_FJ_PER_BIT)


def _flash_lookup(
    table: dict[float, tuple[tuple[float, ...], ...]],
    bits: int,
    node_nm: float,
    array_size: int,
    kind: str,
) -> float:
    """A recorded flash characteristic at (bits, node, array size): linear in log2 of the
    array size between 64 and 256 (clamped), by node as ``by_node``; beyond 8 bits the last
    recorded growth per bit continues."""
    lo, hi = FLASH_BITS
    i = min(max(bits, lo), hi) - lo
    xs = np.log2(FLASH_ARRAYS)
    x = float(np.clip(math.log2(array_size), xs[0], xs[-1]))
    value = by_node(
        node_nm, {n: float(np.interp(x, xs, rows[i])) for n, rows in table.items()}, kind
    )
    if bits > hi:
        last = table[32.0]
        value *= (last[-1][1] / last[-2][1]) ** (bits - hi)
    return value


def flash_energy_pj(bits: int, node_nm: float, array_size: int = 128) -> float:
    """Comparator-bank energy of one flash conversion (without the column current)."""
    per_level = _flash_lookup(FLASH_FJ_PER_LEVEL, bits, node_nm, array_size, "energy")
    return (2**bits - 1) * per_level * 1e-3


def flash_conversion_ns(bits: int, node_nm: float, array_size: int = 128) -> float:
    return _flash_lookup(FLASH_NS, bits, node_nm, array_size, "time")


def line_delay_ns(array_size: int, node_nm: float) -> float:
    """Row / column-mux line delay before each conversion (power law in the array size
    through the recorded sizes, the end slopes beyond them)."""
    per_node = {}
    for n, table in LINE_DELAY_NS.items():
        sizes = sorted(table)
        xs = np.log(sizes)
        ys = np.log([table[a] for a in sizes])
        x = math.log(array_size)
        if x <= xs[0]:
            y = ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0])
        elif x >= xs[-1]:
            y = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * (x - xs[-1])
        else:
            y = float(np.interp(x, xs, ys))
        per_node[n] = math.exp(y)
    return by_node(node_nm, per_node, "time")


# -- areas (F² of the node; NeuroSim layout rules) --------------------------------------------
#: SAR ADC: NeuroSim SarADC.cpp CalculateUnitArea counts (269 + 109·(b−1)) NMOS and
#: (209 + 73·(b−1)) PMOS minimum inverters; one inverter footprint fitted to the recorded
#: SAR areas (183.48 µm² per 3-bit ADC at 32 nm): 212.8 F²
SAR_INV_F2 = 212.8
#: flash (MLSA + encoder) per ADC: a + c·2^b F² (NeuroSim MultilevelSenseAmp and
#: MultilevelSAEncoder areas, fitted at 3 and 8 bits, mean of 32 and 22 nm; within 10 % in
#: between)
FLASH_AREA_F2 = (23057.0, 2617.1)
#: shift-and-add per column: k·(b + 2.4 + 0.75·cells per weight) F² (NeuroSim ShiftAdd)
SHIFT_ADD_AREA_F2 = 1387.0
#: per-column periphery besides ADC and shift-add (precharge, SL switch matrix, column
#: mux): 27 300 F² per column, fitted (NeuroSim subarray areas, constant over A and bits)
COLUMN_PERIPHERY_F2 = 27300.0
#: NeuroSim stacks the column periphery under the array at the array's width and puts the
#: row switch matrix and the column-mux decoder beside it; that side column is 11 900 F
#: wide in every recorded subarray (fitted, constant over array size, bits and node), and
#: the bounding box is the subarray's area (SubArray.cpp CalculateArea: area = height·width)
SIDE_WIDTH_F = 11900.0


def sar_area_um2(bits: int, node_nm: float) -> float:
    f_um = node_nm * 1e-3
    return SAR_INV_F2 * ((269 + 109 * (bits - 1)) + (209 + 73 * (bits - 1))) * f_um**2


def flash_area_um2(bits: int, node_nm: float) -> float:
    a, c = FLASH_AREA_F2
    return (a + c * 2**bits) * (node_nm * 1e-3) ** 2


def shift_add_area_um2(adc_bits: int, cells_per_weight: int, node_nm: float) -> float:
    """Per column."""
    return SHIFT_ADD_AREA_F2 * (adc_bits + 2.4 + 0.75 * cells_per_weight) * (node_nm * 1e-3) ** 2


def column_periphery_area_um2(node_nm: float) -> float:
    return COLUMN_PERIPHERY_F2 * (node_nm * 1e-3) ** 2

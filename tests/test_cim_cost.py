"""Cost model: calibration against published points and monotonic trends."""

import pytest
import torch
from torch import nn

from evaluators.cim.cost import components as C
from evaluators.cim.cost import estimate_cost, yan_vlsi2019_config
from evaluators.cim.layers import CrossbarLinear
from evaluators.cim.mapping import HardwareConfig, Mapping


def _mlp(*sizes):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [CrossbarLinear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _cost(net, hw, k):
    m = Mapping.from_model(net, hw, sample_input=torch.rand(4, k))
    return m, estimate_cost(m, hw, hw.device_model())


def _yan_macro():
    hw = yan_vlsi2019_config()
    # fill the macro: 256 inputs × 128 signed weights = 256 × 256 cells (differential pairs)
    net = nn.Sequential(CrossbarLinear(256, 128, bias=False))
    m, c = _cost(net, hw, 256)
    assert m.tiles == 1 and m.cells == 256 * 256
    return c


# B. Yan et al., VLSI 2019 (seed 003): 256×256 ReRAM macro, 0.15 µm, 50 MHz, 0.257 pJ/MAC
# at 1.52 mW, i.e. 0.257 pJ × 32,768 MACs / 1.52 mW = 5.5 µs per input vector: the 255
# pulse slots (20 ns) of a rate-coded 8-bit input window plus the conversion. Open (issue
# 11): our chip reads the macro in `dac` mode in one cycle and gives 0.150 pJ/MAC (0.108 of
# it chip interconnect at 150 nm) at 1.42 mW over 3.5 µs, so energy is 42 % low while power
# is right only because latency is as low. The macro's own terms (cells, ADC, drivers, DAC,
# shift-add) come to 0.022 pJ/MAC; reading the cells over a 255-slot window at our ReRAM's
# 0.51 V and NeuroSim's 0.59-10 µS instead gives ~3-4 pJ/MAC. The macro's cell voltage and
# conductances are not in any source we could reach, so neither reading is calibrated.
# Before the NeuroSim floorplan search (fixed 16-array tiles) the chip total was 0.257 by
# accident of a larger interconnect.
@pytest.mark.xfail(strict=True, reason="Yan VLSI'19 energy/power/latency together (see comment)")
def test_yan_vlsi2019_macro_energy_power_and_latency_hold_together():
    c = _yan_macro()
    pj_per_mac = c["energy_nj"] * 1e3 / c["mac_count"]
    power_mw = c["energy_nj"] * 1e-9 / (c["latency_us"] * 1e-6) * 1e3
    assert power_mw == pytest.approx(1.52, rel=0.25)
    assert c["latency_us"] == pytest.approx(5.54, rel=0.25)
    assert pj_per_mac == pytest.approx(0.257, rel=0.25)


@pytest.mark.xfail(strict=True, reason="macro-level terms ~10x below Yan VLSI'19 (see comment)")
def test_yan_vlsi2019_macro_terms_per_mac():
    c = _yan_macro()
    macro = ("cells", "adc", "wordline", "mux", "dac", "shift_add")
    pj = sum(c[f"energy.{t}_nj"] for t in macro) * 1e3 / c["mac_count"]
    assert pj == pytest.approx(0.257, rel=0.25)


def test_isaac_adc_energy_per_conversion():
    """ISAAC (Shafiee et al., ISCA 2016, Table 1): 8 ADCs of 8 bits at 1.28 GS/s draw 16 mW
    at 32 nm → 1.5625 pJ per conversion. Our ``survey`` ADC (Murmann's survey fit,
    hwcomponents-adc) at that resolution, node and rate gives 1.93 pJ (+23 %)."""
    assert C.survey_energy_pj(8, 32.0, 1.28e9) == pytest.approx(2e-3 / 1.28e9 * 1e12, rel=0.25)


def _isaac_like_chip():
    """ISAAC's IMA as our chip: 128×128 ReRAM arrays, 2-bit cells, 16-bit weights and
    inputs (bit-serial), one 8-bit ADC per array (128 columns) at 1.28 GS/s, 32 nm."""
    hw = HardwareConfig(
        device="reram", array_size=128, adc_type="survey", adc_bits=8, cols_per_adc=128,
        act_bits=16, weight_bits=16, cell_bits=2, tech_nm=32.0, freq_mhz=1280.0,
    )  # fmt: skip
    net = _mlp(1024, 1024, 1024)
    return _cost(net, hw, 1024)[1]


# ISAAC (Shafiee et al., ISCA 2016, Table 1; restated with its derivations in
# hwcomponents-library isaac.py): per tile 330 mW and 0.372 mm², of which the 12 IMAs'
# 96 ADCs draw 12 × 16 mW (58 %) on 12 × 0.0096 mm² (31 %). Open (issue 11): our chip on
# ISAAC's settings gives ADC shares of 52 % of energy and 23 % of the used area, but for
# another reason: NeuroSim's column mux re-reads the array once per ADC step, so with 128
# columns per ADC our word lines take 45 % of the energy, where ISAAC samples each column
# once into a sample-and-hold and spends the rest in eDRAM, router, DACs and arrays, which
# our NeuroSim-shaped chip (register files, H-tree) does not have.
@pytest.mark.xfail(strict=True, reason="ISAAC ADC share of tile power and area (see comment)")
def test_isaac_adc_share_of_tile_power_and_area():
    c = _isaac_like_chip()
    used_mm2 = c["area_mm2"] - c["area.unused_mm2"]
    assert c["energy.adc_nj"] / c["energy_nj"] == pytest.approx(0.58, rel=0.25)
    assert c["area.adc_mm2"] / used_mm2 == pytest.approx(0.31, rel=0.25)
    assert c["energy.wordline_nj"] / c["energy_nj"] < 0.2  # ISAAC's DACs: 4 of 24 mW/IMA


def test_sar_and_flash_follow_neurosim_forms():
    """SAR energy grows ~linearly in bits (NeuroSim SarADC: (a·b + c)·(b + 1) ns), flash with
    2^b comparators; flash is cheaper at 3 bits and dearer at 8 (NeuroSim: ≈ SAR at 6)."""
    sar = [C.sar_energy_pj(b, 32.0) for b in (3, 8)]
    flash = [C.flash_energy_pj(b, 32.0) for b in (3, 8)]
    assert 2.0 < sar[1] / sar[0] < 5.0
    assert flash[1] / flash[0] > 50
    assert flash[0] < sar[0] and flash[1] > sar[1]
    assert C.sar_conversion_ns(5) == 6.0
    assert C.sar_area_um2(8, 32.0) > C.sar_area_um2(3, 32.0) > 0


# Why this stays a known, documented discrepancy (checked against the sources, issue 4; see
# docs/concepts.md "Cost model calibration"). Reproduce our side with the test body below:
# MLP 784-128-10 gives SONOS/ReRAM = 0.667 (crossbar-only, array + word lines: 0.084).
# * The seed is Bennett et al., "Evaluating complexity and resilience trade-offs in emerging
#   memory inference machines", NICE 2020 (doi 10.1145/3381755.3381782; arXiv 2003.10396).
#   Its table ("Training energy estimates", "simple python benchmarking script", "dominated by
#   VMM (crossbar charging) and neuron activation") gives no device parameters, network
#   sizes or line capacitances, and the script is unpublished. Its ratio is not one number:
#   MLP 6.04/4.24 = 1.42, RNN 42.7/35.6 = 1.20, CNN 2084/480 = 4.34, all VMM-dominated, so
#   it depends on how each network loads the array, not on a per-cell constant.
# * CrossSim has never had an energy model: its readme says it "does not explicitly model
#   the energy, area, or speed" in every tagged version (v2.0, June 2022, through v3.2.0).
#   Its cells (v2.0 = the model of Xiao et al., IEEE TCAS-I 69(4), 2022): SONOS I_max =
#   1600 nA at V_read = 0.1 V vs RRAM_Milo G_max = 225 µS; any V²·G·t read, and NeuroSim's
#   bit-line term C_BL·V_read² (SubArray.cpp), make a SONOS read cheaper than ReRAM.
# * Sandia's published SONOS inference figure points the same way: Xiao et al. TCAS-I 2022
#   report 20 TOPS/W on ResNet50, ">10x" the energy efficiency of state-of-the-art digital
#   and analog inference accelerators (abstract) - no sign of a SONOS read penalty.
# * Word-line (gate) drive hypothesis, tested: every word line of every column tile is charged
#   per read cycle (C_WL·V_WL², NeuroSim 0.2 fF/µm wire + gate load, DeviceModel.wl_voltage_v).
#   Sandia's SONOS cell is "1T,1CTM" (Feinberg, Bennett et al., IRPS 2020, arXiv 2004.00802):
#   the per-input line is a logic-level select gate; no reachable source gives a multi-volt
#   swing per read. Fitting one needs V_WL ≈ 6.9 V (program/erase territory), and then the
#   MLP/RNN(T = 4, 128 hidden)/small CNN give 1.42/1.40/1.20 vs the seed's 1.42/1.20/4.34.
# * Training reading ("online NVM learning"): the only like-for-like Sandia training figures
#   are core-level, each against one SRAM ASIC: ReRAM 430x (Marinella et al., IEEE JETCAS
#   8(1), 2018) and SONOS 120x (Agarwal et al., IEEE JXCDC 5(1), 2019), i.e. ≈3.6, outside
#   1.42 ± 30 %; their per-kernel breakdowns (program/erase voltages, pulse counts) were not
#   reachable, and with devices.py's order-of-magnitude write energies (ReRAM 10 pJ, SONOS
#   1 pJ per cell) forward + backward + one update per cell gives 0.11 for the MLP. A
#   training metric would not reproduce 1.42 without an uncited SONOS update cost.
# Encoding 1.42 would mean fitting a number with no source behind it, so the test stays a
# strict xfail: it starts passing (and fails the suite) only if the model changes.
@pytest.mark.xfail(
    strict=True,
    reason="seed 002 (NICE 2020) gives no device parameters and its SONOS/ReRAM ratio varies "
    "per network (MLP 1.42, RNN 1.20, CNN 4.34); Sandia's cited cells (CrossSim v2.0 SONOS "
    "1.6 µA at 0.1 V vs RRAM_Milo 225 µS) read SONOS cheaper, consistent with its published "
    "20 TOPS/W SONOS engine (Xiao TCAS-I 2022), so our MLP gives ≈0.67; a word-line term needs "
    "an uncited ≈6.9 V swing per read, and Sandia's training cores (430x vs 120x over one "
    "SRAM ASIC) give ≈3.6",
)
def test_sandia_sonos_to_reram_energy_ratio():
    net = _mlp(784, 128, 10)
    _, e_reram = _cost(net, HardwareConfig(device="reram"), 784)
    _, e_sonos = _cost(net, HardwareConfig(device="sonos"), 784)
    assert e_sonos["energy_nj"] / e_reram["energy_nj"] == pytest.approx(6.04 / 4.24, rel=0.30)


def test_word_line_energy_follows_driven_rows_and_mux_steps():
    """Word lines: C_row·V_dd² per driven row and column-mux step (NeuroSim capRow2) plus the
    row switch matrix of every read array; a sparser input (fewer driven rows) costs less."""
    hw = HardwareConfig(device="reram", array_size=64)
    net = _mlp(64, 16)
    dense = Mapping.from_model(net, hw, sample_input=torch.ones(4, 64))
    sparse = Mapping.from_model(net, hw, sample_input=torch.ones(4, 64) * (torch.arange(64) < 8))
    e_dense = estimate_cost(dense, hw, hw.device_model())
    e_sparse = estimate_cost(sparse, hw, hw.device_model())
    assert e_sparse["energy.wordline_nj"] < e_dense["energy.wordline_nj"]
    assert e_sparse["energy.cells_nj"] < e_dense["energy.cells_nj"]
    (lm,) = dense.layers.values()
    assert lm.input_bit_activity and all(a > 0.9 for a in lm.input_bit_activity)
    hw2 = HardwareConfig(device="reram", array_size=64, cols_per_adc=4)
    m2 = Mapping.from_model(net, hw2, sample_input=torch.ones(4, 64))
    assert estimate_cost(m2, hw2, hw2.device_model())["energy.wordline_nj"] == pytest.approx(
        e_dense["energy.wordline_nj"] / 2, rel=1e-6
    )


def test_energy_and_area_grow_with_adc_bits():
    net = _mlp(64, 64, 10)
    prev = None
    for bits in (3, 5, 8, 10):
        _, c = _cost(net, HardwareConfig(adc_bits=bits), 64)
        if prev is not None:
            assert c["energy_nj"] > prev["energy_nj"]
            assert c["area_mm2"] > prev["area_mm2"]
            assert c["energy.adc_nj"] > prev["energy.adc_nj"]
        prev = c


def test_pruning_reduces_tiles_energy_and_area():
    net = _mlp(256, 256, 10)
    hw = HardwareConfig(array_size=64)
    _, full = _cost(net, hw, 256)
    with torch.no_grad():
        net[0].weight[:, 128:] = 0
        net[0].weight[128:, :] = 0
        net[2].weight[:, 128:] = 0
    _, pruned = _cost(net, hw, 256)
    assert pruned["tiles"] < full["tiles"]
    assert pruned["energy_nj"] < full["energy_nj"]
    assert pruned["area_mm2"] < full["area_mm2"]
    assert pruned["mac_count"] < full["mac_count"]


def test_breakdown_sums_and_technology_scaling():
    net = _mlp(64, 32, 10)
    _, c32 = _cost(net, HardwareConfig(tech_nm=32), 64)
    _, c22 = _cost(net, HardwareConfig(tech_nm=22), 64)
    parts = [k for k in c32 if k.startswith("energy.")]
    assert sum(c32[k] for k in parts) == pytest.approx(c32["energy_nj"])
    assert sum(c32[k] for k in c32 if k.startswith("area.")) == pytest.approx(c32["area_mm2"])
    assert c22["energy_nj"] < c32["energy_nj"] and c22["area_mm2"] < c32["area_mm2"]
    assert C.vdd(22) < C.vdd(32)
    assert C.energy_scale(22, 32) == pytest.approx((22 / 32) * (C.vdd(22) / C.vdd(32)) ** 2)
    assert c32["tops_per_w"] == pytest.approx(
        2 * c32["mac_count"] / (c32["energy_nj"] * 1e-9) / 1e12
    )
    assert c32["latency.pipelined_us"] <= c32["latency_us"]


def test_bit_serial_costs_more_conversions_than_dac_and_sram_has_no_adc():
    net = _mlp(64, 32, 10)
    _, bs = _cost(net, HardwareConfig(input_mode="bit_serial", act_bits=8), 64)
    _, dac = _cost(net, HardwareConfig(input_mode="dac", act_bits=8), 64)
    assert bs["energy.adc_nj"] == pytest.approx(8 * dac["energy.adc_nj"])
    assert bs["latency_us"] > dac["latency_us"]
    assert dac["energy.dac_nj"] > 0 and bs["energy.dac_nj"] == 0
    _, sram = _cost(net, HardwareConfig(device="sram"), 64)
    assert sram["energy.adc_nj"] == 0.0 and sram["area.adc_mm2"] == 0.0 and sram["energy_nj"] > 0


def test_flash_costs_more_than_sar_at_high_resolution_only():
    net = _mlp(64, 64, 10)
    lo = {t: _cost(net, HardwareConfig(adc_type=t, adc_bits=3), 64)[1] for t in ("sar", "flash")}
    hi = {t: _cost(net, HardwareConfig(adc_type=t, adc_bits=8), 64)[1] for t in ("sar", "flash")}
    assert lo["flash"]["energy.adc_nj"] < lo["sar"]["energy.adc_nj"]
    assert hi["flash"]["energy.adc_nj"] > hi["sar"]["energy.adc_nj"]


def test_cost_model_reads_the_periphery_specs(monkeypatch):
    """Buffers, wires and the floorplan rule come from ``hw.periphery()``, not constants:
    single buffering halves the buffer area, doubling both wire toggle rates doubles the
    interconnect energy, and NeuroSim's exact search changes the placed arrays."""
    import dataclasses

    from evaluators.cim.hw.periphery import BufferSpec, FloorplanSpec, InterconnectSpec

    hw = HardwareConfig(array_size=64, adc_bits=5, act_bits=8, weight_bits=8)
    net = _mlp(100, 300, 10)
    _, base = _cost(net, hw, 100)
    stock = HardwareConfig.periphery

    def patched(**changes):
        def periphery(self):
            return dataclasses.replace(stock(self), **changes)

        monkeypatch.setattr(HardwareConfig, "periphery", periphery)
        return _cost(net, hw, 100)[1]

    single = patched(buffer=BufferSpec(double_buffered=False))
    assert single["area.buffer_mm2"] == pytest.approx(base["area.buffer_mm2"] / 2)
    busy = patched(interconnect=InterconnectSpec(input_toggle=0.36, output_toggle=1.0))
    assert busy["energy.interconnect_nj"] == pytest.approx(2 * base["energy.interconnect_nj"])
    exact = patched(floorplan=FloorplanSpec(exact_neurosim=True))
    assert exact["array_utilization"] != base["array_utilization"]

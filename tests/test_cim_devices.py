"""Device table: names, cited values, σ scaling."""

import math

import pytest

from evaluators.cim.devices import DEVICE_NAMES, get_device


def test_all_devices_load_and_are_consistent():
    assert set(DEVICE_NAMES) == {"reram", "mram", "pcm", "sonos", "fefet", "sram"}
    for name in DEVICE_NAMES:
        d = get_device(name)
        assert d.name == name
        assert d.g_max_us > d.g_min_us >= 0
        assert d.cell_area_f2 > 0 and d.cell_read_energy_pj() > 0
        assert d.source


def test_unknown_device_error_lists_allowed_names():
    with pytest.raises(ValueError) as e:
        get_device("memristorx")
    for name in DEVICE_NAMES:
        assert name in str(e.value)


def test_pcm_matches_aihwkit_programming_polynomial():
    # aihwkit PCMLikeNoiseModel: σ = 0.26348 + 1.9650 g − 1.1731 g² (µS), g_max = 25 µS
    g = 0.5
    sigma = (0.26348 + 1.9650 * g - 1.1731 * g**2) / 25.0
    assert get_device("pcm").prog_sigma == pytest.approx(sigma, rel=0.01)
    assert get_device("pcm").drift_t0_s == 20.0


def test_sonos_matches_crosssim_saturated_sigma():
    # CrossSim SONOS: σ_I saturates at A = 19.88665 nA over a 1600 nA range
    assert get_device("sonos").prog_sigma == pytest.approx(19.88665 / 1600, rel=0.01)


def test_sonos_full_scale_current_matches_crosssim():
    # CrossSim SONOS (v2.0 custom error model and v3 SONOS.py): I_max = 1600 nA at V_read,
    # i.e. G_max·V_read; and its read costs less than ReRAM's per cell (subthreshold).
    d = get_device("sonos")
    assert d.g_max_us * d.read_voltage_v * 1e3 == pytest.approx(1600.0, rel=1e-6)
    assert d.cell_read_energy_pj() < get_device("reram").cell_read_energy_pj()


def test_scaled_multiplies_every_sigma_and_weight_sigma():
    for name in ("reram", "pcm", "mram"):
        d = get_device(name)
        d10 = d.scaled(10.0)
        assert d10.prog_sigma == pytest.approx(10 * d.prog_sigma)
        assert d10.read_sigma == pytest.approx(10 * d.read_sigma)
        assert d10.weight_sigma() == pytest.approx(10 * d.weight_sigma(), rel=1e-9)
        assert d10.variation_scale == pytest.approx(10.0)
    assert get_device("reram", variation_scale=3.0).prog_sigma == pytest.approx(
        3 * get_device("reram").prog_sigma
    )
    with pytest.raises(ValueError, match="variation_scale"):
        get_device("reram").scaled(-1.0)


def test_weight_sigma_of_differential_pair_and_mram():
    d = get_device("reram")
    assert d.weight_sigma() == pytest.approx(math.hypot(d.prog_sigma, d.read_sigma) / math.sqrt(2))
    m = get_device("mram")
    # seed 000: σ_G = σ_R / μ_R²; relative to G_P − G_AP
    s_p = m.r_p_rel_sigma / m.r_p_ohm
    s_ap = m.r_ap_rel_sigma / m.r_ap_ohm
    expect = math.sqrt((s_p**2 + s_ap**2) / 2) / (1 / m.r_p_ohm - 1 / m.r_ap_ohm)
    assert m.weight_sigma() == pytest.approx(expect)
    assert get_device("sram").weight_sigma() == 0.0
    assert get_device("mram").max_cell_bits == 1


def test_word_line_voltage_defaults_to_logic_vdd_and_rejects_bad_values():
    from dataclasses import replace

    for name in DEVICE_NAMES:
        d = get_device(name)
        # no cited multi-volt read gate swing for any device: all word lines at logic V_dd
        assert d.wl_voltage(0.9) == 0.9
    sonos = replace(get_device("sonos"), wl_voltage_v=2.5)
    assert sonos.wl_voltage(0.9) == 2.5
    for bad in (0.0, -1.0, math.inf, math.nan, "3V"):
        with pytest.raises(ValueError, match="wl_voltage_v"):
            replace(get_device("sonos"), wl_voltage_v=bad)

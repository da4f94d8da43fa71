"""PCM cells follow aihwkit's PCMLikeNoiseModel (issue 12 item 5).

Expected values are computed here from the published formulas of
``aihwkit/inference/noise/pcm.py`` (Nandakumar et al., ICECS 2019 fit), g = G / g_max:
σ_prog = 0.26348 + 1.9650 g − 1.1731 g² µS; μ_ν = clamp(−0.0155 ln g + 0.0244, 0.049, 0.1);
σ_ν = clamp(−0.0125 ln g − 0.0059, 0.008, 0.045); Q_s = min(0.0088 / g^0.65, 0.2) with
σ_1/f = Q_s·sqrt(ln((t + t0 + t_read) / (2 t_read))), t0 = 20 s, t_read = 250 ns.
"""

import math
from dataclasses import replace

import pytest
import torch

from evaluators.cim.devices import drift_nu_params, get_device, prog_sigma_range
from evaluators.cim.mapping import HardwareConfig
from evaluators.cim.native_rng import unit_stream
from evaluators.cim.simulator import _cells

PCM = get_device("pcm")


def _nu(g: float) -> tuple[float, float]:
    mean = min(max(-0.0155 * math.log(g) + 0.0244, 0.049), 0.1)
    std = min(max(-0.0125 * math.log(g) - 0.0059, 0.008), 0.045)
    return mean, std


def test_drift_exponent_depends_on_the_state_as_published():
    g = torch.tensor([0.1, 0.02, 1.0, 1e-9])
    mean, std = drift_nu_params(PCM, g)  # PCM: g_min = 0, so range units = G / g_max
    assert mean[0] == pytest.approx(0.060, abs=5e-4) and std[0] == pytest.approx(0.023, abs=5e-4)
    assert mean[1] == pytest.approx(0.085, abs=5e-4) and std[1] == pytest.approx(0.043, abs=5e-4)
    assert (mean[2], std[2]) == pytest.approx((0.049, 0.008))  # the clips at high states
    assert (mean[3], std[3]) == pytest.approx((0.1, 0.045))
    for i, gi in enumerate((0.1, 0.02, 1.0)):
        assert (float(mean[i]), float(std[i])) == pytest.approx(_nu(gi), rel=1e-5)
    # σ_ν is a σ: variation_scale multiplies it, not the mean
    m2, s2 = drift_nu_params(PCM.scaled(2.0), g)
    assert torch.allclose(m2, mean) and torch.allclose(s2, 2 * std)


def test_programming_sigma_is_the_published_polynomial():
    g = torch.tensor([0.0, 0.5, 1.0])
    sig_us = prog_sigma_range(PCM, g) * PCM.g_range_us
    expected = [0.26348 + 1.9650 * v - 1.1731 * v * v for v in (0.0, 0.5, 1.0)]
    assert sig_us.tolist() == pytest.approx(expected, rel=1e-5)
    assert float(sig_us[0]) == pytest.approx(0.26, abs=0.005)  # near g = 0
    assert float(prog_sigma_range(PCM.scaled(3.0), g)[1]) == pytest.approx(
        3 * expected[1] / 25.0, rel=1e-5
    )


def _draw(dev, target: torch.Tensor, t: float) -> torch.Tensor:
    hw = HardwareConfig(device="pcm", drift_time_s=t)
    return _cells(target, dev, hw, 1, unit_stream(1, 2, 3), 0.0)[0]


def test_cells_programming_noise_follows_the_state():
    dev = replace(PCM, noise_1f_q=0.0)  # programming noise only (t = 0: no drift)
    n = 40_000
    for g in (0.05, 0.5, 0.9):
        target = torch.full((2, n), g)
        err = (_draw(dev, target, 0.0) - target) * PCM.g_range_us
        expected = 0.26348 + 1.9650 * g - 1.1731 * g * g
        assert float(err.std()) == pytest.approx(expected, rel=0.03)


def test_one_over_f_noise_applies_at_t0():
    dev = replace(PCM, prog_sigma_coeffs_us=(), prog_sigma=0.0)  # 1/f noise only
    n = 40_000
    factor = math.sqrt(math.log((20.0 + 250e-9) / (2 * 250e-9)))
    for g in (0.2, 0.8):
        target = torch.full((2, n), g)
        rel = _draw(dev, target, 0.0) / target - 1.0
        q_s = min(0.0088 / g**0.65, 0.2)
        assert float(rel.std()) == pytest.approx(q_s * factor, rel=0.03)


def test_drift_exponent_distribution_per_state_in_the_cells():
    """ln(G_t / G_0) = −ν·ln((t + t0)/t0) + ln(compensation): ν's spread per state."""
    dev = replace(PCM, prog_sigma_coeffs_us=(), prog_sigma=0.0, noise_1f_q=0.0)
    t = 3.15e7  # one year
    n = 40_000
    target = torch.cat([torch.full((1, n), 0.1), torch.full((1, n), 0.02)])
    g = _draw(dev, target, t)
    nu = -torch.log(g / target) / math.log((t + 20.0) / 20.0)  # up to the common offset

    def folded(mu: float, sd: float) -> tuple[float, float]:  # moments of |N(mu, sd)|
        a = mu / sd
        phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        big_phi = 0.5 * (1 + math.erf(a / math.sqrt(2)))
        m = sd * 2 * phi + mu * (1 - 2 * (1 - big_phi))
        return m, math.sqrt(mu * mu + sd * sd - m * m)

    (m1, s1), (m2, s2) = folded(*_nu(0.1)), folded(*_nu(0.02))
    assert float(nu[0].std()) == pytest.approx(s1, rel=0.03)
    assert float(nu[1].std()) == pytest.approx(s2, rel=0.03)
    assert float(nu[1].mean() - nu[0].mean()) == pytest.approx(m2 - m1, abs=1e-3)
    # drift compensation restores the total conductance of the tile
    assert float(g.sum() / target.sum()) == pytest.approx(1.0, rel=1e-4)

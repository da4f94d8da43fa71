"""Seed 000's stochastic MRAM binary compute model (Zhang, Chen, Verma, ICASSP 2019).

Binary weights W ∈ {−1, 1} and inputs x ∈ {−1, 1}. Two complementary MTJ cells form one
unit: cell A is parallel (P, low R) when w = +1, cell B when w = −1; word line WL_m
drives cell A when x = +1, WL_m̄ drives cell B when x = −1. The conducting cell is in
state P exactly when w·x = +1, so a column current is

    y = p₁·G_P + p₋₁·G_AP,       p±1 = #{m : w_m·x_m = ±1}

with R_P ~ N(μ_P, σ_P²), R_AP ~ N(μ_AP, σ_AP²) and G = 1/R. Seed 000 draws the cells
Gaussian in conductance, G ~ N(1/μ, σ²/μ⁴) (the first-order law of G = 1/R), and so does
the built-in ``mram`` device (``DeviceModel.mtj_model = "gaussian_g"``). A device with
``mtj_model = "gaussian_r"`` samples R ~ N(μ, σ²) and inverts it (the exact 1/R law, with
its heavy tail at large σ); the simulator, ``ddhr``, ``s_ddhr`` and ``fixed`` all draw
through :func:`sample_conductances`, which follows the device (``MTJParams.model``).
PS-/AS-DDHR use the first-order moments of either law.

Normalising back to the ±1 domain with the *nominal* conductances
Ḡ = (1/μ_P + 1/μ_AP)/2 and ΔG = 1/μ_P − 1/μ_AP gives ŷ = (y − Ḡ·Σ|x|)/(ΔG/2), which
equals Σ w·x exactly for ideal devices. Inputs that are not ±1 (e.g. a BNN's first layer)
are driven as magnitudes |x| on WL (x > 0) or WL̄ (x < 0); the same normalisation holds.

The forward is written linearly in w (each cell's G = Ḡ_cell ± w·ΔG_cell/2), so the
straight-through gradient of a binarised weight flows through it: S-DDHR training
(seed 000) uses :func:`sample_unit_conductances` + :func:`mvm` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .devices import DeviceModel
from .native_rng import NoiseStream, randn


@dataclass(frozen=True)
class MTJParams:
    """Resistance statistics of the two MTJ states (Ω)."""

    r_p: float
    r_ap: float
    sigma_p: float
    sigma_ap: float
    #: cell draw (devices.MTJ_MODELS): "gaussian_g" (seed 000) or "gaussian_r"
    model: str = "gaussian_g"

    @classmethod
    def from_device(cls, dev: DeviceModel) -> MTJParams:
        if not dev.binary:
            raise ValueError(f"device {dev.name!r} is not a binary MTJ device; use 'mram'")
        return cls(
            dev.r_p_ohm,
            dev.r_ap_ohm,
            dev.r_p_rel_sigma * dev.r_p_ohm,
            dev.r_ap_rel_sigma * dev.r_ap_ohm,
            dev.mtj_model,
        )

    @property
    def g_p(self) -> float:
        return 1.0 / self.r_p

    @property
    def g_ap(self) -> float:
        return 1.0 / self.r_ap

    @property
    def g_mid(self) -> float:
        return 0.5 * (self.g_p + self.g_ap)

    @property
    def g_delta(self) -> float:
        return self.g_p - self.g_ap


def sample_conductances(
    shape: tuple[int, ...],
    p: MTJParams,
    generator: torch.Generator | NoiseStream | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    model: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cell (G_P, G_AP) in siemens·Ω-normalised units (G·r_p, so nominal G_P = 1).

    ``model="gaussian_g"`` (default) is seed 000's stochastic model, Gaussian in
    conductance: G_P ~ N(1/μ_P, σ_P²/μ_P⁴), G_AP ~ N(1/μ_AP, σ_AP²/μ_AP⁴) (Zhang, Chen,
    Verma, ICASSP 2019, "Distribution Modeling"), clipped at 1 % of the mean.
    ``model="gaussian_r"`` draws R ~ N(μ, σ²) (clipped at 1 % of μ) and inverts it: the
    same to first order, but at 10× variation (σ_R/μ_R = 40 %) its heavy 1/R tail
    dominates every column sum, which the seed's model (and its results) do not have.
    ``model=None`` takes the device's choice, ``p.model`` (``DeviceModel.mtj_model``).
    """
    model = p.model if model is None else model
    if model not in ("gaussian_g", "gaussian_r"):
        raise ValueError(f"MRAM conductance model {model!r}; allowed: gaussian_g, gaussian_r")
    z_p = randn(shape, generator, device, dtype)
    z_ap = randn(shape, generator, device, dtype)
    if model == "gaussian_r":
        r_p = (p.r_p + p.sigma_p * z_p).clamp_min(0.01 * p.r_p)
        r_ap = (p.r_ap + p.sigma_ap * z_ap).clamp_min(0.01 * p.r_ap)
        return p.r_p / r_p, p.r_p / r_ap
    # normalised by r_p: mean G_P·r_p = 1, mean G_AP·r_p = r_p/r_ap; σ_G = σ_R/μ_R²
    g_p_mean, g_ap_mean = 1.0, p.r_p / p.r_ap
    g_p = g_p_mean + (p.sigma_p / p.r_p) * z_p
    g_ap = g_ap_mean + (p.r_p * p.sigma_ap / p.r_ap**2) * z_ap
    return g_p.clamp_min(0.01 * g_p_mean), g_ap.clamp_min(0.01 * g_ap_mean)


def unit_conductances(
    w: torch.Tensor,
    g_p_a: torch.Tensor,
    g_ap_a: torch.Tensor,
    g_p_b: torch.Tensor,
    g_ap_b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conductances of cells A and B of each complementary unit for weights w ∈ {±1}.

    Linear in w: G_A = (G_P + G_AP)/2 + w·(G_P − G_AP)/2 picks G_P when w = +1.
    """
    g_a = 0.5 * (g_p_a + g_ap_a) + 0.5 * w * (g_p_a - g_ap_a)
    g_b = 0.5 * (g_p_b + g_ap_b) - 0.5 * w * (g_p_b - g_ap_b)
    return g_a, g_b


def sample_unit_conductances(
    w: torch.Tensor,
    p: MTJParams,
    instances: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh chip instance(s): cells A, B for weight matrix ``w`` (K, N) → (…, K, N) each."""
    shape = tuple(w.shape) if instances is None else (instances, *w.shape)
    gpa, gapa = sample_conductances(shape, p, generator, w.device, w.dtype)
    gpb, gapb = sample_conductances(shape, p, generator, w.device, w.dtype)
    return unit_conductances(w, gpa, gapa, gpb, gapb)


def mvm(x: torch.Tensor, g_a: torch.Tensor, g_b: torch.Tensor, p: MTJParams) -> torch.Tensor:
    """Normalised column outputs ŷ = (I − Ḡ·Σ|x|)/(ΔG/2) with I = x⁺·G_A + x⁻·G_B.

    ``x`` (…, M, K), ``g_a``/``g_b`` (…, K, N) in units of 1/R_P (nominal G_P = 1).
    """
    xp = x.clamp_min(0)
    xn = (-x).clamp_min(0)
    current = xp @ g_a + xn @ g_b
    gmid = p.g_mid * p.r_p
    gdelta = p.g_delta * p.r_p
    return (current - gmid * x.abs().sum(dim=-1, keepdim=True)) / (0.5 * gdelta)


def seed000_column_current(
    x: torch.Tensor, w: torch.Tensor, g_p: torch.Tensor | float, g_ap: torch.Tensor | float
) -> torch.Tensor:
    """Literal seed-000 formula for ±1 vectors: y = p₁·G_P + p₋₁·G_AP (one column)."""
    prod = w * x
    p1 = (prod == 1).sum(dim=-1).to(torch.float64)
    pm1 = (prod == -1).sum(dim=-1).to(torch.float64)
    return p1 * g_p + pm1 * g_ap

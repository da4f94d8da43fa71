"""Device table: the memory cells a crossbar can be built from, with cited parameters.

A :class:`DeviceModel` is an aihwkit-style frozen description of one cell technology.
Noise magnitudes are *relative to the conductance range* ``g_max - g_min`` (CrossSim's
and aihwkit's convention), so they map directly onto weights: a weight occupying the
full range of one cell sees a static programming error of ``prog_sigma`` of that range.

Every number cites where it comes from. Where a figure is our reading of a plot or an
order-of-magnitude choice rather than a quoted value, the comment says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

#: drift models: "constant" (one ν ~ |N(drift_nu, drift_nu_std)| for every state) or
#: "pcm" (aihwkit PCMLikeNoiseModel.generate_drift_coefficients: mean and std of ν depend
#: on the target conductance, :func:`drift_nu_params`)
DRIFT_MODELS = ("constant", "pcm")

#: binary MTJ cell models (:func:`evaluators.cim.mram.sample_conductances`): "gaussian_g"
#: (seed 000: G ~ N(1/μ, σ²/μ⁴)) or "gaussian_r" (R ~ N(μ, σ²), G = 1/R)
MTJ_MODELS = ("gaussian_g", "gaussian_r")

# aihwkit PCMLikeNoiseModel (src/aihwkit/inference/noise/pcm.py, IBM; fit of Nandakumar
# et al., ICECS 2019, to ~1 M PCM devices), g = G / g_max clipped at 1e-7:
#   μ_ν = clamp(−0.0155·ln g + 0.0244, 0.049, 0.1)
#   σ_ν = clamp(−0.0125·ln g − 0.0059, 0.008, 0.045)
#   σ_prog = 0.26348 + 1.9650·g − 1.1731·g² µS (at its reference g_max = 25 µS)
_PCM_NU_MEAN = (-0.0155, 0.0244, 0.049, 0.1)  # slope of ln g, offset, clip low, clip high
_PCM_NU_STD = (-0.0125, -0.0059, 0.008, 0.045)
_PCM_G_CLIP = 1e-7  # aihwkit _ZERO_CLIP
_PCM_PROG_COEFFS_US = (0.26348, 1.9650, -1.1731)


@dataclass(frozen=True)
class DeviceModel:
    """One memory-cell technology.

    Conductances in µS, voltages in V, energies in pJ, times in s, areas in F².
    """

    name: str
    #: conductance range of one cell (µS); differential pairs subtract two cells
    g_min_us: float
    g_max_us: float
    #: reliably programmable levels per cell (2 = binary); caps hw.cell_bits
    levels: int
    #: static programming error, std relative to (g_max - g_min), one draw per chip instance
    prog_sigma: float
    #: read (cycle-to-cycle) noise, std relative to (g_max - g_min), fresh at every read
    read_sigma: float
    #: PCM-style drift G(t) = G0 · (t / t0)^-ν (aihwkit PCMLikeNoiseModel, Nandakumar 2019)
    drift_nu: float = 0.0
    drift_nu_std: float = 0.0
    drift_t0_s: float = 1.0
    #: "constant" (ν from drift_nu, drift_nu_std) or "pcm" (state-dependent, DRIFT_MODELS)
    drift_model: str = "constant"
    #: state-dependent programming σ: polynomial Σ_i c_i·(G/g_max)^i in µS (aihwkit
    #: prog_coeff); empty = the constant ``prog_sigma``, which is then a representative value
    prog_sigma_coeffs_us: tuple[float, ...] = ()
    #: accumulated 1/f read noise coefficient (aihwkit PCM model, Q_s); 0 = none. Applied
    #: from t = 0 on (aihwkit's time counts from t0, so it is non-zero right after programming)
    noise_1f_q: float = 0.0
    #: read time constant of the 1/f fit (aihwkit t_read)
    t_read_s: float = 250e-9
    #: fractions of cells stuck at g_max (on) / g_min (off)
    stuck_on_rate: float = 0.0
    stuck_off_rate: float = 0.0
    #: crossbar read voltage and pulse width (energy of one cell read = V²·G·t)
    read_voltage_v: float = 0.2
    read_pulse_s: float = 10e-9
    #: voltage the word line (the gate of the access / select transistor, or of the cell
    #: itself for 1T FeFET) swings to on every read cycle; None = the logic supply V_dd of
    #: the CMOS node (cost.vdd), which is how 1T1R access gates are driven (NeuroSim 1.4
    #: Param.cpp: accessVoltage = 1.1 V, the nominal V_dd of its default node)
    wl_voltage_v: float | None = None
    #: fixed energy per cell access (digital SRAM); overrides V²·G·t when > 0
    bit_access_energy_pj: float = 0.0
    #: cell footprint in F² (feature size squared)
    cell_area_f2: float = 48.0
    #: programming energy / latency per cell (write-verify), for reporting
    write_energy_pj: float = 0.0
    write_latency_ns: float = 0.0
    #: analog device (False: digital SRAM baseline, no analog noise)
    analog: bool = True
    #: binary magnetic tunnel junction cell (seed 000 MRAM): G = 1/R, R ~ N(μ, σ²)
    binary: bool = False
    r_p_ohm: float = 0.0
    r_ap_ohm: float = 0.0
    #: relative std of R_P and R_AP (σ/μ)
    r_p_rel_sigma: float = 0.0
    r_ap_rel_sigma: float = 0.0
    #: how a binary MTJ cell is drawn (MTJ_MODELS): "gaussian_g" (seed 000, default) or
    #: "gaussian_r" (sample R, invert). A study selects it through a device registered with
    #: it, e.g. ``register_device(replace(get_device("mram"), name="mram_r",
    #: mtj_model="gaussian_r"))`` in a plugin, then ``hw.device: mram_r``
    mtj_model: str = "gaussian_g"
    #: multiplier applied to every σ (hw.variation_scale; seed 000 sweeps 1×..10×)
    variation_scale: float = 1.0
    #: where the numbers come from (short)
    source: str = ""

    def __post_init__(self) -> None:
        if self.drift_model not in DRIFT_MODELS:
            raise ValueError(
                f"device {self.name!r}: drift_model={self.drift_model!r}; allowed: "
                + ", ".join(DRIFT_MODELS)
            )
        if self.mtj_model not in MTJ_MODELS:
            raise ValueError(
                f"device {self.name!r}: mtj_model={self.mtj_model!r}; allowed: "
                + ", ".join(MTJ_MODELS)
            )
        v = self.wl_voltage_v
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(
                f"device {self.name!r}: wl_voltage_v must be None (logic V_dd) or a finite "
                f"number of volts > 0, got {v!r}"
            )

    # -- derived quantities ---------------------------------------------------------
    @property
    def g_range_us(self) -> float:
        return self.g_max_us - self.g_min_us

    @property
    def max_cell_bits(self) -> int:
        return max(1, int(math.floor(math.log2(self.levels))))

    def wl_voltage(self, logic_vdd: float) -> float:
        """Word-line swing (V) per read cycle: the device's own gate drive, else ``logic_vdd``."""
        return logic_vdd if self.wl_voltage_v is None else self.wl_voltage_v

    def cell_read_energy_pj(self, g_us: float | None = None) -> float:
        """Energy of one cell read at conductance ``g_us`` (default mid-range): V²·G·t_pulse.

        Ohmic dissipation during the read pulse (NeuroSim's array read-energy term).
        """
        if self.bit_access_energy_pj > 0.0:
            return self.bit_access_energy_pj
        g = 0.5 * (self.g_min_us + self.g_max_us) if g_us is None else g_us
        return self.read_voltage_v**2 * g * 1e-6 * self.read_pulse_s * 1e12

    def scaled(self, variation_scale: float) -> DeviceModel:
        """Copy with every σ multiplied by ``variation_scale`` (seed 000: 1× … 10× σ_MRAM)."""
        if not (variation_scale >= 0.0 and math.isfinite(variation_scale)):
            raise ValueError(
                f"variation_scale must be a finite number >= 0, got {variation_scale!r}"
            )
        k = float(variation_scale)
        return replace(
            self,
            prog_sigma=self.prog_sigma * k,
            read_sigma=self.read_sigma * k,
            drift_nu_std=self.drift_nu_std * k,
            noise_1f_q=self.noise_1f_q * k,
            r_p_rel_sigma=self.r_p_rel_sigma * k,
            r_ap_rel_sigma=self.r_ap_rel_sigma * k,
            variation_scale=self.variation_scale * k,
        )

    def weight_sigma(self) -> float:
        """Relative synaptic σ (σ_syn, relative to the weight range W_max − W_min).

        Used by the noise-aware training methods when ``train.sigma`` is absent.
        Signed weights sit on a differential pair: w ∈ [−w_max, w_max] maps to
        G⁺ − G⁻ ∈ [−Δg, Δg], so the weight range 2·w_max spans 2·Δg while the pair's
        noise is √2·σ·Δg: σ_syn = σ/√2 with σ² = prog² + read². For a binary MRAM
        complementary unit (seed 000) the ±1 weight range maps to G_P − G_AP and the
        noise of the conducting cell is σ_G, so σ_syn = σ_G / (G_P − G_AP).
        """
        if not self.analog:
            return 0.0
        if self.binary:
            s_p = self.r_p_rel_sigma / self.r_p_ohm  # σ_G = σ_R/μ_R² = (σ_R/μ_R)/μ_R
            s_ap = self.r_ap_rel_sigma / self.r_ap_ohm
            dg = 1.0 / self.r_p_ohm - 1.0 / self.r_ap_ohm
            return math.sqrt(0.5 * (s_p**2 + s_ap**2)) / dg
        return math.sqrt(self.prog_sigma**2 + self.read_sigma**2) / math.sqrt(2.0)


def _mram_conductance_sigma(r_p: float, r_ap: float, rel_p: float, rel_ap: float) -> float:
    """σ of G = 1/R relative to the range 1/R_P − 1/R_AP (seed 000: σ_G = σ_R/μ_R²)."""
    s_p = rel_p / r_p
    s_ap = rel_ap / r_ap
    return math.sqrt(0.5 * (s_p**2 + s_ap**2)) / (1.0 / r_p - 1.0 / r_ap)


# MRAM numbers. Seed 000 normalises its variation axis to "actual MRAM variability σ_MRAM"
# and cites D. Shum et al., VLSI 2017 (CMOS-embedded STT-MRAM, 2x-nm), but lists no value,
# and we could not read Shum's figures. What we could read: embedded pMTJs reach TMR 180 %
# at 25 °C (Intel 22FFL 7 Mb eMRAM, L. Wei et al., ISSCC 2019, as reported by EE Times);
# measured MgO MTJ arrays spread in R_P through the barrier thickness, and R_AP's spread
# follows R_P's (J.-T. Choi, G.-H. Kil, Y.-H. Song, Jpn. J. Appl. Phys. 54, 04DD12, 2015,
# abstract; no σ quoted there). No published σ_R/μ_R was found in the sources available to
# us, so σ/μ = 4 % for both states is OUR ASSUMPTION (a "few percent" spread), not a cited
# figure: "10×" in seed-000 studies means σ_R/μ_R = 40 % under this assumption. R_P = 3 kΩ,
# R_AP = 6 kΩ (TMR 100 %, below Intel's 180 %: seed 000's "low on/off ratio") likewise.
_MRAM_RP, _MRAM_RAP, _MRAM_REL = 3.0e3, 6.0e3, 0.04

_DEVICES: dict[str, DeviceModel] = {
    "reram": DeviceModel(
        name="reram",
        # Conductances: NeuroSim 1.4 default 1T1R RRAM, R_on = 100 kΩ, on/off = 17
        # (DNN_NeuroSim Param.cpp: resistanceOn = 100e3, resistanceOff = 100e3*17).
        g_min_us=10.0 / 17.0,
        g_max_us=10.0,
        # 16 levels (4 bits): HfO2 1T1R arrays show ≥64 distinguishable states
        # (C. Li et al., Nature Communications 9, 2385, 2018); we allow 4 bits/cell.
        levels=16,
        # Programming error: CrossSim RRAMMilo fit to Milo et al., IRPS 2021, Fig. 4:
        # σ_G = −0.009107·G + 4.782 µS over 50–225 µS; at mid-range (137.5 µS)
        # σ = 3.53 µS = 2.0 % of the 175 µS range. Applied relative to the range.
        prog_sigma=0.020,
        # Read noise: random telegraph noise in HfOx ReRAM is ~1 % of the range at
        # mid states (Ambrogio et al., IEEE TED 61(8), 2014, "Statistical fluctuations
        # in HfOx resistive-switching memory, part II"); order-of-magnitude reading.
        read_sigma=0.010,
        # Stuck-at faults: C.-Y. Chen et al. (IEEE TC 2015) measured SA0 1.75 % / SA1
        # 9.04 % on an unrepaired 4 Mb array; repaired production macros are far lower,
        # so the default is 0 (use dataclasses.replace to study faults).
        stuck_on_rate=0.0,
        stuck_off_rate=0.0,
        # NeuroSim 1.4: readVoltage = 0.51 V at 32/45 nm, readPulseWidth = 10 ns.
        read_voltage_v=0.51,
        read_pulse_s=10e-9,
        # NeuroSim 1T1R cell: 4 F × 12 F = 48 F² (heightInFeatureSize1T1R = 4,
        # widthInFeatureSize1T1R = 12).
        cell_area_f2=48.0,
        # NeuroSim writeVoltage = 2 V; ~10 pJ and ~100 ns per write-verify cell
        # (order of magnitude for HfO2 SET/RESET pulses, Milo et al. IRPS 2021).
        write_energy_pj=10.0,
        write_latency_ns=100.0,
        source="NeuroSim 1.4 defaults; CrossSim RRAMMilo (Milo et al. IRPS 2021)",
    ),
    "pcm": DeviceModel(
        name="pcm",
        # aihwkit PCMLikeNoiseModel: g_max = 25 µS, g_min = 0 (Nandakumar et al. ICECS 2019).
        g_min_us=0.0,
        g_max_us=25.0,
        # Multi-level PCM: 8 levels (3 bits) as in IBM's multi-level PCM inference
        # demonstrations (Joshi et al., Nature Communications 11, 2473, 2020).
        levels=8,
        # aihwkit programming noise polynomial σ = 0.26348 + 1.9650·g − 1.1731·g² µS
        # (g = G/g_max), drawn per cell from its target (prog_sigma_coeffs_us); the
        # constant prog_sigma is its mid-range value g = 0.5: 0.952 µS = 3.8 % of 25 µS,
        # used where one number per device is needed (weight_sigma).
        prog_sigma=0.038,
        prog_sigma_coeffs_us=_PCM_PROG_COEFFS_US,
        # aihwkit folds read noise into the accumulated 1/f term below; no extra per-read σ.
        read_sigma=0.0,
        # aihwkit drift: ν = (−0.0155·ln g + 0.0244) clipped to [0.049, 0.1];
        # σ_ν = (−0.0125·ln g − 0.0059) clipped to [0.008, 0.045], per cell from its
        # target (drift_model="pcm", drift_nu_params); t0 = 20 s. drift_nu / drift_nu_std
        # hold the high-state clip values (one number per device where one is needed).
        drift_nu=0.049,
        drift_nu_std=0.008,
        drift_t0_s=20.0,
        drift_model="pcm",
        # aihwkit 1/f noise: Q_s = 0.0088 / g^0.65 (≤ 0.2), σ = Q_s·sqrt(ln((t + t_read)/(2 t_read)))
        noise_1f_q=0.0088,
        t_read_s=250e-9,
        # Read at 0.2 V, 10 ns (aihwkit / Joshi 2020 read at ~0.2 V; NeuroSim pulse width).
        read_voltage_v=0.2,
        read_pulse_s=10e-9,
        # Mushroom PCM 1T1R cell ≈ 25–50 F²; we take NeuroSim's 1T1R 48 F² footprint.
        cell_area_f2=48.0,
        # PCM RESET ≈ 10-100 pJ, ~100 ns SET (Burr et al., JETCAS 2016, order of magnitude).
        write_energy_pj=50.0,
        write_latency_ns=100.0,
        source="aihwkit PCMLikeNoiseModel (Nandakumar et al. ICECS 2019, Joshi et al. 2020)",
    ),
    "sonos": DeviceModel(
        name="sonos",
        # CrossSim SONOS model (Agrawal et al., IEDM 2022): suggested on/off 1e7,
        # ~0 to 16 µS, I_max ≤ 1600 nA at V_read = 0.1 V.
        g_min_us=16.0e-7,
        g_max_us=16.0,
        # 40-nm SONOS stores ≥ 4 bits per cell in subthreshold (Agrawal IEDM 2022).
        levels=16,
        # CrossSim SONOS t = 0: σ_I = A(1 − exp(−I/B)), A = 19.887 nA, B = 176.3 nA;
        # saturated σ ≈ 19.9 nA over a 1600 nA range = 1.24 %.
        prog_sigma=0.0124,
        # CrossSim SONOS read noise: A_noise = 12.58 nA → 0.79 % of 1600 nA.
        read_sigma=0.0079,
        # CrossSim models SONOS drift with per-day polynomials (1-5 days); we do not
        # extrapolate them, so no power-law drift here.
        # Read at CrossSim's V_read = 0.1 V (xbar_parameters default; I_max = 1600 nA in both
        # CrossSim v2.0, the Xiao TCAS-I 2022 model, and v3). Subthreshold reads make a SONOS
        # cell cheaper than a ReRAM one, in line with Sandia's published SONOS engine (Xiao
        # et al., TCAS-I 69(4), 2022: 20 TOPS/W on ResNet50). Seed 002's SONOS > ReRAM
        # energies (NICE 2020 slides: MLP 1.42, RNN 1.20, CNN 4.34) come from an unpublished
        # script with no stated parameters; CrossSim itself has no energy model in any tagged
        # version, and the only like-for-like Sandia figures are training cores vs one SRAM
        # ASIC (ReRAM 430x, Marinella JETCAS 2018; SONOS 120x, Agarwal JXCDC 2019: ≈3.6).
        # None of these is a cited per-read cost that would give 1.42, so none is encoded
        # (tests/test_cim_cost.py, strict xfail with the full account).
        read_voltage_v=0.1,
        read_pulse_s=10e-9,
        # Word line: Sandia's SONOS arrays use "1T,1CTM" cells (Feinberg, Bennett et al., IRPS
        # 2020, arXiv 2004.00802): a select transistor in series with the charge-trap memory
        # transistor. The line switched per input is the select gate, at logic level; the
        # memory gate is a read bias held for the whole matrix-vector product. No source we
        # could reach (CrossSim SONOS.py, Xiao TCAS-I 2022 abstract, Agrawal IEDM 2022) gives
        # a multi-volt gate swing per read cycle, so SONOS keeps the logic-V_dd default.
        wl_voltage_v=None,
        # 2T SONOS NOR cell (Cypress/Infineon 40 nm eCT): ≈ 60 F² (order of magnitude).
        cell_area_f2=60.0,
        # Fowler-Nordheim program ~ms at negligible current: ~1 pJ, ~1 ms (Agrawal 2022).
        write_energy_pj=1.0,
        write_latency_ns=1.0e6,
        source="CrossSim SONOS model (Agrawal et al., IEDM 2022)",
    ),
    "fefet": DeviceModel(
        name="fefet",
        # HfO2 FeFET multi-level synapse (Jerry et al., IEDM 2017): 5-bit (32 states),
        # on/off ≈ 45 with G ≈ 0.1–4.5 µS at 0.1 V read.
        g_min_us=0.1,
        g_max_us=4.5,
        levels=32,
        # Device-to-device variation of partially polarized states ≈ 2-3 % of range
        # (Jerry et al. IEDM 2017, Fig. of cycle/device variation; order of magnitude).
        prog_sigma=0.025,
        read_sigma=0.005,
        read_voltage_v=0.1,
        read_pulse_s=10e-9,
        # 1T FeFET: transistor-sized cell ≈ 25 F² (NeuroSim FeFET preset order).
        cell_area_f2=25.0,
        # Gate-pulse write: ~1 pJ, ~100 ns (Jerry et al. IEDM 2017 use 75-ns pulses).
        write_energy_pj=1.0,
        write_latency_ns=100.0,
        source="Jerry et al., IEDM 2017 (FeFET analog synapse)",
    ),
    "mram": DeviceModel(
        name="mram",
        g_min_us=1e6 / _MRAM_RAP,
        g_max_us=1e6 / _MRAM_RP,
        levels=2,
        prog_sigma=_mram_conductance_sigma(_MRAM_RP, _MRAM_RAP, _MRAM_REL, _MRAM_REL),
        # seed 000 models only the static R_P/R_AP spread
        read_sigma=0.0,
        # STT-MRAM read at ~0.1 V to avoid read disturb (Shum et al. VLSI 2017 range).
        read_voltage_v=0.1,
        read_pulse_s=10e-9,
        # 1T1MTJ embedded MRAM bit cell ≈ 40-60 F² (Shum VLSI 2017, 28 nm: ~0.05 µm²
        # ≈ 60 F²; order of magnitude).
        cell_area_f2=60.0,
        # STT switching ~ 1 pJ, 10-20 ns (Shum et al. VLSI 2017, order of magnitude)
        write_energy_pj=1.0,
        write_latency_ns=20.0,
        binary=True,
        r_p_ohm=_MRAM_RP,
        r_ap_ohm=_MRAM_RAP,
        r_p_rel_sigma=_MRAM_REL,
        r_ap_rel_sigma=_MRAM_REL,
        source="seed 000 (Zhang, Chen, Verma ICASSP 2019) stochastic MTJ model",
    ),
    "sram": DeviceModel(
        name="sram",
        # Digital SRAM baseline: each bit cell stores one weight bit; no analog noise.
        g_min_us=0.0,
        g_max_us=1.0,
        levels=2,
        prog_sigma=0.0,
        read_sigma=0.0,
        analog=False,
        # 6T SRAM cell area factor ≈ 140 F² (ITRS ORTC SRAM a-factor 140 F²; the brief's
        # 120–150 F² band).
        cell_area_f2=140.0,
        # One bit-line access: 8 KB SRAM 64-bit read = 10 pJ at 45 nm (Horowitz, ISSCC
        # 2014) → 0.156 pJ per bit; stored here as the "cell read" energy (pJ per bit).
        bit_access_energy_pj=0.156,
        write_energy_pj=0.156,
        write_latency_ns=1.0,
        source="Horowitz ISSCC 2014 (45 nm SRAM access energy); ITRS SRAM cell factor",
    ),
}

DEVICE_NAMES: tuple[str, ...] = tuple(_DEVICES)


def prog_sigma_range(dev: DeviceModel, target: torch.Tensor) -> torch.Tensor | float:
    """Programming σ of cells with ``target`` conductances, both in units of the range.

    ``target`` = (G − 0)/(g_max − g_min) as the simulator holds it. With
    ``prog_sigma_coeffs_us`` (aihwkit ``apply_programming_noise_to_conductance``):
    σ(G) = Σ_i c_i·(G/g_max)^i µS, times ``variation_scale``, over the range; else the
    constant ``prog_sigma`` (already scaled).
    """
    if not dev.prog_sigma_coeffs_us:
        return dev.prog_sigma
    g = target * (dev.g_range_us / dev.g_max_us)
    c = dev.prog_sigma_coeffs_us
    sig = torch.full_like(target, float(c[-1]))
    for coeff in reversed(c[:-1]):  # Horner
        sig = sig.mul_(g).add_(float(coeff))
    return sig.mul_(dev.variation_scale / dev.g_range_us)


def drift_nu_params(
    dev: DeviceModel, target: torch.Tensor
) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """(mean, std) of the drift exponent ν of cells with ``target`` conductances (range units).

    ``drift_model="pcm"``: aihwkit ``generate_drift_coefficients`` (constants above), the
    std times ``variation_scale`` like every σ of :meth:`DeviceModel.scaled`; ν itself is
    |N(mean, std)|. ``"constant"``: ``drift_nu``, ``drift_nu_std``.
    """
    if dev.drift_model == "constant":
        return dev.drift_nu, dev.drift_nu_std
    g = (target * (dev.g_range_us / dev.g_max_us)).abs().clamp_min(_PCM_G_CLIP).log()
    a, b, lo, hi = _PCM_NU_MEAN
    mean = (g * a + b).clamp_(lo, hi)
    a, b, lo, hi = _PCM_NU_STD
    std = (g * a + b).clamp_(lo, hi).mul_(dev.variation_scale)
    return mean, std


def get_device(name: str, variation_scale: float = 1.0) -> DeviceModel:
    """Device model by name, optionally with σ's scaled (``hw.variation_scale``)."""
    key = str(name).strip().lower()
    if key not in _DEVICES:
        raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICE_NAMES)}")
    dev = _DEVICES[key]
    return dev if variation_scale == 1.0 else dev.scaled(variation_scale)

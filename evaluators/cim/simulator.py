"""Monte-Carlo analog inference: S noisy chip instances of one mapped network, batched.

Physics per chip instance (what each step models and where it comes from):

1. Weights → signed integers at the layer's precision (symmetric, max-abs scale) →
   magnitude slices of ``cell_bits`` → target conductances of a differential pair
   (:mod:`mapping` docstring). Binary layers on MRAM use seed 000's complementary
   MTJ units instead (:mod:`mram`).
2. Static, per instance: programming noise N(0, σ_prog) relative to the range
   (CrossSim/aihwkit convention), stuck-at-on/off cells, PCM drift
   G·((t + t0)/t0)^−ν with ν ~ |N(ν̄, σ_ν)| and accumulated 1/f noise (aihwkit
   PCMLikeNoiseModel), followed by global drift compensation with the mean factor
   (aihwkit's GlobalDriftCompensation idea). Conductances are clipped at G = 0.
3. Per read: cycle-to-cycle conductance noise. Because it is independent per cell and
   per read, x·(G + ε) = x·G + N(0, σ²‖x‖²) exactly in distribution, so it is added to
   each column sum with std σ·‖x_tile‖ (no per-read weight tensor is materialised).
4. Inputs quantized to ``hw.act_bits`` against the layer's calibrated full scale;
   bit-serial (one 1-bit cycle per bit, positive and negative parts in separate cycles)
   or one multi-bit DAC cycle.
5. Each tile's column partial sum (one per row tile, input cycle and weight slice) is
   digitised by an ``hw.adc_bits`` ADC whose range is calibrated on the ideal
   (noise-free) partial sums of a calibration batch (a high percentile of |psum|), then
   shift-and-add over bit planes, weight slices and row tiles in digital.

How it is computed (see :mod:`.sim_kernels` for the measured reasons): all S instances
run as one batched computation (layers.py folds instances into the batch dim). Each
layer's programmed conductances are one (S, rows, slices·cols) tensor per instance
chunk, drawn once and reused for the whole test set; every row tile is ONE ``bmm``
(S, cycles·samples, tile rows) @ (S, tile rows, slices·cols), run block by block so the
noise/ADC/shift-and-add passes stay in cache; the ADC is one in-place divide, clamp and
round per block, its step folded into the final output scale. Tiles are not
zero-padded: a partial last tile multiplies only its real rows (padded rows carry zero
input and add neither current nor read noise, so this is exact). Without ADCs (SRAM,
or ``SimOptions.quantize=False``) shift-and-add is linear and folds into one effective
weight per instance. Work is chunked over instances and samples under a memory cap.

Blocks run on a pool of single-threaded worker threads (:func:`sim_kernels.run_blocks`);
without ADCs, whole-network forwards of small instance chunks run side by side on those
threads instead, so that activations stay in each core's cache (:func:`_thread_chunk`).
Noise is keyed by what it models, never by how the work is cut (issue 12 item 8): the
static noise of a chip by (seed, layer, instance, row tile) and the read noise by
(seed, layer, call, instance, group of :data:`READ_GROUP` test samples), each such unit
with its own stream (:func:`native_rng.unit_stream`). Blocks are unions of whole units,
so a seed gives the same chips and the same reads for any memory cap, block size,
thread count and test-set size (a sample's reads depend only on its group), and on CPU
and GPU with the native path. The fast path is checked against a plain per-instance,
per-tile, per-cycle, per-slice reference with replayed noise in
``tests/test_cim_simulator.py``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from . import mram
from .devices import DeviceModel, drift_nu_params, prog_sigma_range
from .hw.periphery import ADC_RANGE_PERCENTILE
from .layers import CrossbarMixin, use_backend
from .mapping import HardwareConfig, LayerMapping, Mapping
from .native_rng import PATHS, resolve_path, unit_stream
from .sim_kernels import (
    combine_slices,
    input_planes,
    run_blocks,
    scratch,
    tile_reads,
)


@dataclass
class SimOptions:
    """Knobs of the simulation that are not hardware design keys."""

    #: ADC full scale = this percentile of |ideal partial sums| on the calibration batch
    adc_percentile: float = ADC_RANGE_PERCENTILE
    #: cap on the programmed weights + activations of one instance/sample chunk (bytes)
    memory_cap_bytes: int = 512 * 2**20
    #: partial sums per cache block (float32: 4 bytes each); keeps the elementwise
    #: passes (read noise, ADC, shift-and-add) in L2/L3 instead of DRAM. Noise streams
    #: are per modelled unit (module docstring), so results do not depend on it.
    block_elems: int = 2**18
    #: split a layer call into at least this many blocks when possible
    min_blocks: int = 2
    #: noise path (:func:`native_rng.resolve_path`): "native" (the compiled kernel, or
    #: an error), "torch" (torch generators), "auto" (kernel if it builds, else torch)
    rng: str = "auto"
    #: max calibration samples
    calib_samples: int = 128
    #: skip ADC and input quantization (for benchmarking against unquantized simulators)
    quantize: bool = True
    #: simulate read noise (per inference)
    read_noise: bool = True
    #: reuse prepared layers + ADC calibration of an identical (model, mapping, hw) pair
    cache: bool = True
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"SimOptions.dtype must be torch.float32 or torch.float64, got {self.dtype}"
            )
        if int(self.block_elems) < 1 or int(self.memory_cap_bytes) < 1:
            raise ValueError("SimOptions.block_elems and memory_cap_bytes must be >= 1")
        if self.rng not in PATHS:
            raise ValueError(f"SimOptions.rng must be one of {', '.join(PATHS)}, got {self.rng!r}")


#: test samples per read-noise unit: a sample's read noise depends on its group only, and
#: sample chunks are cut at multiples of it (:func:`run_instances`)
READ_GROUP = 16
#: stream-key tags of the two kinds of noise
_TAG_PROG, _TAG_READ = 1, 2


# ----------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    """Instance-independent per-layer data (device-side tensors)."""

    lm: LayerMapping
    k_rows: int  # logical rows of W̃ incl. bias rows
    n_cols: int
    rows_per_tile: int  # logical inputs per tile
    slices: int
    levels: int  # conductance levels per cell minus one (L − 1)
    slice_w: list[float]  # 2^(c·k)
    w_scale: float  # weight units per slice-level unit
    x_levels: int
    x_step: float
    signed: bool
    #: rows of the matmul operand (physical: 2 per input for MRAM) covered by each tile
    row_ranges: list[tuple[int, int]] = field(default_factory=list)
    #: kept input rows when the layer is pruned (None: all rows, no gather)
    gather: torch.Tensor | None = None
    #: levels held by the G⁺ / G⁻ cell of each (row, slice·col), columns ordered (slice, col)
    pos: torch.Tensor | None = None
    neg: torch.Tensor | None = None
    w_pm1: torch.Tensor | None = None  # binary MRAM ±1 weights (K', N')
    bias_digital: torch.Tensor | None = None
    #: partial-sum units per ADC code (1 until calibrated, and without ADCs)
    adc_step: float = 1.0
    adc_range: float = 1.0
    adc_mean_abs: float = 1.0
    calib: list[torch.Tensor] = field(default_factory=list)
    #: instance-independent tensors derived from pos/neg (:func:`_derived`), built once
    #: instead of at every :meth:`AnalogBackend.program` of an instance chunk
    derived: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)


def _derived(p: _Prepared, key: tuple, build) -> torch.Tensor:
    """``build()`` cached on ``p`` under ``key`` (the parameters it depends on)."""
    t = p.derived.get(key)
    if t is None:
        t = p.derived[key] = build()
    return t


def _prepare(
    layer: CrossbarMixin, lm: LayerMapping, hw: HardwareConfig, dev: DeviceModel, tdev, dtype
) -> _Prepared:
    with torch.no_grad():
        w = layer.matrix().detach().to(tdev, torch.float32)
        b = layer.bias_vector()
        b = None if b is None else b.detach().to(tdev, torch.float32)
    ri, ci = lm.row_idx.to(tdev), lm.col_idx.to(tdev)
    wk = w[ri][:, ci]
    signed = lm.signed_input
    a = hw.act_bits
    if lm.binary_mram and lm.pm1_input:
        x_levels, x_step = 1, 1.0
    else:
        x_levels = (2 ** (a - 1) - 1) if (signed and a > 1) else (2**a - 1)
        x_step = lm.input_range / x_levels
    a_rows = hw.array_size // lm.rows_per_input
    gather = (
        None if (ri.numel() == lm.k and bool((ri == torch.arange(lm.k, device=tdev)).all())) else ri
    )
    common = dict(
        lm=lm, rows_per_tile=a_rows, x_levels=x_levels, x_step=x_step, signed=signed, gather=gather
    )
    if lm.binary_mram:
        k_rows = wk.shape[0]
        prep = _Prepared(
            k_rows=k_rows,
            n_cols=wk.shape[1],
            slices=1,
            levels=1,
            slice_w=[1.0],
            w_scale=1.0,
            w_pm1=torch.where(wk >= 0, 1.0, -1.0).to(dtype),
            row_ranges=_row_ranges(2 * k_rows, 2 * a_rows),
            **common,
        )
        if b is not None:
            prep.bias_digital = b[ci].to(dtype)
        return prep
    # bias rows (seed 001): inputs driven at full scale x_fs, weights b/(r·x_fs)
    if lm.bias_rows and b is not None:
        brow = (b[ci] / (lm.bias_rows * lm.input_range)).expand(lm.bias_rows, -1)
        wk = torch.cat([wk, brow], dim=0)
    q_max = 2**lm.magnitude_bits - 1  # mapping.layer_precision: BSQ's n = magnitude bits
    w_max = lm.full_scale(wk)
    m = torch.round(wk.abs() / w_max * q_max).long()
    c = lm.cell_bits
    lv = 2**c - 1
    # (K', n_s·N'): slice-major columns so that a tile product carries every slice at once
    sl = torch.cat([((m >> (c * s)) & lv) for s in range(lm.slices)], dim=1).to(dtype)
    sign = torch.sign(wk).to(dtype).repeat(1, lm.slices)
    k_rows = wk.shape[0]
    return _Prepared(
        k_rows=k_rows,
        n_cols=wk.shape[1],
        slices=lm.slices,
        levels=lv,
        slice_w=[float(2 ** (c * s)) for s in range(lm.slices)],
        w_scale=w_max / q_max,
        row_ranges=_row_ranges(k_rows, a_rows),
        pos=sl * (sign > 0),
        neg=sl * (sign < 0),
        **common,
    )


def _row_ranges(rows: int, per_tile: int) -> list[tuple[int, int]]:
    return [(r, min(r + per_tile, rows)) for r in range(0, max(rows, 1), per_tile)]


# ----------------------------------------------------------------------------------------
def _linear_programming(dev: DeviceModel, hw: HardwareConfig) -> bool:
    """Only state-independent Gaussian programming noise, and clipping at G = 0 negligible.

    With g_min more than 5σ above 0 (clipping probability < 3e-7 per cell) the pair
    difference is G⁺ − G⁻ = target difference + N(0, 2σ²): one draw per pair, not two.
    """
    g0 = dev.g_min_us / dev.g_range_us
    return _no_static_faults(dev, hw) and g0 > 5 * dev.prog_sigma


def _program(
    p: _Prepared,
    dev: DeviceModel,
    hw: HardwareConfig,
    s: int,
    key: tuple[int, ...],
    ideal: bool,
    unit: float,
    workers: int,
    block_elems: int,
    combine: bool = False,
    min_blocks: int = 1,
    first: int = 0,
    path: str = "auto",
) -> torch.Tensor:
    """Programmed conductances of ``s`` instances, scaled by ``unit`` (1 / ADC step).

    ``combine`` (multi-level, no ADC): return Σ_k 2^(c·k)·D_k, (S, K', N'), shift-and-added
    over slices (one pass, in the worker threads).

    Multi-level: (S, K', n_s·N') = (G⁺ − G⁻)·L in slice-level units (columns (slice, col)).
    Binary MRAM: (S, 2K', N'), rows interleaved (G_A of input r, then G_B), already
    normalised to the ±1 domain: (G − Ḡ)/(ΔG/2) in units of 1/R_P (:func:`mram.mvm`), so
    a plain product with interleaved (x⁺, x⁻) inputs gives seed 000's ŷ.

    Noise units (:func:`_program_units`): instance ``first + i`` and logical row tile t
    (rows ``t·rows_per_tile …``) draw from ``unit_stream(*key, first + i, t)``, in order:
    linear multi-level: one N(0, 1) tensor (K_t, n_s·N'); clipped pairs without other
    static faults: one N(0, 1) tensor (K_t, n_s·N', 2) (last index G⁺, G⁻;
    :meth:`program_pairs`); otherwise the cell model of :func:`_cells` on (1, 2, K_t, n_s·N');
    MRAM: G_P, G_AP of cell A, then of cell B, each (1, K_t, N')
    (:func:`mram.sample_conductances`).
    """
    ref = p.pos if p.pos is not None else p.w_pm1
    tdev, dtype = ref.device, ref.dtype
    tiles = _row_ranges(p.k_rows, p.rows_per_tile)
    run = dict(
        key=key, first=first, tiles=tiles, path=path, workers=workers,
        block_elems=block_elems, min_blocks=min_blocks,
    )  # fmt: skip
    if p.lm.binary_mram:
        mp = mram.MTJParams.from_device(dev)
        out = torch.empty(s, p.k_rows, 2, p.n_cols, device=tdev, dtype=dtype)
        fold = unit / (0.5 * mp.g_delta * mp.r_p)

        def mram_block(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
            w = p.w_pm1[rows].expand(n, -1, -1)
            if ideal:
                nominal = (1.0, mp.r_p / mp.r_ap, 1.0, mp.r_p / mp.r_ap)
                ga, gb = mram.unit_conductances(w, *(torch.full_like(w, v) for v in nominal))
            else:
                shape = tuple(w.shape)
                gpa, gapa = mram.sample_conductances(shape, mp, gen, tdev, dtype)
                gpb, gapb = mram.sample_conductances(shape, mp, gen, tdev, dtype)
                ga, gb = mram.unit_conductances(w, gpa, gapa, gpb, gapb)
            dst[:, :, 0].copy_(ga)
            dst[:, :, 1].copy_(gb)
            dst.sub_(mp.g_mid * mp.r_p).mul_(fold)

        _program_units(out, fill=mram_block, **run)
        return out.view(s, 2 * p.k_rows, p.n_cols)

    L = p.levels
    scale = L * unit
    n_out = p.n_cols if combine else p.pos.shape[1]
    if ideal or not dev.analog or _noise_free(dev, hw):
        base = _derived(p, ("diff", unit), lambda: (p.pos - p.neg) * unit)
        if combine:
            base = _derived(p, ("diff_combined", unit), lambda: _combine(base, p.slice_w))
        return base.unsqueeze(0).expand(s, -1, -1).contiguous()
    out = torch.empty(s, p.k_rows, n_out, device=tdev, dtype=dtype)
    if _linear_programming(dev, hw):
        base = _derived(p, ("diff", unit), lambda: (p.pos - p.neg) * unit)
        std = math.sqrt(2.0) * dev.prog_sigma * scale

        def block(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
            gen.normal_(dst, 0.0, std).add_(base[rows])

    else:
        g0 = dev.g_min_us / dev.g_range_us  # g_min in range units
        target = _derived(  # (2, K', C) range units
            p, ("target", g0), lambda: torch.stack([p.pos, p.neg]).mul_(1.0 / L).add_(g0)
        )
        if _no_static_faults(dev, hw):  # programming noise + clipping: one fused kernel

            def block(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
                gen.program_pairs(dst, target[0, rows], target[1, rows], dev.prog_sigma, scale)

        else:

            def block(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
                g = _cells(target[:, rows], dev, hw, n, gen, g0)  # (n, 2, K_j, C)
                torch.sub(g[:, 0], g[:, 1], out=dst).mul_(scale)

    if combine:
        per_slice = block
        fused = _no_static_faults(dev, hw) and not _linear_programming(dev, hw)

        def block(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
            if fused and n == 1:  # clipped pairs + shift-and-add in one kernel pass
                t = target[:, rows]
                done = gen.program_pairs_combined(dst, t[0], t[1], p.slice_w, dev.prog_sigma, scale)
                if done is not None:
                    return
            k = dst.shape[1]
            tmp = scratch("prog", n * k * p.pos.shape[1], dst).view(n, k, p.pos.shape[1])
            per_slice(n, rows, gen, tmp)
            combine_slices(tmp, p.slice_w, dst)

    _program_units(out, fill=block, **run)
    return out


def _combine(d: torch.Tensor, slice_w: list[float]) -> torch.Tensor:
    """Σ_k slice_w[k]·d[..., k·N:(k+1)·N] as a new tensor."""
    out = d.new_empty(*d.shape[:-1], d.shape[-1] // len(slice_w))
    combine_slices(d, slice_w, out)
    return out


def _program_units(
    out: torch.Tensor,
    key: tuple[int, ...],
    first: int,
    tiles: list[tuple[int, int]],
    path: str,
    workers: int,
    block_elems: int,
    min_blocks: int,
    fill,
) -> None:
    """Fill ``out`` (S, K, …) unit by unit: instance i × row tile t, stream (*key, first+i, t).

    Units are grouped into blocks of about ``block_elems`` elements (at least
    ``min_blocks`` blocks when there are that many units) that run on the worker threads;
    since every unit has its own stream, the grouping never changes the numbers.
    """
    s = out.shape[0]
    units = [(i, t, r0, r1) for i in range(s) for t, (r0, r1) in enumerate(tiles)]
    per_row = max(1, out[0, :1].numel())
    total = sum((r1 - r0) * per_row for _, _, r0, r1 in units)
    n_blocks = min(len(units), max(min_blocks, math.ceil(total / max(1, block_elems))))
    per_block = math.ceil(len(units) / max(1, n_blocks))
    blocks = [units[j : j + per_block] for j in range(0, len(units), per_block)]

    def job(j: int) -> None:
        for i, t, r0, r1 in blocks[j]:
            gen = unit_stream(*key, first + i, t, device=out.device, path=path)
            fill(1, slice(r0, r1), gen, out[i : i + 1, r0:r1])

    run_blocks(job, len(blocks), workers)


def _state_dependent(dev: DeviceModel) -> bool:
    """Programming σ or drift exponent that depends on the programmed conductance (PCM)."""
    return bool(dev.prog_sigma_coeffs_us) or dev.drift_model != "constant"


def _drifts(dev: DeviceModel, hw: HardwareConfig) -> bool:
    return hw.drift_time_s > 0 and (dev.drift_nu > 0 or dev.drift_model != "constant")


def _no_static_faults(dev: DeviceModel, hw: HardwareConfig) -> bool:
    """Only state-independent Gaussian programming noise (clipped at G = 0) is left."""
    return (
        dev.stuck_on_rate == 0
        and dev.stuck_off_rate == 0
        and not bool(dev.prog_sigma_coeffs_us)
        and not _drifts(dev, hw)
        and dev.noise_1f_q == 0  # aihwkit's 1/f term applies from t = 0 on (see _cells)
    )


def _noise_free(dev: DeviceModel, hw: HardwareConfig) -> bool:
    return dev.prog_sigma == 0 and _no_static_faults(dev, hw)


def _cells(
    target: torch.Tensor, dev: DeviceModel, hw: HardwareConfig, s: int, gen, g0: float
) -> torch.Tensor:
    """Static non-idealities of ``s`` chip instances, in units of the conductance range.

    Draws, in order: programming noise N(0,1); U(0,1) for stuck-at faults (if any);
    N(0,1) for the drift exponent ν (if drift); N(0,1) for accumulated 1/f noise (if any).

    PCM (aihwkit ``PCMLikeNoiseModel``, ``src/aihwkit/inference/noise/pcm.py``, fitted by
    Nandakumar et al., ICECS 2019): programming σ a polynomial of the target conductance
    (:func:`devices.prog_sigma_range`); drift G·((t + t0)/t0)^(−ν) with ν ~ |N(μ_ν(g), σ_ν(g))|
    from the target (:func:`devices.drift_nu_params`); then the accumulated 1/f noise
    G += |G|·Q_s(g_prog)·sqrt(ln((t + t0 + t_read)/(2 t_read)))·N, Q_s = min(0.0088 /
    max(g_prog^0.65, 1e-3), 0.2) — applied from t = 0 on, as aihwkit does (its t counts
    from t0, so the noise term is non-zero at t_inference = 0). Drift is compensated per
    instance and row tile by the measured ratio Σ|G_prog| / Σ|G_drift| (a per-tile global
    drift compensation, the idea of aihwkit's GlobalDriftCompensation).
    """
    shape = (s, *target.shape)
    kw = dict(device=target.device, dtype=target.dtype)
    g = gen.normal_(torch.empty(shape, **kw))
    if dev.prog_sigma_coeffs_us:
        g.mul_(prog_sigma_range(dev, target)).add_(target)
    else:
        g.mul_(dev.prog_sigma).add_(target)
    if dev.stuck_on_rate > 0 or dev.stuck_off_rate > 0:
        u = gen.uniform_(torch.empty(shape, **kw))
        g = torch.where(u < dev.stuck_on_rate, g0 + 1.0, g)
        g = torch.where(
            (u >= dev.stuck_on_rate) & (u < dev.stuck_on_rate + dev.stuck_off_rate), g0, g
        )
    g = g.clamp_min_(0.0)
    drift = _drifts(dev, hw)
    if drift or dev.noise_1f_q > 0:
        tt = hw.drift_time_s + dev.drift_t0_s
        g_prog = g.clone() if drift else g
        if drift:
            nu_mean, nu_std = drift_nu_params(dev, target)
            nu = gen.normal_(torch.empty(shape, **kw)).mul_(nu_std).add_(nu_mean).abs_()
            # G·(tt/t0)^(−ν) = G·exp(−ν·ln(tt/t0))
            g.mul_(nu.mul_(-math.log(tt / dev.drift_t0_s)).exp_())
        if dev.noise_1f_q > 0:
            # Q_s from the programmed (pre-drift) conductance relative to g_max (aihwkit)
            g_rel = g_prog.abs() * (dev.g_range_us / dev.g_max_us)
            sig = math.sqrt(math.log((tt + dev.t_read_s) / (2 * dev.t_read_s)))
            q_s = (dev.noise_1f_q / g_rel.pow_(0.65).clamp_min_(1e-3)).clamp_(max=0.2)
            noise = gen.normal_(torch.empty(shape, **kw))
            g.addcmul_(g.abs().mul_(q_s.mul_(sig)), noise)
        g = g.clamp_min_(0.0)
        if drift:  # per-tile global drift compensation, measured on this instance
            dims = tuple(range(1, g.dim()))
            ratio = g_prog.abs().sum(dims, keepdim=True) / g.abs().sum(dims, keepdim=True)
            g.mul_(torch.nan_to_num(ratio, nan=1.0, posinf=1.0))
    return g


def _combined_weights(
    p: _Prepared,
    dev: DeviceModel,
    hw: HardwareConfig,
    s: int,
    key: tuple[int, ...],
    ideal: bool,
    workers: int,
    block_elems: int,
    min_blocks: int = 1,
    first: int = 0,
    path: str = "auto",
) -> torch.Tensor:
    """No ADC: shift-and-add over slices and tiles is linear, so fold it into one weight.

    Returns (S, K', N') (MRAM: (S, 2K', N') interleaved). In the linear Gaussian case
    Σ_k 2^(c·k)·(D_k + √2·σ·L·ε_k) = D + √2·σ·L·sqrt(Σ_k 4^(c·k))·ε (same distribution,
    one draw per weight instead of per cell; the same units as :func:`_program`).
    """
    args = (p, dev, hw, s, key, ideal, 1.0, workers, block_elems)
    more = dict(min_blocks=min_blocks, first=first, path=path)
    if p.lm.binary_mram:
        return _program(*args, **more)
    if not ideal and dev.analog and _linear_programming(dev, hw) and dev.prog_sigma > 0:
        base = _derived(p, ("diff_combined", 1.0), lambda: _combine(p.pos - p.neg, p.slice_w))
        sig = math.sqrt(2.0 * sum(c * c for c in p.slice_w)) * dev.prog_sigma * p.levels
        w = torch.empty((s, *base.shape), device=base.device, dtype=base.dtype)

        def fill(n: int, rows: slice, gen, dst: torch.Tensor) -> None:
            gen.normal_(dst, 0.0, sig).add_(base[rows])

        _program_units(
            w, key, first, _row_ranges(p.k_rows, p.rows_per_tile), path, workers,
            block_elems, min_blocks, fill,
        )  # fmt: skip
        return w
    return _program(*args, combine=True, **more)


# ----------------------------------------------------------------------------------------
class AnalogBackend:
    """Crossbar backend simulating ``instances`` programmed chips at once (layers.Backend).

    Random streams (module docstring): layer l (its position in ``prepared``) of global
    instance i is programmed from ``unit_stream(seed, 1, l, i, tile)``; the c-th read of
    layer l since :meth:`begin_batch` draws, for instance i and sample group g,
    ``unit_stream(seed, 2, l, c, i, g)`` (one sub-stream per row tile). :meth:`program`
    takes the global index of its first instance, :meth:`begin_batch` the global index of
    the batch's first sample, so chunked runs draw exactly what one big run draws.
    """

    def __init__(
        self,
        prepared: dict[str, _Prepared],
        names: dict[int, str],
        hw: HardwareConfig,
        dev: DeviceModel,
        opts: SimOptions,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ):
        self.prepared = prepared
        self.names = names
        self.hw = hw
        self.dev = dev
        self.opts = opts
        self.seed = int(seed)
        self.layer_index = {n: i for i, n in enumerate(prepared)}
        #: resolved noise path ("native" or "torch"); raises if "native" cannot run here
        self.noise_path = resolve_path(opts.rng)
        #: path handed to the streams: "auto" keeps torch's generators for CUDA targets
        self._stream_path = "auto" if opts.rng == "auto" else self.noise_path
        self.instances = 1
        self.first = 0
        self.sample_offset = 0
        self.batch_samples: int | None = None
        self._calls: dict[str, int] = {}
        #: per-tile ADCs exist (analog device, quantization on)
        self.adc_on = bool(opts.quantize and dev.analog)
        self.weights: dict[str, torch.Tensor] = {}
        self.combined: dict[str, torch.Tensor] = {}
        self.calibrating = False
        self.ideal = False
        dev_type = torch.device(device).type
        #: worker threads for independent blocks (CPU); GPUs parallelise inside each op
        self.workers = torch.get_num_threads() if dev_type == "cpu" else 1
        #: partial sums per block: cache-sized on CPU, large enough to fill a GPU
        self.block_elems = int(opts.block_elems) * (1 if dev_type == "cpu" else 64)

    def program(self, instances: int, ideal: bool = False, first: int = 0) -> None:
        """Draw chips ``first … first + instances − 1`` (static non-idealities)."""
        self.instances = instances
        self.first = int(first)
        self.ideal = ideal
        self.weights, self.combined = {}, {}
        be, mb = self.block_elems, self.opts.min_blocks
        more = dict(min_blocks=mb, first=self.first, path=self._stream_path)
        for n, p in self.prepared.items():
            key = (self.seed, _TAG_PROG, self.layer_index[n])
            if self.adc_on or self.calibrating:
                unit = 1.0  # psums in level units: noise-free ones are exact integers
                self.weights[n] = _program(
                    p, self.dev, self.hw, instances, key, ideal, unit, self.workers, be, **more
                )
            else:
                self.combined[n] = _combined_weights(
                    p, self.dev, self.hw, instances, key, ideal, self.workers, be, **more
                )
        self.begin_batch()

    def single_worker(self) -> AnalogBackend:
        """A copy that shares the prepared layers but runs its blocks in the calling thread.

        It has its own chips (:meth:`program`) and read counters, so worker threads can
        each simulate a chunk of instances (:func:`run_instances`).
        """
        view = copy.copy(self)
        view.workers = 1
        view.weights, view.combined, view._calls = {}, {}, {}
        return view

    def begin_batch(self, sample_offset: int = 0, samples: int | None = None) -> None:
        """The next forward reads samples ``sample_offset …`` (``samples`` per instance).

        ``sample_offset`` must be a multiple of :data:`READ_GROUP`. Without ``samples``
        every crossbar row of a call counts as one sample.
        """
        if sample_offset % READ_GROUP:
            raise ValueError(
                f"sample_offset={sample_offset} must be a multiple of READ_GROUP={READ_GROUP}"
            )
        self.sample_offset = int(sample_offset)
        self.batch_samples = samples
        self._calls = {}

    def _read_key(self, name: str) -> tuple[int, ...]:
        c = self._calls.get(name, 0)
        self._calls[name] = c + 1
        return (self.seed, _TAG_READ, self.layer_index[name], c)

    def _read_streams(self, key: tuple[int, ...], s0: int, s1: int, group: int, device):
        g = self.sample_offset // READ_GROUP + group
        return [
            unit_stream(*key, self.first + i, g, device=device, path=self._stream_path)
            for i in range(s0, s1)
        ]

    def _read_noise_on(self, p: _Prepared) -> bool:
        return bool(
            self.opts.read_noise
            and not self.ideal
            and self.dev.analog
            and self.dev.read_sigma > 0
            and not p.lm.binary_mram  # seed 000 models only the static R spread
        )

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        name = self.names[id(layer)]
        p = self.prepared[name]
        s = self.instances
        rows, token = layer.to_rows(x)
        xs = rows.reshape(s, -1, rows.shape[-1])
        if xs.dtype != self.opts.dtype:
            xs = xs.to(self.opts.dtype)
        m = xs.shape[1]
        y = torch.empty(s, m, p.n_cols, device=xs.device, dtype=xs.dtype)
        if name in self.weights:
            self._tiled(name, xs, p, y)
        else:
            self._combined(name, xs, p, y)
        return self._finish(layer, x, y, p, s, m, token)

    # -- input encoding -------------------------------------------------------------------
    def _codes(self, xb: torch.Tensor, p: _Prepared) -> torch.Tensor:
        """Integer input codes (sb, mb, K') of one block incl. bias rows at full scale."""
        lm = p.lm
        if p.gather is not None:
            xb = xb.index_select(2, p.gather.to(xb.device))
        if lm.binary_mram and lm.pm1_input:
            return torch.where(xb >= 0, 1.0, -1.0).to(xb.dtype)
        sb, mb, k = xb.shape
        codes = scratch("codes", sb * mb * p.k_rows, xb).view(sb, mb, p.k_rows)
        cv = codes[..., :k]
        torch.div(xb, p.x_step, out=cv)
        if self.opts.quantize:
            cv.round_().clamp_(-p.x_levels if p.signed else 0, p.x_levels)
        if p.k_rows > k:
            codes[..., k:] = float(p.x_levels)
        return codes

    def _cycles(self, p: _Prepared) -> tuple[str, int, torch.Tensor | None]:
        """(kind, bits, cycle weights) of the crossbar read cycles (:func:`input_planes`)."""
        lm = p.lm
        if (lm.binary_mram and lm.pm1_input) or self.hw.input_mode == "dac":
            return "dac", 1, None
        nbits = max(1, int(round(math.log2(p.x_levels + 1))))
        w = [float(2**j) for j in range(nbits)]
        if lm.binary_mram:  # sign routes the row to WL or WL̄ in the same cycle
            kind = "routed"
        elif p.signed:
            kind, w = "signed", w + [-v for v in w]
        else:
            kind = "unsigned"
        return kind, nbits, torch.tensor(w, dtype=self.opts.dtype)

    def _blocks(self, s: int, planes: int, m: int, width: int) -> tuple[int, int, list]:
        """(instances per block, rows per sample group, [(s0, group)]): whole noise units.

        A block holds some instances × one group of :data:`READ_GROUP` samples (all the
        crossbar rows of those samples); instances are split further until there are
        ``min_blocks`` blocks when possible.
        """
        n = self.batch_samples
        per_sample = m // n if n and m % n == 0 else 1
        g_rows = READ_GROUP * per_sample
        n_groups = max(1, math.ceil(m / g_rows))
        sb = max(1, min(s, self.block_elems // max(1, planes * g_rows * width)))
        if math.ceil(s / sb) * n_groups < self.opts.min_blocks:
            sb = max(1, s // math.ceil(self.opts.min_blocks / n_groups))
        return sb, g_rows, [(s0, g) for s0 in range(0, s, sb) for g in range(n_groups)]

    # -- per-tile ADC path ----------------------------------------------------------------
    def _tiled(self, name: str, xs: torch.Tensor, p: _Prepared, y: torch.Tensor) -> None:
        s, m, _ = xs.shape
        g = self.weights[name]
        kind, nbits, plane_w = self._cycles(p)
        if plane_w is not None:
            plane_w = plane_w.to(xs.device)
        n_pl = 1 if plane_w is None else plane_w.numel()
        mram_rows = p.lm.binary_mram
        k_in = p.k_rows * (2 if mram_rows else 1)
        c = g.shape[-1]
        sb, mb, blocks = self._blocks(s, n_pl, m, max(c, k_in))
        direct = kind == "dac" and not mram_rows
        if self.calibrating:
            adc = None
        elif self.hw.adc_bits == 1:
            adc = "sign"
        else:
            top = 2 ** (self.hw.adc_bits - 1) - 1
            adc = (p.adc_step, float(-top - 1), float(top))
        read_std = (
            self.dev.read_sigma * math.sqrt(2.0) * p.levels if self._read_noise_on(p) else 0.0
        )
        rkey = self._read_key(name)
        scale = p.adc_step * p.x_step * p.w_scale
        sw = [w * scale for w in p.slice_w]
        calib: dict[int, list[torch.Tensor]] = {}

        def job(j: int) -> None:
            s0, grp = blocks[j]
            m0 = grp * mb
            s1, m1 = min(s, s0 + sb), min(m, m0 + mb)
            codes = self._codes(xs[s0:s1, m0:m1], p)
            if direct:
                xp = codes
            else:
                n = (s1 - s0) * n_pl * (m1 - m0) * k_in
                xp = input_planes(codes, nbits, kind, mram_rows, scratch("planes", n, codes))
            nz = xp.shape[0] * xp.shape[1] * c
            z = scratch("z", nz, xp)
            acc = scratch("acc", nz // n_pl, xp)
            gen = self._read_streams(rkey, s0, s1, grp, xs.device) if read_std > 0 else None
            cal: list[torch.Tensor] | None = [] if self.calibrating else None
            gs = [g[s0:s1, r0:r1] for r0, r1 in p.row_ranges]
            a = tile_reads(xp, gs, p.row_ranges, plane_w, read_std, gen, adc, z, acc, cal)
            yb = y[s0:s1, m0:m1]
            combine_slices(a, sw, yb)
            if p.bias_digital is not None:
                yb.add_(p.bias_digital)
            if cal:
                calib[j] = [v[:: max(1, v.numel() // 200_000)].float().cpu().clone() for v in cal]

        run_blocks(job, len(blocks), self.workers)
        for j in sorted(calib):
            p.calib.extend(calib[j])

    # -- no-ADC path ----------------------------------------------------------------------
    def _combined(self, name: str, xs: torch.Tensor, p: _Prepared, y: torch.Tensor) -> None:
        s, m, _ = xs.shape
        w = self.combined[name]
        mram_rows = p.lm.binary_mram
        k_in = p.k_rows * (2 if mram_rows else 1)
        sb, mb, blocks = self._blocks(s, 1, m, max(p.n_cols, k_in))
        std = 0.0
        if self._read_noise_on(p):
            # slices add independently: Σ_k 4^(c·k) times the per-slice read variance
            std = self.dev.read_sigma * math.sqrt(2.0 * sum(c * c for c in p.slice_w)) * p.levels
        if std == 0 and self._direct_ok(p):
            self._combined_direct(name, xs, p, y)
            return
        rkey = self._read_key(name)
        scale = p.x_step * p.w_scale

        def job(j: int) -> None:
            s0, grp = blocks[j]
            m0 = grp * mb
            s1, m1 = min(s, s0 + sb), min(m, m0 + mb)
            codes = self._codes(xs[s0:s1, m0:m1], p)
            if mram_rows:
                n = codes.numel() * 2
                xin = input_planes(codes, 1, "dac", True, scratch("planes", n, codes))
            else:
                xin = codes
            z = scratch("z", (s1 - s0) * (m1 - m0) * p.n_cols, xin).view(s1 - s0, m1 - m0, -1)
            torch.bmm(xin, w[s0:s1], out=z)
            if std > 0:  # per-output read noise N(0, (std·‖x‖)²), one stream per unit
                row_std = torch.linalg.vector_norm(xin, dim=-1).mul_(std)
                gens = self._read_streams(rkey, s0, s1, grp, xs.device)
                for i, gen in enumerate(gens):
                    gen.read_adc_(z[i], row_std[i], None)
            yb = y[s0:s1, m0:m1]
            torch.mul(z, scale, out=yb)
            if p.bias_digital is not None:
                yb.add_(p.bias_digital)

        run_blocks(job, len(blocks), self.workers)

    def _direct_ok(self, p: _Prepared) -> bool:
        """No input quantization and plain rows: :meth:`_combined_direct` applies."""
        return not self.opts.quantize and not p.lm.binary_mram

    def _combined_direct(self, name: str, xs: torch.Tensor, p: _Prepared, y: torch.Tensor) -> None:
        """No ADC, no input quantization, no read noise: one threaded GEMM per layer call.

        Nothing elementwise is left to keep in cache, so cache blocks would only add
        Python dispatch and smaller single-thread GEMMs (a 2-thread bmm of the benchmark's
        layer shape runs at ~165 GFLOP/s on the project machine; the unquantized
        mc_throughput run went from ~1140 to ~1230 instances/s). The weight step is the
        GEMM's alpha and the bias rows (driven at full scale, as in :meth:`_codes`) are
        a per-instance bias vector, so the layer input goes into the product as it is:
        no scaled, widened copy of it (measured: that copy, over the whole activation,
        cost ~40 % as much as the product itself).
        """
        w = self.combined[name]
        xb = xs if p.gather is None else xs.index_select(2, p.gather.to(xs.device))
        k = xb.shape[-1]
        saved = torch.get_num_threads()
        torch.set_num_threads(max(saved, self.workers))
        try:
            if p.k_rows > k:  # bias rows driven at full scale: a per-instance bias vector
                drive = p.x_levels * p.x_step * p.w_scale
                bias = w[:, k:].sum(1, keepdim=True).mul_(drive)
                torch.baddbmm(bias, xb, w[:, :k], alpha=p.w_scale, out=y)
            else:
                torch.baddbmm(y, xb, w, beta=0.0, alpha=p.w_scale, out=y)
        finally:
            torch.set_num_threads(saved)
        if p.bias_digital is not None:
            y.add_(p.bias_digital)

    def _finish(self, layer, x, y, p: _Prepared, s: int, m: int, token) -> torch.Tensor:
        """Scatter kept columns back to the layer's N outputs and reshape."""
        lm = p.lm
        if lm.cols_logical == lm.n:
            out = y
        else:
            out = y.new_zeros(s, m, lm.n)
            out[:, :, lm.col_idx.to(out.device)] = y
        return layer.from_rows(out.reshape(s * m, lm.n).to(x.dtype), token)


# ----------------------------------------------------------------------------------------
def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but CUDA is not available")
    return torch.device(device)


def build_backend(
    model: nn.Module,
    mapping: Mapping,
    hw: HardwareConfig,
    device_model: DeviceModel,
    seed: int = 0,
    opts: SimOptions | None = None,
    calib_x: torch.Tensor | None = None,
) -> AnalogBackend:
    """Prepare per-layer data and calibrate ADC ranges; returns a ready backend."""
    opts = opts or SimOptions()
    tdev = next(model.parameters()).device
    layers = {n: m for n, m in model.named_modules() if isinstance(m, CrossbarMixin)}
    missing = [n for n in layers if n not in mapping.layers]
    if missing:
        raise ValueError(
            f"mapping has no entry for crossbar layers {missing}; rebuild it with Mapping.from_model"
        )
    names = {id(m): n for n, m in layers.items()}
    calib = calib_x if calib_x is not None else mapping.calib_input
    adc_on = bool(opts.quantize and device_model.analog)
    if adc_on and calib is None:
        raise ValueError(
            "no calibration inputs: pass calib_x or build the Mapping with sample_input"
        )
    if adc_on:
        calib = calib[: opts.calib_samples].to(tdev)
    key = _prepared_key(model, mapping, hw, device_model, opts, calib if adc_on else None, tdev)
    if key is not None and key in _PREPARED:
        _PREPARED.move_to_end(key)
        backend = AnalogBackend(_PREPARED[key], names, hw, device_model, opts, seed, tdev)
        backend.program(1, ideal=True)
        return backend
    prepared = {
        n: _prepare(layers[n], mapping.layers[n], hw, device_model, tdev, opts.dtype)
        for n in layers
    }
    backend = AnalogBackend(prepared, names, hw, device_model, opts, seed, tdev)
    if adc_on:
        _calibrate(model, backend, calib, hw, opts)
    if key is not None:
        _PREPARED[key] = prepared
        while len(_PREPARED) > _PREPARED_SIZE:
            _PREPARED.popitem(last=False)
    backend.program(1, ideal=True)  # a usable (ideal, calibrated) chip until program(S)
    return backend


#: prepared (quantized, sliced, ADC-calibrated) layers of recent (model, mapping, hw) pairs
_PREPARED: OrderedDict[tuple, dict[str, _Prepared]] = OrderedDict()
_PREPARED_SIZE = 16


def _hash_tensor(h, t: torch.Tensor) -> None:
    a = t.detach().to("cpu").contiguous().reshape(-1)
    h.update(repr((tuple(t.shape), str(t.dtype))).encode())
    h.update(a.view(torch.uint8).numpy())


def _prepared_key(
    model: nn.Module,
    mapping: Mapping,
    hw: HardwareConfig,
    dev: DeviceModel,
    opts: SimOptions,
    calib: torch.Tensor | None,
    tdev: torch.device,
) -> tuple | None:
    """Content key of everything the prepared layers and their ADC ranges depend on.

    A design search re-simulates one trained model under many hardware variants; those
    that differ only in noise (variation_scale, drift, device σ's) or in cost-only keys
    (tech_nm, freq_mhz, cols_per_adc) share the weight slicing and the ideal-chip ADC
    calibration. Keys hash tensor *contents* (weights, buffers, mapping indices,
    calibration inputs), so an in-place weight update or a new tensor at a recycled
    address can never hit a stale entry. ``None`` (no caching) if a tensor cannot be hashed.
    """
    if not opts.cache:
        return None
    h = hashlib.blake2b(digest_size=20)
    try:
        h.update(repr((type(model).__qualname__, repr(model), model.training)).encode())
        for k, v in model.state_dict().items():
            h.update(k.encode())
            _hash_tensor(h, v)
        for n, layer in model.named_modules():
            if isinstance(layer, CrossbarMixin):
                h.update(repr((n, layer.binary, layer.weight_bits)).encode())
        for n, lm in mapping.layers.items():
            fields = (n, lm.k, lm.n, lm.bias_rows, lm.weight_bits, lm.cell_bits, lm.slices)
            more = (lm.binary_mram, lm.rows_per_input, lm.input_range, lm.signed_input)
            h.update(repr((fields, more, lm.pm1_input)).encode())
            _hash_tensor(h, lm.row_idx)
            _hash_tensor(h, lm.col_idx)
        if calib is not None:
            _hash_tensor(h, calib)
    except (TypeError, RuntimeError):
        return None
    sim_hw = (hw.array_size, hw.adc_bits, hw.act_bits, hw.weight_bits, hw.cell_bits, hw.input_mode)
    # calibration runs the *ideal* chip: only nominal conductances matter, not the σ's
    nominal = (dev.name, dev.g_min_us, dev.g_max_us, dev.levels, dev.analog, dev.binary)
    sim_opts = (opts.adc_percentile, opts.calib_samples, opts.quantize, str(opts.dtype))
    return (h.hexdigest(), sim_hw, nominal, dev.r_p_ohm, dev.r_ap_ohm, sim_opts, str(tdev))


def _calibrate(
    model: nn.Module, backend: AnalogBackend, calib: torch.Tensor, hw: HardwareConfig, opts
) -> None:
    """ADC full scale per layer from the ideal chip's partial sums on ``calib``."""
    prepared = backend.prepared
    backend.calibrating = True
    try:
        backend.program(1, ideal=True)
        backend.begin_batch(0, len(calib))
        with torch.no_grad(), use_backend(model, backend), _main_thread_serial(backend):
            model(calib)
    finally:
        backend.calibrating = False
    for p in prepared.values():
        vals = torch.cat(p.calib) if p.calib else torch.ones(1)
        p.calib.clear()
        rng = _percentile(vals, opts.adc_percentile)
        p.adc_range = rng if rng > 0 else 1.0
        mean_abs = float(vals.mean())
        p.adc_mean_abs = mean_abs if mean_abs > 0 else 1.0
        top = 2 ** (hw.adc_bits - 1) - 1
        # 1-bit ADC: a comparator whose ±1 outputs are weighted by the mean |psum|
        p.adc_step = p.adc_mean_abs if hw.adc_bits == 1 else p.adc_range / top


def _percentile(vals: torch.Tensor, pct: float) -> float:
    """``torch.quantile(vals, pct/100)`` (linear interpolation) by two O(n) selections.

    torch.quantile sorts (and refuses > 16M values); a re-evaluation calibrates every
    layer, so the sort showed up as ~70 ms per layer.
    """
    n = vals.numel()
    if pct >= 100 or n == 1:
        return float(vals.max())
    pos = pct / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    if n - lo <= 4096:  # high percentiles (the ADC case): one partial top-k
        top = torch.topk(vals, n - lo).values  # descending; v[lo] is the last
        v_lo, v_hi = float(top[-1]), float(top[max(0, n - 1 - hi)])
    else:
        v_lo = float(vals.kthvalue(lo + 1).values)
        v_hi = float(vals.kthvalue(hi + 1).values)
    return v_lo + (pos - lo) * (v_hi - v_lo)


def chunk_sizes(
    mapping: Mapping, hw: HardwareConfig, opts: SimOptions, samples: int, instances: int
) -> tuple[int, int]:
    """(instances, samples) per chunk so that programmed weights + activations fit the cap.

    Per instance: every layer's programmed tensor (×2 while the two cells of a pair are
    drawn, ×2 more with drift). Per instance·sample: each layer's unrolled input, codes
    and outputs. The cache blocks of :mod:`.sim_kernels` come on top (a few MB).
    """
    per_inst = 0.0
    per_pair = 0.0
    for lm in mapping.layers.values():
        rows = lm.rows_logical * lm.rows_per_input
        per_inst += rows * lm.cols_logical * lm.slices * 4.0 * (5 if hw.drift_time_s > 0 else 3)
        vec = max(lm.vectors_per_inference, 1)
        per_pair = max(
            per_pair, vec * (lm.k * 4.0 * 2 + lm.rows_logical * 4.0 * 2 + lm.n * 4.0 * 3)
        )
    cap = float(opts.memory_cap_bytes)
    s_chunk = int(cap // (per_inst + samples * per_pair))
    if s_chunk >= 1:
        return min(instances, s_chunk), samples
    b_chunk = int((cap - per_inst) // per_pair)
    return 1, max(1, min(samples, b_chunk))


def simulate(
    model: nn.Module,
    mapping: Mapping,
    hw: HardwareConfig,
    device_model: DeviceModel,
    x: torch.Tensor,
    y: torch.Tensor,
    instances: int = 32,
    seed: int = 0,
    memory_cap_bytes: int | None = None,
    device: str = "auto",
    opts: SimOptions | None = None,
    calib_x: torch.Tensor | None = None,
) -> dict[str, object]:
    """Monte-Carlo accuracy of ``instances`` chips (see module docstring).

    Returns ``accuracy_ideal`` (digital float model), ``accuracy_mean``, ``accuracy_std``,
    ``accuracy_p5`` and ``per_instance`` (numpy array of per-chip accuracies).
    """
    if instances < 1:
        raise ValueError(f"instances must be >= 1, got {instances}")
    opts = opts or SimOptions()
    if memory_cap_bytes is not None:
        opts = replace(opts, memory_cap_bytes=int(memory_cap_bytes))
    tdev = _resolve_device(device)
    orig_dev = next(model.parameters()).device
    model = model.to(tdev)
    was_training = model.training
    model.eval()
    try:
        x = x.to(tdev)
        y = y.to(tdev)
        with torch.no_grad():
            ideal = _accuracy_digital(model, x, y)
        backend = build_backend(model, mapping, hw, device_model, seed, opts, calib_x)
        correct = run_instances(model, backend, mapping, hw, x, y, instances, opts)
    finally:
        model.train(was_training)
        model.to(orig_dev)
    acc = correct / len(y)
    return {
        "accuracy_ideal": ideal,
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
        "accuracy_p5": float(np.percentile(acc, 5)),
        "per_instance": acc,
    }


def run_instances(
    model: nn.Module,
    backend: AnalogBackend,
    mapping: Mapping,
    hw: HardwareConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    instances: int,
    opts: SimOptions,
) -> np.ndarray:
    """Correct-prediction counts per instance, chunked over instances and samples.

    Each instance chunk is programmed once and then sees the whole test set. Sample
    chunks are cut at multiples of :data:`READ_GROUP` (a chunk of one group may exceed the
    memory cap slightly), so every sample draws the reads one big run would.

    On CPU with several worker threads the instances are cut into small chunks that run
    whole-network forwards side by side, one chunk per worker thread at a time
    (:func:`_thread_chunk`); otherwise one chunk at a time runs layer by layer with the
    blocks of each layer call spread over the workers. Noise is keyed by instance and
    sample group (module docstring), so both give the same chips and reads.
    """
    s_chunk, b_chunk = chunk_sizes(mapping, hw, opts, len(x), instances)
    if b_chunk < len(x):
        b_chunk = max(READ_GROUP, b_chunk // READ_GROUP * READ_GROUP)
    correct = np.zeros(instances, dtype=np.float64)
    per_thread = _thread_chunk(mapping, backend, x, instances, s_chunk, b_chunk)
    if per_thread:
        _run_chunks_threaded(model, backend, x, y, instances, per_thread, b_chunk, correct)
        return correct
    with torch.no_grad(), use_backend(model, backend), _main_thread_serial(backend):
        for s0 in range(0, instances, s_chunk):
            s = min(s_chunk, instances - s0)
            _run_chunk(model, backend, x, y, s0, s, b_chunk, correct)
    return correct


def _run_chunk(
    model: nn.Module,
    backend: AnalogBackend,
    x: torch.Tensor,
    y: torch.Tensor,
    s0: int,
    s: int,
    b_chunk: int,
    correct: np.ndarray,
) -> None:
    """Program instances ``s0 … s0 + s − 1`` on ``backend`` and count their correct answers."""
    backend.program(s, first=s0)
    for b0 in range(0, len(x), b_chunk):
        xb = x[b0 : b0 + b_chunk]
        yb = y[b0 : b0 + b_chunk]
        backend.begin_batch(b0, len(xb))
        xr = xb.unsqueeze(0).expand(s, *xb.shape).reshape(s * len(xb), *xb.shape[1:])
        logits = model(xr).reshape(s, len(xb), -1)
        correct[s0 : s0 + s] += (logits.argmax(-1) == yb).sum(1).double().cpu().numpy()


#: activations (bytes) of one thread's instance chunk (measured on the 2-core project
#: machine, MLP 64-256-256-10 × 360 images, 1.1 MB per instance by :func:`_thread_chunk`'s
#: count: 1 instance per chunk 1.3×, 2: 1.6×, 4: 1.9×, 8: 1.5× the layer-by-layer rate)
THREAD_CHUNK_BYTES = 5 * 2**20


def _thread_chunk(
    mapping: Mapping,
    backend: AnalogBackend,
    x: torch.Tensor,
    instances: int,
    s_chunk: int,
    b_chunk: int,
) -> int:
    """Instances per worker-thread chunk, or 0 for the layer-by-layer path.

    Measured (issue 15 item 4, 2 cores): running all 64 instances layer by layer streams
    every activation (64 × 360 × 256 floats) through DRAM several times (product, ReLU,
    input scaling), at about half the speed of whole-network forwards of a few instances
    per thread whose activations stay in the core's cache. Chunks are sized so that one
    layer's input and output fit :data:`THREAD_CHUNK_BYTES`, at most the memory cap's
    instance chunk shared among the workers, and small enough to give every worker work.
    """
    workers = backend.workers
    if workers <= 1 or x.device.type != "cpu" or backend.calibrating or instances < 2:
        return 0
    if backend.adc_on:  # per-tile ADC blocks already keep their passes in cache
        return 0
    if s_chunk < workers:  # the cap allows fewer concurrent chips than there are workers
        return 0
    act = 0
    for lm in mapping.layers.values():
        vec = max(lm.vectors_per_inference, 1)
        act = max(act, vec * (lm.k + lm.n + lm.rows_logical) * 4)
    per_inst = max(1, act * min(b_chunk, len(x)))
    c = max(1, THREAD_CHUNK_BYTES // per_inst)
    c = min(c, s_chunk // workers, max(1, math.ceil(instances / (2 * workers))))
    return max(1, c)


class _ThreadBackends:
    """The crossbar backend of the calling thread (one chip chunk per worker thread)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        return self.local.backend(layer, x)


def _run_chunks_threaded(
    model: nn.Module,
    backend: AnalogBackend,
    x: torch.Tensor,
    y: torch.Tensor,
    instances: int,
    per_thread: int,
    b_chunk: int,
    correct: np.ndarray,
) -> None:
    """:func:`_run_chunk` of chunks of ``per_thread`` instances on the worker threads.

    Each thread runs its chunk on its own single-worker copy of ``backend`` (same
    prepared layers, calibration, seed and noise path), so chunk ``s0`` draws exactly
    the chips and reads of instances ``s0 …`` of one big run.
    """
    dispatch = _ThreadBackends()
    starts = list(range(0, instances, per_thread))

    def job(j: int) -> None:
        view = dispatch.local.__dict__.get("view")
        if view is None:
            view = dispatch.local.view = backend.single_worker()
        dispatch.local.backend = view
        s0 = starts[j]
        with torch.no_grad():  # grad mode is per thread
            _run_chunk(model, view, x, y, s0, min(per_thread, instances - s0), b_chunk, correct)

    with torch.no_grad(), use_backend(model, dispatch):
        run_blocks(job, len(starts), backend.workers)
    backend.begin_batch()


@contextlib.contextmanager
def _main_thread_serial(backend: AnalogBackend) -> Iterator[None]:
    """Glue ops between blocks (ReLU, reshapes) run single-threaded in the caller.

    The backend's worker threads do the heavy work; intra-op threading of the glue would
    only add barriers (and restore the caller's thread count afterwards).
    """
    saved = torch.get_num_threads()
    if backend.workers > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _accuracy_digital(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = 0
    for b0 in range(0, len(x), 4096):
        correct += int((model(x[b0 : b0 + 4096]).argmax(-1) == y[b0 : b0 + 4096]).sum())
    return correct / len(y)

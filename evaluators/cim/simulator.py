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
   (aihwkit's GlobalDriftCompensation idea).
3. Per read: cycle-to-cycle conductance noise. Because it is independent per cell and
   per read, x·(G + ε) = x·G + N(0, σ²‖x‖²) exactly in distribution, so it is added to
   each column sum with std σ·‖x_tile‖ (no per-read weight tensor is materialised).
4. Inputs quantized to ``hw.act_bits`` against the layer's calibrated full scale;
   bit-serial (one 1-bit cycle per bit, positive and negative parts in separate cycles)
   or one multi-bit DAC cycle.
5. Each tile's column partial sum is digitised by an ``hw.adc_bits`` ADC whose range is
   calibrated on the ideal (noise-free) partial sums of a calibration batch (a high
   percentile of |psum|), then shift-and-add over bit planes, weight slices and row
   tiles in digital.

All S instances run as one batched computation: instance s is batch block s
(layers.py folds instances into the batch dim), weights are (S, tiles, rows, cols)
tensors and every tile product is one batched ``matmul``. Work is chunked over
instances and samples to stay under a memory cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import mram
from .devices import DeviceModel
from .layers import CrossbarMixin, use_backend
from .mapping import HardwareConfig, LayerMapping, Mapping


@dataclass
class SimOptions:
    """Knobs of the simulation that are not hardware design keys."""

    #: ADC full scale = this percentile of |ideal partial sums| on the calibration batch
    adc_percentile: float = 99.99
    #: cap on the largest intermediate tensors (bytes), sets instance/sample chunks
    memory_cap_bytes: int = 512 * 2**20
    #: max calibration samples
    calib_samples: int = 128
    #: skip ADC and input quantization (for benchmarking against unquantized simulators)
    quantize: bool = True
    #: simulate read noise (per inference)
    read_noise: bool = True
    dtype: torch.dtype = torch.float32


# ----------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    """Instance-independent per-layer data (device-side tensors)."""

    lm: LayerMapping
    k_rows: int  # rows of W̃ incl. bias rows
    n_cols: int
    tiles: int  # row tiles
    rows_per_tile: int  # logical inputs per tile
    slices: int
    levels: int  # conductance levels per cell minus one (L − 1)
    slice_weights: torch.Tensor  # (n_s,) 2^(c·k)
    w_scale: float  # weight units per slice-level unit
    x_levels: int
    x_step: float
    signed: bool
    sign: torch.Tensor | None = None  # (K', N') in {−1, 0, 1}
    slice_vals: torch.Tensor | None = None  # (n_s, K', N') levels 0..L−1
    w_pm1: torch.Tensor | None = None  # binary MRAM ±1 weights (K', N')
    bias_digital: torch.Tensor | None = None
    adc_range: float = 1.0
    adc_mean_abs: float = 1.0
    calib: list[torch.Tensor] = field(default_factory=list)


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
    if lm.binary_mram:
        k_rows = wk.shape[0]
        prep = _Prepared(
            lm=lm,
            k_rows=k_rows,
            n_cols=wk.shape[1],
            tiles=max(1, math.ceil(k_rows / a_rows)),
            rows_per_tile=a_rows,
            slices=1,
            levels=1,
            slice_weights=torch.ones(1, device=tdev, dtype=dtype),
            w_scale=1.0,
            x_levels=x_levels,
            x_step=x_step,
            signed=signed,
            w_pm1=torch.where(wk >= 0, 1.0, -1.0).to(dtype),
        )
        if b is not None:
            prep.bias_digital = b[ci].to(dtype)
        return prep
    # bias rows (seed 001): inputs driven at full scale x_fs, weights b/(r·x_fs)
    if lm.bias_rows and b is not None:
        brow = (b[ci] / (lm.bias_rows * lm.input_range)).expand(lm.bias_rows, -1)
        wk = torch.cat([wk, brow], dim=0)
    q_max = 2 ** max(lm.weight_bits - 1, 1) - 1
    w_max = float(wk.abs().max()) if wk.numel() else 0.0
    w_max = w_max if w_max > 0 else 1.0
    m = torch.round(wk.abs() / w_max * q_max).long()
    c = lm.cell_bits
    lv = 2**c - 1
    slices = torch.stack([((m >> (c * s)) & lv) for s in range(lm.slices)]).to(dtype)
    k_rows = wk.shape[0]
    return _Prepared(
        lm=lm,
        k_rows=k_rows,
        n_cols=wk.shape[1],
        tiles=max(1, math.ceil(k_rows / a_rows)),
        rows_per_tile=a_rows,
        slices=lm.slices,
        levels=lv,
        slice_weights=torch.tensor(
            [float(2 ** (c * s)) for s in range(lm.slices)], device=tdev, dtype=dtype
        ),
        w_scale=w_max / q_max,
        x_levels=x_levels,
        x_step=x_step,
        signed=signed,
        sign=torch.sign(wk).to(dtype),
        slice_vals=slices,
    )


# ----------------------------------------------------------------------------------------
def _program(
    p: _Prepared, dev: DeviceModel, hw: HardwareConfig, s: int, gen, ideal: bool
) -> torch.Tensor:
    """Programmed weights of ``s`` instances as (S, tiles, rows_per_tile, cols) tensors.

    Multi-level: difference G⁺ − G⁻ in slice-level units, columns ordered (slice, col).
    Binary MRAM: [G_A; G_B] stacked along rows (2·rows_per_tile), in units of 1/R_P.
    """
    tdev, dtype = p.slice_weights.device, p.slice_weights.dtype
    if p.lm.binary_mram:
        mp = mram.MTJParams.from_device(dev)
        w = p.w_pm1.expand(s, -1, -1)
        if ideal:
            ga, gb = mram.unit_conductances(
                w, *(torch.full_like(w, v) for v in (1.0, mp.r_p / mp.r_ap, 1.0, mp.r_p / mp.r_ap))
            )
        else:
            shape = (s, *p.w_pm1.shape)
            gpa, gapa = mram.sample_conductances(shape, mp, gen, tdev, dtype)
            gpb, gapb = mram.sample_conductances(shape, mp, gen, tdev, dtype)
            ga, gb = mram.unit_conductances(w, gpa, gapa, gpb, gapb)
        ga, gb = _tile_rows(ga, p), _tile_rows(gb, p)
        return torch.cat([ga, gb], dim=2)  # (S, T, 2·A/2, N)

    L = p.levels
    sv = p.slice_vals  # (n_s, K', N')
    pos = sv * (p.sign > 0)
    neg = sv * (p.sign < 0)
    if ideal or not dev.analog:
        d = (pos - neg).unsqueeze(0).expand(s, -1, -1, -1)
    else:
        g0 = dev.g_min_us / dev.g_range_us  # g_min in range units
        linear = (
            dev.stuck_on_rate == 0
            and dev.stuck_off_rate == 0
            and hw.drift_time_s == 0
            and g0 > 5 * dev.prog_sigma
        )
        if linear:
            # Only Gaussian programming noise and g_min more than 5σ above 0 (clipping at
            # G = 0 has probability < 3e-7): G⁺ − G⁻ = target difference + N(0, 2σ²).
            base = (pos - neg).unsqueeze(0)
            noise = torch.randn((s, *sv.shape), generator=gen, device=tdev, dtype=dtype)
            d = noise.mul_(math.sqrt(2.0) * dev.prog_sigma * L).add_(base)
        else:
            d = _cells(g0 + pos / L, dev, hw, s, gen, g0) - _cells(
                g0 + neg / L, dev, hw, s, gen, g0
            )
            d = d * L
    # (S, n_s, K', N') -> (S, K', n_s·N')
    d = d.permute(0, 2, 1, 3).reshape(s, p.k_rows, p.slices * p.n_cols)
    return _tile_rows(d, p)


def _cells(
    target: torch.Tensor, dev: DeviceModel, hw: HardwareConfig, s: int, gen, g0: float
) -> torch.Tensor:
    """Static non-idealities of one chip instance, in units of the conductance range."""
    shape = (s, *target.shape)
    g = target + dev.prog_sigma * torch.randn(
        shape, generator=gen, device=target.device, dtype=target.dtype
    )
    if dev.stuck_on_rate > 0 or dev.stuck_off_rate > 0:
        u = torch.rand(shape, generator=gen, device=target.device, dtype=target.dtype)
        g = torch.where(u < dev.stuck_on_rate, g0 + 1.0, g)
        g = torch.where(
            (u >= dev.stuck_on_rate) & (u < dev.stuck_on_rate + dev.stuck_off_rate), g0, g
        )
    g = g.clamp_min(0.0)
    t = hw.drift_time_s
    if t > 0 and (dev.drift_nu > 0 or dev.noise_1f_q > 0):
        g_prog = g
        tt = t + dev.drift_t0_s
        if dev.drift_nu > 0:
            nu = (
                dev.drift_nu
                + dev.drift_nu_std
                * torch.randn(shape, generator=gen, device=g.device, dtype=g.dtype)
            ).abs()
            g = g * (tt / dev.drift_t0_s) ** (-nu)
        if dev.noise_1f_q > 0:
            g_rel = (g_prog * dev.g_range_us / dev.g_max_us).abs()
            q_s = (dev.noise_1f_q / g_rel.clamp_min(1e-3) ** 0.65).clamp(max=0.2)
            sig = q_s * math.sqrt(math.log((tt + dev.t_read_s) / (2 * dev.t_read_s)))
            g = g + g.abs() * sig * torch.randn(
                shape, generator=gen, device=g.device, dtype=g.dtype
            )
        g = g.clamp_min(0.0)
        if dev.drift_nu > 0:  # global drift compensation by the expected factor
            g = g * (tt / dev.drift_t0_s) ** dev.drift_nu
    return g


def _tile_rows(m: torch.Tensor, p: _Prepared) -> torch.Tensor:
    """(S, K', C) -> (S, T, rows_per_tile, C), zero-padding the last tile."""
    s, k, c = m.shape
    pad = p.tiles * p.rows_per_tile - k
    if pad:
        m = torch.cat([m, m.new_zeros(s, pad, c)], dim=1)
    return m.reshape(s, p.tiles, p.rows_per_tile, c)


# ----------------------------------------------------------------------------------------
class AnalogBackend:
    """Crossbar backend simulating ``instances`` programmed chips at once (layers.Backend)."""

    def __init__(
        self,
        prepared: dict[str, _Prepared],
        names: dict[int, str],
        hw: HardwareConfig,
        dev: DeviceModel,
        opts: SimOptions,
        gen: torch.Generator | None,
    ):
        self.prepared = prepared
        self.names = names
        self.hw = hw
        self.dev = dev
        self.opts = opts
        self.gen = gen
        self.instances = 1
        self.weights: dict[str, torch.Tensor] = {}
        self.calibrating = False
        self.ideal = False

    def program(self, instances: int, ideal: bool = False) -> None:
        self.instances = instances
        self.ideal = ideal
        self.weights = {}
        self.combined: dict[str, torch.Tensor] = {}
        if not self.opts.quantize:
            if not ideal:
                self._program_combined(instances)
                return
        self.weights = {
            n: _program(p, self.dev, self.hw, instances, self.gen, ideal)
            for n, p in self.prepared.items()
        }
        if not self.opts.quantize:
            # Without ADCs the shift-and-add over slices and tiles is linear, so it can be
            # folded into one effective weight matrix per instance: (S, K', N).
            for n, p in self.prepared.items():
                if p.lm.binary_mram:
                    continue
                g = self.weights[n]  # (S, T, A, n_s·N)
                s_, t_, a_, _ = g.shape
                g = g.reshape(s_, t_ * a_, p.slices, p.n_cols)
                comb = torch.einsum("skcn,c->skn", g, p.slice_weights)
                self.combined[n] = comb[:, : p.k_rows].contiguous()

    def _program_combined(self, s: int) -> None:
        """Unquantized mode: draw the shift-and-added weight of each instance directly.

        Σ_k 2^(c·k)·(D_k + √2·σ·L·ε_k) = D + √2·σ·L·sqrt(Σ_k 4^(c·k))·ε for the linear
        Gaussian case (same distribution, one random draw per weight instead of per cell).
        """
        for n, p in self.prepared.items():
            dev, L = self.dev, p.levels
            g0 = dev.g_min_us / dev.g_range_us if dev.analog else 0.0
            linear = (
                dev.stuck_on_rate == 0
                and dev.stuck_off_rate == 0
                and self.hw.drift_time_s == 0
                and (not dev.analog or g0 > 5 * dev.prog_sigma)
            )
            if p.lm.binary_mram or not linear:
                g = _program(p, dev, self.hw, s, self.gen, False)
                self.weights[n] = g
                if not p.lm.binary_mram:
                    s_, t_, a_, _ = g.shape
                    g = g.reshape(s_, t_ * a_, p.slices, p.n_cols)
                    comb = torch.einsum("skcn,c->skn", g, p.slice_weights)
                    self.combined[n] = comb[:, : p.k_rows].contiguous()
                continue
            base = torch.einsum("ckn,c->kn", p.slice_vals, p.slice_weights) * p.sign
            sig = math.sqrt(2.0 * float((p.slice_weights**2).sum())) * dev.prog_sigma * L
            noise = torch.randn(
                (s, *base.shape), generator=self.gen, device=base.device, dtype=base.dtype
            )
            self.combined[n] = noise.mul_(sig).add_(base)

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        name = self.names[id(layer)]
        p = self.prepared[name]
        lm = p.lm
        s = self.instances
        rows, token = layer.to_rows(x)
        k = rows.shape[-1]
        xs = rows.reshape(s, -1, k)[:, :, lm.row_idx.to(rows.device)].to(p.slice_weights.dtype)
        m = xs.shape[1]
        planes, plane_w = self._encode_inputs(xs, p)  # (S, P·M, K'), (P,)
        if name in self.combined and not self.calibrating:
            y = torch.bmm(planes, self.combined[name])  # (S, M, N')
            if self._read_noise_on():
                # slices add independently: Σ_k 4^(c·k) times the per-slice read variance
                k2 = float((p.slice_weights**2).sum())
                std = self.dev.read_sigma * math.sqrt(2.0 * k2) * p.levels
                std = std * planes.pow(2).sum(-1, keepdim=True).sqrt()
                y = y + std * torch.randn(
                    y.shape, generator=self.gen, device=y.device, dtype=y.dtype
                )
            return self._finish(layer, x, y * (p.x_step * p.w_scale), p, s, m, token)
        g = self.weights[name]  # (S, T, A', C)
        npl = plane_w.numel()
        if lm.binary_mram:
            xp = _tile_inputs(planes.clamp_min(0), p)
            xn = _tile_inputs((-planes).clamp_min(0), p)
            cur = torch.matmul(torch.cat([xp, xn], dim=-1), g)  # (S, T, R, N)
            mp = mram.MTJParams.from_device(self.dev)
            absx = (xp + xn).sum(-1, keepdim=True)
            psum = (cur - mp.g_mid * mp.r_p * absx) / (0.5 * mp.g_delta * mp.r_p)
        else:
            xt = _tile_inputs(planes, p)  # (S, T, R, A)
            psum = torch.matmul(xt, g)  # (S, T, R, n_s·N)
            if (
                self.opts.read_noise
                and not self.ideal
                and self.dev.analog
                and self.dev.read_sigma > 0
            ):
                std = (self.dev.read_sigma * math.sqrt(2.0) * p.levels) * xt.pow(2).sum(
                    -1, keepdim=True
                ).sqrt()
                psum = psum + std * torch.randn(
                    psum.shape, generator=self.gen, device=psum.device, dtype=psum.dtype
                )
        if self.calibrating:
            flat = psum.detach().abs().flatten()
            if flat.numel() > 200_000:
                idx = torch.randint(0, flat.numel(), (200_000,), device=flat.device)
                flat = flat[idx]
            p.calib.append(flat.float().cpu())
        elif self.opts.quantize and self.dev.analog:
            psum = self._adc(psum, p)
        # shift-and-add: tiles, bit planes, slices
        psum = psum.sum(dim=1)  # (S, R, C)
        psum = psum.reshape(s, npl, m, p.slices, p.n_cols)
        y = torch.einsum("spmkn,p,k->smn", psum, plane_w, p.slice_weights)
        return self._finish(layer, x, y * (p.x_step * p.w_scale), p, s, m, token)

    def _read_noise_on(self) -> bool:
        return bool(
            self.opts.read_noise and not self.ideal and self.dev.analog and self.dev.read_sigma > 0
        )

    def _finish(self, layer, x, y, p: _Prepared, s: int, m: int, token) -> torch.Tensor:
        """Digital bias, scatter kept columns back to the layer's N outputs, reshape."""
        lm = p.lm
        if p.bias_digital is not None:
            y = y + p.bias_digital
        if lm.cols_logical == lm.n:
            out = y
        else:
            out = y.new_zeros(s, m, lm.n)
            out[:, :, lm.col_idx.to(out.device)] = y
        return layer.from_rows(out.reshape(s * m, lm.n).to(x.dtype), token)

    def _encode_inputs(self, xs: torch.Tensor, p: _Prepared) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize inputs and split them into crossbar read cycles.

        Returns stacked cycles (S, P·M, K') and each cycle's digital weight (P,).
        """
        lm, hw = p.lm, self.hw
        s, m, _ = xs.shape
        dt = xs.dtype
        if lm.binary_mram and lm.pm1_input:
            codes = torch.where(xs >= 0, 1.0, -1.0).to(dt)
            return codes, torch.ones(1, device=xs.device, dtype=dt)
        if not self.opts.quantize:
            codes = xs / p.x_step
        else:
            lo = -p.x_levels if p.signed else 0
            codes = torch.round(xs / p.x_step).clamp_(lo, p.x_levels)
        if lm.bias_rows:
            codes = torch.cat(
                [codes, codes.new_full((s, m, lm.bias_rows), float(p.x_levels))], dim=-1
            )
        if hw.input_mode == "dac" or not self.opts.quantize:
            return codes, torch.ones(1, device=xs.device, dtype=dt)
        nbits = max(1, int(round(math.log2(p.x_levels + 1))))
        mag = codes.abs().to(torch.int32)
        bits = torch.stack([((mag >> j) & 1) for j in range(nbits)])  # (b, S, M, K')
        w = torch.tensor([float(2**j) for j in range(nbits)], device=xs.device, dtype=dt)
        if lm.binary_mram:  # sign routes the row to WL or WL̄ in the same cycle
            planes = bits.to(dt) * torch.sign(codes).unsqueeze(0)
        elif p.signed:
            pos = (codes > 0).unsqueeze(0)
            planes = torch.cat([bits * pos, bits * (~pos)]).to(dt)
            w = torch.cat([w, -w])
        else:
            planes = bits.to(dt)
        # (P, S, M, K') -> (S, P·M, K')
        return planes.permute(1, 0, 2, 3).reshape(s, -1, planes.shape[-1]), w

    def _adc(self, psum: torch.Tensor, p: _Prepared) -> torch.Tensor:
        b = self.hw.adc_bits
        if b == 1:
            return torch.where(psum >= 0, p.adc_mean_abs, -p.adc_mean_abs).to(psum.dtype)
        top = 2 ** (b - 1) - 1
        step = p.adc_range / top
        return torch.round(psum / step).clamp_(-top - 1, top).mul_(step)


def _tile_inputs(x: torch.Tensor, p: _Prepared) -> torch.Tensor:
    """(S, R, K') -> (S, T, R, rows_per_tile), zero-padding the last tile."""
    s, r, k = x.shape
    pad = p.tiles * p.rows_per_tile - k
    if pad:
        x = torch.cat([x, x.new_zeros(s, r, pad)], dim=-1)
    return x.reshape(s, r, p.tiles, p.rows_per_tile).transpose(1, 2)


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
    prepared = {
        n: _prepare(layers[n], mapping.layers[n], hw, device_model, tdev, opts.dtype)
        for n in layers
    }
    gen = torch.Generator(device=tdev)
    gen.manual_seed(int(seed))
    backend = AnalogBackend(
        prepared, {id(m): n for n, m in layers.items()}, hw, device_model, opts, gen
    )
    calib = calib_x if calib_x is not None else mapping.calib_input
    if calib is None:
        raise ValueError(
            "no calibration inputs: pass calib_x or build the Mapping with sample_input"
        )
    calib = calib[: opts.calib_samples].to(tdev)
    backend.program(1, ideal=True)
    backend.calibrating = True
    with torch.no_grad(), use_backend(model, backend):
        model(calib)
    backend.calibrating = False
    for p in prepared.values():
        vals = torch.cat(p.calib) if p.calib else torch.ones(1)
        p.calib.clear()
        rng = (
            float(torch.quantile(vals, opts.adc_percentile / 100.0))
            if opts.adc_percentile < 100
            else float(vals.max())
        )
        p.adc_range = rng if rng > 0 else 1.0
        mean_abs = float(vals.mean())
        p.adc_mean_abs = mean_abs if mean_abs > 0 else 1.0
    return backend


def _bytes_per_instance_sample(mapping: Mapping, hw: HardwareConfig, opts: SimOptions) -> float:
    """Largest per-layer intermediate (bytes) for one instance and one sample."""
    worst = 1.0
    for lm in mapping.layers.values():
        cyc = lm.input_cycles(hw) if opts.quantize else 1
        if (
            lm.signed_input
            and hw.input_mode == "bit_serial"
            and opts.quantize
            and not lm.binary_mram
        ):
            cyc = max(cyc, 2)
        vec = max(lm.vectors_per_inference, 1)
        cols = lm.cols_logical * lm.slices
        rows_t = max(1, math.ceil(lm.rows_logical * lm.rows_per_input / hw.array_size))
        per = vec * cyc * (rows_t * (cols + hw.array_size) * 3 + lm.rows_logical)
        worst = max(worst, per * 4.0)
    return worst


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
        opts = SimOptions(**{**opts.__dict__, "memory_cap_bytes": int(memory_cap_bytes)})
    tdev = _resolve_device(device)
    orig_dev = next(model.parameters()).device
    model = model.to(tdev)
    was_training = model.training
    model.eval()
    try:
        x = x.to(tdev)
        y = y.to(tdev)
        with torch.no_grad():
            ideal = _accuracy_digital(model, x, y, opts)
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
    """Correct-prediction counts per instance, chunked over instances and samples."""
    per = _bytes_per_instance_sample(mapping, hw, opts)
    budget = max(1, int(opts.memory_cap_bytes // per))  # instance·sample pairs per chunk
    b_chunk = max(1, min(len(x), budget))
    s_chunk = max(1, min(instances, budget // b_chunk))
    correct = np.zeros(instances, dtype=np.float64)
    with torch.no_grad(), use_backend(model, backend):
        for s0 in range(0, instances, s_chunk):
            s = min(s_chunk, instances - s0)
            backend.program(s)
            for b0 in range(0, len(x), b_chunk):
                xb = x[b0 : b0 + b_chunk]
                yb = y[b0 : b0 + b_chunk]
                xr = xb.unsqueeze(0).expand(s, *xb.shape).reshape(s * len(xb), *xb.shape[1:])
                logits = model(xr).reshape(s, len(xb), -1)
                correct[s0 : s0 + s] += (logits.argmax(-1) == yb).sum(1).double().cpu().numpy()
    return correct


def _accuracy_digital(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, opts: SimOptions
) -> float:
    correct = 0
    for b0 in range(0, len(x), 4096):
        correct += int((model(x[b0 : b0 + 4096]).argmax(-1) == y[b0 : b0 + 4096]).sum())
    return correct / len(y)

"""Which weights land in which crossbar tile: one object read by simulator *and* cost model.

For each crossbar layer the :class:`Mapping` records

* the rows and columns that survive pruning (rows/columns that are entirely zero are
  not programmed: no cells, no reads, no ADC conversions),
* how the bias is folded in as extra rows (seed 001: W̃ = [W b/s], x̃ = [x; s], with
  s chosen so that b/s stays inside the weight range; we drive bias rows at the layer's
  full-scale input x_fs, so s = r·x_fs with r = ceil(max|b| / (x_fs·max|W|)) rows),
* how the weight bits are sliced over cells and how signs are encoded,
* tiling into ``array_size × array_size`` arrays and the per-inference counts the
  cost model needs (vectors, MACs, cell reads, ADC and DAC operations).

Sign encoding (decided here, documented for both consumers):

* Multi-level devices: **differential pairs**, 2 physical columns per weight per slice
  (G⁺ holds positive weights, G⁻ negative ones). The two column currents are subtracted
  before the ADC (differential sensing as in IBM's PCM chips, Joshi et al. 2020), so
  there is one ADC conversion per pair and slice.
* Binary layers on MRAM (seed 000): **complementary cells on complementary word lines**:
  each ±1 weight uses 2 cells in one column, one driven by WL_m (x = +1) and one by
  WL_m̄ (x = −1): 2 physical rows per input, 1 column per weight. The bias of such a
  layer is added digitally after the ADC (seed 000's BNN has no analog bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .devices import DeviceModel
from .hw.config import HardwareConfig
from .hw.periphery import INPUT_MODES
from .layers import CrossbarMixin, crossbar_layers

__all__ = ["HardwareConfig", "INPUT_MODES", "LayerMapping", "Mapping"]

#: input vectors per layer call kept for the bit-activity statistics (a 256-image
#: calibration batch of a 32×32 conv unrolls to 262,144 rows; 16,384 evenly spaced ones
#: estimate a bit fraction to ~0.004)
STATS_MAX_ROWS = 16384


@dataclass
class LayerMapping:
    """How one crossbar layer sits on the chip (see module docstring)."""

    name: str
    #: original unrolled size (K rows of inputs, N columns of outputs)
    k: int
    n: int
    #: surviving row / column indices into the unrolled matrix
    row_idx: torch.Tensor
    col_idx: torch.Tensor
    #: bias rows appended after the kept rows (0: no bias or bias added digitally)
    bias_rows: int
    #: bias handled digitally after the ADC (binary MRAM layers)
    digital_bias: bool
    weight_bits: int
    cell_bits: int
    slices: int
    #: seed-000 complementary-cell binary layer on MRAM
    binary_mram: bool
    #: 2 for differential pairs, 1 for complementary MRAM units
    cols_per_weight: int
    rows_per_input: int
    #: crossbar vectors per inference (output positions × invocations)
    vectors_per_inference: int
    invocations: int
    #: full-scale input (calibrated max |x|) and whether inputs can be negative
    input_range: float
    signed_input: bool
    #: inputs are exactly ±1 (BNN hidden layers): one WL/WL̄ cycle suffices
    pm1_input: bool
    #: mean programmed conductance as a fraction of the range (for read energy)
    mean_g_fraction: float
    array_size: int
    #: measured on the calibration inputs (:func:`input_statistics`): fraction of driven
    #: rows per input read cycle's bit plane (LSB first; DAC mode: mean (x/x_fs)²)
    input_bit_activity: tuple[float, ...] = ()
    #: activity-weighted mean programmed level of the cells on driven rows (0 = g_min,
    #: 1 = g_max): sets the column current the ADC sees; < 0 = not measured
    read_g_fraction: float = -1.0
    extra: dict[str, float] = field(default_factory=dict)
    #: weight units per integer code when the layer was trained on a fixed integer grid
    #: (BSQ): the chip programs exactly those codes. None: max-abs scale (see
    #: :func:`layer_precision`)
    code_step: float | None = None

    # -- precision (one definition, read by the simulator and the cost model) --------
    @property
    def magnitude_bits(self) -> int:
        """Bits of |w| on the cells; ``weight_bits`` counts the sign too (see
        :func:`layer_precision`)."""
        return max(self.weight_bits - 1, 1)

    def full_scale(self, w: torch.Tensor) -> float:
        """Weight value of the largest code 2^magnitude_bits − 1 for matrix ``w``.

        BSQ layers: the trained grid (``code_step``) so trained codes = programmed codes;
        otherwise symmetric max-abs quantization of ``w``.
        """
        q_max = 2**self.magnitude_bits - 1
        if self.code_step is not None:
            return self.code_step * q_max
        w_max = float(w.abs().max()) if w.numel() else 0.0
        return w_max if w_max > 0 else 1.0

    # -- geometry -------------------------------------------------------------------
    @property
    def rows_logical(self) -> int:
        """Rows of the mapped matrix W̃ (kept inputs + bias rows)."""
        return int(self.row_idx.numel()) + self.bias_rows

    @property
    def cols_logical(self) -> int:
        return int(self.col_idx.numel())

    @property
    def rows_physical(self) -> int:
        return self.rows_logical * self.rows_per_input

    @property
    def cols_physical(self) -> int:
        return self.cols_logical * self.slices * self.cols_per_weight

    @property
    def row_tiles(self) -> int:
        return max(1, math.ceil(self.rows_physical / self.array_size)) if self.rows_physical else 0

    @property
    def col_tiles(self) -> int:
        return max(1, math.ceil(self.cols_physical / self.array_size)) if self.cols_physical else 0

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles

    @property
    def cells(self) -> int:
        return self.rows_physical * self.cols_physical

    @property
    def macs_per_vector(self) -> int:
        """Executed multiply-accumulates per vector (kept weights; bias rows excluded)."""
        return int(self.row_idx.numel()) * self.cols_logical

    def input_cycles(self, hw: HardwareConfig) -> int:
        """Crossbar read cycles per vector: bit-serial bits (×2 for signed inputs) or 1 (DAC)."""
        if self.binary_mram and self.pm1_input:
            return 1
        if hw.input_mode == "dac":
            return 1
        bits = hw.act_bits - 1 if self.signed_input and hw.act_bits > 1 else hw.act_bits
        if self.binary_mram:
            return bits  # sign routes each row to WL or WL̄ within the same cycle
        return bits * (2 if self.signed_input else 1)

    def adc_conversions_per_vector(self, hw: HardwareConfig) -> int:
        """One conversion per (row tile, column pair or MRAM column, slice, input cycle)."""
        return self.row_tiles * self.cols_logical * self.slices * self.input_cycles(hw)


@dataclass
class Mapping:
    """The whole network on the chip: per-layer :class:`LayerMapping` plus totals."""

    hw: HardwareConfig
    layers: dict[str, LayerMapping]
    #: calibration inputs (a few samples) used by the simulator to set ADC ranges
    calib_input: torch.Tensor | None = None

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        hw: HardwareConfig,
        sample_input: torch.Tensor | None = None,
        device_model: DeviceModel | None = None,
        input_percentile: float = 100.0,
    ) -> Mapping:
        """Map ``model`` onto ``hw``.

        ``sample_input`` (a small batch of real inputs) lets the mapping count how often
        each layer runs per inference (convolution output positions, RNN time steps —
        by forward hooks) and calibrate each layer's full-scale input. Without it every
        layer is assumed to run once on one vector with inputs in [0, 1]; models with
        convolutions need it.
        """
        dev = device_model or hw.device_model()
        layers = crossbar_layers(model)
        if not layers:
            raise ValueError("model has no crossbar layers (CrossbarLinear / CrossbarConv2d)")
        stats = _trace(model, layers, sample_input, input_percentile)
        out: dict[str, LayerMapping] = {}
        for name, layer in layers:
            st = stats.get(name)
            if st is None:
                if isinstance(layer, nn.Conv2d):
                    raise ValueError(
                        f"layer {name!r} is a convolution: pass sample_input to Mapping.from_model "
                        "so output positions per inference can be counted"
                    )
                st = {"invocations": 1, "vectors": 1, "range": 1.0, "signed": False, "pm1": False}
            out[name] = _map_layer(name, layer, hw, dev, st)
        calib = None
        if sample_input is not None:
            calib = sample_input[: min(len(sample_input), 256)].detach().clone()
        return cls(hw=hw, layers=out, calib_input=calib)

    # -- totals ---------------------------------------------------------------------
    @property
    def tiles(self) -> int:
        return sum(lm.tiles for lm in self.layers.values())

    @property
    def mac_count(self) -> int:
        """Executed MACs per inference (pruned weights excluded)."""
        return sum(lm.macs_per_vector * lm.vectors_per_inference for lm in self.layers.values())

    @property
    def cells(self) -> int:
        return sum(lm.cells for lm in self.layers.values())

    def summary(self) -> dict[str, float]:
        rows = sum(lm.k for lm in self.layers.values())
        cols = sum(lm.n for lm in self.layers.values())
        kept_r = sum(int(lm.row_idx.numel()) for lm in self.layers.values())
        kept_c = sum(lm.cols_logical for lm in self.layers.values())
        return {
            "tiles": float(self.tiles),
            "mac_count": float(self.mac_count),
            "cells": float(self.cells),
            "sparsity_rows": 1.0 - kept_r / max(rows, 1),
            "sparsity_cols": 1.0 - kept_c / max(cols, 1),
        }


# ----------------------------------------------------------------------------------------
def _trace(
    model: nn.Module,
    layers: list[tuple[str, CrossbarMixin]],
    sample: torch.Tensor | None,
    percentile: float,
) -> dict[str, dict[str, Any]]:
    """Forward the sample once with hooks: invocations, vectors and input range per layer."""
    if sample is None:
        return {}
    stats: dict[str, dict[str, Any]] = {}
    one = sample[:1]
    handles = []

    def hook_for(name: str, layer: CrossbarMixin, per_sample: bool):
        def hook(_mod, args):
            x = args[0].detach()
            st = stats.setdefault(
                name,
                {
                    "invocations": 0,
                    "vectors": 0,
                    "vals": [],
                    "rows": [],
                    "signed": False,
                    "pm1": True,
                },
            )
            if per_sample:
                rows, _ = layer.to_rows(x)
                st["invocations"] += 1
                st["vectors"] += rows.shape[0]
            else:
                rows, _ = layer.to_rows(x)
                if rows.shape[0] > STATS_MAX_ROWS:  # evenly spaced: bounded memory, seeded
                    pick = torch.linspace(0, rows.shape[0] - 1, STATS_MAX_ROWS).long()
                    rows = rows.index_select(0, pick.to(rows.device))
                st["rows"].append(rows.abs().float())
                st["vals"].append(x.abs().flatten().float())
                st["signed"] = st["signed"] or bool((x < 0).any())
                st["pm1"] = st["pm1"] and bool(((x == 1) | (x == -1)).all())

        return hook

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for per_sample, data in ((True, one), (False, sample)):
                handles = [
                    layer.register_forward_pre_hook(hook_for(n, layer, per_sample))  # type: ignore[attr-defined]
                    for n, layer in layers
                ]
                try:
                    model(data)
                finally:
                    for h in handles:
                        h.remove()
    finally:
        model.train(was_training)
    for st in stats.values():
        vals = torch.cat(st.pop("vals")) if st.get("vals") else torch.ones(1)
        if percentile >= 100.0:
            rng = float(vals.max())
        else:
            v = (
                vals
                if vals.numel() <= 1_000_000
                else vals[torch.randperm(vals.numel())[:1_000_000]]
            )
            rng = float(torch.quantile(v, percentile / 100.0))
        st["range"] = rng if rng > 0 else 1.0
        rows = st.pop("rows")
        st["rows"] = torch.cat(rows) if rows else None
    return stats


def _map_layer(
    name: str, layer: CrossbarMixin, hw: HardwareConfig, dev: DeviceModel, st: dict[str, Any]
) -> LayerMapping:
    with torch.no_grad():
        w = layer.matrix().detach().float()  # (K, N)
        b = layer.bias_vector()
        b = None if b is None else b.detach().float()
    if not torch.isfinite(w).all() or (b is not None and not torch.isfinite(b).all()):
        raise ValueError(
            f"layer {name!r} has non-finite weights or bias (NaN/inf): the trained model "
            "diverged, so it cannot be mapped onto crossbars; lower train.lr or the "
            "regularizer strengths (dnn.group_hs, dnn.bsq_alpha)"
        )
    k, n = w.shape
    binary = bool(layer.binary)
    binary_mram = binary and dev.binary
    row_keep = (w != 0).any(dim=1)
    col_keep = (w != 0).any(dim=0)
    if b is not None and not binary_mram:
        col_keep = col_keep | (b != 0)
    row_idx = torch.nonzero(row_keep).flatten()
    col_idx = torch.nonzero(col_keep).flatten()

    wbits, mag_bits = layer_precision(layer, hw)
    cell_bits = min(hw.cell_bits, dev.max_cell_bits) if dev.analog else 1
    slices = 1 if binary else math.ceil(mag_bits / cell_bits)
    if binary:
        cell_bits = 1

    x_fs = float(st["range"])
    bias_rows = 0
    digital_bias = binary_mram and b is not None and bool((b != 0).any())
    if b is not None and not binary_mram and bool((b[col_idx] != 0).any()):
        wk = w[row_idx][:, col_idx]
        w_max = float(wk.abs().max()) if wk.numel() else 0.0
        b_max = float(b[col_idx].abs().max())
        bias_rows = 1 if w_max == 0 else max(1, math.ceil(b_max / (x_fs * w_max) - 1e-9))

    wk = w[row_idx][:, col_idx]
    step = code_step(wk, mag_bits) if (layer.weight_bits is not None and not binary) else None
    row_g = _row_level_fraction(wk, mag_bits, cell_bits, slices, binary, step)
    # rows are equally long, so the mean of the row means is the mean over all cells
    mean_g = float(row_g.mean()) if row_g.numel() else 0.0
    activity, read_g = input_statistics(
        st.get("rows"),
        row_idx,
        x_fs,
        hw,
        signed=bool(st["signed"]),
        pm1=binary_mram and bool(st["pm1"]),
        row_g=row_g,
    )
    return LayerMapping(
        name=name,
        k=k,
        n=n,
        row_idx=row_idx,
        col_idx=col_idx,
        bias_rows=bias_rows,
        digital_bias=digital_bias,
        weight_bits=wbits,
        cell_bits=cell_bits,
        slices=slices,
        binary_mram=binary_mram,
        cols_per_weight=1 if binary_mram else 2,
        rows_per_input=2 if binary_mram else 1,
        vectors_per_inference=int(st["vectors"]),
        invocations=int(st["invocations"]),
        input_range=x_fs,
        signed_input=bool(st["signed"]),
        pm1_input=bool(st["pm1"]),
        mean_g_fraction=mean_g,
        array_size=hw.array_size,
        code_step=step,
        input_bit_activity=activity,
        read_g_fraction=read_g,
    )


def input_statistics(
    rows: torch.Tensor | None,
    row_idx: torch.Tensor,
    x_fs: float,
    hw: HardwareConfig,
    *,
    signed: bool,
    pm1: bool,
    row_g: torch.Tensor,
) -> tuple[tuple[float, ...], float]:
    """Bit activity per input read cycle and the conductance those reads see.

    ``rows`` are |inputs| of the calibration batch, one unrolled vector per row (K
    columns); they are quantized as the chip does (``hw.act_bits`` codes on [0, x_fs]) and
    split into bit planes. Returns (fraction of kept rows driven in each bit plane, LSB
    first — or mean (x/x_fs)² in DAC mode — and the activity-weighted mean level of the
    cells on driven rows). Why measured: ReLU activations are sparse and small, so real
    bit planes have 0.1–0.3 activity, not the 0.5 a uniform-bit assumption gives, and the
    column current (hence cell and ADC energy) follows the cells actually driven.
    """
    if rows is None or rows.numel() == 0 or row_idx.numel() == 0:
        return (), -1.0
    x = rows.index_select(1, row_idx.to(rows.device)).float()
    if pm1:  # ±1 inputs: every input drives exactly one of WL / WL̄
        act_rows = torch.ones(x.shape[1])
        return (1.0,), driven_level(act_rows, row_g)
    a = hw.act_bits
    bits = a - 1 if signed and a > 1 else a
    levels = 2**bits - 1
    codes = torch.clamp(torch.round(x / x_fs * levels), 0, levels).long()
    if hw.input_mode == "dac":
        amp2 = (codes.float() / levels) ** 2
        return (float(amp2.mean()),), driven_level(amp2.mean(dim=0), row_g)
    activity, act_rows = bit_activity(codes, bits)
    return activity, driven_level(act_rows, row_g)


def bit_activity(codes: torch.Tensor, bits: int) -> tuple[tuple[float, ...], torch.Tensor]:
    """(Fraction of set bits per plane, LSB first; per input row, the mean fraction of set
    bits) of unsigned ``bits``-bit ``codes`` (vectors × rows). From the code histogram and a
    popcount table instead of one float tensor per plane."""
    codes = codes.long()
    values = torch.arange(2**bits)
    plane_of = torch.stack([(values >> j) & 1 for j in range(bits)]).float()  # (bits, 2^b)
    hist = torch.bincount(codes.flatten(), minlength=2**bits).float()
    activity = tuple(float(a) for a in plane_of @ hist / max(codes.numel(), 1))
    ones = plane_of.sum(dim=0)  # set bits of each code
    return activity, ones[codes].mean(dim=0) / bits


def driven_level(act_rows: torch.Tensor, row_g: torch.Tensor) -> float:
    """Mean programmed level of the cells on driven rows: ``row_g`` weighted by how often
    each row is driven (``act_rows``); the plain mean where nothing is driven."""
    total = float(act_rows.sum())
    if total <= 0:
        return float(row_g.mean()) if row_g.numel() else 0.0
    return float((act_rows * row_g[: act_rows.numel()]).sum()) / total


def _row_level_fraction(
    w: torch.Tensor, mag_bits: int, cell_bits: int, slices: int, binary: bool, step: float | None
) -> torch.Tensor:
    """Mean programmed level (0 = g_min, 1 = g_max) of the cells of each kept row; its mean
    is the layer's ``mean_g_fraction``. Binary MRAM units hold one P and one AP cell: 0.5;
    differential pairs hold the magnitude slices on one side and g_min on the other."""
    if w.numel() == 0:
        return torch.zeros(w.shape[0])
    if binary:
        return torch.full((w.shape[0],), 0.5)
    q_max = 2**mag_bits - 1
    w_max = float(w.abs().max()) if step is None else step * q_max
    if w_max == 0:
        return torch.zeros(w.shape[0])
    m = torch.round(w.abs() / w_max * q_max).long()
    levels = 2**cell_bits - 1
    total = torch.zeros(w.shape[0])
    for s in range(slices):
        total += ((m >> (cell_bits * s)) & levels).float().mean(dim=1) / levels
    return total / (2 * slices)  # the other cell of each pair sits at g_min


def layer_precision(layer: CrossbarMixin, hw: HardwareConfig) -> tuple[int, int]:
    """(weight_bits, magnitude_bits) of a crossbar layer: the one definition of its precision.

    ``weight_bits`` counts sign + magnitude (the convention of ``hw.weight_bits``: 8 means
    codes −127…127); the sign lives in the differential pair, so the cells hold
    ``magnitude_bits`` = weight_bits − 1 bits of |w| (min 1). A BSQ layer's learned
    precision n (``layer.weight_bits``, Yang et al. ICLR'21: W = s·Σ_b 2^b (W_p^(b) −
    W_n^(b)) / (2^n − 1), sign carried by the W_p/W_n pair) counts *magnitude* bits,
    codes −(2^n − 1)…2^n − 1, so it maps to magnitude_bits = n and weight_bits = n + 1.
    Binary layers: 1 and 1.
    """
    if layer.binary:
        return 1, 1
    if layer.weight_bits is not None:
        n = int(layer.weight_bits)
        return n + 1, n
    return hw.weight_bits, max(hw.weight_bits - 1, 1)


def code_step(w: torch.Tensor, mag_bits: int, tol: float = 1e-3) -> float | None:
    """The step s of the integer grid a quantized matrix lies on (|w| = k·s, k ≤ 2^n − 1).

    BSQ bakes W = scale·k/(2^n − 1) into the weights; its scale is not stored, but any s
    with every |w|/s an integer ≤ 2^n − 1 programs the same values. Tries the grids whose
    largest code is m = 1 … 2^n − 1 (s = max|w| / m) and returns the first that fits
    within ``tol`` codes, or None (weights not on an n-bit grid: max-abs quantization).
    """
    a = w.detach().abs().flatten().double()
    a = a[a > 0]
    if a.numel() == 0:
        return None
    a_max = float(a.max())
    for m in range(1, 2**mag_bits):
        r = a * (m / a_max)
        if float((r - r.round()).abs().max()) <= tol:
            return a_max / m
    return None

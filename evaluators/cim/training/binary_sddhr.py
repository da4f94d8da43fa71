"""S-DDHR for binarized networks on MRAM: seed 000's own setting.

Forward model (``evaluators.cim.mram``): each ±1 weight is a complementary pair of
MTJ cells; a column computes y = p₁·G_P + p₋₁·G_AP with per-cell R ~ N(μ, σ²),
normalised back to the ±1 dot-product domain. Training variants:

* ``s_ddhr`` / ``fixed``: the full per-cell model, with a fresh instance per training
  sample (all samples of the batch in one batched matmul) or one instance z_0 of the
  training's own generator (not a chip the evaluator draws). ``ddhr`` (train and
  deploy on the evaluator's chip z_0) is built in sddhr.py for every device.
* ``ps_ddhr``: the analytic output distribution. Seed 000 models
  G ~ N(1/μ, σ²/μ⁴) per cell; given the input, the column current is a sum of
  independent Gaussians, so the normalised output is Gaussian:

      ŷ ~ N(Σ_m w_m x_m,  Σ_m x_m² σ²_{s(m)} / (ΔG/2)²)

  where s(m) = P when sign(x_m)·w_m = +1 (the conducting cell is parallel) and AP
  otherwise. With σ̄² = (σ_P² + σ_AP²)/2 and δ² = (σ_P² − σ_AP²)/2 the variance is
  (σ̄²·Σ_m x_m² + δ²·Σ_m x_m|x_m| w_m) / (ΔG/2)², i.e. for ±1 inputs
  (p₁σ_P² + p₋₁σ_AP²)/(ΔG/2)² — one matmul per layer. The per-layer parameters
  (σ_P, σ_AP, ΔG from the device, fan-in and input statistics of that layer) make it
  "parametric": no per-cell tensor is drawn.
* ``as_ddhr``: one fixed N(0, σ_as²) on every layer's normalised output, σ_as the
  mean over layers of the PS-DDHR std on a sample batch at the start of training
  (or ``TrainConfig.as_sigma``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import mram
from ..layers import CrossbarMixin
from .config import TrainConfig
from .methods import TrainingMethod, register
from .noise import randn
from .sddhr import mean_output_std


def _bias(layer: CrossbarMixin, y: torch.Tensor) -> torch.Tensor:
    # mapping.py: the bias of a binary MRAM layer is added digitally after the ADC
    b = layer.bias_vector()
    return y if b is None else y + b


class MRAMInstances:
    """Per-cell MRAM chip instances: one per leading-dim sample (``groups=None``) or G.

    Conductances are drawn once per layer until :meth:`resample` (so a layer read
    several times in one forward keeps its instance); ``fixed`` never resamples.
    """

    def __init__(
        self,
        params: mram.MTJParams,
        groups: int | None = None,
        fixed: bool = False,
        generator: torch.Generator | None = None,
    ):
        self.params = params
        self.groups = groups
        self.fixed = fixed
        self.generator = generator
        self._draws: dict[int, tuple[torch.Tensor, ...]] = {}

    def resample(self) -> None:
        if not self.fixed:
            self._draws.clear()

    def _cells(self, layer: CrossbarMixin, shape: tuple[int, ...], w: torch.Tensor):
        key = id(layer)
        d = self._draws.get(key)
        if d is None or d[0].shape != shape:
            gen = self.generator
            if gen is not None and gen.device != w.device:
                gen = None  # accelerator: draw there, seeded by torch.manual_seed
            gpa, gapa = mram.sample_conductances(
                shape, self.params, self.generator, w.device, w.dtype
            )
            gpb, gapb = mram.sample_conductances(
                shape, self.params, self.generator, w.device, w.dtype
            )
            d = (gpa, gapa, gpb, gapb)
            self._draws[key] = d
        return d

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        rows, token = layer.to_rows(x)
        w = layer.matrix()  # ±1 with straight-through gradient
        groups = x.shape[0] if self.groups is None else self.groups
        k, n = w.shape
        if rows.shape[0] % groups:
            raise ValueError(
                f"MRAMInstances: {rows.shape[0]} rows do not split into {groups} groups"
            )
        gpa, gapa, gpb, gapb = self._cells(layer, (groups, k, n), w)
        g_a, g_b = mram.unit_conductances(w, gpa, gapa, gpb, gapb)
        y = mram.mvm(rows.reshape(groups, -1, k), g_a, g_b, self.params).reshape(-1, n)
        return layer.from_rows(_bias(layer, y), token)


class MRAMAnalyticNoise:
    """PS-DDHR (per-layer analytic Gaussian, see module docstring) or AS-DDHR (fixed σ)."""

    def __init__(
        self,
        params: mram.MTJParams,
        fixed_sigma: float | None = None,
        generator: torch.Generator | None = None,
    ):
        p = params
        # seed 000: G ~ N(1/μ, σ²/μ⁴); in mram's units of 1/R_P (nominal G_P = 1)
        s_p = p.sigma_p / p.r_p
        s_ap = p.r_p * p.sigma_ap / p.r_ap**2
        half_dg = 0.5 * p.g_delta * p.r_p
        self.var_mean = 0.5 * (s_p**2 + s_ap**2) / half_dg**2
        self.var_diff = 0.5 * (s_p**2 - s_ap**2) / half_dg**2
        self.fixed_sigma = fixed_sigma
        self.generator = generator

    def output_std(self, layer: CrossbarMixin, rows: torch.Tensor) -> torch.Tensor:
        """(M, N) std of each normalised column output."""
        x = rows
        w = layer.matrix().detach()
        var = self.var_mean * x.pow(2).sum(1, keepdim=True) + self.var_diff * ((x * x.abs()) @ w)
        return var.clamp_min(0).sqrt()

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        rows, token = layer.to_rows(x)
        w = layer.matrix()
        y = rows @ w
        if self.fixed_sigma is not None:
            std: torch.Tensor | float = self.fixed_sigma
        else:
            std = self.output_std(layer, rows)
        y = y + std * randn(y.shape, self.generator, y)
        return layer.from_rows(_bias(layer, y), token)


@register("s_ddhr", "ps_ddhr", "as_ddhr", "fixed", variant="binary_mram")
def build(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """The S-DDHR method ``config.method`` for a binarized model on an MRAM device."""
    if device_model is None or not getattr(device_model, "binary", False):
        name = getattr(device_model, "name", None)
        raise ValueError(
            f"train.method={config.method!r} on a binarized model needs the MRAM device model "
            f"(hw.device=mram), got {name!r}"
        )
    params = mram.MTJParams.from_device(device_model)
    m = config.method
    if m == "s_ddhr":
        return TrainingMethod(m, lambda: MRAMInstances(params, None, generator=generator))
    if m == "fixed":
        return TrainingMethod(m, lambda: MRAMInstances(params, 1, fixed=True, generator=generator))
    if m == "ps_ddhr":
        return TrainingMethod(m, lambda: MRAMAnalyticNoise(params, generator=generator))
    if m == "as_ddhr":
        fixed = config.as_sigma
        if fixed is None:
            fixed = mean_output_std(model, sample_x, MRAMAnalyticNoise(params))
        return TrainingMethod(m, lambda: MRAMAnalyticNoise(params, fixed, generator=generator))
    raise ValueError(f"binary S-DDHR: {m!r} is not an S-DDHR method")

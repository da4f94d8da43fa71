"""Stochastic data-driven hardware resilience (S-DDHR, seed 000: Zhang, Chen, Verma, ICASSP'19).

Seed 000 trains with L^t = −Σ_i y_i log f(x^t, θ, z) where z is the hardware
variation, and compares four choices of z:

* ``ddhr`` (the per-instance baseline, "training complexity for each instance of
  hardware"): train on one chip instance z_i and deploy on that same chip. The forward
  is the simulator's chip (:class:`InstanceChip`, a :class:`chip_forward.ChipForward`
  pinned to instance 0 of the evaluation seed ``TrainConfig.chip_seed``), so the chip
  trained on is bit for bit the chip the evaluator then simulates (noise streams keyed
  by (seed, layer, instance, tile), simulator.py); the evaluator deploys a ddhr model on
  that one instance only. Works for every device (MRAM's G_P/G_AP cells included);
* ``s_ddhr`` (S-DDHR with Monte-Carlo z): a fresh chip instance for every training
  sample — vectorized here by giving each sample of the batch its own weight instance
  in one batched matmul;
* ``ps_ddhr`` (parametric S-DDHR): z drawn from an *analytic* distribution of each
  layer's output whose parameters are computed per layer from the device model;
* ``as_ddhr`` (approximate S-DDHR): one fixed set of distribution parameters for all
  layers;
* ``fixed``: one sampled instance z_0 for the whole training, deployed on others.

Analog (multi-level) crossbars use additive weight noise relative to the weight
range (devices.py ``weight_sigma``). Binarized networks on MRAM use seed 000's model
in ``binary_sddhr.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import CrossbarMixin, use_backend
from .chip_forward import ChipForward, chip_device, hardware
from .config import TrainConfig
from .methods import TrainingMethod, device_sigma, register
from .noise import WeightNoise, augmented_matrix, randn, weight_range


class AnalyticOutputNoise:
    """Per-sample analytic output distribution of a noisy analog crossbar (PS-DDHR).

    With iid weight errors ν ~ N(0, (σ·range)²) (range = W_max − W_min of the layer,
    bias folded as an input row), the column output for input row x̃ is
    y_j ~ N(Σ_i W_ij x̃_i, (σ·range)²·‖x̃‖²): the two parameters of each layer's
    distribution are its mean (the digital result) and σ·range·‖x̃‖. Each crossbar input
    vector gets its own independent draw (the correlation of a conv's positions through
    shared weights is the approximation PS-DDHR makes). The std keeps its gradient with
    respect to the input (reparametrization y = μ + std·ε): the true per-sample model's
    noise grows with ‖x̃‖, and training must see that lever to become robust.

    ``fixed_sigma`` switches to AS-DDHR: y ~ N(Wx̃, fixed_sigma²) in every layer.
    """

    def __init__(
        self,
        sigma: float = 0.0,
        fixed_sigma: float | None = None,
        generator: torch.Generator | None = None,
    ):
        self.sigma = sigma
        self.fixed_sigma = fixed_sigma
        self.generator = generator

    def output_std(self, layer: CrossbarMixin, rows: torch.Tensor) -> torch.Tensor:
        """(M, 1) std of each crossbar input row's outputs under the PS-DDHR model."""
        w, s = augmented_matrix(layer)
        sq = rows.pow(2).sum(1, keepdim=True)
        if s is not None:
            sq = sq + s.detach() ** 2
        return self.sigma * weight_range(w) * sq.sqrt()

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        y = layer.digital(x)
        rows, token = layer.to_rows(x)
        if self.fixed_sigma is not None:
            return y + self.fixed_sigma * randn(y.shape, self.generator, y)
        n = rows.shape[0]
        std = self.output_std(layer, rows)
        eps = randn((n, layer.matrix().shape[1]), self.generator, y)
        return y + layer.from_rows(std * eps, token)


@torch.no_grad()
def mean_output_std(model: nn.Module, sample_x: torch.Tensor, noise: AnalyticOutputNoise) -> float:
    """Average over layers of the PS-DDHR output std on ``sample_x``: AS-DDHR's one σ."""
    stds: list[float] = []

    def probe(layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        rows, _ = layer.to_rows(x)
        stds.append(float(noise.output_std(layer, rows).mean()))
        return layer.digital(x)

    was = model.training
    model.eval()
    with use_backend(model, probe):
        model(sample_x)
    model.train(was)
    return sum(stds) / max(len(stds), 1)


@register("s_ddhr", "ps_ddhr", "as_ddhr", "fixed")
def build_analog_sddhr(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """S-DDHR variants for multi-level analog crossbars (additive weight noise)."""
    m = config.method
    sigma = device_sigma(config, device_model)
    if m == "s_ddhr":
        return TrainingMethod(m, lambda: WeightNoise(sigma, groups=None, generator=generator))
    if m == "fixed":
        return TrainingMethod(
            m, lambda: WeightNoise(sigma, groups=1, fixed=True, generator=generator)
        )
    if m == "ps_ddhr":
        return TrainingMethod(m, lambda: AnalyticOutputNoise(sigma, generator=generator))
    if m == "as_ddhr":
        fixed = config.as_sigma
        if fixed is None:
            fixed = mean_output_std(model, sample_x, AnalyticOutputNoise(sigma))
        return TrainingMethod(
            m, lambda: AnalyticOutputNoise(fixed_sigma=fixed, generator=generator)
        )
    raise ValueError(f"build_analog_sddhr: {m!r} is not an S-DDHR method")


@register("ddhr")
def build_ddhr(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """Seed 000's DDHR baseline, on every device: train on the chip z_0 it deploys on."""
    return TrainingMethod("ddhr", lambda: instance_chip(config, model, device_model))


def instance_chip(config: TrainConfig, model: nn.Module, device_model: Any | None):
    """DDHR's forward: the simulator's chip instance 0 of seed ``config.chip_seed``."""
    hw = hardware(config.hw)
    dev = chip_device(config, device_model, hw)
    rng = (config.hw or {}).get("rng", "auto")
    return InstanceChip(model, hw, dev, config.chip_seed, rng)


class InstanceChip(ChipForward):
    """A :class:`chip_forward.ChipForward` that always programs the *evaluation* chip z_0.

    Same weights → same conductances as ``simulate(seed=chip_seed)``'s instance 0: the
    static noise of a chip is keyed by (seed, layer, instance, row tile), not by the
    weights or the batch (simulator.py). Reprogrammed every step from the current
    weights: the chip is fixed, what is written on it follows training.
    """

    def __init__(self, model, hw, dev, chip_seed: int, rng: str = "auto"):
        super().__init__(model, hw, dev, 0, 1, rng=rng)
        self.seed = int(chip_seed)  # the evaluation seed itself, not a training seed

    def prepare(self, x: torch.Tensor, first: int | None = None) -> None:
        super().prepare(x, 0)

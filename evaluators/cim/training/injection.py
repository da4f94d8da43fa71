"""Methods that inject the chip's noise into an otherwise plain forward.

``ideal`` (no noise), ``hwa`` (aihwkit's hardware-aware training: a fresh simulated chip
per mini-batch), ``preact_noise`` (seed 002: Gaussian noise at each pre-activation) and
``ha_sgd`` (seed 001: the gradient averaged over L perturbed weight copies, or over L
simulated chips when the design's ADC is in the loop).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .chip_forward import ChipForward, chip_device, hardware
from .config import TrainConfig
from .methods import TrainingMethod, chip_sigma, register
from .noise import PreactNoise, WeightNoise


def design_chip(
    config: TrainConfig, model: nn.Module, device_model: Any | None, copies: int
) -> ChipForward:
    """A :class:`chip_forward.ChipForward` on the design's hardware (``config.hw``)."""
    hw = hardware(config.hw)
    if config.adc_bits is not None:
        hw.adc_bits = int(config.adc_bits)
    dev = chip_device(config, device_model, hw)
    mean_shift = config.mean_shift if config.method == "ha_sgd" else 0.0
    rng = (config.hw or {}).get("rng", "auto")
    return ChipForward(model, hw, dev, config.seed, copies, mean_shift, rng)


@register("ideal")
def build_ideal(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    return TrainingMethod("ideal")


@register("hwa")
def build_hwa(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """Hardware-aware training (aihwkit's sense): one fresh chip per mini-batch."""
    return TrainingMethod("hwa", lambda: design_chip(config, model, device_model, 1))


@register("preact_noise")
def build_preact_noise(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """Seed 002: σ_neu as given, else σ_syn from the chip (``chip_sigma``)."""
    if config.preact_sigma_neu is not None:
        return TrainingMethod(
            "preact_noise",
            lambda: PreactNoise(sigma_neu=config.preact_sigma_neu, generator=generator),
        )
    sigma = chip_sigma(config, device_model)
    return TrainingMethod("preact_noise", lambda: PreactNoise(sigma_syn=sigma, generator=generator))


@register("ha_sgd")
def build_ha_sgd(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """Seed 001: L weight copies folded into the batch."""
    L = config.samples
    if config.adc_bits is not None and config.hw is not None:
        # the chip's ADC in the loop: the L perturbed copies are L simulated chips
        # (device noise through the Mapping, per-tile ADC, input quantization)
        return TrainingMethod(
            "ha_sgd", lambda: design_chip(config, model, device_model, L), copies=L
        )
    sigma = chip_sigma(config, device_model)

    def make_ha() -> WeightNoise:
        return WeightNoise(
            sigma, config.mean_shift, groups=L, adc_bits=config.adc_bits, generator=generator
        )

    return TrainingMethod("ha_sgd", make_ha, copies=L)

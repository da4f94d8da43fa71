"""``train.method`` -> what the training loop installs: a backend and a fold factor.

Why this shape: all seed methods are "the same SGD loop with a different forward"
(seed 000 writes them as one loss L^t = −Σ y log f(x, θ, z) with different z), so a
method is fully described by the crossbar backend used during training and the number
of weight copies folded into the batch (HA-SGD's L).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..layers import crossbar_layers
from .config import TrainConfig
from .noise import PreactNoise, WeightNoise


@dataclass
class TrainingMethod:
    """A training forward: ``backend()`` is called once per step (fresh noise)."""

    name: str
    make: Callable[[], Any] | None = None
    #: copies of the mini-batch folded into the batch dim (HA-SGD's L)
    copies: int = 1
    _backend: Any = None

    def backend(self) -> Any:
        if self._backend is None and self.make is not None:
            self._backend = self.make()
        if self._backend is not None:
            resample = getattr(self._backend, "resample", None)
            if resample is not None:
                resample()
        return self._backend


def device_sigma(config: TrainConfig, device_model: Any | None) -> float:
    """σ relative to the weight range: ``config.sigma``, else the device model's.

    ``device_model.weight_sigma()`` (evaluators/cim/devices.py) is the device's
    programming/variation σ as a fraction of the conductance range G_max − G_min, already
    multiplied by ``hw.variation_scale`` when the evaluator passes ``device.scaled(v)``.
    """
    if config.sigma is not None:
        return float(config.sigma)
    if device_model is None:
        raise ValueError(
            f"train.method={config.method!r} needs a noise level: set train.sigma or pass the "
            "device model (hw.device) to train_model"
        )
    return float(device_model.weight_sigma())


def chip_sigma(config: TrainConfig, device_model: Any | None) -> float:
    """σ_syn of preact_noise / ha_sgd: ``train.sigma``, else the *deployed* weight σ.

    With the hardware the design deploys on (``config.hw``, filled by
    ``TrainConfig.from_design``) the σ is the one the chip's Mapping gives a weight
    (slices, differential pairs: :func:`chip_forward.deployed_weight_sigma`); without it
    (direct API use) the device's per-cell ``weight_sigma()`` as before.
    """
    if config.sigma is not None or config.hw is None or device_model is None:
        return device_sigma(config, device_model)
    from .chip_forward import deployed_weight_sigma, hardware

    return deployed_weight_sigma(device_model, hardware(config.hw))


def _chip(config: TrainConfig, model: nn.Module, device_model: Any | None, copies: int):
    """A :class:`chip_forward.ChipForward` on the design's hardware (``config.hw``)."""
    from .chip_forward import ChipForward, chip_device, hardware

    hw = hardware(config.hw)
    if config.adc_bits is not None:
        hw.adc_bits = int(config.adc_bits)
    dev = chip_device(config, device_model, hw)
    mean_shift = config.mean_shift if config.method == "ha_sgd" else 0.0
    rng = (config.hw or {}).get("rng", "auto")
    return ChipForward(model, hw, dev, config.seed, copies, mean_shift, rng)


def build_method(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """The :class:`TrainingMethod` for ``config.method`` (see config.METHODS)."""
    m = config.method
    if m == "ideal":
        return TrainingMethod("ideal")
    if m == "hwa":
        # hardware-aware training (aihwkit's sense): one fresh chip per mini-batch
        return TrainingMethod(m, lambda: _chip(config, model, device_model, 1))
    if m == "ddhr":
        # seed 000's DDHR baseline: train on one chip instance z_0, the one it deploys on
        from .sddhr import instance_chip

        return TrainingMethod(m, lambda: instance_chip(config, model, device_model))
    binary = any(layer.binary for _, layer in crossbar_layers(model))
    on_mram = bool(getattr(device_model, "binary", False))
    if binary and on_mram and m in ("s_ddhr", "ps_ddhr", "as_ddhr", "fixed"):
        from .sddhr import build_binary_sddhr

        return build_binary_sddhr(config, model, device_model, sample_x, generator)
    if m == "preact_noise":
        if config.preact_sigma_neu is not None:
            return TrainingMethod(
                m, lambda: PreactNoise(sigma_neu=config.preact_sigma_neu, generator=generator)
            )
        sigma = chip_sigma(config, device_model)
        return TrainingMethod(m, lambda: PreactNoise(sigma_syn=sigma, generator=generator))
    if m == "ha_sgd":
        L = config.samples
        if config.adc_bits is not None and config.hw is not None:
            # the chip's ADC in the loop: the L perturbed copies are L simulated chips
            # (device noise through the Mapping, per-tile ADC, input quantization)
            return TrainingMethod(m, lambda: _chip(config, model, device_model, L), copies=L)
        sigma = chip_sigma(config, device_model)

        def make_ha() -> WeightNoise:
            return WeightNoise(
                sigma, config.mean_shift, groups=L, adc_bits=config.adc_bits, generator=generator
            )

        return TrainingMethod(m, make_ha, copies=L)
    from .sddhr import build_analog_sddhr

    return build_analog_sddhr(config, model, device_model, sample_x, generator)

"""``train.method`` -> the :class:`methods.TrainingMethod` the training loop installs.

The one place that picks a builder: by the method's name and the weight setting — a
binarized network on a binary (MRAM) device takes seed 000's per-cell MTJ model where a
method registers one, every other case the ``analog`` builder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import crossbar_layers

# the builder modules: importing them fills methods.BUILDERS
from . import binary_sddhr, injection, sddhr  # noqa: F401
from .config import METHODS, TrainConfig
from .methods import BUILDERS, TrainingMethod


def variant_of(model: nn.Module, device_model: Any | None) -> str:
    """``binary_mram`` for a binarized model on a binary device, else ``analog``."""
    binary = any(layer.binary for _, layer in crossbar_layers(model))
    on_mram = bool(getattr(device_model, "binary", False))
    return "binary_mram" if binary and on_mram else "analog"


def build_method(
    config: TrainConfig,
    model: nn.Module,
    device_model: Any | None,
    sample_x: torch.Tensor,
    generator: torch.Generator,
) -> TrainingMethod:
    """The :class:`TrainingMethod` for ``config.method`` (see config.METHODS)."""
    name = config.method
    builder = BUILDERS.get((name, variant_of(model, device_model))) or BUILDERS.get(
        (name, "analog")
    )
    if builder is None:
        raise ValueError(f"train.method={name!r} has no builder; allowed: {', '.join(METHODS)}")
    return builder(config, model, device_model, sample_x, generator)

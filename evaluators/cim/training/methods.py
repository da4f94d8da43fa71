"""What a training method is, and how one is registered: a backend and a fold factor.

Why this shape: all seed methods are "the same SGD loop with a different forward"
(seed 000 writes them as one loss L^t = −Σ y log f(x, θ, z) with different z), so a
method is fully described by the crossbar backend used during training and the number
of weight copies folded into the batch (HA-SGD's L).

Why the table lives here and not beside ``build_method``: the modules that build methods
(``injection``, ``sddhr``, ``binary_sddhr``) import this module to register; the
dispatcher (``registry``) imports them. Nothing here imports a builder, so the training
package has no import circle (tests/test_import_graph.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig


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


#: builds the method ``config.method`` for one model (sample_x: a batch for statistics)
Builder = Callable[[TrainConfig, nn.Module, Any, torch.Tensor, torch.Generator], TrainingMethod]

#: the two weight settings a method may be built for: multi-level ``analog`` crossbars,
#: and ``binary_mram`` — a binarized network on MRAM, seed 000's own setting
VARIANTS = ("analog", "binary_mram")

#: (method name, variant) -> builder, filled by :func:`register`
BUILDERS: dict[tuple[str, str], Builder] = {}


def register(*names: str, variant: str = "analog") -> Callable[[Builder], Builder]:
    """Decorator: ``builder`` builds each of ``names`` for ``variant`` (see VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}; allowed: {', '.join(VARIANTS)}")

    def deco(builder: Builder) -> Builder:
        for name in names:
            BUILDERS[(name, variant)] = builder
        return builder

    return deco


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

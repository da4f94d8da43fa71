"""Training configuration: one dataclass shared by every training method.

Why one flat dataclass: the ``cim`` evaluator builds it from a flat design
(``dnn.*`` / ``train.*`` keys, docs/architecture.md) and hashes the train-stage
part of the design for its model cache, so every knob that changes the trained
weights must live here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: every value of ``train.method`` (docs/architecture.md)
METHODS: tuple[str, ...] = (
    "ideal",  # plain training
    "preact_noise",  # seed 002 (Sandia): Gaussian noise at the pre-activation
    "ha_sgd",  # seed 001: Hessian-aware SGD, gradient averaged over L weight perturbations
    "hwa",  # hardware-aware training (aihwkit): forward on a fresh simulated chip, STE back
    "ddhr",  # seed 000: per-instance baseline, train on chip z_0 and deploy on that chip
    "s_ddhr",  # seed 000: S-DDHR, a fresh chip instance per training sample (Monte-Carlo)
    "ps_ddhr",  # seed 000: parametric S-DDHR, analytic per-layer output distribution
    "as_ddhr",  # seed 000: approximate S-DDHR, one distribution for all layers
    "fixed",  # seed 000: train on one sampled chip instance z_0
)
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: hwa's default weight clip, ± 2.5·std(W) per layer: aihwkit's LAYER_GAUSSIAN default
#: sigma (WeightClipParameter). On digits, 3-bit per-tile ADC, 4-bit cells (the slow test
#: in tests/test_chip_training.py): ideal 0.512, hwa without clipping 0.581, with 0.743
HWA_CLIP_SIGMA = 2.5

#: design key -> TrainConfig field (docs/architecture.md, "CIM design keys")
_DESIGN_KEYS: dict[str, str] = {
    "train.method": "method",
    "train.sigma": "sigma",
    "train.samples": "samples",
    "train.mean_shift": "mean_shift",
    "train.epochs": "epochs",
    "train.lr": "lr",
    "train.seed": "seed",
    "dnn.group_hs": "group_hs",
    "dnn.hoyer": "hoyer",
    "dnn.group_lasso": "group_lasso",
    "dnn.prune_threshold": "prune_threshold",
    "dnn.bsq_alpha": "bsq_alpha",
}


class TrainConfigError(ValueError):
    """A training setting is out of range; the message names it and what is allowed."""


@dataclass
class TrainConfig:
    """Everything that decides the trained weights.

    Noise levels (``sigma``, ``mean_shift``) are *relative to each layer's
    weight range* (W_max - W_min), as in seed 001's device-programming mapping
    (programming error proportional to the device's dynamic range, Fig. 3) and
    seed 002's sigma_syn. ``sigma=None`` means: take it from the device model.
    """

    method: str = "ideal"
    epochs: int = 10
    lr: float = 1e-2
    batch_size: int = 64
    seed: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    #: clip the global gradient norm to this before each step (None: the model's own
    #: ``grad_clip`` attribute — the RNN's, models.TimeMultiplexedRNN — else no clipping)
    grad_clip: float | None = None
    #: training noise sigma relative to the weight range (None: device_model.weight_sigma())
    sigma: float | None = None
    #: preact_noise only: absolute sigma_neu at every pre-activation (seed 002's
    #: "level 0.1"); overrides the sigma_syn -> sigma_neu conversion when set
    preact_sigma_neu: float | None = None
    #: HA-SGD L: perturbed weight copies per step (seed 001, Algorithm 1)
    samples: int = 4
    #: HA-SGD device mean-shift prior, relative to the weight range (seed 001, Fig. 8)
    mean_shift: float = 0.0
    #: weight clipping after every optimiser step at ± this × std(W) of each crossbar
    #: layer (aihwkit WeightClipType.LAYER_GAUSSIAN, whose default sigma is 2.5:
    #: aihwkit/simulator/parameters/inference.py WeightClipParameter); 0 = off; None =
    #: 2.5 for ``hwa`` (aihwkit's HWA recipe clips), off for every other method
    weight_clip_sigma: float | None = None
    #: HA-SGD low-resolution ADC on each layer's output in the forward pass (None: off)
    adc_bits: int | None = None
    #: the hw.* values a method reads while training (chip_forward.CHIP_KEYS for hwa and
    #: HA-SGD with the chip's ADC, SIGMA_KEYS for the deployed σ of preact_noise / ha_sgd),
    #: resolved with the hardware defaults; None for methods that read none. Part of the
    #: training key, so trainings against different chips never share a cache entry.
    hw: dict[str, Any] | None = None
    #: Group-HS lambda (Yang et al., ICLR'20; seed 003); groups = crossbar rows and columns
    group_hs: float = 0.0
    #: elementwise Hoyer-Square lambda (same source)
    hoyer: float = 0.0
    #: SSL group-Lasso lambda (Wen et al., NIPS'16; seed 003)
    group_lasso: float = 0.0
    #: prune row/column groups whose L2 norm < threshold * (largest group norm of that
    #: layer and kind); 0 = no pruning
    prune_threshold: float = 0.0
    #: fine-tuning epochs with the pruning mask fixed
    finetune_epochs: int = 2
    #: DeepHoyer's default pruning rule, used when Group-HS / Hoyer-Square is on
    #: (``group_hs`` or ``hoyer`` > 0) and no ``prune_threshold`` is given: zero every
    #: weight with |w| < this × std(W) of its layer, then fine-tune with the zeros fixed
    #: (regularizers.Pruner.deephoyer; 0.25 is the default ``--sensitivity`` of Yang et
    #: al.'s released code, github.com/yanghr/DeepHoyer mnist/MLP/prun_tune_V.py); 0 = off
    hoyer_prune_sensitivity: float = 0.25
    #: BSQ alpha (Yang et al., ICLR'21; seed 003); 0 = off
    bsq_alpha: float = 0.0
    #: BSQ starting precision (the paper starts from 8-bit)
    bsq_init_bits: int = 8
    #: BSQ phase length in epochs (None: same as ``epochs``)
    bsq_epochs: int | None = None
    #: SGD learning rate of the bit planes during the BSQ phase
    bsq_lr: float = 0.1
    #: re-quantize bit planes and adjust precision every this many epochs
    bsq_requant_every: int = 1
    #: as_ddhr: the one output-noise sigma used for all layers, in pre-activation units
    #: (the +-1 dot product for binarized layers); None: derived from the device (sddhr.py)
    as_sigma: float | None = None
    #: ddhr: the simulator seed of the chip the network is trained on and deployed on
    #: (instance 0 of ``simulator.simulate(seed=chip_seed)``; the evaluator sets its seed)
    chip_seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`TrainConfigError` naming the first bad field."""
        if self.method not in METHODS:
            raise TrainConfigError(
                f"train.method={self.method!r} is not a training method; allowed: {', '.join(METHODS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise TrainConfigError(
                f"optimizer={self.optimizer!r} is unknown; allowed: {', '.join(OPTIMIZERS)}"
            )
        _check_int("train.epochs", self.epochs, 0)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("train.samples", self.samples, 1)
        _check_int("finetune_epochs", self.finetune_epochs, 0)
        _check_int("bsq_requant_every", self.bsq_requant_every, 1)
        _check_int("bsq_init_bits", self.bsq_init_bits, 1, 16)
        if self.bsq_epochs is not None:
            _check_int("bsq_epochs", self.bsq_epochs, 0)
        if self.adc_bits is not None:
            _check_int("hw.adc_bits", self.adc_bits, 1, 16)
        if not (self.bsq_lr > 0):
            raise TrainConfigError(f"bsq_lr={self.bsq_lr!r} must be > 0")
        if not (self.lr > 0):
            raise TrainConfigError(f"train.lr={self.lr!r} must be > 0")
        for name in (
            "group_hs",
            "hoyer",
            "group_lasso",
            "bsq_alpha",
            "weight_decay",
            "hoyer_prune_sensitivity",
        ):
            if getattr(self, name) < 0:
                raise TrainConfigError(f"{name}={getattr(self, name)!r} must be >= 0")
        if not (0 <= self.prune_threshold < 1):
            raise TrainConfigError(
                f"dnn.prune_threshold={self.prune_threshold!r} must be in [0, 1) "
                "(relative to the largest group norm of the layer)"
            )
        for name in ("sigma", "preact_sigma_neu", "as_sigma", "weight_clip_sigma"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise TrainConfigError(f"{name}={v!r} must be >= 0 (or None)")

    @property
    def clip_sigma(self) -> float:
        """The weight clip k·σ in force: ``weight_clip_sigma``, else 2.5 for hwa, else 0."""
        if self.weight_clip_sigma is not None:
            return float(self.weight_clip_sigma)
        return HWA_CLIP_SIGMA if self.method == "hwa" else 0.0

    @property
    def needs_noise_model(self) -> bool:
        """True when the method injects hardware noise (and so may read the device model)."""
        return self.method != "ideal"

    # ---------------------------------------------------------------------------------
    @classmethod
    def from_design(
        cls, design: Mapping[str, Any], defaults: TrainConfig | Mapping[str, Any] | None = None
    ) -> TrainConfig:
        """Build from a flat CIM design (``dnn.*``/``train.*`` keys).

        ``defaults`` (a TrainConfig or a mapping of field -> value, e.g. the evaluator's
        ``epochs`` option) fills what the design leaves out. ``hw.adc_bits`` is read only
        for ``ha_sgd`` (its low-resolution forward, seed 001 Fig. 9); other ``hw.*`` keys
        reach training only through the device model passed to :func:`train_model`.
        """
        if isinstance(defaults, TrainConfig):
            base = dataclasses.asdict(defaults)
        else:
            base = dataclasses.asdict(cls())
            unknown = set(defaults or {}) - set(base)
            if unknown:
                raise TrainConfigError(
                    f"unknown training default(s) {sorted(unknown)}; allowed: {sorted(base)}"
                )
            base.update(defaults or {})
        for key, fld in _DESIGN_KEYS.items():
            if key in design and design[key] is not None:
                base[fld] = design[key]
            elif key == "train.sigma" and key in design:
                base[fld] = None  # explicit None: derive from the device
        if base["method"] == "ha_sgd" and design.get("hw.adc_bits") is not None:
            base["adc_bits"] = int(design["hw.adc_bits"])
        base["hw"] = _hw_read(base, design)
        for fld in ("epochs", "samples", "seed"):
            if base[fld] is not None and not isinstance(base[fld], bool):
                base[fld] = int(base[fld])
        return cls(**base)


def _hw_read(base: dict[str, Any], design: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolved hw.* values the method reads while training (see ``TrainConfig.hw``)."""
    from .chip_forward import CHIP_KEYS, SIGMA_KEYS

    m = base["method"]
    if m in ("hwa", "ddhr") or (m == "ha_sgd" and base["adc_bits"] is not None):
        keys = CHIP_KEYS
    elif m in ("preact_noise", "ha_sgd") and base["sigma"] is None:
        if m == "preact_noise" and base["preact_sigma_neu"] is not None:
            return None
        keys = SIGMA_KEYS
    else:
        return base.get("hw")
    from ..mapping import HardwareConfig

    try:
        hw = HardwareConfig.from_design({k: v for k, v in design.items() if k.startswith("hw.")})
    except ValueError as exc:
        raise TrainConfigError(str(exc)) from None
    return {k: getattr(hw, k) for k in keys}


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrainConfigError(f"{name}={value!r} must be an integer")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise TrainConfigError(f"{name}={value!r} must be {rng}")

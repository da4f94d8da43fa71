"""Training forward that *is* the chip: the Monte-Carlo simulator's backend, straight through.

Why (issue 12 item 1, ../shared/DESIGN.md "Training sees the chip"): a method that trains
"for the hardware" should see the hardware the design is evaluated on — the Mapping's
bit slices and differential pairs, per-cell programming and read noise from the device's
noise model (PCM's state-dependent one included), clipping at G = 0, input quantization
and the per-tile, per-cycle, per-slice ADC with its percentile range. Restating that
physics in a second, differentiable model would let the two drift apart (the audit found
training σ 0.65-1.89x off the deployed one, and HA-SGD's per-layer max|y| ADC far from
the chip's). So the forward value of every crossbar layer comes from
:class:`evaluators.cim.simulator.AnalogBackend` itself, on a chip freshly drawn for each
mini-batch, and the backward pass goes straight through: the gradient is that of the
digital layer ``x @ W + b`` at the same input (the straight-through estimator through
quantizers and noise, as in aihwkit's hardware-aware training with an
``InferenceRPUConfig``: forward on the noisy, quantized analog tile, backward as if it
were the ideal matmul). Activations between layers are the chip's, so later layers train
on what they will receive.

Per mini-batch (:meth:`ChipForward.prepare`, run by a forward pre-hook on the model):
map the current weights (``Mapping.from_model``: pruned rows/columns, bias rows, input
full scale on the batch), slice and calibrate the ADC on the batch's ideal partial sums
(``build_backend``), program ``instances`` fresh chips (global instance numbers
``step·instances …``, under a training seed distinct from the evaluation seed, so a
training never sees the chips it is tested on).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..layers import CrossbarMixin, crossbar_layers, use_backend
from ..native_rng import unit_key

#: hw.* keys the chip forward reads (so they belong in the training key)
CHIP_KEYS = (
    "device",
    "variation_scale",
    "array_size",
    "adc_bits",
    "act_bits",
    "weight_bits",
    "cell_bits",
    "input_mode",
    "drift_time_s",
)
#: keys of the deployed weight σ (:func:`deployed_weight_sigma`)
SIGMA_KEYS = ("device", "variation_scale", "weight_bits", "cell_bits")
_TRAIN_SEED_TAG = 0x7EA1  # training chips: unit_key(train.seed, tag), never the test chips


def hardware(hw: dict[str, Any] | None):
    """``HardwareConfig`` from the ``hw.*`` values a training recipe recorded."""
    from ..mapping import HardwareConfig

    if not hw:
        return HardwareConfig()
    names = {f.name for f in dataclasses.fields(HardwareConfig)}
    return HardwareConfig(**{k: v for k, v in hw.items() if k in names and v is not None})


def deployed_weight_sigma(dev: Any, hw: Any, weight_bits: int | None = None) -> float:
    """Std of a deployed weight's error relative to the layer's weight range (σ_syn).

    Follows the Mapping and the simulator (mapping.py, simulator._prepare): a weight is
    quantized to q_max = 2^(n−1) − 1 magnitude levels of step w_max/q_max, split into
    S = ceil((n−1)/c) slices of c = min(hw.cell_bits, device bits) bits with L = 2^c − 1
    levels each, every slice on a differential pair. Each cell errs by σ_c (range units,
    σ_c² = prog² + read²), i.e. L·σ_c levels, so the pair by √2·L·σ_c levels of its slice,
    weighted 2^(c·k) in the shift-and-add: the weight errs by
    w_step·√2·L·σ_c·sqrt(Σ_k 4^(c·k)); over the weight range 2·w_max that is
    √2·L·σ_c·sqrt(Σ_k 4^(c·k)) / (2·q_max). Examples (σ_c/√2 = ``weight_sigma()``, what
    the training used before): 8-bit weights on 2-bit cells 1.56x, 8b/4b 1.89x,
    4b/1b 0.65x. PCM's state-dependent σ enters with its mid-range value
    (``prog_sigma``); binary MRAM layers keep ``weight_sigma()`` (seed 000's unit).
    """
    if not dev.analog:
        return 0.0
    if dev.binary:
        return float(dev.weight_sigma())
    n = int(weight_bits or hw.weight_bits)
    q_max = 2 ** max(n - 1, 1) - 1
    c = min(int(hw.cell_bits), dev.max_cell_bits)
    slices = math.ceil(max(n - 1, 1) / c)
    levels = 2**c - 1
    sigma_c = math.sqrt(dev.prog_sigma**2 + dev.read_sigma**2)
    weights = math.sqrt(sum(4.0 ** (c * k) for k in range(slices)))
    return math.sqrt(2.0) * levels * sigma_c * weights / (2.0 * q_max)


def chip_device(config: Any, device_model: Any, hw: Any) -> Any:
    """The device the chip forward draws from: the design's, or rescaled to ``train.sigma``.

    ``train.sigma`` (relative to the weight range, like every training σ) sets the
    deployed weight σ: every device σ is scaled by sigma / deployed_weight_sigma.
    """
    if device_model is None:
        device_model = hw.device_model()
    if config.sigma is None:
        return device_model
    base = deployed_weight_sigma(device_model, hw)
    if base <= 0:
        raise ValueError(
            f"train.sigma={config.sigma} cannot be set on device {device_model.name!r}, which "
            "has no analog noise to scale"
        )
    return device_model.scaled(float(config.sigma) / base)


class ChipForward:
    """Crossbar backend for training: forward = ``instances`` simulated chips, backward STE.

    ``copies`` of the mini-batch are folded into the batch (copy-major, like HA-SGD's L);
    copy l runs on chip l of the step. ``mean_shift`` adds seed 001's device mean-shift
    prior μ·(W_max − W_min) to every weight (exactly: y += μ·range·Σ_i x_i).
    """

    def __init__(
        self,
        model: nn.Module,
        hw: Any,
        device_model: Any,
        seed: int = 0,
        instances: int = 1,
        mean_shift: float = 0.0,
        rng: str = "auto",
    ):
        from ..simulator import SimOptions

        self.model = model
        self.hw = hw
        self.dev = device_model
        self.seed = int(unit_key(int(seed), _TRAIN_SEED_TAG) >> 1)
        self.instances = int(instances)
        self.mean_shift = float(mean_shift)
        self.opts = SimOptions(cache=False, rng=rng)
        self.step = 0
        self.sim = None
        self._fresh = True
        self._busy = False
        self._hook = model.register_forward_pre_hook(self._pre_forward)

    # -- TrainingMethod protocol ----------------------------------------------------------
    def resample(self) -> None:
        """Next forward draws new chips (the training loop calls this every step)."""
        self._fresh = True

    def close(self) -> None:
        self._hook.remove()

    # -- per mini-batch -------------------------------------------------------------------
    def _installed(self) -> bool:
        layers = crossbar_layers(self.model)
        return bool(layers) and layers[0][1].backend is self

    def _pre_forward(self, _module: nn.Module, args: tuple) -> None:
        if self._busy or not self._fresh or not self._installed():
            return
        self.prepare(args[0])

    def prepare(self, x: torch.Tensor, first: int | None = None) -> None:
        """Map, calibrate on one copy of ``x`` and program this step's chips."""
        from ..mapping import Mapping
        from ..simulator import build_backend

        n = len(x) // self.instances
        xb = x[:n].detach()
        self._busy = True
        was_training = self.model.training
        self.model.eval()  # calibration must not touch normalisation statistics
        try:
            with torch.no_grad(), use_backend(self.model, None):
                mapping = Mapping.from_model(
                    self.model, self.hw, sample_input=xb, device_model=self.dev
                )
                opts = dataclasses.replace(self.opts, calib_samples=max(1, n))
                sim = build_backend(self.model, mapping, self.hw, self.dev, self.seed, opts, xb)
                start = self.step * self.instances if first is None else int(first)
                sim.program(self.instances, first=start)
                sim.begin_batch(0, n)
        finally:
            self._busy = False
            self.model.train(was_training)
        self.sim = sim
        self.step += 1
        self._fresh = False

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        y_dig = layer.digital(x)
        if self.sim is None:
            raise RuntimeError("ChipForward: no chip prepared (call prepare(x) first)")
        with torch.no_grad():
            y_chip = self.sim(layer, x.detach()).to(y_dig.dtype)
        if self.mean_shift:
            rows, token = layer.to_rows(x)
            w = layer.matrix()
            shift = self.mean_shift * (w.detach().max() - w.detach().min()) * rows.sum(1)
            shift = layer.from_rows(shift.unsqueeze(1).expand(-1, w.shape[1]), token)
            y_dig = y_dig + shift
            y_chip = y_chip + shift.detach()
        return y_dig + (y_chip - y_dig).detach()

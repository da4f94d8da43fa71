"""The training loop shared by every method: ``train_model`` is the package entry point.

Why one loop: every method of the seeds differs only in (a) the crossbar backend
installed during the forward pass (noise at the pre-activation, perturbed weight
copies, per-sample chip instances) and (b) how many copies of the mini-batch are
folded into the batch dimension (HA-SGD's L). Regularizers (Group-HS, Hoyer-Square,
group Lasso), pruning with fine-tuning, and BSQ are additions to this same loop, so
they combine with any method. Pruning: ``prune_threshold`` > 0 prunes crossbar
row/column groups by their norm; otherwise Group-HS / Hoyer-Square prune by
DeepHoyer's own rule (``hoyer_prune_sensitivity``, :meth:`Pruner.deephoyer`), so a
λ alone lowers tiles, energy and area.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import crossbar_layers, use_backend
from .bsq import BSQ
from .config import TrainConfig
from .methods import TrainingMethod
from .registry import build_method
from .regularizers import Pruner, regularization, structure_metrics


def train_model(
    model: nn.Module, data: Any, config: TrainConfig, device_model: Any | None = None
) -> dict[str, float]:
    """Train ``model`` in place with ``config.method`` and return training metrics.

    ``data`` has ``train_x``/``train_y`` tensors (``evaluators.cim.data.Dataset``).
    ``device_model`` (``evaluators.cim.devices.DeviceModel``, already scaled by
    ``hw.variation_scale``) supplies the noise level when ``config.sigma`` is None.
    Returned keys: ``sparsity``, ``sparsity_rows``, ``sparsity_cols``,
    ``avg_weight_bits``, ``compression`` (32 / avg bits; 32 and 1.0 when BSQ is off, the
    evaluator then applies ``hw.weight_bits``), ``train_time_s``, ``train_loss``,
    ``train_accuracy`` (last epoch, under the training noise), ``train_accuracy_clean``
    (digital forward after training). With BSQ, every crossbar layer's ``weight_bits``
    is set to its learned precision.
    """
    config.validate()
    start = time.perf_counter()
    layers = crossbar_layers(model)
    if not layers:
        raise ValueError("train_model: the model has no crossbar layers (CrossbarLinear/Conv2d)")
    x, y = _train_tensors(data)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    dev = next(model.parameters()).device
    method = build_method(config, model, device_model, x[: min(len(x), 256)].to(dev), gen)

    model.train()
    last = _fit(model, x, y, config, method, config.epochs, gen) or (math.nan, math.nan)
    pruner: Pruner | None = None
    if config.prune_threshold > 0:
        pruner = Pruner.from_model(model, config.prune_threshold)
        pruner.apply()
        last = _fit(model, x, y, config, method, config.finetune_epochs, gen, pruner=pruner) or last
    elif (config.group_hs > 0 or config.hoyer > 0) and config.hoyer_prune_sensitivity > 0:
        # DeepHoyer's own pipeline (Yang et al. ICLR'20): regularized training, threshold
        # pruning, then fine-tuning on the data loss alone with the zeros fixed
        pruner = Pruner.deephoyer(model, config.hoyer_prune_sensitivity)
        pruner.apply()
        last = (
            _fit(
                model,
                x,
                y,
                config,
                method,
                config.finetune_epochs,
                gen,
                pruner=pruner,
                regularize=False,
            )
            or last
        )
    bits: dict[str, float] = {"avg_weight_bits": 32.0, "compression": 1.0}
    if config.bsq_alpha > 0:
        bsq = BSQ(model, config.bsq_init_bits, pruner)
        bsq_epochs = config.epochs if config.bsq_epochs is None else config.bsq_epochs
        for epoch in range(bsq_epochs):
            last = (
                _fit(model, x, y, config, method, 1, gen, bsq=bsq, bsq_alpha=config.bsq_alpha)
                or last
            )
            if (epoch + 1) % config.bsq_requant_every == 0:
                bsq.requantize()
        bsq.requantize()
        # BSQ's last step: fine-tune at the precision found, without the bit penalty
        last = _fit(model, x, y, config, method, config.finetune_epochs, gen, bsq=bsq) or last
        bits = bsq.finish()
    model.eval()
    with torch.no_grad():
        clean = _accuracy(model, x, y, config.batch_size * 8)
    out = structure_metrics(model)
    out.update(bits)
    if config.method == "ddhr":
        # the chip this network was trained on: the evaluator deploys it on exactly that one
        out.update(chip_seed=float(config.chip_seed), chip_instance=0.0)
    out.update(
        train_loss=last[0],
        train_accuracy=last[1],
        train_accuracy_clean=clean,
        train_time_s=time.perf_counter() - start,
    )
    return out


def step_loss(
    model: nn.Module, method: TrainingMethod, xb: torch.Tensor, yb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Data loss of one mini-batch under ``method`` and its logits.

    HA-SGD's L copies are folded into the batch (copy-major); the mean cross-entropy
    over the L·B rows equals the average of the L per-copy losses, so its gradient is
    Algorithm 1's averaged gradient ĝ = (1/L) Σ_l ∇J(w + Δw_l).
    """
    copies = method.copies
    xin = xb.repeat(copies, *([1] * (xb.dim() - 1))) if copies > 1 else xb
    with use_backend(model, method.backend()):
        logits = model(xin)
    target = yb.repeat(copies) if copies > 1 else yb
    return F.cross_entropy(logits, target), logits


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    method: TrainingMethod,
    epochs: int,
    gen: torch.Generator,
    params: list[torch.Tensor] | None = None,
    pruner: Pruner | None = None,
    bsq: BSQ | None = None,
    bsq_alpha: float = 0.0,
    regularize: bool = True,
) -> tuple[float, float] | None:
    """Run ``epochs`` epochs; return (mean loss, accuracy) of the last one (None if none)."""
    if epochs <= 0:
        return None
    dev = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad] if params is None else params
    if bsq is not None:
        # BSQ's bit planes train with plain SGD+momentum: the CE gradient of plane b is
        # 2^b times that of the LSB plane, which is what lets the bit-level group Lasso
        # zero low-significance planes first. A per-parameter-normalised optimiser
        # (Adam) would move every plane at the same rate and erase that ordering.
        # The per-layer scales (in ``rest``: they are model parameters through the
        # parametrization) train with the network's own optimiser: at the planes' SGD
        # learning rate a noise-aware loss (noise relative to the weight range) drives
        # the scale to zero within an epoch.
        planes = bsq.plane_parameters()
        plane_ids = {id(p) for p in planes}
        rest = [p for p in params if id(p) not in plane_ids]
        opts = [torch.optim.SGD(planes, lr=config.bsq_lr, momentum=0.9)]
        if rest:
            opts.append(_optimizer(config, rest))
        opt = _Multi(opts)
    else:
        opt = _optimizer(config, params)
    clip = config.grad_clip if config.grad_clip is not None else getattr(model, "grad_clip", None)
    n = len(x)
    last = (math.nan, math.nan)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            xb, yb = x[idx].to(dev), y[idx].to(dev)
            loss, logits = step_loss(model, method, xb, yb)
            total = loss + regularization(model, config) if regularize else loss
            if bsq is not None and bsq_alpha > 0:
                total = total + bsq_alpha * bsq.penalty()
            opt.zero_grad(set_to_none=True)
            total.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            if pruner is not None:
                pruner.mask_grads()
            opt.step()
            if config.clip_sigma > 0:
                clip_weights(model, config.clip_sigma)
            if pruner is not None:
                pruner.apply()
            if bsq is not None:
                bsq.clamp_()  # also re-applies the pruning mask to the planes
            with torch.no_grad():
                pred = logits[: len(yb)].argmax(-1)
                tot_correct += int((pred == yb).sum())
                tot_loss += float(loss) * len(yb)
                seen += len(yb)
        last = (tot_loss / seen, tot_correct / seen)
    return last


@torch.no_grad()
def clip_weights(model: nn.Module, k: float) -> None:
    """Clip every crossbar layer's weights to ± k·std(W) (aihwkit LAYER_GAUSSIAN clipping).

    Why: the chip maps ± max|W| of a layer onto the cells' full range, so a few outlying
    weights stretch every weight's quantization step, and the partial sums the ADC range
    is set by; clipping the tail at k·σ puts the bulk of the weights on more levels.
    """
    for _, layer in crossbar_layers(model):
        if getattr(layer, "binary", False):
            continue
        w = layer.weight  # type: ignore[attr-defined]
        bound = k * float(w.std()) if w.numel() > 1 else 0.0
        if bound > 0:
            w.clamp_(-bound, bound)


class _Multi:
    """Several optimisers stepped together (BSQ planes + the remaining parameters)."""

    def __init__(self, opts: list[torch.optim.Optimizer]):
        self.opts = opts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.opts:
            o.step()


def _optimizer(config: TrainConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _train_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        x, y = data.train_x, data.train_y
    except AttributeError as exc:
        raise TypeError(
            "train_model: data must have train_x and train_y tensors (evaluators.cim.data.Dataset)"
        ) from exc
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"train_model: train_x ({len(x)}) and train_y ({len(y)}) must be equal, > 0"
        )
    return x.float(), y.long()


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((model(x[i : i + batch].to(dev)).argmax(-1).cpu() == y[i : i + batch]).sum())
    return correct / len(x)

"""Sparsity regularizers on crossbar groups, group pruning, and structure metrics (seed 003).

Groups are the crossbar's rows and columns of each layer's unrolled matrix
(``layer.matrix()``, K×N): a row is one input (for a convolution one
(c_in, kh, kw) filter-shape fibre, the unit SSL calls a "column" of the im2col
matrix), a column is one output neuron / filter. Zeroing a whole row or column
removes it from the crossbar tile, which is what the Mapping then saves in area
and energy; elementwise zeros do not.

* Group-HS (Yang et al., ICLR'20, seed 003): G_H(W) = (Σ_g ‖w_g‖₂)² / ‖W‖₂²,
  applied once over row groups and once over column groups.
* Hoyer-Square (same paper): H_S(W) = (Σ_i |w_i|)² / Σ_i w_i².
* SSL group Lasso (Wen et al., NIPS'16, seed 003): R_g(W) = Σ_g ‖w_g‖₂.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import CrossbarMixin, crossbar_layers
from .config import TrainConfig

_EPS = 1e-12


def _raw_matrix(layer: CrossbarMixin) -> torch.Tensor:
    """The trainable weight as a (K, N) crossbar matrix (before any binarization)."""
    w = layer.weight  # type: ignore[attr-defined]
    return w.reshape(w.shape[0], -1).t()


def _group_norms(w: torch.Tensor, dim: int) -> torch.Tensor:
    return (w.pow(2).sum(dim) + _EPS).sqrt()


def group_hs(w: torch.Tensor) -> torch.Tensor:
    """Group-HS over row groups plus over column groups of a (K, N) matrix."""
    total = w.pow(2).sum() + _EPS
    rows = _group_norms(w, 1).sum().pow(2) / total
    cols = _group_norms(w, 0).sum().pow(2) / total
    return rows + cols


def hoyer_square(w: torch.Tensor) -> torch.Tensor:
    """Elementwise Hoyer-Square (Σ|w|)²/Σw²: scale-invariant, ranges over [1, #w] like L0."""
    return w.abs().sum().pow(2) / (w.pow(2).sum() + _EPS)


def group_lasso(w: torch.Tensor) -> torch.Tensor:
    """SSL group Lasso over row groups plus column groups."""
    return _group_norms(w, 1).sum() + _group_norms(w, 0).sum()


def regularization(model: nn.Module, config: TrainConfig) -> torch.Tensor | float:
    """λ_GH·ΣG_H + λ_HS·ΣH_S + λ_GL·ΣR_g over crossbar layers (0.0 when all λ are 0)."""
    if not (config.group_hs or config.hoyer or config.group_lasso):
        return 0.0
    total: torch.Tensor | float = 0.0
    for _, layer in crossbar_layers(model):
        if layer.binary:
            continue  # sign(w) is never zero: sparsity terms have no meaning there
        w = _raw_matrix(layer)
        if config.group_hs:
            total = total + config.group_hs * group_hs(w)
        if config.hoyer:
            total = total + config.hoyer * hoyer_square(w)
        if config.group_lasso:
            total = total + config.group_lasso * group_lasso(w)
    return total


@dataclass
class Pruner:
    """Fixed zero masks of pruned rows/columns, kept through fine-tuning.

    A group is pruned when its L2 norm is below ``threshold`` × the largest norm of its
    kind (rows or columns) in that layer — relative, so one threshold suits layers of any
    scale; with Group-HS the pruned groups are already near zero (its auto-trimming).
    """

    masks: list[tuple[CrossbarMixin, torch.Tensor]]
    #: bias masks: a column whose weights are all pruned loses its bias too, so the
    #: output is gone from the crossbar (the Mapping keeps a column with a bias)
    bias_masks: list[tuple[CrossbarMixin, torch.Tensor]] = field(default_factory=list)

    @classmethod
    def deephoyer(cls, model: nn.Module, sensitivity: float = 0.25) -> Pruner:
        """DeepHoyer's pruning rule (Yang, Wen, Li, ICLR'20): |w| < sensitivity·std(W).

        The paper's pipeline is "training with sparsity-inducing regularizer, pruning and
        finetuning" (§4.3, github.com/yanghr/DeepHoyer cifar/README.md); its released
        code prunes element-wise by a threshold on |w| — a fixed value for the CIFAR-10
        Group-HS models (cifar_prun_tune.py), ``sensitivity``·std of each layer's weight
        for MNIST (mnist/MLP/prun_tune_V.py, default sensitivity 0.25) — and fine-tunes
        with "all zero elements fixed". The layer-relative rule needs no per-model
        value, so it is the default here. Group-HS drives whole crossbar rows/columns
        below the threshold, and the Mapping drops every all-zero row and column.
        """
        masks, bias_masks = [], []
        with torch.no_grad():
            for _, layer in crossbar_layers(model):
                if layer.binary:
                    continue
                weight = layer.weight  # type: ignore[attr-defined]
                keep = weight.abs() >= sensitivity * weight.std()
                masks.append((layer, keep.to(weight.dtype)))
                bias = getattr(layer, "bias", None)
                if bias is not None:
                    alive = keep.reshape(keep.shape[0], -1).any(1)  # output column n
                    bias_masks.append((layer, alive.to(bias.dtype)))
        return cls(masks, bias_masks)

    @classmethod
    def from_model(cls, model: nn.Module, threshold: float) -> Pruner:
        masks = []
        with torch.no_grad():
            for _, layer in crossbar_layers(model):
                if layer.binary:
                    continue
                w = _raw_matrix(layer)
                rn, cn = _group_norms(w, 1), _group_norms(w, 0)
                keep_r = rn >= threshold * rn.max()
                keep_c = cn >= threshold * cn.max()
                m = (keep_r[:, None] & keep_c[None, :]).to(w.dtype)  # (K, N)
                weight = layer.weight  # type: ignore[attr-defined]
                masks.append((layer, m.t().reshape(weight.shape)))
        return cls(masks)

    @torch.no_grad()
    def apply(self) -> None:
        for layer, m in self.masks:
            layer.weight.mul_(m)  # type: ignore[attr-defined]
        for layer, m in self.bias_masks:
            layer.bias.mul_(m)  # type: ignore[attr-defined]

    @torch.no_grad()
    def mask_grads(self) -> None:
        for name, masks in (("weight", self.masks), ("bias", self.bias_masks)):
            for layer, m in masks:
                g = getattr(layer, name).grad
                if g is not None:
                    g.mul_(m)


@torch.no_grad()
def structure_metrics(model: nn.Module) -> dict[str, float]:
    """Elementwise, row and column sparsity over all crossbar layers (counts pooled)."""
    zeros = total = zr = nr = zc = nc = 0
    for _, layer in crossbar_layers(model):
        w = layer.matrix()
        nz = w != 0
        zeros += int((~nz).sum())
        total += w.numel()
        zr += int((~nz.any(1)).sum())
        nr += w.shape[0]
        zc += int((~nz.any(0)).sum())
        nc += w.shape[1]
    return {
        "sparsity": zeros / max(total, 1),
        "sparsity_rows": zr / max(nr, 1),
        "sparsity_cols": zc / max(nc, 1),
    }

"""BSQ: mixed precision from bit-level sparsity (Yang et al., ICLR'21; seed 003).

Each crossbar layer's weight is re-parametrized by float "bit planes":

    W = s · Round[Σ_b 2^b (W_p^(b) − W_n^(b))] / (2^n − 1)

with W_p^(b), W_n^(b) ∈ [0, 2] trainable (the rounding is straight-through), s a
trainable scale, starting from an n = 8-bit quantization of the trained weights.
The bit-level group Lasso B_GL(W) = Σ_b ‖[W_p^(b); W_n^(b)]‖₂, weighted per layer by
#Para(W^l)·#Bit(W^l)/#Para_total, drives whole bit planes to zero. Periodic
re-quantization turns the planes back into exact binary digits and adjusts the
precision: an all-zero MSB plane is dropped (value unchanged), an all-zero LSB plane
is dropped with the scale doubled ("LSB=0 ⇒ precision reduced with scaling factor 2",
seed 003). The weight of the sign is carried by the (W_p, W_n) pair (a differential
pair on the crossbar), so a layer's precision is n.

The planes live in a ``torch.nn.utils.parametrize`` parametrization of ``weight``, so
``layer.effective_weight()``/``matrix()`` — and therefore every noise backend — see the
quantized weight without any change to ``layers.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..layers import CrossbarMixin, crossbar_layers
from .noise import round_ste


class BitPlanes(nn.Module):
    """Parametrization: ignores the original weight, returns the bit-plane weight."""

    def __init__(self, weight: torch.Tensor, bits: int):
        super().__init__()
        w = weight.detach()
        scale = w.abs().max().clamp_min(1e-8)
        self.scale = nn.Parameter(scale.clone())
        levels = 2**bits - 1
        ints = torch.round(w / scale * levels)
        self.pos = nn.Parameter(torch.zeros(0))
        self.neg = nn.Parameter(torch.zeros(0))
        self._set_planes(ints, bits)

    # -- integer <-> planes --------------------------------------------------------------
    def _set_planes(self, ints: torch.Tensor, bits: int) -> None:
        mag = ints.abs().to(torch.int64)
        shifts = torch.arange(bits, device=ints.device).view(-1, *([1] * ints.dim()))
        digits = ((mag.unsqueeze(0) >> shifts) & 1).to(self.scale.dtype)
        self.pos = nn.Parameter(digits * (ints > 0).to(digits.dtype).unsqueeze(0))
        self.neg = nn.Parameter(digits * (ints < 0).to(digits.dtype).unsqueeze(0))
        self.bits = bits

    def _pow2(self) -> torch.Tensor:
        p = 2.0 ** torch.arange(self.bits, device=self.pos.device, dtype=self.pos.dtype)
        return p.view(-1, *([1] * (self.pos.dim() - 1)))

    def integers(self) -> torch.Tensor:
        """Signed integer code Round[Σ_b 2^b (W_p^(b) − W_n^(b))] (straight-through)."""
        return round_ste(((self.pos - self.neg) * self._pow2()).sum(0))

    def forward(self, _original: torch.Tensor) -> torch.Tensor:
        return self.scale * self.integers() / (2**self.bits - 1)

    # -- training-time operations ---------------------------------------------------------
    def bit_group_lasso(self) -> torch.Tensor:
        """B_GL = Σ_b ‖[W_p^(b); W_n^(b)]‖₂."""
        sq = self.pos.pow(2).flatten(1).sum(1) + self.neg.pow(2).flatten(1).sum(1)
        return (sq + 1e-12).sqrt().sum()

    @torch.no_grad()
    def clamp_(self) -> None:
        self.pos.clamp_(0.0, 2.0)
        self.neg.clamp_(0.0, 2.0)
        # a noise-aware method's loss falls as the weight range (∝ scale) shrinks; an SGD
        # step can push the scale through zero, which flips every weight and (at 0) makes
        # range-relative noise NaN. The scale is a magnitude: keep it positive.
        self.scale.clamp_(min=1e-6)

    @torch.no_grad()
    def requantize(self) -> None:
        """Back to exact binary digits, then drop all-zero MSB / LSB planes (min 1 bit)."""
        levels = 2**self.bits - 1
        ints = self.integers().clamp(-levels, levels)
        bits = self.bits
        scale = self.scale.detach().clone()
        while bits > 1 and bool((ints.abs() < 2 ** (bits - 1)).all()):
            # MSB plane all zero: same integers, fewer levels -> rescale to keep W
            scale = scale * (2 ** (bits - 1) - 1) / (2**bits - 1)
            bits -= 1
        while bits > 1 and bool((ints.remainder(2) == 0).all()) and bool((ints != 0).any()):
            # LSB plane all zero: W = s·2·(ints/2)/(2^n−1) -> halve the codes, keep W
            ints = ints / 2
            scale = scale * 2 * (2 ** (bits - 1) - 1) / (2**bits - 1)
            bits -= 1
        self.scale = nn.Parameter(scale)
        self._set_planes(ints, bits)


class BSQ:
    """Installs :class:`BitPlanes` on every non-binary crossbar layer of a trained model."""

    def __init__(self, model: nn.Module, init_bits: int = 8, pruner: Any | None = None):
        self.layers: list[tuple[CrossbarMixin, BitPlanes]] = []
        #: pruned groups stay zero through BSQ (weight-shaped masks by layer)
        self.masks = {id(layer): m for layer, m in (pruner.masks if pruner else [])}
        self.binary_params = 0
        for _, layer in crossbar_layers(model):
            if layer.binary:
                self.binary_params += layer.weight.numel()  # type: ignore[attr-defined]
                continue
            planes = BitPlanes(layer.weight, init_bits)  # type: ignore[attr-defined]
            parametrize.register_parametrization(layer, "weight", planes, unsafe=True)
            self.layers.append((layer, planes))
        self.total = sum(p.pos[0].numel() for _, p in self.layers)
        if not self.layers:
            raise ValueError("BSQ: the model has no non-binary crossbar layer to quantize")

    def penalty(self) -> torch.Tensor:
        """Σ_l #Para(W^l)·#Bit(W^l)/#Para_total · B_GL(W^l) (multiply by α)."""
        out = 0.0
        for _, p in self.layers:
            out = out + p.pos[0].numel() * p.bits / self.total * p.bit_group_lasso()
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def clamp_(self) -> None:
        for layer, p in self.layers:
            p.clamp_()
            m = self.masks.get(id(layer))
            if m is not None:
                p.pos.mul_(m)
                p.neg.mul_(m)

    def requantize(self) -> None:
        for _, p in self.layers:
            p.requantize()

    def finish(self) -> dict[str, float]:
        """Final re-quantization; bake the quantized weights in; set ``layer.weight_bits``."""
        self.requantize()
        bits_x_params = 0.0
        for layer, p in self.layers:
            bits = p.bits
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            layer.weight_bits = bits
            bits_x_params += bits * layer.weight.numel()  # type: ignore[attr-defined]
        n_params = self.total + self.binary_params
        avg = (bits_x_params + self.binary_params) / n_params
        return {"avg_weight_bits": avg, "compression": 32.0 / avg}

    def parameters(self) -> list[nn.Parameter]:
        """Current bit planes and scales (re-created at every re-quantization)."""
        return [t for _, p in self.layers for t in (p.pos, p.neg, p.scale)]

    def plane_parameters(self) -> list[nn.Parameter]:
        """The bit planes alone (trained with SGD so plane b moves 2^b times faster)."""
        return [t for _, p in self.layers for t in (p.pos, p.neg)]

    def bits(self) -> list[int]:
        return [p.bits for _, p in self.layers]

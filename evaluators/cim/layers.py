"""Crossbar layers: the one place where a network meets the analog hardware.

Every weight layer that lands on crossbars is a :class:`CrossbarLinear` or
:class:`CrossbarConv2d`. Each holds an optional ``backend``: a callable
``backend(layer, x) -> y`` that replaces the digital matmul. The Monte-Carlo
simulator, pre-activation noise, HA-SGD weight perturbation and the S-DDHR
stochastic forward are all backends, so they share the same unrolling code
(im2col for convolutions, bias folded as an extra input row) and therefore the
same idea of which weights sit on which rows and columns as the Mapping.

Chip instances are folded into the batch dimension: a backend that simulates
``S`` instances receives ``x`` of shape ``(S*B, ...)`` and reshapes it itself.
Elementwise layers between crossbars (ReLU, pooling, flatten) are unaware.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

Backend = Callable[["CrossbarMixin", torch.Tensor], torch.Tensor]


class SignSTE(torch.autograd.Function):
    """sign(x) forward, straight-through (clipped identity) backward — BinaryNet."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    return SignSTE.apply(x)


class SignActivation(nn.Module):
    """Binary activation (±1) with straight-through gradient, for BNNs on MRAM (seed 000)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x)


class CrossbarMixin:
    """Shared behaviour of crossbar layers (see module docstring)."""

    backend: Backend | None
    #: binarized weights (±1), as in seed 000's MRAM BNN
    binary: bool
    #: per-layer weight precision set by BSQ (None: use the design's hw.weight_bits)
    weight_bits: int | None

    def _init_crossbar(self, binary: bool) -> None:
        self.backend = None
        self.binary = binary
        self.weight_bits = None

    # -- weights as the crossbar sees them ------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """Weight tensor in its module shape after binarization (if any)."""
        w = self.weight  # type: ignore[attr-defined]
        return sign_ste(w) if self.binary else w

    def matrix(self) -> torch.Tensor:
        """Unrolled weights, shape (K, N): K crossbar rows (inputs), N columns (outputs).

        Convolutions are unrolled im2col-style: row index = (c_in, kh, kw).
        The bias is *not* included; see :meth:`bias_vector`.
        """
        w = self.effective_weight()
        return w.reshape(w.shape[0], -1).t()

    def bias_vector(self) -> torch.Tensor | None:
        return self.bias  # type: ignore[attr-defined,no-any-return]

    # -- unrolling of inputs/outputs ----------------------------------------------
    def to_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Input -> (M, K) matrix of crossbar input vectors, and a shape token for :meth:`from_rows`."""
        raise NotImplementedError

    def from_rows(self, y: torch.Tensor, token: tuple[int, ...]) -> torch.Tensor:
        """(M, N) crossbar outputs -> the layer's output tensor shape."""
        raise NotImplementedError

    def digital(self, x: torch.Tensor) -> torch.Tensor:
        """Exact digital result (no backend)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend is not None:
            return self.backend(self, x)
        return self.digital(x)


class CrossbarLinear(CrossbarMixin, nn.Linear):
    """``nn.Linear`` mapped onto crossbars (K = in_features rows, N = out_features columns)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, binary: bool = False
    ):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_crossbar(binary)

    def to_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        lead = tuple(x.shape[:-1])
        return x.reshape(-1, x.shape[-1]), lead

    def from_rows(self, y: torch.Tensor, token: tuple[int, ...]) -> torch.Tensor:
        return y.reshape(*token, y.shape[-1])

    def digital(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


class CrossbarConv2d(CrossbarMixin, nn.Conv2d):
    """``nn.Conv2d`` unrolled im2col-style: K = C_in·kh·kw rows, N = C_out columns."""

    def __init__(self, *args, binary: bool = False, **kwargs):
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_crossbar(binary)

    def to_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        n, _, h, w = x.shape
        cols = F.unfold(
            x, self.kernel_size, dilation=self.dilation, padding=self.padding, stride=self.stride
        )  # (n, K, L)
        kh, kw = self.kernel_size  # type: ignore[misc]
        ph, pw = self.padding  # type: ignore[misc]
        sh, sw = self.stride
        dh, dw = self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return cols.transpose(1, 2).reshape(-1, cols.shape[1]), (n, oh, ow)

    def from_rows(self, y: torch.Tensor, token: tuple[int, ...]) -> torch.Tensor:
        n, oh, ow = token
        return y.reshape(n, oh, ow, -1).permute(0, 3, 1, 2)

    def digital(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


def crossbar_layers(model: nn.Module) -> list[tuple[str, CrossbarMixin]]:
    """All crossbar layers of ``model`` in forward-definition order, with their names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, CrossbarMixin)]


@contextlib.contextmanager
def use_backend(model: nn.Module, backend: Backend | dict[str, Backend] | None) -> Iterator[None]:
    """Temporarily install ``backend`` on every crossbar layer (or per layer name)."""
    layers = crossbar_layers(model)
    saved = [layer.backend for _, layer in layers]
    try:
        for name, layer in layers:
            layer.backend = backend.get(name) if isinstance(backend, dict) else backend
        yield
    finally:
        for (_, layer), old in zip(layers, saved, strict=True):
            layer.backend = old

"""Noise-injection crossbar backends used while training (and for quick noisy checks).

Every backend follows the ``backend(layer, x) -> y`` contract of ``layers.py``:
it unrolls ``x`` into crossbar rows with ``layer.to_rows``, computes the column
outputs, and folds them back with ``layer.from_rows``.

* :class:`PreactNoise` — seed 002 (Sandia): Gaussian noise added to the
  pre-activation of every crossbar layer.
* :class:`WeightNoise` — seed 001 (HA-SGD) and seed 000 (DDHR / fixed instance):
  additive weight perturbation W̃+ν, ν ~ N(μ·range, (σ·range)²), with *G independent
  weight instances* applied to G groups of the batch in one ``torch.bmm``
  (G = L for HA-SGD's folded copies, G = B for a chip instance per sample).
* :func:`adc_quantize` — a low-resolution ADC on each layer's output (seed 001 Fig. 9),
  straight-through in the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..layers import CrossbarMixin, use_backend


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """Standard normals shaped ``shape`` on ``like``'s device and dtype.

    The seeded CPU generator is used on CPU (bit-reproducible runs); on an accelerator
    the draw is made there (seeded by ``torch.manual_seed``) to avoid a host copy.
    """
    if generator is not None and like.device == generator.device:
        return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)
    return torch.randn(shape, dtype=like.dtype, device=like.device)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (straight-through estimator)."""
    return _RoundSTE.apply(x)


def adc_quantize(y: torch.Tensor, bits: int, groups: int = 1) -> torch.Tensor:
    """Quantize column outputs to a signed ``bits``-bit ADC code, straight-through.

    Full scale is calibrated to max|y| of each group (a chip instance / folded copy)
    — the usual range calibration of a CIM ADC — so the step is
    Δ = max|y| / 2^(bits-1). Values are clipped to the signed code range.
    """
    shape = y.shape
    yg = y.reshape(groups, -1)
    full = yg.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    half = 2 ** (bits - 1)
    step = full / half
    q = torch.clamp(round_ste(yg / step), -half, half - 1) * step
    return q.reshape(shape)


def augmented_matrix(layer: CrossbarMixin) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(K', N) crossbar matrix with the bias folded in as an extra row, and the row input s.

    Seed 001 ("Matching the range of W and b", Fig. 5): x_out = [W b/s][x; s]; s is chosen
    so that b/s spans the same range as W, so the bias uses the device's full dynamic range
    and sees the same relative programming noise as the weights.
    """
    w = layer.matrix()
    b = layer.bias_vector()
    if b is None:
        return w, None
    wmax = w.detach().abs().max().clamp_min(1e-12)
    bmax = b.detach().abs().max()
    s = (bmax / wmax).clamp_min(1e-6) if bmax > 0 else torch.ones((), device=w.device)
    return torch.cat([w, (b / s).unsqueeze(0)], dim=0), s


def weight_range(w: torch.Tensor) -> torch.Tensor:
    """W_max - W_min of a crossbar matrix (detached): the device dynamic range in weight units."""
    w = w.detach()
    return (w.max() - w.min()).clamp_min(1e-12)


class WeightNoise:
    """Additive weight perturbation with ``groups`` independent instances per forward.

    ``groups=None`` gives each leading-dim sample of the layer input its own instance
    (seed 000's DDHR: a fresh chip z_i per training sample); an int G splits the rows
    into G copy-major groups (HA-SGD's L folded copies, or S chip instances at test time).
    The standard-normal draw of each layer is kept until :meth:`resample` (the training
    loop calls it every step), so every read of a layer within one forward sees the same
    instance. ``fixed=True`` ignores :meth:`resample`: static programming noise — seed
    000's L_Fixed trains on one instance z_0 (groups=1), and a test over S static chips
    uses groups=S. Draws are scaled by the current weight range.
    """

    def __init__(
        self,
        sigma: float,
        mean_shift: float = 0.0,
        groups: int | None = None,
        adc_bits: int | None = None,
        fixed: bool = False,
        generator: torch.Generator | None = None,
    ):
        if sigma < 0:
            raise ValueError(f"WeightNoise: sigma={sigma} must be >= 0")
        if groups is not None and groups < 1:
            raise ValueError(f"WeightNoise: groups={groups} must be >= 1 or None (per sample)")
        self.sigma = float(sigma)
        self.mean_shift = float(mean_shift)
        self.groups = groups
        self.adc_bits = adc_bits
        self.fixed = fixed
        self.generator = generator
        self._draws: dict[int, torch.Tensor] = {}

    def resample(self) -> None:
        """Start a new chip instance (per step); a ``fixed`` backend keeps its instance."""
        if not self.fixed:
            self._draws.clear()

    def _standard_normal(self, layer: CrossbarMixin, shape: tuple[int, ...], w: torch.Tensor):
        # One draw per layer until resample(): a layer read several times in one forward
        # (the RNN's recurrent crossbar) keeps the same programmed weights.
        key = id(layer)
        z = self._draws.get(key)
        if z is None or z.shape != shape:
            z = randn(shape, self.generator, w)
            self._draws[key] = z
        return z

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        rows, token = layer.to_rows(x)
        groups = x.shape[0] if self.groups is None else self.groups
        if rows.shape[0] % groups:
            raise ValueError(
                f"WeightNoise: {rows.shape[0]} crossbar input rows do not split into {groups} groups"
            )
        w, s = augmented_matrix(layer)
        if s is not None:
            rows = torch.cat([rows, s.expand(rows.shape[0], 1).to(rows)], dim=1)
        rng = weight_range(w)
        k, n = w.shape
        z = self._standard_normal(layer, (groups, k, n), w)
        nu = (self.mean_shift + self.sigma * z) * rng
        nz = w.detach() != 0
        live = nz.any(1, keepdim=True) & nz.any(0, keepdim=True)
        if not bool(live.all()):
            # pruned (all-zero) rows/columns are not programmed (mapping.py): no noise there
            nu = nu * live.to(nu.dtype)
        w_inst = w.unsqueeze(0) + nu
        y = torch.bmm(rows.reshape(groups, -1, k), w_inst).reshape(-1, n)
        if self.adc_bits is not None:
            y = adc_quantize(y, self.adc_bits, groups)
        return layer.from_rows(y, token)


class PreactNoise:
    """Gaussian noise at the pre-activation (seed 002), sigma_neu per layer.

    ``sigma_neu`` fixed: that absolute level at every layer (Sandia's "level 0.1").
    Otherwise ``sigma_syn`` is converted per layer and step with Sandia's equivalence
    σ_neu = σ_syn·(W_max−W_min)·√n·γ_act, where n is the fan-in (crossbar rows incl. the
    folded bias row) and γ_act the RMS input activation of the current mini-batch. Why
    RMS: for y_j = Σ_i ν_ij x_i with iid ν ~ N(0, (σ_syn·range)²), Var y_j =
    (σ_syn·range)²·Σ_i x_i² = (σ_syn·range)²·n·mean(x²), so γ_act = sqrt(mean x²) makes
    the formula exact on average over the batch (one scalar per layer, as in seed 002).

    γ_act is *not* detached: σ_neu is a function of the activations, and keeping its
    pathwise gradient (y = Wx + σ_neu(x)·ε) lets training shrink the activation energy
    that synaptic noise feeds on. Measured on digits (MLP, σ_syn = 0.1, tested under
    static weight noise): with the gradient 0.80 vs 0.75 for ideal training; with γ_act
    detached the injected noise did not help (0.71).
    """

    def __init__(
        self,
        sigma_syn: float | None = None,
        sigma_neu: float | None = None,
        generator: torch.Generator | None = None,
    ):
        if (sigma_syn is None) == (sigma_neu is None):
            raise ValueError("PreactNoise: give exactly one of sigma_syn and sigma_neu")
        self.sigma_syn = sigma_syn
        self.sigma_neu = sigma_neu
        self.generator = generator
        #: last sigma_neu used per layer (for inspection / tests)
        self.last_sigma: dict[int, float] = {}

    def layer_sigma(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        if self.sigma_neu is not None:
            return torch.tensor(self.sigma_neu, dtype=x.dtype, device=x.device)
        w, s = augmented_matrix(layer)
        k = layer.matrix().shape[0]
        # γ_act² from the layer input itself (no im2col needed: for a convolution the
        # unfolded rows hold the same activations, up to the zero padding); the folded
        # bias row adds its input s² to the mean square over the n = K + 1 rows.
        ms = x.pow(2).mean() * k
        if s is not None:
            ms = ms + s.detach() ** 2
        gamma_act = (ms / w.shape[0]).sqrt()
        return self.sigma_syn * weight_range(w) * (w.shape[0] ** 0.5) * gamma_act

    def __call__(self, layer: CrossbarMixin, x: torch.Tensor) -> torch.Tensor:
        y = layer.digital(x)
        sigma = self.layer_sigma(layer, x)
        self.last_sigma[id(layer)] = float(sigma.detach())
        return y + sigma * randn(y.shape, self.generator, y)


@torch.no_grad()
def noisy_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    make_backend: Callable[[int], Callable],
    instances: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """Accuracy of each of ``instances`` noisy instances (vectorized: folded into the batch).

    ``make_backend(G)`` returns a backend simulating G instances on G copy-major groups
    (e.g. ``lambda g: WeightNoise(0.1, groups=g)``). A quick check of the training noise
    model itself; deployment accuracy comes from ``evaluators.cim.simulator``. The backend
    is never resampled here, so the same G instances (static programming noise) serve
    every batch of ``x``.
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    backend = make_backend(instances)
    correct = torch.zeros(instances)
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(dev)
        with use_backend(model, backend):
            logits = model(xb.repeat(instances, *([1] * (xb.dim() - 1))))
        pred = logits.argmax(-1).reshape(instances, -1).cpu()
        correct += (pred == y[i : i + batch_size].unsqueeze(0)).sum(1)
    model.train(was_training)
    return correct / len(x)

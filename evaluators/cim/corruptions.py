"""Test-set noise ("external" noise) added on top of the chip's internal noise.

Seed 002 (Sandia, time-multiplexed RNNs on NVM crossbars, "Test-set noise")
corrupts the *test images* three ways and sweeps the level:

* Gaussian: ``x + N(0, σ)`` — additive, the most information lost;
* speckle: ``x + x·N(0, σ)`` — multiplicative (scikit-image ``random_noise``
  'speckle' definition), less information lost;
* salt & pepper: a fraction ``amount`` of the pixels pushed to the min/max
  value (scikit-image ``random_noise`` 's&p', salt_vs_pepper = 0.5) — local loss.

All results are clipped to [0, 1], the input range of every dataset here
(``random_noise(clip=True)`` does the same). Noise is drawn from a private
seeded generator so a corruption is reproducible and leaves global RNGs alone.
"""

from __future__ import annotations

import torch

CORRUPTIONS = ("none", "gaussian", "speckle", "salt_pepper")


class CorruptionError(ValueError):
    """Unknown corruption kind or a level outside its range."""


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def gaussian(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Additive Gaussian noise ``x + N(0, sigma)``, clipped to [0, 1]."""
    noise = torch.randn(x.shape, generator=_generator(seed), dtype=torch.float32)
    return (x + sigma * noise.to(x)).clamp(0.0, 1.0)


def speckle(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Multiplicative speckle ``x + x·N(0, sigma)``, clipped to [0, 1]."""
    noise = torch.randn(x.shape, generator=_generator(seed), dtype=torch.float32)
    return (x + x * sigma * noise.to(x)).clamp(0.0, 1.0)


def salt_pepper(
    x: torch.Tensor, amount: float, seed: int = 0, salt_vs_pepper: float = 0.5
) -> torch.Tensor:
    """Each pixel replaced with probability ``amount``: by 1 (salt) or 0 (pepper), 50/50."""
    g = _generator(seed)
    hit = torch.rand(x.shape, generator=g) < amount
    salt = torch.rand(x.shape, generator=g) < salt_vs_pepper
    out = x.clone()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


def corrupt(x: torch.Tensor, kind: str, level: float, seed: int = 0) -> torch.Tensor:
    """Apply corruption ``kind`` at ``level`` (σ for gaussian/speckle, fraction for salt_pepper)."""
    if kind not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {kind!r}; allowed: {', '.join(CORRUPTIONS)}")
    level = float(level)
    if kind == "none" or level == 0.0:
        return x
    if level < 0.0 or (kind == "salt_pepper" and level > 1.0):
        allowed = "[0, 1]" if kind == "salt_pepper" else ">= 0"
        raise CorruptionError(f"corruption level for {kind!r} must be {allowed}, got {level}")
    if kind == "gaussian":
        return gaussian(x, level, seed)
    if kind == "speckle":
        return speckle(x, level, seed)
    return salt_pepper(x, level, seed)

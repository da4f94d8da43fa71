"""Cache-blocked, thread-parallel kernels of the Monte-Carlo crossbar simulator.

No physics is decided here: :mod:`.simulator` says *what* a tile read is (programmed
conductances, read-noise std, ADC range); these functions only do it fast. Why they look
the way they do (measured on the 2-core project machine):

* The work of one layer is a few large batched products (instances in the batch dim,
  input bit planes in the row dim, weight slices in the column dim: one ``bmm`` per row
  tile) followed by cheap elementwise passes (read noise, ADC round/clamp, shift-and-add).
  Those passes cost little *only* while their operand stays in cache; over a 300 MB
  tensor they run at DRAM speed and dominate. So every layer call is cut into blocks of
  about ``block_elems`` partial sums and each block runs all passes before the next.
* Blocks are independent, so they run on a pool of worker threads, each running torch
  ops single-threaded (:func:`run_blocks`). Fine-grained intra-op threading of many
  small elementwise ops costs a barrier per op; on a shared, loaded machine a descheduled
  thread stalls every barrier (measured: 9 vs 62 instances/s). Coarse blocks do not care.
* Gaussian noise was the single largest cost (torch's CPU normal_ walks one Mersenne
  Twister stream, ~2.6-4.4 ns per draw, more than the matmul for a 65-row tile). Noise
  now comes from :mod:`.native_rng`: 64 xoshiro128++ generators side by side plus
  Box-Muller, compiled and vectorised (~0.36 ns per draw); each modelled unit (an
  instance's row tile, an instance's group of test samples) has its own stream, keyed by
  :func:`native_rng.unit_stream`, and blocks are unions of whole units, so draws
  parallelise and results depend neither on threads and scheduling nor on the block
  decomposition.
* Read noise and the ADC are one fused pass over the product of a tile
  (:meth:`NoiseStream.read_adc_`: z ← round(clamp((z + σ_r·N) / step, lo, hi))), instead
  of five tensor passes (draw, scale, accumulate, divide, clamp, round). The ADC step is
  applied once to the layer output. Partial sums stay in level units, so noise-free ones
  are exact integers and round exactly as a naive implementation would (clamping to
  integer bounds before rounding equals rounding first).
* Shift-and-add over bit planes is a tiny batched GEMV with the ±2^b plane weights that
  also accumulates over row tiles; over weight slices it runs once per block
  (:func:`combine_slices`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from .native_rng import NoiseStream, block_stream

__all__ = [
    "block_stream",
    "run_blocks",
    "scratch",
    "block_shape",
    "input_planes",
    "tile_reads",
    "combine_slices",
]

#: a stream for ADC-only passes (read_adc_ without read noise draws nothing)
_NO_NOISE = NoiseStream(0)
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)
_pool_lock = threading.Lock()
_tls = threading.local()


def _single_thread_worker() -> None:
    torch.set_num_threads(1)  # per-thread setting (OpenMP ICV); the caller keeps its own


def run_blocks(fn: Callable[[int], object], n_blocks: int, workers: int) -> None:
    """Run ``fn(0) … fn(n_blocks − 1)`` on ``workers`` single-threaded worker threads.

    torch ops release the GIL, so blocks run truly in parallel. Exceptions propagate.
    """
    global _pool, _pool_key
    if workers <= 1 or n_blocks <= 1:
        for j in range(n_blocks):
            fn(j)
        return
    key = (workers, os.getpid())  # a forked child inherits the object, not the threads
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None and _pool_key[1] == key[1]:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(
                workers, thread_name_prefix="cim-sim", initializer=_single_thread_worker
            )
            _pool_key = key
        pool = _pool
    for _ in pool.map(fn, range(n_blocks)):
        pass


def scratch(
    name: str, n: int, like: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """A per-thread reusable flat buffer of ≥ n elements (no allocation per block)."""
    dtype = dtype or like.dtype
    bufs = getattr(_tls, "bufs", None)
    if bufs is None:
        bufs = _tls.bufs = {}
    key = (name, dtype, like.device)
    b = bufs.get(key)
    if b is None or b.numel() < n:
        b = bufs[key] = torch.empty(max(n, 1), dtype=dtype, device=like.device)
    return b[:n]


def block_shape(
    instances: int, planes: int, samples: int, width: int, block_elems: int, min_blocks: int = 1
) -> tuple[int, int]:
    """(instances, samples) per block so that ``instances·planes·samples·width ≤ block_elems``.

    Whole sample sets first (fewer, larger GEMMs); at least one instance and one sample;
    split further (instances, then samples) until there are ``min_blocks`` blocks.
    """
    rows = max(1, block_elems // max(1, width))
    if planes * samples <= rows:
        sb, mb = max(1, min(instances, rows // (planes * samples))), samples
    else:
        sb, mb = 1, max(1, min(samples, rows // planes))
    if math.ceil(instances / sb) * math.ceil(samples / mb) < min_blocks:
        sb = max(1, instances // min_blocks)
        per_inst = math.ceil(min_blocks / math.ceil(instances / sb))
        if per_inst > 1:
            mb = max(1, math.ceil(samples / per_inst))
    return sb, mb


def input_planes(
    codes: torch.Tensor, nbits: int, kind: str, interleave: bool, out: torch.Tensor
) -> torch.Tensor:
    """Crossbar read cycles of integer input codes, written into ``out``.

    ``codes`` (sb, mb, K) holds integers. ``kind``:

    * ``"dac"``: one cycle carrying the code itself (P = 1);
    * ``"unsigned"``: P = nbits one-bit cycles of the (non-negative) code;
    * ``"signed"``: P = 2·nbits: bits of max(code, 0), then bits of max(−code, 0) (the
      caller weights the second half −2^b);
    * ``"routed"``: P = nbits cycles of |code|'s bits, the sign choosing the word line.

    ``interleave`` (complementary MRAM units): row 2r carries x⁺ (WL_r), row 2r+1 x⁻
    (WL̄_r), matching the interleaved [G_A; G_B] conductance rows.
    Returns ``out`` viewed as (sb, P·mb, K·(1 + interleave)), rows ordered (plane, sample).
    """
    sb, mb, k = codes.shape
    if kind == "dac":
        if interleave:
            o = out.view(sb, mb, k, 2)
            torch.clamp(codes, min=0, out=o[..., 0])
            torch.clamp(codes.neg(), min=0, out=o[..., 1])
        else:
            out.view(sb, mb, k).copy_(codes)
        return out.view(sb, mb, -1)
    n = codes.numel()
    pos = scratch("pos", n, codes, torch.int32).view(sb, mb, k)
    pos.copy_(codes.clamp(min=0))
    neg = None
    if kind != "unsigned":
        neg = scratch("neg", n, codes, torch.int32).view(sb, mb, k)
        neg.copy_(codes.neg().clamp_(min=0))
    bit = scratch("bit", n, codes, torch.int32).view(sb, mb, k)
    p = nbits * (2 if kind == "signed" else 1)
    if interleave:
        o = out.view(sb, p, mb, k, 2)
        dst_pos = lambda j: o[:, j, :, :, 0]  # noqa: E731
        dst_neg = lambda j: o[:, j, :, :, 1]  # noqa: E731
    else:
        o = out.view(sb, p, mb, k)
        dst_pos = lambda j: o[:, j]  # noqa: E731
        dst_neg = lambda j: o[:, nbits + j] if kind == "signed" else o[:, j]  # noqa: E731
    for j in range(nbits):
        torch.bitwise_right_shift(pos, j, out=bit)
        dst_pos(j).copy_(bit.bitwise_and_(1))
        if neg is not None:
            torch.bitwise_right_shift(neg, j, out=bit)
            dst_neg(j).copy_(bit.bitwise_and_(1))
    return out.view(sb, p * mb, -1)


def tile_reads(
    x: torch.Tensor,
    weights: list[torch.Tensor],
    row_ranges: list[tuple[int, int]],
    plane_w: torch.Tensor | None,
    read_std: float,
    gen: NoiseStream | list[NoiseStream] | None,
    adc: tuple[float, float, float] | str | None,
    z: torch.Tensor,
    acc: torch.Tensor,
    calib: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """All row tiles of one block: product, read noise, ADC, shift-and-add over planes/tiles.

    ``x`` (sb, P·mb, K) input cycles; ``weights[t]`` (sb, K_t, C) tile t's programmed
    conductances for rows ``row_ranges[t]`` of ``x``; ``plane_w`` (P,) the cycles'
    digital weights (None: one cycle of weight 1). Read noise: each output gets
    N(0, (read_std·‖x_tile‖)²) from ``gen`` — one stream, or one per instance of the
    block (``gen[i]`` for instance i) — one sub-stream per tile, laid out like the
    (sb, P·mb, C) partial sums (per instance: (P·mb, C)). ``adc``: (step, lo, hi) with integer codes lo..hi,
    ``"sign"`` (1-bit comparator → ±1) or None (no ADC). ``z`` (≥ sb·P·mb·C elements)
    and ``acc`` (≥ sb·mb·C) are scratch; returns acc viewed (sb, mb, C) =
    Σ_t Σ_p w_p·ADC(psum). ``calib`` collects |psum| before the ADC (range calibration).
    """
    sb, pm, _ = x.shape
    c = weights[0].shape[-1]
    p = 1 if plane_w is None else plane_w.numel()
    mb = pm // p
    out = acc[: sb * mb * c].view(sb, 1, mb * c)
    pw = None if plane_w is None else plane_w.view(1, 1, p).expand(sb, 1, p)
    for t, ((r0, r1), g) in enumerate(zip(row_ranges, weights, strict=True)):
        xt = x[:, :, r0:r1]
        # one cycle: tile 0 is read straight into the accumulator (no copy)
        zb = out.view(sb, pm, c) if pw is None and t == 0 else z[: sb * pm * c].view(sb, pm, c)
        torch.bmm(xt, g, out=zb)
        row_std = None
        if read_std > 0:
            row_std = torch.linalg.vector_norm(xt, dim=-1).mul_(read_std).reshape(-1)
        if calib is not None:
            calib.append(zb.abs().flatten())
        level = None if adc == "sign" else adc
        if row_std is not None and isinstance(gen, list | tuple):
            rs = row_std.view(sb, pm)
            for i, gi in enumerate(gen):
                gi.read_adc_(zb[i], rs[i], level)
        elif row_std is not None or level is not None:
            (gen or _NO_NOISE).read_adc_(zb.view(sb * pm, c), row_std, level)
        if adc == "sign":
            zb.copy_(torch.where(zb >= 0, 1.0, -1.0))
        if pw is None:
            if t > 0:
                out.view(sb, pm * c).add_(zb.view(sb, pm * c))
        elif t == 0:
            torch.bmm(pw, zb.view(sb, p, mb * c), out=out)
        else:
            out.baddbmm_(pw, zb.view(sb, p, mb * c))
    return out.view(sb, mb, c)


def combine_slices(acc: torch.Tensor, slice_w: list[float], out: torch.Tensor) -> None:
    """out (sb, mb, N) = Σ_k slice_w[k]·acc[..., k·N:(k+1)·N] (shift-and-add over slices)."""
    n = out.shape[-1]
    torch.mul(acc[..., :n], slice_w[0], out=out)
    for k in range(1, len(slice_w)):
        out.add_(acc[..., k * n : (k + 1) * n], alpha=slice_w[k])

"""Noise streams of the simulator: a compiled vectorised generator, torch fallback.

Why: Gaussian draws were over half of the Monte-Carlo simulation time (torch's CPU
``normal_`` walks one Mersenne Twister stream element by element). ``native/cim_noise.c``
runs 64 xoshiro128++ generators side by side + Box-Muller in plain float32 arithmetic,
vectorised (~0.36 ns per Gaussian per core vs ~2.6-4.4 ns), plus fused kernels for the
two hottest passes (read noise + ADC of a block of partial sums; programming a
differential pair with clipping at G = 0). Every draw is a sub-stream (key, stream): its
numbers depend on nothing else, and are the same bits on every CPU.

The C file is compiled on first use with the system C compiler (``$CC``, else ``cc``)
into a per-user cache (``$CIM_DSE_NATIVE_DIR``, else ``$XDG_CACHE_HOME/cim-dse/native``),
keyed by the source, the compiler and the CPU's flags (``-march=native``: a cache shared
by different machines keeps one build per CPU type). It has no Python headers, so no
build step at install time and no torch ABI coupling; ctypes releases the GIL during
each call, so the simulator's worker threads draw in parallel. CPU targets that are not
contiguous float32 get the same numbers through a float32 buffer.

Paths (:func:`resolve_path`): ``"native"`` draws every number with the kernel — on CUDA
tensors too, through a host buffer, so a seed gives the same chips on CPU and GPU — and
raises :class:`NativeUnavailable` when the kernel cannot be built; ``"torch"`` draws from
``torch.Generator``s seeded from the same (key, stream) pair, the fused kernels running as
torch ops on those draws; ``"auto"`` (the default of a bare :class:`NoiseStream`) is the
kernel when it builds, else torch with a warning. Both paths sample the same
distributions and a seed reproduces exactly on a given path; the two paths give
different samples, so the evaluator records which one ran (its ``noise_rng`` option is part
of every ``design_id``) and never switches silently.

Keys: :func:`unit_stream` folds any tuple of integers (seed, layer, instance, tile, …) into
one stream key, so the simulator can key noise by what it models, not by how the work
is cut into blocks (issue 12 item 8).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import platform
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

_SRC = Path(__file__).resolve().parent / "native" / "cim_noise.c"
#: -ffp-contract=off and no -ffast-math: the kernel's float32 arithmetic is plain IEEE
#: (no FMA contraction, no reassociation, no vendor math library), so a seed gives the
#: same numbers on every CPU and vector width; -march=native only widens the vectors.
_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
_MASK64 = (1 << 64) - 1


def _cpu_signature() -> str:
    """CPU model + feature flags (``-march=native`` binaries are only valid on those)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    if os.environ.get("CIM_DSE_NATIVE_DIR"):
        return Path(os.environ["CIM_DSE_NATIVE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cim-dse" / "native"


def _compile(cc: str, src: Path, dst: Path) -> None:
    """Compile ``src`` to ``dst`` atomically (concurrent builders each write a temp file)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        subprocess.run(
            [cc, *_FLAGS, str(src), "-o", tmp, "-lm"],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    vp, i64, u64, f32, i32 = (
        ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_float, ctypes.c_int,
    )  # fmt: skip
    lib.cim_words_u32.argtypes = [vp, i64, u64, u64]
    lib.cim_normal_f32.argtypes = [vp, i64, u64, u64, f32, f32]
    lib.cim_uniform_f32.argtypes = [vp, i64, u64, u64]
    lib.cim_read_adc_f32.argtypes = [vp, i64, i64, vp, i32, f32, f32, f32, u64, u64]
    lib.cim_program_pairs_f32.argtypes = [vp, vp, vp, i64, i64, f32, f32, u64, u64]
    lib.cim_program_pairs_combined_f32.argtypes = [
        vp, vp, vp, i64, i64, i64, vp, f32, f32, vp, u64, u64,
    ]  # fmt: skip
    for fn in (
        lib.cim_words_u32, lib.cim_normal_f32, lib.cim_uniform_f32,
        lib.cim_read_adc_f32, lib.cim_program_pairs_f32, lib.cim_program_pairs_combined_f32,
    ):  # fmt: skip
        fn.restype = None
    return lib


@functools.lru_cache(maxsize=1)
def load_library() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; None if unavailable."""
    if os.environ.get("CIM_DSE_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    cc = os.environ.get("CC", "cc")
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
        h = hashlib.sha256()
        for part in (_SRC.read_bytes(), " ".join(_FLAGS).encode(), version.encode()):
            h.update(part)
        h.update(_cpu_signature().encode())
        so = _cache_dir() / f"cim_noise-{h.hexdigest()[:16]}.so"
        if not so.exists():
            _compile(cc, _SRC, so)
        return _declare(ctypes.CDLL(str(so)))
    except (OSError, subprocess.SubprocessError, AttributeError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        warnings.warn(
            f"cim-dse: native noise kernel unavailable ({cc}: {detail.strip()[:300]}); "
            "the simulator uses torch's generators instead (same distributions, slower, "
            "different samples). Set CC to a C compiler, or CIM_DSE_NATIVE=0 to silence.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def native_available() -> bool:
    return load_library() is not None


#: the values of ``SimOptions.rng`` / the evaluator's ``noise_rng`` option
PATHS = ("auto", "native", "torch")


class NativeUnavailable(RuntimeError):
    """The native noise path was asked for and the kernel cannot be built here."""


def resolve_path(path: str) -> str:
    """``"native"`` or ``"torch"``: the noise path that ``path`` runs on this machine.

    ``"native"`` raises :class:`NativeUnavailable` (with how to fix it) instead of falling
    back, so a study never draws other chips under the same ``design_id``.
    """
    if path not in PATHS:
        raise ValueError(f"noise path {path!r} is unknown; allowed: {', '.join(PATHS)}")
    if path == "torch":
        return "torch"
    if load_library() is not None:
        return "native"
    if path == "native":
        raise NativeUnavailable(
            "cim-dse: the native noise kernel (evaluators/cim/native/cim_noise.c) could not "
            f"be built with {os.environ.get('CC', 'cc')!r} (or CIM_DSE_NATIVE=0 is set), and "
            "this run asked for the native noise path. Install a C compiler (or set CC), or "
            "choose the torch generators explicitly with the evaluator option "
            "`noise_rng: torch` (other chips for the same seed, so other design ids)."
        )
    return "torch"


def native_words(n: int, key: int, stream: int) -> list[int]:
    """The first ``n`` raw 32-bit words of sub-stream (key, stream) (for reference tests)."""
    lib = load_library()
    if lib is None:
        raise RuntimeError("native noise kernel unavailable")
    out = (ctypes.c_uint32 * n)()
    lib.cim_words_u32(out, n, key & _MASK64, stream & _MASK64)
    return list(out)


def reference_words(n: int, key: int, stream: int, lanes: int = 64) -> list[int]:
    """Pure-Python xoshiro128++ lanes, as ``native/cim_noise.c`` documents them.

    Lane l's state: SplitMix64 started at key ^ splitmix64(stream), two outputs per lane
    in lane order (low word first); word j·lanes + l of each block of 4·lanes is the
    j-th next output of lane l (Blackman & Vigna's reference ``next()``).
    """
    m32 = 0xFFFFFFFF
    sm = (key ^ _splitmix64(stream & _MASK64)) & _MASK64
    state = []
    for _ in range(lanes):
        words = []
        for _ in range(2):
            sm = (sm + 0x9E3779B97F4A7C15) & _MASK64
            z = _splitmix64_mix(sm)
            words += [z & m32, z >> 32]
        if not any(words):
            words[0] = 1
        state.append(words)

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m32

    out: list[int] = []
    while len(out) < n:
        block = [0] * (4 * lanes)
        for j in range(4):
            for lane, st in enumerate(state):
                a, b, c, d = st
                block[j * lanes + lane] = (rotl((a + d) & m32, 7) + a) & m32
                t = (b << 9) & m32
                c ^= a
                d ^= b
                b ^= c
                a ^= d
                c ^= t
                d = rotl(d, 11)
                st[:] = [a, b, c, d]
        out += block
    return out[:n]


def reference_normals(n: int, key: int, stream: int, lanes: int = 64) -> np.ndarray:
    """NumPy float32 replica of the kernel's Box-Muller (``normal_block`` in the C file).

    Same operations in the same order, each an IEEE float32 operation, so it must equal
    the kernel bit for bit — which also pins the kernel's results across CPUs.
    """
    f = np.float32
    words = np.array(reference_words(-(-n // (4 * lanes)) * 4 * lanes, key, stream), np.uint32)
    out = []
    for blk in words.reshape(-1, 4 * lanes):
        u1 = ((blk[: 2 * lanes] >> 8).astype(f) + f(0.5)) * f(1.0 / 16777216.0)
        a = blk[2 * lanes :]
        q = a >> 30
        phi = (((a >> 8) & 0x3FFFFF).astype(f) + f(0.5)) * (f(math.pi / 2) / f(4194304.0))
        p2 = phi * phi
        sn = p2 * (f(-1.0) / f(39916800.0)) + f(1.0) / f(362880.0)
        for c in (-5040.0, 120.0, -6.0):
            sn = sn * p2 + f(1.0) / f(c)
        sn = (sn * p2 + f(1.0)) * phi
        cs = p2 * (f(1.0) / f(479001600.0)) + f(-1.0) / f(3628800.0)
        for c in (40320.0, -720.0, 24.0, -2.0):
            cs = cs * p2 + f(1.0) / f(c)
        cs = cs * p2 + f(1.0)
        c1 = np.where(q & 1, sn, cs)
        s1 = np.where(q & 1, cs, sn)
        cos_t = np.where((q == 1) | (q == 2), -c1, c1)
        sin_t = np.where(q >= 2, -s1, s1)
        # log_pos(u1)
        b = u1.view(np.uint32)
        e = ((b >> 23).astype(np.int32) - 127).astype(f)
        m = ((b & 0x007FFFFF) | 0x3F800000).view(f)
        big = m > f(1.41421356)
        m = np.where(big, m * f(0.5), m)
        e = np.where(big, e + f(1.0), e)
        t = (m - f(1.0)) / (m + f(1.0))
        t2 = t * t
        p = t2 * (f(1.0) / f(9.0)) + f(1.0) / f(7.0)
        for c in (5.0, 3.0):
            p = p * t2 + f(1.0) / f(c)
        p = p * t2 + f(1.0)
        lg = f(2.0) * t * p + e * f(0.693147180559945)
        rad = np.sqrt(f(-2.0) * lg)
        out += [rad * cos_t, rad * sin_t]
    return np.concatenate(out)[:n]


def _splitmix64_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _splitmix64(x: int) -> int:
    """SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): one step from state ``x``."""
    return _splitmix64_mix((x + 0x9E3779B97F4A7C15) & _MASK64)


def _plain_f32(t: torch.Tensor) -> bool:
    return t.dtype == torch.float32 and t.is_contiguous()


def _native_ok(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and _plain_f32(t)


class NoiseStream:
    """The random numbers of one simulation block.

    Every draw (a fill, a fused kernel call) consumes the next sub-stream of
    (key, 0), (key, 1), …, so results depend only on the key and the order of draws —
    not on threads, scheduling or how a block is split across calls.
    """

    __slots__ = ("key", "device", "_next", "path")

    def __init__(self, key: int, device: torch.device | str = "cpu", path: str = "auto"):
        self.key = int(key) & _MASK64
        self.device = torch.device(device)
        self._next = 0
        #: "auto", "native" (kernel, also for CUDA targets via a host buffer) or "torch"
        self.path = path

    def _lib(self) -> ctypes.CDLL | None:
        if self.path == "torch":
            return None
        lib = load_library()
        if lib is None and self.path == "native":
            resolve_path("native")  # raises with the explanation
        return lib

    def _take(self) -> int:
        s = self._next
        self._next += 1
        return s

    def _torch_gen(self, stream: int, device: torch.device) -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed(_splitmix64(self.key ^ _splitmix64(stream)) >> 1)
        return g

    def _fill(self, t: torch.Tensor, native, fallback) -> None:
        """Fill ``t`` through a contiguous float32 buffer (``t`` itself when it is one).

        ``native(lib, buf)`` calls the kernel on CPU; ``fallback(buf, generator)`` draws
        with torch. Either way a target of any dtype/layout gets a float32 fill's numbers.
        """
        lib = self._lib()
        if lib is not None and t.device.type != "cpu" and self.path == "native":
            # the kernel's numbers on an accelerator: drawn on the host, then copied, so a
            # seed gives the same chips on CPU and GPU
            host = torch.empty(t.shape, dtype=torch.float32)
            native(lib, host)
            t.copy_(host)
            return
        use_native = lib is not None and t.device.type == "cpu"
        buf = t if _plain_f32(t) else torch.empty(t.shape, device=t.device, dtype=torch.float32)
        if use_native:
            native(lib, buf)
        else:
            fallback(buf)
        if buf is not t:
            t.copy_(buf)

    def _normal_into(self, t: torch.Tensor, stream: int, mean: float, std: float) -> None:
        self._fill(
            t,
            lambda lib, b: lib.cim_normal_f32(
                b.data_ptr(), b.numel(), self.key, stream, float(mean), float(std)
            ),
            lambda b: b.normal_(mean, std, generator=self._torch_gen(stream, b.device)),
        )

    def normal_(self, t: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        """Fill ``t`` with N(mean, std²) in place; returns ``t``."""
        self._normal_into(t, self._take(), mean, std)
        return t

    def uniform_(self, t: torch.Tensor) -> torch.Tensor:
        """Fill ``t`` with U[0, 1) in place; returns ``t``."""
        stream = self._take()
        self._fill(
            t,
            lambda lib, b: lib.cim_uniform_f32(b.data_ptr(), b.numel(), self.key, stream),
            lambda b: b.uniform_(generator=self._torch_gen(stream, b.device)),
        )
        return t

    def randn(
        self, shape: tuple[int, ...], device=None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        return self.normal_(torch.empty(shape, device=device or self.device, dtype=dtype))

    def read_adc_(
        self,
        z: torch.Tensor,
        row_std: torch.Tensor | None,
        adc: tuple[float, float, float] | None,
    ) -> torch.Tensor:
        """In place on ``z`` (rows, cols): add N(0, row_std[r]²) per element, then ADC.

        ``adc`` = (step, lo, hi): ``z ← round(clamp(z / step, lo, hi))``. Draws one
        sub-stream (none when ``row_std`` is None).
        """
        rows, cols = z.shape
        stream = self._take() if row_std is not None else 0
        lib = self._lib()
        std_ok = row_std is None or _native_ok(row_std)
        if lib is not None and _native_ok(z) and std_ok:
            step, lo, hi = adc if adc is not None else (1.0, 0.0, 0.0)
            lib.cim_read_adc_f32(
                z.data_ptr(), rows, cols,
                None if row_std is None else row_std.data_ptr(),
                int(adc is not None), step, lo, hi, self.key, stream,
            )  # fmt: skip
            return z
        if row_std is not None:
            noise = torch.empty_like(z)
            self._normal_into(noise, stream, 0.0, 1.0)
            z.addcmul_(noise, row_std.view(rows, 1).to(z.dtype))
        if adc is not None:
            z.div_(adc[0]).clamp_(adc[1], adc[2]).round_()
        return z

    def program_pairs(
        self,
        dst: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        sigma: float,
        scale: float,
    ) -> torch.Tensor:
        """``dst`` (S, …) = scale·(max(0, pos + σN) − max(0, neg + σN')) per instance.

        ``pos``/``neg`` (…) are the target conductances of the G⁺/G⁻ cells (range units);
        N, N' independent per instance and cell. One sub-stream, laid out (S, …, 2).
        """
        stream = self._take()
        inst, n = dst.shape[0], pos.numel()
        lib = self._lib()
        if lib is not None and dst.device.type == "cpu" and dst.dtype == torch.float32:
            pos, neg = pos.contiguous(), neg.contiguous()
            out = (
                dst
                if dst.is_contiguous()
                else torch.empty_like(dst, memory_format=torch.contiguous_format)
            )
            lib.cim_program_pairs_f32(
                out.data_ptr(), pos.data_ptr(), neg.data_ptr(), inst, n,
                float(sigma), float(scale), self.key, stream,
            )  # fmt: skip
            if out is not dst:
                dst.copy_(out)
            return dst
        noise = torch.empty((inst, n, 2), device=dst.device, dtype=dst.dtype)
        self._normal_into(noise, stream, 0.0, 1.0)
        gp = noise[..., 0].mul(sigma).add_(pos.reshape(1, n)).clamp_min_(0.0)
        gn = noise[..., 1].mul(sigma).add_(neg.reshape(1, n)).clamp_min_(0.0)
        dst.copy_(gp.sub_(gn).mul_(scale).view(dst.shape))
        return dst

    def program_pairs_combined(
        self,
        dst: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        slice_w: list[float],
        sigma: float,
        scale: float,
    ) -> torch.Tensor | None:
        """:meth:`program_pairs` of ONE instance, shift-and-added over weight slices.

        ``pos``/``neg`` (K, n_s·N) slice-major targets; ``dst`` (K, N) (or (1, K, N)) =
        Σ_k slice_w[k]·pairs[:, k·N:(k+1)·N], the same numbers as :meth:`program_pairs`
        into a (1, K, n_s·N) buffer followed by :func:`sim_kernels.combine_slices`, without
        that buffer. Draws one sub-stream. Returns None (drawing nothing) where the kernel
        does not apply (no kernel, not CPU float32 contiguous): use the two-step form.
        """
        lib = self._lib()
        ok = (
            lib is not None
            and dst.device.type == "cpu"
            and _plain_f32(dst)
            and _plain_f32(pos)
            and _plain_f32(neg)
        )
        if not ok:
            return None
        stream = self._take()
        rows, width = pos.shape
        n_s = len(slice_w)
        cols = width // n_s
        w = _slice_weights(tuple(float(v) for v in slice_w))
        work = _work_buffer(width)
        lib.cim_program_pairs_combined_f32(
            dst.data_ptr(), pos.data_ptr(), neg.data_ptr(), rows, n_s, cols, w.data_ptr(),
            float(sigma), float(scale), work.data_ptr(), self.key, stream,
        )  # fmt: skip
        return dst


@functools.lru_cache(maxsize=64)
def _slice_weights(slice_w: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(slice_w, dtype=torch.float32)


_work = threading.local()


def _work_buffer(n: int) -> torch.Tensor:
    """A per-thread float32 row buffer of ≥ n elements."""
    b = getattr(_work, "buf", None)
    if b is None or b.numel() < n:
        b = _work.buf = torch.empty(max(n, 1024), dtype=torch.float32)
    return b


def block_stream(
    base_seed: int, block: int, device: torch.device | str = "cpu", path: str = "auto"
) -> NoiseStream:
    """The stream of block ``block`` of a call whose seed is ``base_seed``."""
    return NoiseStream(_splitmix64((base_seed * 0x100000001B3 + block) & _MASK64), device, path)


@functools.lru_cache(maxsize=1 << 16)
def unit_key(*parts: int) -> int:
    """One 64-bit stream key from a tuple of integers (order matters).

    SplitMix64-folded: k ← splitmix64(k ⊕ splitmix64(part)) for each part, so
    (seed, layer, instance, tile) tuples that differ anywhere give unrelated keys.
    """
    k = 0x6A09E667F3BCC909  # any fixed non-zero start (the first SHA-512 IV word)
    for part in parts:
        k = _splitmix64(k ^ _splitmix64(int(part) & _MASK64))
    return k


def unit_stream(*parts: int, device: torch.device | str = "cpu", path: str = "auto") -> NoiseStream:
    """The stream of one modelled unit, e.g. (seed, tag, layer, instance, tile)."""
    return NoiseStream(unit_key(*parts), device, path)


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator | NoiseStream | None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``torch.randn`` that also accepts a :class:`NoiseStream` as the generator."""
    if isinstance(generator, NoiseStream):
        return generator.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)

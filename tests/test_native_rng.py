"""The simulator's noise streams: compiled kernel vs reference, distributions, fallback."""

import math
import os
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from evaluators.cim import native_rng
from evaluators.cim.native_rng import NoiseStream, block_stream

HAVE_CC = shutil.which(os.environ.get("CC", "cc")) is not None


@pytest.fixture(params=["native", "torch"])
def backend(request, monkeypatch):
    """Run a test on the compiled kernel and on the torch fallback."""
    if request.param == "torch":
        monkeypatch.setattr(native_rng, "load_library", lambda: None)
    elif not native_rng.native_available():
        pytest.fail("a C compiler is installed but the native noise kernel did not build")
    return request.param


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler: the torch fallback is used")
def test_kernel_words_equal_reference_xoshiro128pp():
    """The vectorised lanes are exactly Blackman & Vigna's xoshiro128++, seeded as documented."""
    for key, stream, n in [(0, 0, 300), (123456789, 7, 1000), (2**64 - 1, 2**40 + 3, 257)]:
        assert native_rng.native_words(n, key, stream) == native_rng.reference_words(n, key, stream)
    # sub-streams differ
    assert native_rng.native_words(64, 1, 0) != native_rng.native_words(64, 1, 1)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler: the torch fallback is used")
def test_kernel_gaussians_equal_numpy_float32_replica_bit_for_bit():
    """Plain IEEE float32 arithmetic: the same bits as NumPy, hence on every CPU."""
    lib = native_rng.load_library()
    for key, stream, n in [(0, 0, 1000), (99, 3, 777), (2**64 - 1, 2**33, 4096)]:
        out = torch.empty(n)
        lib.cim_normal_f32(out.data_ptr(), n, key, stream, 0.0, 1.0)
        assert np.array_equal(out.numpy(), native_rng.reference_normals(n, key, stream))


def test_box_muller_series_match_float64_math():
    """The replica's log/sin/cos series against float64 Box-Muller on the same words."""
    n = 4096
    words = np.array(native_rng.reference_words(n, 5, 1), np.uint64).reshape(-1, 256)
    u1 = ((words[:, :128] >> 8).astype(np.float64) + 0.5) / 2**24
    a = words[:, 128:]
    theta = (a >> 30) * (np.pi / 2) + (((a >> 8) & 0x3FFFFF) + 0.5) / 2**22 * (np.pi / 2)
    rad = np.sqrt(-2 * np.log(u1))
    exact = np.concatenate(
        [np.concatenate([r * np.cos(t), r * np.sin(t)]) for r, t in zip(rad, theta, strict=True)]
    )
    got = native_rng.reference_normals(n, 5, 1).astype(np.float64)
    assert np.abs(got - exact).max() < 2e-6 * max(1.0, np.abs(exact).max())


def test_normals_and_uniforms_have_the_right_distribution(backend):
    s = block_stream(42, 3)
    z = s.normal_(torch.empty(400_000))
    assert abs(float(z.mean())) < 0.01
    assert float(z.std()) == pytest.approx(1.0, abs=0.01)
    assert abs(float(stats.skew(z.numpy()))) < 0.02
    assert float(stats.kurtosis(z.numpy(), fisher=False)) == pytest.approx(3.0, abs=0.05)
    assert stats.kstest(z[:100_000].numpy(), "norm").pvalue > 1e-3
    # tails: P(|z| > 3) = 0.0027
    assert float((z.abs() > 3).float().mean()) == pytest.approx(0.0027, rel=0.15)
    shifted = s.normal_(torch.empty(100_000), 2.0, 0.5)
    assert float(shifted.mean()) == pytest.approx(2.0, abs=0.01)
    assert float(shifted.std()) == pytest.approx(0.5, rel=0.02)
    u = s.uniform_(torch.empty(200_000))
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert stats.kstest(u[:100_000].numpy(), "uniform").pvalue > 1e-3


def test_streams_are_reproducible_and_independent(backend):
    a = block_stream(7, 0).normal_(torch.empty(50_000))
    assert torch.equal(a, block_stream(7, 0).normal_(torch.empty(50_000)))
    b = block_stream(7, 1).normal_(torch.empty(50_000))  # next block
    c = block_stream(8, 0).normal_(torch.empty(50_000))  # next seed
    s = block_stream(7, 0)
    s.normal_(torch.empty(10))
    d = s.normal_(torch.empty(50_000))  # second draw of the same block
    for other in (b, c, d):
        assert abs(float(torch.corrcoef(torch.stack([a, other]))[0, 1])) < 0.02
    # float64 and non-contiguous targets get the same numbers as a float32 fill
    f64 = block_stream(7, 0).normal_(torch.empty(50_000, dtype=torch.float64))
    assert torch.allclose(f64.float(), a)
    strided = torch.empty(50_000, 2)[:, 0]
    block_stream(7, 0).normal_(strided)
    assert torch.equal(strided, a)


def test_fused_read_noise_and_adc_equal_the_unfused_ops(backend):
    """read_adc_ == (z + row_std·N) / step → clamp → round, with N from the same sub-stream."""
    torch.manual_seed(0)
    rows, cols = 37, 300  # rows straddle the kernel's 256-number blocks
    z = torch.randn(rows, cols) * 40
    row_std = torch.rand(rows) * 3
    step, lo, hi = 1.7, -32.0, 31.0
    noise = NoiseStream(99).normal_(torch.empty(rows, cols))
    expected = ((z + row_std[:, None] * noise) / step).clamp(lo, hi).round()
    got = NoiseStream(99).read_adc_(z.clone(), row_std, (step, lo, hi))
    assert float((got == expected).float().mean()) > 0.999  # ties may differ by one ulp
    assert float((got - expected).abs().max()) <= 1.0
    assert got.min() >= lo and got.max() <= hi and torch.equal(got, got.round())
    # noise only, no ADC
    got = NoiseStream(99).read_adc_(z.clone(), row_std, None)
    assert torch.allclose(got, z + row_std[:, None] * noise, atol=1e-4)
    # ADC only: no draw, exact integers stay exact
    ints = torch.randint(-100, 100, (rows, cols)).float()
    got = NoiseStream(5).read_adc_(ints.clone(), None, (1.0, lo, hi))
    assert torch.equal(got, ints.clamp(lo, hi))


def test_clipped_pair_programming_equals_the_cell_model(backend):
    torch.manual_seed(1)
    n_inst, k, c = 3, 5, 70
    pos = torch.rand(k, c)
    neg = torch.rand(k, c) * 0.05  # near g = 0: clipping happens
    sigma, scale = 0.1, 15.0
    noise = NoiseStream(3).normal_(torch.empty(n_inst, k, c, 2))
    gp = (pos + sigma * noise[..., 0]).clamp_min(0)
    gn = (neg + sigma * noise[..., 1]).clamp_min(0)
    expected = scale * (gp - gn)
    got = NoiseStream(3).program_pairs(torch.empty(n_inst, k, c), pos, neg, sigma, scale)
    assert torch.allclose(got, expected, atol=1e-5)
    assert bool(((neg + sigma * noise[..., 1]) < 0).any())  # the test exercised clipping
    # non-contiguous destination (a row slice of a larger tensor)
    big = torch.zeros(n_inst, k + 2, c)
    NoiseStream(3).program_pairs(big[:, 1 : k + 1], pos, neg, sigma, scale)
    assert torch.allclose(big[:, 1 : k + 1], expected, atol=1e-5)
    assert float(big[:, 0].abs().sum()) == 0.0


def test_missing_compiler_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("CIM_DSE_NATIVE_DIR", str(tmp_path / "native"))
    native_rng.load_library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="native noise kernel unavailable"):
            assert native_rng.load_library() is None
        z = block_stream(1, 0).normal_(torch.empty(20_000))  # torch fallback still works
        assert float(z.std()) == pytest.approx(1.0, abs=0.03)
    finally:
        native_rng.load_library.cache_clear()


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_kernel_is_built_into_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CIM_DSE_NATIVE_DIR", str(tmp_path))
    native_rng.load_library.cache_clear()
    try:
        assert native_rng.load_library() is not None
        built = list(tmp_path.glob("cim_noise-*.so"))
        assert len(built) == 1 and not list(tmp_path.glob("*.tmp"))
    finally:
        native_rng.load_library.cache_clear()


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("CIM_DSE_NATIVE", "0")
    native_rng.load_library.cache_clear()
    try:
        assert native_rng.load_library() is None
    finally:
        native_rng.load_library.cache_clear()


def test_simulation_is_the_same_for_any_thread_count():
    """Blocks draw from their own streams: 1 or 2 worker threads give identical chips."""
    from torch import nn

    from evaluators.cim.layers import CrossbarLinear
    from evaluators.cim.mapping import HardwareConfig, Mapping
    from evaluators.cim.simulator import SimOptions, simulate

    torch.manual_seed(0)
    net = nn.Sequential(CrossbarLinear(20, 48), nn.ReLU(), CrossbarLinear(48, 5)).eval()
    x, y = torch.rand(60, 20), torch.randint(0, 5, (60,))
    hw = HardwareConfig(array_size=16, adc_bits=6, act_bits=6, variation_scale=2.0)
    m = Mapping.from_model(net, hw, sample_input=x)
    opts = SimOptions(block_elems=2**12, cache=False)  # many blocks
    saved = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            r = simulate(net, m, hw, hw.device_model(), x, y, instances=6, seed=3, opts=opts)
            results.append(r["per_instance"])
    finally:
        torch.set_num_threads(saved)
    assert (results[0] == results[1]).all()
    assert len(set(results[0].tolist())) > 1 or math.isclose(results[0][0], 1.0)

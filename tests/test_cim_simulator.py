"""Monte-Carlo simulator: physics sanity, noise monotonicity, seeding, MRAM formula."""

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from evaluators.cim import mram
from evaluators.cim.devices import get_device
from evaluators.cim.layers import CrossbarConv2d, CrossbarLinear, SignActivation
from evaluators.cim.mapping import HardwareConfig, Mapping
from evaluators.cim.simulator import simulate


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    return x[:1400], y[:1400], x[1400:1700], y[1400:1700]


def _train(net, x, y, steps=80):
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net


@pytest.fixture(scope="module")
def mlp(digits):
    torch.manual_seed(0)
    return _train(
        nn.Sequential(CrossbarLinear(64, 32), nn.ReLU(), CrossbarLinear(32, 10)), *digits[:2]
    )


def _run(net, digits, s=8, seed=0, **hw_kw):
    xtr, _, xte, yte = digits
    hw = HardwareConfig(**hw_kw)
    m = Mapping.from_model(net, hw, sample_input=xtr[:128])
    return simulate(net, m, hw, hw.device_model(), xte, yte, instances=s, seed=seed, device="cpu")


EXACT = dict(adc_bits=16, act_bits=16, weight_bits=16, cell_bits=4, variation_scale=0.0)


@pytest.mark.parametrize("mode", ["bit_serial", "dac"])
def test_zero_noise_high_precision_equals_digital(mlp, digits, mode):
    r = _run(mlp, digits, s=2, input_mode=mode, **EXACT)
    assert r["accuracy_ideal"] > 0.85
    assert r["accuracy_mean"] == pytest.approx(r["accuracy_ideal"], abs=1e-12)
    assert r["accuracy_std"] == 0.0


def test_zero_noise_logits_match_digital_closely(mlp, digits):
    """Beyond accuracy: the simulated outputs themselves equal the float network."""
    from evaluators.cim.layers import use_backend
    from evaluators.cim.simulator import build_backend

    _, _, xte, _ = digits
    hw = HardwareConfig(**EXACT)
    # calibrate on the evaluated inputs so no activation exceeds its full scale
    m = Mapping.from_model(mlp, hw, sample_input=xte[:50])
    be = build_backend(mlp, m, hw, hw.device_model())
    be.program(1)
    with torch.no_grad(), use_backend(mlp, be):
        sim = mlp(xte[:50])
    ref = mlp(xte[:50]).detach()
    assert torch.allclose(sim, ref, atol=2e-3 * ref.abs().max())


def test_conv_net_zero_noise_equals_digital(digits):
    xtr, ytr, xte, yte = digits
    img = lambda t: t.reshape(-1, 1, 8, 8)  # noqa: E731
    torch.manual_seed(1)
    net = nn.Sequential(
        CrossbarConv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        CrossbarLinear(64, 10),
    )
    _train(net, img(xtr[:600]), ytr[:600], steps=30)
    hw = HardwareConfig(array_size=64, **EXACT)
    m = Mapping.from_model(net, hw, sample_input=img(xte[:100]))
    r = simulate(
        net, m, hw, hw.device_model(), img(xte[:100]), yte[:100], instances=2, device="cpu"
    )
    assert r["accuracy_mean"] == pytest.approx(r["accuracy_ideal"], abs=1e-12)


def test_accuracy_does_not_rise_with_sigma(mlp, digits):
    means = [_run(mlp, digits, s=12, variation_scale=v)["accuracy_mean"] for v in (0.0, 3.0, 10.0)]
    assert means[0] >= means[1] - 0.01 >= means[2] - 0.02
    assert means[2] < means[0] - 0.05  # 10× σ clearly hurts


def test_low_resolution_adc_hurts(mlp, digits):
    hi = _run(mlp, digits, s=2, variation_scale=0.0, adc_bits=12)["accuracy_mean"]
    lo = _run(mlp, digits, s=2, variation_scale=0.0, adc_bits=2)["accuracy_mean"]
    assert lo < hi - 0.05


def test_seeded_and_per_instance(mlp, digits):
    kw = dict(variation_scale=4.0, input_mode="dac")
    a = _run(mlp, digits, s=6, seed=3, **kw)
    b = _run(mlp, digits, s=6, seed=3, **kw)
    c = _run(mlp, digits, s=6, seed=4, **kw)
    assert len(a["per_instance"]) == 6
    np.testing.assert_array_equal(a["per_instance"], b["per_instance"])
    assert not np.array_equal(a["per_instance"], c["per_instance"])
    assert a["accuracy_p5"] <= a["accuracy_mean"]
    assert a["per_instance"].std() > 0  # instances really differ


def test_memory_cap_chunking_gives_same_noise_free_result(mlp, digits):
    xtr, _, xte, yte = digits
    hw = HardwareConfig(adc_bits=6, act_bits=6, variation_scale=0.0)
    m = Mapping.from_model(mlp, hw, sample_input=xtr[:128])
    xte, yte = xte[:100], yte[:100]
    big = simulate(mlp, m, hw, hw.device_model(), xte, yte, instances=4, device="cpu")
    small = simulate(
        mlp,
        m,
        hw,
        hw.device_model(),
        xte,
        yte,
        instances=4,
        device="cpu",
        memory_cap_bytes=2_000_000,
    )
    np.testing.assert_array_equal(big["per_instance"], small["per_instance"])


@pytest.mark.parametrize("device", ["pcm", "sonos", "fefet", "sram"])
def test_every_device_simulates(mlp, digits, device):
    r = _run(mlp, digits, s=4, device=device, drift_time_s=3600.0 if device == "pcm" else 0.0)
    assert 0.5 < r["accuracy_mean"] <= 1.0


def test_pcm_drift_lowers_accuracy_spread(mlp, digits):
    fresh = _run(mlp, digits, s=12, device="pcm", variation_scale=2.0)
    aged = _run(mlp, digits, s=12, device="pcm", variation_scale=2.0, drift_time_s=3.15e7)
    assert aged["accuracy_mean"] <= fresh["accuracy_mean"] + 0.01


# -- MRAM (seed 000) ----------------------------------------------------------------------
def test_seed000_four_row_column_by_hand():
    """x = (+1, −1, +1, +1), w = (+1, +1, −1, +1): products (+1, −1, −1, +1), p₁ = p₋₁ = 2."""
    p = mram.MTJParams(r_p=2000.0, r_ap=5000.0, sigma_p=0.0, sigma_ap=0.0)
    x = torch.tensor([[1.0, -1.0, 1.0, 1.0]])
    w = torch.tensor([[1.0], [1.0], [-1.0], [1.0]])
    g_p, g_ap = 1 / 2000.0, 1 / 5000.0
    by_hand = 2 * g_p + 2 * g_ap  # y = p₁·G_P + p₋₁·G_AP
    assert float(mram.seed000_column_current(x[0], w[:, 0], g_p, g_ap)) == pytest.approx(by_hand)
    # the crossbar unit model (cells A/B on WL/WL̄) gives the same current, in units of 1/R_P
    ga, gb = mram.unit_conductances(w, *(torch.full_like(w, v) for v in (1.0, 0.4, 1.0, 0.4)))
    current = (x.clamp_min(0) @ ga + (-x).clamp_min(0) @ gb) / p.r_p
    assert float(current) == pytest.approx(by_hand)
    # normalised back to the ±1 domain: Σ w·x = 0
    assert float(mram.mvm(x, ga, gb, p)) == pytest.approx(0.0, abs=1e-6)
    x2 = torch.tensor([[1.0, 1.0, -1.0, 1.0]])  # all products +1: y = 4 G_P, normalised 4
    assert float(mram.mvm(x2, ga, gb, p)) == pytest.approx(4.0)


def test_mram_sampled_conductances_follow_seed000_moments():
    p = mram.MTJParams.from_device(get_device("mram"))
    g = torch.Generator().manual_seed(0)
    gp, gap = mram.sample_conductances((200_000,), p, g)
    # seed 000: G ~ N(1/μ, σ²/μ⁴) to first order (here in units of 1/R_P)
    assert float(gp.mean()) == pytest.approx(1.0, rel=0.01)
    assert float(gap.mean()) == pytest.approx(p.r_p / p.r_ap, rel=0.01)
    assert float(gp.std()) == pytest.approx(p.sigma_p / p.r_p, rel=0.05)


def test_bnn_on_mram_simulates_and_noise_hurts(digits):
    xtr, ytr, xte, yte = digits
    torch.manual_seed(2)
    net = nn.Sequential(
        CrossbarLinear(64, 64, binary=True),
        nn.BatchNorm1d(64),
        SignActivation(),
        CrossbarLinear(64, 10, binary=True),
    )
    _train(net, xtr[:800], ytr[:800], steps=60)
    net.eval()
    hw0 = HardwareConfig(device="mram", adc_bits=12, act_bits=8, variation_scale=0.0)
    m = Mapping.from_model(net, hw0, sample_input=xtr[:128])
    assert m.layers["3"].binary_mram and m.layers["3"].pm1_input
    xte, yte = xte[:150], yte[:150]
    r0 = simulate(net, m, hw0, hw0.device_model(), xte, yte, instances=2, device="cpu")
    assert r0["accuracy_mean"] == pytest.approx(r0["accuracy_ideal"], abs=0.02)
    hw10 = HardwareConfig(device="mram", adc_bits=12, act_bits=8, variation_scale=10.0)
    r10 = simulate(net, m, hw10, hw10.device_model(), xte, yte, instances=8, device="cpu")
    assert r10["accuracy_mean"] < r0["accuracy_mean"]


# -- the fast (blocked, fused, folded) path equals a straightforward reference ------------
def _reference_layers(net):
    """(weight (K, N), bias (N,)) of every crossbar layer, in forward order."""
    from evaluators.cim.layers import crossbar_layers

    return [
        (layer.matrix().detach(), layer.bias_vector().detach()) for _, layer in crossbar_layers(net)
    ]


def _reference_forward(net, mapping, hw, dev, x, s, seed, adc_steps=None):
    """Instance by instance, tile by tile, cycle by cycle, slice by slice; no folding.

    Noise is replayed from the simulator's documented streams (same keys, draw order and
    shapes: see AnalogBackend and native_rng.unit_stream): programming per (layer,
    instance, row tile), reads per (layer, call, instance, group of READ_GROUP samples)
    with one sub-stream per tile, so results must agree to float rounding. With
    ``adc_steps=None`` it runs the ideal calibration pass instead and returns the 99.99th
    percentile of |partial sums| per layer.
    """
    from evaluators.cim.native_rng import unit_stream
    from evaluators.cim.simulator import READ_GROUP

    calibrate = adc_steps is None
    lms = list(mapping.layers.values())
    layers = _reference_layers(net)
    top = 2 ** (hw.adc_bits - 1) - 1
    # -- program every layer (one seed per layer, one block) ----------------------------
    prog = []
    for li, (lm, (w, b)) in enumerate(zip(lms, layers, strict=True)):
        wt = torch.cat([w, (b / (lm.bias_rows * lm.input_range)).expand(lm.bias_rows, -1)])
        q_max = 2 ** (lm.weight_bits - 1) - 1
        w_max = float(wt.abs().max())
        mag = torch.round(wt.abs() / w_max * q_max).long()
        lv = 2**lm.cell_bits - 1
        kp, n = wt.shape
        pos = torch.zeros(lm.slices, kp, n)
        neg = torch.zeros(lm.slices, kp, n)
        for k in range(lm.slices):
            m_k = ((mag >> (lm.cell_bits * k)) & lv).float()
            pos[k] = m_k * (wt > 0)
            neg[k] = m_k * (wt < 0)
        g0 = dev.g_min_us / dev.g_range_us
        d = torch.zeros(s, lm.slices, kp, n)  # (G⁺ − G⁻) in levels, per instance and slice
        if calibrate:
            d[:] = pos - neg
        else:
            ptiles = [(r, min(r + hw.array_size, kp)) for r in range(0, kp, hw.array_size)]
            linear = g0 > 5 * dev.prog_sigma  # one N(0,1) per pair, else one per cell (±)
            shape = (lm.slices * n,) if linear else (lm.slices * n, 2)
            z = torch.empty(s, kp, *shape)
            for inst in range(s):
                for t, (r0, r1) in enumerate(ptiles):
                    bg = unit_stream(seed, 1, li, inst, t)
                    z[inst, r0:r1] = bg.normal_(torch.empty(r1 - r0, *shape))
            if linear:
                for k in range(lm.slices):
                    zk = z[:, :, k * n : (k + 1) * n]
                    d[:, k] = pos[k] - neg[k] + math.sqrt(2) * dev.prog_sigma * lv * zk
            else:  # each cell: g0 + level/L + σ·z, clipped at 0; layout (S, K', slice·N, ±)
                z = z.movedim(-1, 1)
                for k in range(lm.slices):
                    zk = z[:, :, :, k * n : (k + 1) * n] * dev.prog_sigma
                    gp = (g0 + pos[k] / lv + zk[:, 0]).clamp_min(0)
                    gn = (g0 + neg[k] / lv + zk[:, 1]).clamp_min(0)
                    d[:, k] = (gp - gn) * lv
        prog.append((lm, d, w_max / q_max, lv))
    # -- forward ------------------------------------------------------------------------
    h = x.unsqueeze(0).expand(s, -1, -1)
    percentiles = []
    for li, (lm, d, w_step, lv) in enumerate(prog):
        a = hw.act_bits
        x_lev = 2 ** (a - 1) - 1 if lm.signed_input else 2**a - 1
        x_step = lm.input_range / x_lev
        codes = torch.round(h / x_step).clamp(-x_lev if lm.signed_input else 0, x_lev)
        codes = torch.cat([codes, torch.full((*codes.shape[:2], lm.bias_rows), float(x_lev))], -1)
        mtot, kp = codes.shape[1], codes.shape[2]
        if hw.input_mode == "dac":
            cycles = [(codes, 1.0)]
        else:
            nb = a - 1 if lm.signed_input else a
            parts = [(codes.clamp_min(0), 1.0)] + (
                [((-codes).clamp_min(0), -1.0)] if lm.signed_input else []
            )
            cycles = [
                (((part.long() >> j) & 1).float(), sgn * 2.0**j)
                for part, sgn in parts
                for j in range(nb)
            ]
        tiles = [(r, min(r + hw.array_size, kp)) for r in range(0, kp, hw.array_size)]
        n = d.shape[-1]
        read = dev.read_sigma > 0 and not calibrate
        zs = None
        if read:  # per instance and sample group: (cycle, sample)-ordered rows, per tile
            zs = [torch.empty(s, len(cycles) * mtot, lm.slices * n) for _ in tiles]
            for inst in range(s):
                for g, m0 in enumerate(range(0, mtot, READ_GROUP)):
                    m1 = min(mtot, m0 + READ_GROUP)
                    bg = unit_stream(seed, 2, li, 0, inst, g)
                    for t in range(len(tiles)):
                        zg = bg.normal_(torch.empty(len(cycles), m1 - m0, lm.slices * n))
                        zs[t][inst].view(len(cycles), mtot, -1)[:, m0:m1] = zg
        y = torch.zeros(s, mtot, n)
        absps = []
        for inst in range(s):
            for t, (r0, r1) in enumerate(tiles):
                for p, (xc, wp) in enumerate(cycles):
                    xt = xc[inst, :, r0:r1]  # (M, rows of this tile)
                    for k in range(lm.slices):
                        psum = xt @ d[inst, k, r0:r1]  # (M, N) column currents in levels
                        if read:
                            std = dev.read_sigma * math.sqrt(2) * lv * xt.norm(dim=1, keepdim=True)
                            psum = (
                                psum
                                + std * zs[t][inst, p * mtot : (p + 1) * mtot, k * n : (k + 1) * n]
                            )
                        if calibrate:
                            absps.append(psum.abs().flatten())
                            q = psum
                        else:
                            st = adc_steps[li]
                            q = torch.round(psum / st).clamp(-top - 1, top) * st
                        y[inst] += wp * 2.0 ** (lm.cell_bits * k) * q
        y = y * (x_step * w_step)
        if calibrate:
            percentiles.append(float(torch.quantile(torch.cat(absps).double(), 0.9999)))
        h = torch.relu(y) if li + 1 < len(prog) else y
    return percentiles if calibrate else h


@pytest.mark.parametrize(
    "mode,variation,noise",
    [
        ("bit_serial", 1.0, "native"),
        ("dac", 1.0, "native"),
        ("bit_serial", 0.5, "native"),
        ("dac", 0.5, "native"),
        ("bit_serial", 1.0, "torch"),
        ("dac", 0.5, "torch"),
    ],
)
def test_fast_path_equals_reference(mode, variation, noise, monkeypatch):
    """Blocked/fused/ADC-folded simulator == naive loops, with identical noise streams.

    Small net with signed first-layer inputs (two-sided bit-serial cycles), bias rows, a
    partial last tile, 3 weight slices; ReRAM at 1× σ takes the clipped cell model, at 0.5×
    the linear one (g_min > 5σ); read noise on. ``noise``: the compiled kernels
    (:mod:`native_rng`) or the torch fallback used without a C compiler.
    """
    from evaluators.cim import native_rng

    if noise == "torch":
        monkeypatch.setattr(native_rng, "load_library", lambda: None)
    from evaluators.cim.layers import use_backend
    from evaluators.cim.simulator import SimOptions, build_backend

    torch.manual_seed(5)
    net = nn.Sequential(CrossbarLinear(21, 9), nn.ReLU(), CrossbarLinear(9, 4)).eval()
    x = torch.randn(24, 21)
    hw = HardwareConfig(
        array_size=16, adc_bits=5, act_bits=4, weight_bits=6, cell_bits=2,
        input_mode=mode, variation_scale=variation,
    )  # fmt: skip
    dev = hw.device_model()
    m = Mapping.from_model(net, hw, sample_input=x)
    assert m.layers["0"].signed_input and m.layers["0"].slices == 3
    assert m.layers["0"].rows_logical % hw.array_size != 0  # partial last tile
    big = SimOptions(block_elems=2**30, min_blocks=1)  # one block per call: one stream
    be = build_backend(net, m, hw, dev, seed=11, opts=big)
    # calibration: the same partial sums give the same ADC full scale
    ref_pct = _reference_forward(net, m, hw, dev, x, 1, 0)
    top = 2 ** (hw.adc_bits - 1) - 1
    steps = []
    for name, pct in zip(m.layers, ref_pct, strict=True):
        assert be.prepared[name].adc_range == pytest.approx(pct, rel=1e-5)
        steps.append(be.prepared[name].adc_step)
        assert steps[-1] == pytest.approx(pct / top, rel=1e-5)
    s = 3
    be.program(s)
    with torch.no_grad(), use_backend(net, be):
        fast = net(x.repeat(s, 1)).reshape(s, len(x), -1)
    ref = _reference_forward(net, m, hw, dev, x, s, 11, steps)
    assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert not torch.allclose(fast[0], fast[1])  # the instances really differ
    # and the noise matters: a noise-free reference differs
    clean = _reference_forward(
        net,
        m,
        hw,
        HardwareConfig(**{**hw.to_dict(), "variation_scale": 0.0}).device_model(),
        x,
        s,
        11,
        steps,
    )
    assert not torch.allclose(fast, clean, rtol=1e-3, atol=1e-3 * float(clean.abs().max()))


def test_prepared_layers_cached_by_content(mlp, digits):
    """Noise-only hardware variants reuse the slicing + ADC calibration; new weights do not."""
    import copy

    from evaluators.cim.simulator import build_backend

    xtr = digits[0]
    hw = HardwareConfig(adc_bits=6, act_bits=6)
    m = Mapping.from_model(mlp, hw, sample_input=xtr[:64])
    a = build_backend(mlp, m, hw, hw.device_model())
    noisier = HardwareConfig(adc_bits=6, act_bits=6, variation_scale=3.0)
    b = build_backend(
        mlp,
        Mapping.from_model(mlp, noisier, sample_input=xtr[:64]),
        noisier,
        noisier.device_model(),
    )
    assert b.prepared is a.prepared  # same model, same nominal chip: one calibration
    other = copy.deepcopy(mlp)
    with torch.no_grad():  # in place: same shapes, new content (layer 0 scaled by 2)
        other[0].weight.mul_(2.0)
        other[0].bias.mul_(2.0)
    c = build_backend(
        other, Mapping.from_model(other, hw, sample_input=xtr[:64]), hw, hw.device_model()
    )
    assert c.prepared is not a.prepared
    # max-abs weight quantization: same integer codes and ADC range, twice the weight step
    assert c.prepared["0"].w_scale == pytest.approx(2 * a.prepared["0"].w_scale)
    assert c.prepared["0"].adc_range == pytest.approx(a.prepared["0"].adc_range)
    hw8 = HardwareConfig(adc_bits=8, act_bits=6)
    d = build_backend(
        mlp, Mapping.from_model(mlp, hw8, sample_input=xtr[:64]), hw8, hw8.device_model()
    )
    assert d.prepared is not a.prepared  # other ADC: other step


def test_unquantized_path_combines_the_same_cells(mlp, digits):
    """No-ADC mode folds slices into one weight: Σ_k 2^(c·k)·D_k of the very same cells."""
    from evaluators.cim.simulator import SimOptions, build_backend

    hw = HardwareConfig(weight_bits=8, cell_bits=2)  # ReRAM at 1×: clipped cell model
    m = Mapping.from_model(mlp, hw, sample_input=digits[0][:64])
    big = 2**30  # one block: both paths draw the same stream
    one = SimOptions(block_elems=big, min_blocks=1)
    on = build_backend(mlp, m, hw, hw.device_model(), seed=4, opts=one)
    off = build_backend(mlp, m, hw, hw.device_model(), seed=4, opts=replace(one, quantize=False))
    on.program(3)
    off.program(3)
    for name, p in on.prepared.items():
        d = on.weights[name]  # (S, K', slices·N) in levels
        n = p.n_cols
        ref = sum(c * d[..., k * n : (k + 1) * n] for k, c in enumerate(p.slice_w))
        assert torch.allclose(off.combined[name], ref, rtol=1e-5, atol=1e-4)
        assert not torch.allclose(off.combined[name][0], off.combined[name][1])


def test_unquantized_direct_gemm_equals_blocked_path(mlp, digits, monkeypatch):
    """Without ADC, input quantization and read noise, one threaded GEMM per layer gives
    the blocked path's outputs (same chips), incl. pruned rows and bias rows."""
    from evaluators.cim.layers import use_backend
    from evaluators.cim.simulator import AnalogBackend, SimOptions, build_backend

    net = copy.deepcopy(mlp)
    with torch.no_grad():
        net[0].weight[:, :5] = 0.0  # pruned input rows: the mapping drops them (gather)
    hw = HardwareConfig(weight_bits=8, cell_bits=4)
    m = Mapping.from_model(net, hw, sample_input=digits[0][:64])
    assert m.layers["0"].row_idx.numel() == 64 - 5
    opts = SimOptions(quantize=False, read_noise=False, cache=False)
    x = digits[2][:50]
    outs = []
    for direct in (True, False):
        if not direct:
            monkeypatch.setattr(AnalogBackend, "_direct_ok", lambda self, p: False)
        be = build_backend(net, m, hw, hw.device_model(), seed=9, opts=opts)
        be.program(3)
        with torch.no_grad(), use_backend(net, be):
            outs.append(net(x.repeat(3, 1)))
    assert torch.allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4 * float(outs[1].abs().max()))
    assert not torch.allclose(outs[0][:50], outs[0][50:100])  # instances differ


def test_small_chunks_split_rows_and_samples(mlp, digits):
    """One instance per chunk still makes ≥ min_blocks blocks; every cell gets its noise."""
    from evaluators.cim.sim_kernels import block_shape
    from evaluators.cim.simulator import SimOptions, build_backend

    assert block_shape(1, 1, 360, 512, 2**18, min_blocks=4) == (1, 90)
    assert block_shape(64, 1, 360, 512, 2**18, min_blocks=4) == (1, 360)
    hw = HardwareConfig(variation_scale=0.5)  # ReRAM, g_min > 5σ: one draw per pair
    m = Mapping.from_model(mlp, hw, sample_input=digits[0][:64])
    be = build_backend(mlp, m, hw, hw.device_model(), opts=SimOptions(min_blocks=8))
    be.program(1)
    for name, p in be.prepared.items():
        noise = be.weights[name][0] - (p.pos - p.neg)  # (K', slices·N) in levels
        sigma = math.sqrt(2) * hw.device_model().prog_sigma * p.levels
        assert torch.isfinite(noise).all()
        assert float(noise.std()) == pytest.approx(sigma, rel=0.1)
        # rows of different blocks are independent draws, not copies
        assert not torch.allclose(noise[0], noise[-1])


def test_mram_gaussian_r_samples_r_then_inverts_and_is_the_devices_choice(monkeypatch):
    # the device chooses the cell law; the default stays seed 000's Gaussian-in-G model
    assert mram.MTJParams.from_device(get_device("mram")).model == "gaussian_g"
    with pytest.raises(ValueError, match="mtj_model"):
        replace(get_device("mram"), mtj_model="lognormal")
    dev = replace(get_device("mram", 10.0), mtj_model="gaussian_r")  # σ_R/μ_R = 40 %
    p = mram.MTJParams.from_device(dev)
    assert p.model == "gaussian_r" and p.sigma_p / p.r_p == pytest.approx(0.40)
    n = 200_000
    gp, gap = mram.sample_conductances((n,), p, torch.Generator().manual_seed(0))
    # R ~ N(μ, σ²) (clipped at 1 % of μ: z < −2.475, 0.7 % of cells): stated σ in R ...
    r_p, r_ap = p.r_p / gp.double(), p.r_p / gap.double()
    assert float(r_p.mean()) == pytest.approx(p.r_p, rel=0.01)
    assert float(r_ap.mean()) == pytest.approx(p.r_ap, rel=0.01)
    assert float(r_p.std()) == pytest.approx(p.sigma_p, rel=0.03)
    assert float(r_ap.std()) == pytest.approx(p.sigma_ap, rel=0.03)
    # ... and G = 1/R of exactly those draws (same stream, same order: z_P then z_AP)
    g = torch.Generator().manual_seed(0)
    z_p, z_ap = torch.randn((n,), generator=g), torch.randn((n,), generator=g)
    want_p = 1.0 / (p.r_p + p.sigma_p * z_p).clamp_min(0.01 * p.r_p)
    want_ap = 1.0 / (p.r_ap + p.sigma_ap * z_ap).clamp_min(0.01 * p.r_ap)
    torch.testing.assert_close(gp / p.r_p, want_p, rtol=1e-5, atol=0)
    torch.testing.assert_close(gap / p.r_p, want_ap, rtol=1e-5, atol=0)
    # the 1/R tail: mean G exceeds 1/μ (Jensen), which the Gaussian-in-G law does not have
    assert float(gp.mean()) > 1.1

    # the simulator draws its chips with the device's law
    seen = []
    real = mram.sample_conductances

    def spy(shape, params, *a, **k):
        seen.append(params.model)
        return real(shape, params, *a, **k)

    monkeypatch.setattr(mram, "sample_conductances", spy)
    torch.manual_seed(0)
    net = nn.Sequential(CrossbarLinear(16, 4, binary=True)).eval()
    x = torch.randn(8, 16).sign()
    hw = HardwareConfig(device="mram", adc_bits=12, act_bits=8, variation_scale=10.0)
    m = Mapping.from_model(net, hw, sample_input=x)
    simulate(net, m, hw, dev, x, torch.zeros(8, dtype=torch.long), instances=2, device="cpu")
    assert seen and set(seen) == {"gaussian_r"}

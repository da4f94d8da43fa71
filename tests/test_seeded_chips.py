"""Seeded chips do not depend on how the work is cut (issue 12 item 8).

Noise is keyed by (seed, layer, instance, row tile) for a chip's static noise and by
(seed, layer, call, instance, group of READ_GROUP samples) for its reads, so the memory
cap, the block size, the thread count and the test-set size never change which chips
(and reads) a seed draws; the noise path is an explicit, recorded choice.
"""

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.cim import native_rng
from evaluators.cim.layers import CrossbarLinear, use_backend
from evaluators.cim.mapping import HardwareConfig, Mapping
from evaluators.cim.simulator import READ_GROUP, SimOptions, build_backend, simulate


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = nn.Sequential(CrossbarLinear(40, 48), nn.ReLU(), CrossbarLinear(48, 5)).eval()
    x, y = torch.rand(200, 40), torch.randint(0, 5, (200,))
    # ReRAM at 3x: clipped-pair programming + read noise, two row tiles in layer 0
    hw = HardwareConfig(array_size=32, adc_bits=5, act_bits=5, variation_scale=3.0)
    m = Mapping.from_model(net, hw, sample_input=x[:64])
    return net, x, y, hw, m


def _sim(setup, **kw):
    net, x, y, hw, m = setup
    opts = SimOptions(cache=False, **kw.pop("opts", {}))
    r = simulate(net, m, hw, hw.device_model(), x, y, instances=6, seed=5, opts=opts, **kw)
    return r["per_instance"]


def test_same_chips_and_reads_at_any_memory_cap_and_block_size(setup):
    ref = _sim(setup)
    assert ref.std() > 0  # the chips really differ
    # 1 instance and a few samples per chunk; tiny cache blocks; many minimum blocks
    np.testing.assert_array_equal(ref, _sim(setup, memory_cap_bytes=60_000))
    np.testing.assert_array_equal(ref, _sim(setup, opts=dict(block_elems=2**10, min_blocks=7)))


def test_same_chips_at_any_thread_count(setup):
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _sim(setup, opts=dict(block_elems=2**11))
        torch.set_num_threads(2)
        two = _sim(setup, opts=dict(block_elems=2**11))
    finally:
        torch.set_num_threads(saved)
    np.testing.assert_array_equal(one, two)


def test_same_chips_for_any_test_set_size(setup):
    """Instance i and sample j see the same noise whatever else is simulated (max_test)."""
    net, x, _, hw, m = setup
    be = build_backend(net, m, hw, hw.device_model(), seed=5, opts=SimOptions(cache=False))
    n_small, n_big = 5 * READ_GROUP, 12 * READ_GROUP

    def logits(first: int, s: int, n: int) -> torch.Tensor:
        be.program(s, first=first)
        be.begin_batch(0, n)
        with torch.no_grad(), use_backend(net, be):
            return net(x[:n].repeat(s, 1)).reshape(s, n, -1)

    big = logits(0, 4, n_big)
    small = logits(2, 2, n_small)  # instances 2, 3 alone, on the first samples only
    assert torch.equal(big[2:, :n_small], small)
    assert not torch.equal(big[0], big[1])
    # the static noise alone: chips 2, 3 programmed alone equal chips 2, 3 of a batch of 4
    be.program(4)
    w4 = {k: v[2:].clone() for k, v in be.weights.items()}
    be.program(2, first=2)
    assert all(torch.equal(w4[k], be.weights[k]) for k in w4)


def test_native_path_asked_for_fails_clearly_instead_of_switching(setup, monkeypatch):
    net, x, y, hw, m = setup
    monkeypatch.setattr(native_rng, "load_library", lambda: None)
    with pytest.raises(native_rng.NativeUnavailable, match="noise_rng: torch"):
        simulate(net, m, hw, hw.device_model(), x, y, instances=2, opts=SimOptions(rng="native"))
    # asking for torch explicitly runs, and so does "auto" (with its documented fallback)
    r = simulate(net, m, hw, hw.device_model(), x, y, instances=2, opts=SimOptions(rng="torch"))
    assert 0.0 <= r["accuracy_mean"] <= 1.0
    with pytest.raises(ValueError, match="rng"):
        SimOptions(rng="fast")


@pytest.mark.skipif(not native_rng.native_available(), reason="no C compiler")
def test_native_and_torch_paths_draw_different_chips(setup):
    assert not np.array_equal(
        _sim(setup, opts=dict(rng="native")), _sim(setup, opts=dict(rng="torch"))
    )


def test_evaluator_records_the_noise_path_and_refuses_to_switch(monkeypatch, tmp_path):
    from evaluators.base import EvaluatorError, stable_hash
    from evaluators.cim.evaluator import CimEvaluator

    ev = CimEvaluator(cache_dir=str(tmp_path), noise_rng="torch")
    assert ev.noise_rng == "torch"
    with pytest.raises(EvaluatorError, match="noise_rng"):
        CimEvaluator(cache_dir=str(tmp_path), noise_rng="mt19937")
    monkeypatch.setattr(native_rng, "load_library", lambda: None)
    with pytest.raises(EvaluatorError, match="C compiler"):
        CimEvaluator(cache_dir=str(tmp_path))  # the default asks for the native path
    CimEvaluator(cache_dir=str(tmp_path), noise_rng="torch")  # explicit torch still runs

    # the option is part of the design id (dse.study.design_id_for hashes the options)
    def design_id(options):
        return stable_hash({"design": {}, "evaluator": "cim", "version": "x", "options": options})

    assert design_id({"noise_rng": "torch"}) != design_id({})

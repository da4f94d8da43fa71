"""Whole-network instance chunks on worker threads draw the chips of one big run (issue 15).

Without per-tile ADCs, :func:`simulator.run_instances` runs small instance chunks side by
side on the worker threads (activations stay in cache). Noise is keyed by instance and
sample group, so the per-instance counts equal those of the layer-by-layer path.
"""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.cim import simulator
from evaluators.cim.layers import CrossbarLinear
from evaluators.cim.mapping import HardwareConfig, Mapping
from evaluators.cim.simulator import SimOptions, build_backend, run_instances


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = nn.Sequential(CrossbarLinear(40, 48), nn.ReLU(), CrossbarLinear(48, 5)).eval()
    x, y = torch.rand(100, 40), torch.randint(0, 5, (100,))
    hw = HardwareConfig(array_size=32, adc_bits=5, act_bits=5, variation_scale=3.0)
    return net, x, y, hw, Mapping.from_model(net, hw, sample_input=x[:64])


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("read_noise", [False, True])
def test_threaded_chunks_equal_layer_by_layer(setup, monkeypatch, linear, read_noise):
    net, x, y, hw, m = setup
    dev = hw.device_model()
    if linear:  # g_min far above 0: the linear (unclipped) programming path
        dev = dataclasses.replace(dev, g_min_us=dev.g_range_us, g_max_us=2 * dev.g_range_us)
        assert simulator._linear_programming(dev, hw)
    opts = SimOptions(quantize=False, read_noise=read_noise, cache=False)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        be = build_backend(net, m, hw, dev, seed=3, opts=opts)
        assert simulator._thread_chunk(m, be, x, 7, 7, len(x)) > 0
        monkeypatch.setattr(simulator, "_thread_chunk", lambda *a: 2)
        threaded = run_instances(net, be, m, hw, x, y, 7, opts)
        monkeypatch.setattr(simulator, "_thread_chunk", lambda *a: 0)
        serial = run_instances(net, be, m, hw, x, y, 7, opts)
    finally:
        torch.set_num_threads(saved)
    np.testing.assert_array_equal(threaded, serial)
    assert threaded.std() > 0  # the chips really differ


def test_fused_clipped_pairs_combine_equals_two_step(setup, monkeypatch):
    """The fused program-and-shift-and-add kernel draws the two-step form's numbers."""
    from evaluators.cim import native_rng

    if not native_rng.native_available():
        pytest.skip("no C compiler")
    net, x, y, hw, m = setup
    be = build_backend(net, m, hw, hw.device_model(), seed=2, opts=SimOptions(quantize=False))
    be.program(3, first=1)
    fused = {k: v.clone() for k, v in be.combined.items()}
    monkeypatch.setattr(native_rng.NoiseStream, "program_pairs_combined", lambda *a, **k: None)
    be.program(3, first=1)
    assert all(torch.equal(fused[k], be.combined[k]) for k in fused)
    assert not torch.equal(fused[next(iter(fused))][0], fused[next(iter(fused))][1])

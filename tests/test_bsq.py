"""BSQ (Yang et al. ICLR'21, seed 003): bit planes, re-quantization, α vs precision."""

from __future__ import annotations

import pytest
import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.layers import CrossbarLinear, crossbar_layers
from evaluators.cim.models import build_model
from evaluators.cim.training import TrainConfig, train_model
from evaluators.cim.training.bsq import BSQ, BitPlanes


def test_bit_planes_represent_8bit_quantization():
    torch.manual_seed(0)
    w = torch.randn(6, 5)
    bp = BitPlanes(w, 8)
    q = bp(w).detach()
    step = w.abs().max() / 255
    assert float((q - w).abs().max()) <= float(step) / 2 + 1e-6
    assert bp.pos.shape == (8, 6, 5)
    assert set(torch.unique(bp.pos).tolist()) <= {0.0, 1.0}
    # a positive weight has no negative planes and vice versa
    assert float((bp.pos.sum(0) * bp.neg.sum(0)).detach().abs().sum()) == 0.0


def test_requantize_drops_zero_msb_and_lsb_keeping_values():
    w = torch.tensor([[0.25, -0.5], [0.75, 1.0]])
    bp = BitPlanes(w, 8)
    with torch.no_grad():
        bp.pos[7].zero_()  # MSB zero for all -> precision can drop losslessly... for these codes
        bp.neg[7].zero_()
        bp.pos[0].zero_()  # LSB zero for all -> drop with scale x2
        bp.neg[0].zero_()
    before = bp(w).detach().clone()
    bp.requantize()
    assert bp.bits <= 6
    assert torch.allclose(bp(w), before, atol=1e-6)


def test_bsq_sets_layer_bits_and_reports_compression():
    torch.manual_seed(0)
    net = torch.nn.Sequential(CrossbarLinear(4, 3), torch.nn.ReLU(), CrossbarLinear(3, 2))
    bsq = BSQ(net, 8)
    assert bsq.bits() == [8, 8]
    out = bsq.finish()
    assert [layer.weight_bits for _, layer in crossbar_layers(net)] == bsq.bits()
    assert out["compression"] == pytest.approx(32 / out["avg_weight_bits"])
    assert isinstance(net[0].weight, torch.nn.Parameter)  # parametrization removed


@pytest.mark.slow
def test_raising_alpha_lowers_bits():
    data = load_dataset("digits", seed=0, max_train=600, max_test=200)
    bits = []
    for alpha in (0.02, 0.3):
        torch.manual_seed(0)
        model = build_model("mlp", data.input_shape, data.num_classes, hidden=32)
        out = train_model(model, data, TrainConfig(epochs=4, bsq_alpha=alpha, bsq_epochs=4))
        layer_bits = [layer.weight_bits for _, layer in crossbar_layers(model)]
        assert all(isinstance(b, int) and 1 <= b <= 8 for b in layer_bits)
        bits.append(out["avg_weight_bits"])
        assert out["compression"] == pytest.approx(32 / out["avg_weight_bits"])
    assert bits[1] < bits[0] - 1.0, bits


@pytest.mark.parametrize("method", ["preact_noise", "ha_sgd"])
def test_bsq_combines_with_noise_aware_methods(method):
    # regression: with the per-layer scales on the planes' SGD learning rate, a noise-aware
    # loss drove every scale through zero and training ended in NaN weights
    from evaluators.cim.devices import get_device

    data = load_dataset("digits", max_train=600)
    model = build_model("mlp", data.input_shape, data.num_classes, hidden=32)
    config = TrainConfig(method=method, epochs=2, bsq_alpha=0.005, sigma=0.15, samples=2)
    out = train_model(model, data, config, get_device("pcm"))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert out["train_accuracy_clean"] > 0.5


@pytest.mark.parametrize("bits", [2, 3])
def test_bsq_layer_programs_its_trained_codes(bits):
    """An n-bit BSQ layer (codes −(2^n−1)…2^n−1, sign in the pair) on a noise-free chip
    with 16-bit ADCs gives the digital output: trained bits = programmed bits."""
    from evaluators.cim.layers import CrossbarLinear, use_backend
    from evaluators.cim.mapping import HardwareConfig, Mapping
    from evaluators.cim.simulator import SimOptions, build_backend

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        CrossbarLinear(64, 32, bias=False), torch.nn.ReLU(), CrossbarLinear(32, 10, bias=False)
    )
    bsq = BSQ(net, init_bits=bits)
    bsq.finish()
    x = load_dataset("digits", seed=0).test_x[:64].reshape(64, -1)
    for layer in (net[0], net[2]):
        assert layer.weight_bits == bits
        codes = layer.weight.detach().abs() / layer.weight.detach().abs().max()
        assert len(torch.unique(torch.round(codes * (2**bits - 1)))) == 2**bits  # all codes
    # hw.weight_bits (signed, here 2 = codes −1…1) must not decide a BSQ layer's precision;
    # 1-bit cells: n slices per weight
    hw = HardwareConfig(adc_bits=16, act_bits=16, weight_bits=2, cell_bits=1, variation_scale=0.0)
    m = Mapping.from_model(net, hw, sample_input=x)
    assert [lm.slices for lm in m.layers.values()] == [bits, bits]
    assert [lm.magnitude_bits for lm in m.layers.values()] == [bits, bits]
    # ADC full scale at the largest calibration partial sum: no clipping (the evaluated
    # inputs are the calibration inputs), so only 16-bit rounding is left (~3e-5); the
    # old signed reading of n (codes −1…1 for n = 2) gave 0.64 (n = 2) and 0.18 (n = 3)
    be = build_backend(net, m, hw, hw.device_model(), opts=SimOptions(adc_percentile=100.0))
    be.program(1)
    with torch.no_grad(), use_backend(net, be):
        sim = net(x)
    ref = net(x).detach()
    err = float((sim - ref).abs().max() / ref.abs().max())
    assert err < 1e-3, err

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

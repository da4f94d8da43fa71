"""Network models: shapes, crossbar-only weights, the seed-002 RNN, BinaryNet, ResNet-20."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.cim.data import load_dataset
from evaluators.cim.layers import CrossbarMixin, SignActivation, crossbar_layers
from evaluators.cim.models import MODELS, ModelError, build_model

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (40,)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_all_weights_on_crossbars(name, shape):
    torch.manual_seed(0)
    kwargs = {"time_steps": 4} if name == "rnn" else {}
    model = build_model(name, shape, 10, hidden=16, **kwargs).eval()
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    # every Linear/Conv weight is a crossbar layer (else it would stay digital unseen)
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            assert isinstance(mod, CrossbarMixin), f"{name}: {type(mod).__name__} not a crossbar"
    assert len(crossbar_layers(model)) >= 3


def test_mlp_depth_and_widths():
    model = build_model("mlp", (1, 8, 8), 10, hidden=256)
    dims = [(m.in_features, m.out_features) for _, m in crossbar_layers(model)]
    assert dims == [(64, 256), (256, 256), (256, 10)]
    deep = build_model("mlp", (1, 8, 8), 10, hidden=32, depth=4)
    assert len(crossbar_layers(deep)) == 5


def test_rnn_matches_hand_unrolled_recurrence():
    torch.manual_seed(1)
    model = build_model("rnn", (1, 8, 8), 10, hidden=12, time_steps=8)
    layers = dict(crossbar_layers(model))
    assert set(layers) == {"w_in", "w_rec", "out"}  # one input, one recurrent crossbar
    assert layers["w_in"].in_features == 8 and layers["w_rec"].bias is None
    x = torch.rand(5, 1, 8, 8)
    flat = x.reshape(5, 64)
    w_in, w_rec, w_out = layers["w_in"], layers["w_rec"], layers["out"]
    h = torch.zeros(5, 12)
    for t in range(8):
        x_t = flat[:, t * 8 : (t + 1) * 8]
        h = torch.relu(x_t @ w_in.weight.T + w_in.bias + h @ w_rec.weight.T)
    expected = h @ w_out.weight.T + w_out.bias
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_rnn_time_steps_must_divide_input():
    with pytest.raises(ModelError, match="valid values: 1, 2, 4, 5, 8, 10, 20, 40"):
        build_model("rnn", (40,), 10, time_steps=3)
    # few time steps by default (seed 002: RNNs "perform best at a lower number of
    # time-steps"); dnn.time_steps still sets any divisor
    assert build_model("rnn", (1, 28, 28), 10).time_steps == 4
    assert build_model("rnn", (1, 8, 8), 10).time_steps == 4
    assert build_model("rnn", (1, 28, 28), 10, time_steps=28).time_steps == 28


def test_rnn_irnn_identity_init_and_grad_clip():
    # Le, Jaitly, Hinton 2015: recurrent matrix = identity, biases zero
    torch.manual_seed(0)
    m = build_model("rnn", (1, 8, 8), 10, hidden=12)
    assert torch.equal(m.w_rec.weight, torch.eye(12))
    assert float(m.w_in.bias.detach().abs().max()) == 0.0
    assert m.grad_clip == 1.0


def test_training_loop_clips_the_gradient_norm(monkeypatch):
    from evaluators.cim.training import TrainConfig, train_model

    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        norms.append(max_norm)
        return real(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    data = load_dataset("digits", max_train=128, max_test=32)
    rnn = build_model("rnn", data.input_shape, 10, hidden=8)
    train_model(rnn, data, TrainConfig(epochs=1, batch_size=64))
    assert norms == [1.0, 1.0]  # the RNN's own clip, every step
    norms.clear()
    mlp = build_model("mlp", data.input_shape, 10, hidden=8)
    train_model(mlp, data, TrainConfig(epochs=1, batch_size=64))
    assert norms == []  # other models: no clipping unless asked
    train_model(mlp, data, TrainConfig(epochs=1, batch_size=64, grad_clip=0.5))
    assert norms == [0.5, 0.5]


def test_unknown_model_lists_allowed():
    with pytest.raises(ModelError, match="allowed: mlp, cnn, rnn, bnn_mlp, bnn_cnn, resnet20"):
        build_model("vgg", (1, 8, 8), 10)


@pytest.mark.parametrize("name", ["bnn_mlp", "bnn_cnn"])
def test_bnn_binary_forward_and_ste_gradients(name):
    torch.manual_seed(2)
    model = build_model(name, (1, 8, 8), 10, hidden=32).train()
    layers = [m for _, m in crossbar_layers(model)]
    assert all(m.binary and m.bias is None for m in layers)
    seen_inputs: list[torch.Tensor] = []
    hooks = [m.register_forward_pre_hook(lambda _m, a: seen_inputs.append(a[0])) for m in layers]
    signs = [m for m in model.modules() if isinstance(m, SignActivation)]
    assert len(signs) == len(layers) - 1
    x = torch.rand(16, 1, 8, 8)
    out = model(x)
    for h in hooks:
        h.remove()
    # weights seen by the crossbar are ±1
    for m in layers:
        assert set(m.effective_weight().unique().tolist()) <= {-1.0, 1.0}
    # first layer reads the real-valued input, every later one ±1 activations
    assert not set(seen_inputs[0].unique().tolist()) <= {-1.0, 1.0}
    for act in seen_inputs[1:]:
        assert set(act.unique().tolist()) <= {-1.0, 1.0}
    assert len(out.unique()) > 2  # real-valued output (BatchNorm after the last crossbar)
    F.cross_entropy(out, torch.arange(16) % 10).backward()
    for m in layers:  # straight-through estimator: gradients reach the real weights
        assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0


def test_resnet20_structure():
    a = build_model("resnet20", (3, 32, 32), 10)
    convs = [m for _, m in crossbar_layers(a) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and len(crossbar_layers(a)) == 20  # 6n+2 with n=3
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    b = build_model("resnet20", (3, 32, 32), 10, shortcut="B")
    assert len(crossbar_layers(b)) == 22  # two 1x1 projection shortcuts
    assert b(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_mlp_learns_digits():
    torch.manual_seed(0)
    data = load_dataset("digits", seed=0)
    model = build_model("mlp", data.input_shape, data.num_classes, hidden=64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        perm = torch.randperm(len(data.train_y), generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(model(data.train_x[idx]), data.train_y[idx]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(data.test_x).argmax(1) == data.test_y).float().mean().item()
    assert acc > 0.9

"""Training methods: each trains, and each differs from ideal training as its seed intends."""

from __future__ import annotations

import pytest
import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.models import build_model
from evaluators.cim.training import TrainConfig, TrainConfigError, train_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, max_train=600, max_test=300)


def _acc(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def test_ideal_trains_and_reports_metrics(digits):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=32)
    before = _acc(model, digits.test_x, digits.test_y)
    out = train_model(model, digits, TrainConfig(epochs=6, seed=0))
    after = _acc(model, digits.test_x, digits.test_y)
    assert before < 0.3 and after > 0.85
    for key in (
        "sparsity",
        "sparsity_rows",
        "sparsity_cols",
        "avg_weight_bits",
        "compression",
        "train_time_s",
        "train_loss",
        "train_accuracy",
    ):
        assert key in out
    assert out["train_accuracy"] > 0.8 and out["train_time_s"] > 0


def test_ideal_is_seeded(digits):
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=16)
        train_model(model, digits, TrainConfig(epochs=1, seed=3))
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_config_from_design_and_errors():
    cfg = TrainConfig.from_design(
        {"train.method": "ha_sgd", "train.samples": 3, "hw.adc_bits": 4, "dnn.group_hs": 1e-3},
        {"epochs": 2},
    )
    assert (cfg.method, cfg.samples, cfg.adc_bits, cfg.group_hs, cfg.epochs) == (
        "ha_sgd",
        3,
        4,
        1e-3,
        2,
    )
    # ADC bits only join the training of ha_sgd
    assert TrainConfig.from_design({"train.method": "ddhr", "hw.adc_bits": 4}).adc_bits is None
    with pytest.raises(TrainConfigError, match="train.method='bogus'.*allowed: ideal"):
        TrainConfig(method="bogus")
    with pytest.raises(TrainConfigError, match="prune_threshold"):
        TrainConfig(prune_threshold=1.5)
    with pytest.raises(TrainConfigError, match="unknown training default"):
        TrainConfig.from_design({}, {"epoch": 3})


# -- mechanics of each method ---------------------------------------------------------------
from evaluators.cim import mram  # noqa: E402
from evaluators.cim.devices import get_device  # noqa: E402
from evaluators.cim.layers import CrossbarLinear, crossbar_layers, use_backend  # noqa: E402
from evaluators.cim.training import step_loss  # noqa: E402
from evaluators.cim.training.binary_sddhr import MRAMAnalyticNoise, MRAMInstances  # noqa: E402
from evaluators.cim.training.binary_sddhr import build as build_binary_sddhr  # noqa: E402
from evaluators.cim.training.noise import PreactNoise, WeightNoise, adc_quantize  # noqa: E402
from evaluators.cim.training.registry import build_method  # noqa: E402


@pytest.mark.parametrize(
    "method", ["preact_noise", "ha_sgd", "ddhr", "s_ddhr", "ps_ddhr", "as_ddhr", "fixed"]
)
def test_every_method_trains(digits, method):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=16)
    out = train_model(model, digits, TrainConfig(method=method, epochs=4, sigma=0.05, samples=2))
    assert out["train_accuracy_clean"] > 0.4, out  # chance is 0.1


def test_noise_methods_need_a_noise_level(digits):
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=8)
    with pytest.raises(ValueError, match="set train.sigma or pass the device model"):
        train_model(model, digits, TrainConfig(method="ha_sgd", epochs=1))
    # with a device model the level comes from it
    cfg = TrainConfig(method="ha_sgd", epochs=1, samples=2)
    method = build_method(
        cfg, model, get_device("reram", 2.0), digits.train_x[:8], torch.Generator()
    )
    assert method.backend().sigma == pytest.approx(get_device("reram", 2.0).weight_sigma())


def _grad(model, method, xb, yb) -> torch.Tensor:
    model.zero_grad()
    loss, _ = step_loss(model, method, xb, yb)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_ha_sgd_gradient_variance_falls_with_samples(digits):
    torch.manual_seed(0)
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=16)
    train_model(model, digits, TrainConfig(epochs=1))
    xb, yb = digits.train_x[:64], digits.train_y[:64]
    var = {}
    for L in (1, 8):
        cfg = TrainConfig(method="ha_sgd", sigma=0.1, samples=L)
        method = build_method(cfg, model, None, xb, torch.Generator().manual_seed(1))
        assert method.copies == L
        g = torch.stack([_grad(model, method, xb, yb) for _ in range(24)])
        var[L] = float(g.var(0).sum())
    # Algorithm 1 averages L independent perturbations: variance ~ 1/L
    assert var[8] < 0.35 * var[1], var


def _identical_batch(n: int, k: int) -> torch.Tensor:
    return torch.rand(1, k).repeat(n, 1)


def test_weight_noise_instances_per_sample_copy_and_fixed():
    torch.manual_seed(0)
    layer = CrossbarLinear(12, 5)
    x = _identical_batch(6, 12)
    # s_ddhr: every sample its own chip instance
    y = WeightNoise(0.1, groups=None)(layer, x)
    assert torch.unique(y[:, 0]).numel() == 6
    # HA-SGD: 2 folded copies, samples inside a copy share the instance
    y = WeightNoise(0.1, groups=2)(layer, x)
    assert torch.allclose(y[0], y[2]) and not torch.allclose(y[0], y[3])
    # fixed: one instance z_0 through resample() (a new training step)
    fx = WeightNoise(0.1, groups=1, fixed=True)
    y1 = fx(layer, x)
    fx.resample()
    assert torch.equal(y1, fx(layer, x))
    nf = WeightNoise(0.1, groups=1)
    y1 = nf(layer, x)
    nf.resample()
    assert not torch.equal(y1, nf(layer, x))


def test_preact_noise_matches_sandia_equivalence():
    """σ_neu = σ_syn·(Wmax−Wmin)·√n·γ_act equals the spread synaptic noise causes."""
    torch.manual_seed(0)
    layer = CrossbarLinear(64, 16)
    x = torch.rand(256, 64)
    pre = PreactNoise(sigma_syn=0.05)
    y = pre(layer, x)
    diff = y - layer.digital(x)
    assert diff.std() > 0  # it does perturb the pre-activation
    sigma_neu = pre.last_sigma[id(layer)]
    assert float(diff.detach().std()) == pytest.approx(sigma_neu, rel=0.1)
    # synaptic noise of the same σ_syn over many per-sample instances: same average spread
    syn = WeightNoise(0.05, groups=None)(layer, x) - layer.digital(x)
    assert float(syn.detach().std()) == pytest.approx(sigma_neu, rel=0.1)


def test_adc_quantize_levels_and_straight_through():
    y = torch.linspace(-3, 3, 1000, requires_grad=True)
    q = adc_quantize(y, 3)
    assert torch.unique(q.detach()).numel() <= 8
    q.sum().backward()
    # straight-through inside the ADC range, zero where the top code clips
    inside = y.detach() < 3.0 * 3 / 4 - 1e-6
    assert torch.equal(y.grad[inside], torch.ones_like(y)[inside])


def test_ha_sgd_adc_forward_quantizes_outputs(digits):
    model = build_model("mlp", digits.input_shape, digits.num_classes, hidden=16)
    cfg = TrainConfig(method="ha_sgd", sigma=0.0, samples=1, adc_bits=2)
    method = build_method(cfg, model, None, digits.train_x[:8], torch.Generator())
    _, logits = step_loss(model, method, digits.train_x[:32], digits.train_y[:32])
    assert torch.unique(logits.detach()).numel() <= 4


def test_mram_ddhr_per_sample_and_analytic_std_matches_cells():
    """PS-DDHR's analytic std (seed 000's Gaussian G) matches sampled MTJ instances."""
    torch.manual_seed(0)
    params = mram.MTJParams.from_device(get_device("mram"))
    layer = CrossbarLinear(64, 8, bias=False, binary=True)
    x = torch.sign(torch.randn(1, 64)).repeat(2000, 1)
    inst = MRAMInstances(params)  # one chip per sample
    y = inst(layer, x)
    ideal = layer.digital(x)
    assert torch.unique(y[:, 0]).numel() > 1000
    emp = (y - ideal).std(0)
    ana = MRAMAnalyticNoise(params).output_std(layer, x[:1])[0]
    assert torch.allclose(emp, ana, rtol=0.15), (emp, ana)
    # sampling R and inverting it biases E[G] upwards (Jensen); it stays well under the spread
    assert bool(((y - ideal).mean(0).abs() < 0.5 * emp).all())


def test_binary_sddhr_methods_build_and_as_ddhr_shares_one_sigma(digits):
    dev = get_device("mram", 5.0)
    model = build_model("bnn_mlp", digits.input_shape, digits.num_classes, hidden=16)
    for m, cls in (
        ("s_ddhr", MRAMInstances),
        ("fixed", MRAMInstances),
        ("ps_ddhr", MRAMAnalyticNoise),
    ):
        cfg = TrainConfig(method=m)
        assert isinstance(
            build_method(cfg, model, dev, digits.train_x[:64], torch.Generator()).backend(), cls
        )
    method = build_method(
        TrainConfig(method="as_ddhr"), model, dev, digits.train_x[:64], torch.Generator()
    )
    b = method.backend()
    assert isinstance(b.fixed_sigma, float) and b.fixed_sigma > 0
    # every layer's noise has that one std
    seen = []

    def spy(layer, x):
        out = b(layer, x)
        seen.append(float((out - layer.digital(x)).detach().std()))
        return out

    with use_backend(model, spy):
        model(digits.train_x[:256])
    assert len(seen) == len(crossbar_layers(model))
    assert all(s == pytest.approx(b.fixed_sigma, rel=0.15) for s in seen)
    with pytest.raises(ValueError, match="hw.device=mram"):
        build_binary_sddhr(TrainConfig(method="ddhr"), model, None, digits.train_x[:8], None)

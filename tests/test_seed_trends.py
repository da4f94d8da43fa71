"""Seed reproductions on digits (8x8): the *trends* each seed reports, measured.

Test-time accuracy comes from the Monte-Carlo simulator (``evaluators.cim.simulator``)
over several chip instances, except the HA-SGD mean-shift check, which needs a
device mean shift the simulator does not model and uses the training package's own
weight-noise backend (``WeightNoise(mean_shift=...)``) over folded instances.
"""

from __future__ import annotations

import pytest
import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.devices import get_device
from evaluators.cim.mapping import HardwareConfig, Mapping
from evaluators.cim.models import build_model
from evaluators.cim.simulator import simulate
from evaluators.cim.training import TrainConfig, train_model
from evaluators.cim.training.noise import WeightNoise, noisy_accuracy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, max_train=800, max_test=300)


def _train(data, model_name: str, device=None, seed: int = 0, hidden: int = 32, **kw):
    torch.manual_seed(seed)
    model = build_model(model_name, data.input_shape, data.num_classes, hidden=hidden)
    train_model(model, data, TrainConfig(seed=seed, **kw), device)
    return model


def _sim(model, data, device: str, scale: float, instances: int = 6, **hw) -> float:
    dev = get_device(device, scale)
    hw.setdefault("input_mode", "dac")  # one input cycle: same physics, cheaper to simulate
    cfg = HardwareConfig(device=device, variation_scale=scale, **hw)
    mapping = Mapping.from_model(model, cfg, sample_input=data.train_x[:64], device_model=dev)
    out = simulate(
        model, mapping, cfg, dev, data.test_x, data.test_y, instances, seed=1, device="cpu"
    )
    return float(out["accuracy_mean"])


# -- seed 001: HA-SGD ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def ha_pair(digits):
    ideal = _train(digits, "mlp", epochs=6)
    ha = _train(digits, "mlp", epochs=6, method="ha_sgd", sigma=0.1, samples=4)
    return ideal, ha


def test_ha_sgd_gain_grows_with_test_noise(digits, ha_pair):
    ideal, ha = ha_pair

    def gain(scale: float) -> float:
        kw = {"input_mode": "bit_serial"}
        return _sim(ha, digits, "reram", scale, 8, **kw) - _sim(
            ideal, digits, "reram", scale, 8, **kw
        )

    clean, noisy = gain(0.0), (gain(6.0) + gain(8.0)) / 2
    assert clean < 0.05  # no noise: HA-SGD gains little
    # seed 001 Fig. 7: the stronger the noise, the larger the gain
    assert noisy > clean + 0.03, (clean, noisy)


def test_ha_sgd_gain_larger_with_low_resolution_adc(digits, ha_pair):
    ideal, ha = ha_pair
    scales = (0.0, 4.0)

    def mean_gain(adc_bits: int) -> float:
        g = [
            _sim(ha, digits, "reram", s, adc_bits=adc_bits, input_mode="bit_serial")
            - _sim(ideal, digits, "reram", s, adc_bits=adc_bits, input_mode="bit_serial")
            for s in scales
        ]
        return sum(g) / len(g)

    # seed 001 Fig. 9: HA-SGD also reduces the drop caused by low-resolution ADCs
    low, high = mean_gain(3), mean_gain(8)
    assert low > high + 0.03, (low, high)


def test_ha_sgd_mean_shift_prior_recovers_accuracy(digits):
    shift, sigma = 0.05, 0.05
    plain = _train(digits, "mlp", epochs=6, method="ha_sgd", sigma=sigma, samples=4)
    prior = _train(
        digits, "mlp", epochs=6, method="ha_sgd", sigma=sigma, samples=4, mean_shift=shift
    )

    def shifted(model) -> float:
        acc = noisy_accuracy(
            model,
            digits.test_x,
            digits.test_y,
            lambda g: WeightNoise(sigma, mean_shift=shift, groups=g, fixed=True),
            16,
        )
        return float(acc.mean())

    # seed 001 Fig. 8: a known device shift used as a prior during training is compensated
    assert shifted(prior) > shifted(plain) + 0.05


# -- seed 002: pre-activation noise --------------------------------------------------------
@pytest.mark.parametrize("arch", ["mlp", "rnn", "cnn"])
def test_preact_noise_helps_under_synaptic_noise(digits, arch):
    epochs = 3 if arch == "cnn" else 6
    ideal = _train(digits, arch, epochs=epochs)
    noisy = _train(digits, arch, epochs=epochs, method="preact_noise", sigma=0.1)
    scale = 6.0
    a_ideal = _sim(ideal, digits, "reram", scale)
    a_noisy = _sim(noisy, digits, "reram", scale)
    assert a_noisy > a_ideal + 0.05, (arch, a_ideal, a_noisy)


def test_rnn_learns_real_mnist_like_the_mlp():
    """Seed 002 on real MNIST (mnist5k: 4,000 train / 1,000 test digits): the
    time-multiplexed RNN (IRNN init, clipped gradients, default T = 4) reaches the MLP's
    digital accuracy (seed 002: RNN 97.4 % >= MLP 96.8 % on full MNIST). Before the IRNN
    init and the few-steps default (T = 28 rows, default init) it scored 0.62 vs 0.90."""
    data = load_dataset("mnist5k")
    acc = {}
    for arch in ("mlp", "rnn"):
        # one learning rate for both (seed 002 tuned the rate per system)
        model = _train(data, arch, epochs=6, hidden=64, lr=3e-3)
        model.eval()
        with torch.no_grad():
            acc[arch] = float((model(data.test_x).argmax(1) == data.test_y).float().mean())
    assert acc["mlp"] > 0.85, acc
    assert acc["rnn"] > acc["mlp"] - 0.02, acc


# -- seed 000: S-DDHR on MRAM ---------------------------------------------------------------
def test_sddhr_binarized_mram_ordering(digits):
    # seed 000's setting: 10x sigma_MRAM, with its Gaussian-in-G MTJ model (mram.py)
    scale = 10.0
    dev = get_device("mram", scale)
    hw = dict(adc_bits=8, act_bits=8, weight_bits=1, cell_bits=1)
    chip = dict(device="mram", variation_scale=scale, array_size=128, input_mode="dac", **hw)
    acc, free = {}, {}
    for m in ("ideal", "ddhr", "s_ddhr", "ps_ddhr", "as_ddhr", "fixed"):
        # ddhr: trained on chip instance 0 of the simulation seed (1), deployed on it alone
        model = _train(
            digits, "bnn_mlp", device=dev, epochs=8, method=m, hidden=64, hw=chip, chip_seed=1
        )
        acc[m] = _sim(model, digits, "mram", scale, 1 if m == "ddhr" else 6, **hw)
        free[m] = _sim(model, digits, "mram", 0.0, 1, **hw)
    # seed 000 at 10x: DDHR 90.40 %, ideal 33.18 %, fixed 11.25 %, PS 88.11 %, AS 87.42 %;
    # measured here (digits, 8 epochs): ddhr 0.87 vs variation-free 0.91, s/ps/as
    # 0.54/0.53/0.57, ideal 0.34, fixed 0.20
    assert acc["ddhr"] > free["ideal"] - 0.10, (acc, free)
    for m in ("s_ddhr", "ps_ddhr", "as_ddhr"):
        assert acc[m] > acc["ideal"] + 0.05, acc
    assert acc["fixed"] == min(acc.values()), acc

"""Mapping: hardware keys, pruning, bias folding, slicing, tiling and counts."""

import math

import pytest
import torch
from torch import nn

from evaluators.cim.layers import CrossbarConv2d, CrossbarLinear
from evaluators.cim.mapping import HardwareConfig, Mapping


def test_from_design_reads_hw_keys_with_defaults():
    hw = HardwareConfig.from_design(
        {"hw.device": "pcm", "hw.adc_bits": 4, "dnn.model": "mlp", "hw.tech_nm": 22}
    )
    assert (hw.device, hw.adc_bits, hw.tech_nm) == ("pcm", 4, 22.0)
    assert hw.array_size == HardwareConfig().array_size


@pytest.mark.parametrize(
    "design, key",
    [
        ({"hw.device": "flash"}, "hw.device"),
        ({"hw.adc_bits": 0}, "hw.adc_bits"),
        ({"hw.input_mode": "pwm"}, "hw.input_mode"),
        ({"hw.cell_bits": 2.5}, "hw.cell_bits"),
        ({"hw.drift_time_s": -1}, "hw.drift_time_s"),
        ({"hw.colour": 1}, "hw.colour"),
    ],
)
def test_bad_hardware_values_name_the_key(design, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        HardwareConfig.from_design(design)


def test_pruned_rows_and_columns_are_dropped_and_tiles_shrink():
    torch.manual_seed(0)
    layer = CrossbarLinear(200, 100, bias=False)
    net = nn.Sequential(layer)
    hw = HardwareConfig(array_size=64, weight_bits=8, cell_bits=2)
    full = Mapping.from_model(net, hw)
    with torch.no_grad():
        layer.weight[:, 100:] = 0  # prune 100 input rows
        layer.weight[60:, :] = 0  # prune 40 output columns
    pruned = Mapping.from_model(net, hw)
    lm = pruned.layers["0"]
    assert lm.row_idx.numel() == 100 and lm.col_idx.numel() == 60
    assert pruned.tiles < full.tiles
    assert pruned.mac_count == 100 * 60
    # 7 magnitude bits over 2-bit cells = 4 slices, differential: 2 columns each
    assert lm.slices == 4 and lm.cols_physical == 60 * 4 * 2
    assert lm.row_tiles == math.ceil(100 / 64) and lm.col_tiles == math.ceil(480 / 64)


def test_bias_is_folded_as_rows_matching_weight_range():
    layer = CrossbarLinear(4, 3)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.bias.copy_(torch.tensor([1.2, -0.3, 0.0]))
    m = Mapping.from_model(nn.Sequential(layer), HardwareConfig())
    # x_fs = 1 (no sample): r = ceil(max|b| / (x_fs · max|W|)) = ceil(1.2 / 0.5) = 3 rows
    assert m.layers["0"].bias_rows == 3
    assert m.layers["0"].rows_logical == 7


def test_layer_weight_bits_override_and_binary_mram_layout():
    a = CrossbarLinear(8, 8)
    a.weight_bits = 4
    b = CrossbarLinear(8, 4, binary=True)
    net = nn.Sequential(a, nn.Tanh(), b)
    m = Mapping.from_model(
        net,
        HardwareConfig(device="reram", weight_bits=8, cell_bits=1),
        sample_input=torch.rand(5, 8),
    )
    # a layer's own precision is BSQ's n magnitude bits (sign in the pair): 4 -> 4 slices
    # of 1-bit cells, 5 bits with the sign (mapping.layer_precision)
    l0 = m.layers["0"]
    assert l0.magnitude_bits == 4 and l0.weight_bits == 5 and l0.slices == 4
    assert m.layers["2"].weight_bits == 1 and m.layers["2"].slices == 1
    mm = Mapping.from_model(net, HardwareConfig(device="mram"), sample_input=torch.rand(5, 8))
    lb = mm.layers["2"]
    assert lb.binary_mram and lb.rows_per_input == 2 and lb.cols_per_weight == 1 and lb.digital_bias
    assert lb.rows_physical == 2 * 8 and lb.cols_physical == 4
    assert mm.layers["0"].cell_bits == 1  # MRAM cells are binary


class _Recurrent(nn.Module):
    """One crossbar reused over T time steps (Sandia time-multiplexed RNN shape)."""

    def __init__(self, t: int):
        super().__init__()
        self.t = t
        self.cell = CrossbarLinear(4 + 6, 6)
        self.out = CrossbarLinear(6, 3)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 6)
        for xs in x.chunk(self.t, dim=1):
            h = torch.relu(self.cell(torch.cat([xs, h], dim=1)))
        return self.out(h)


def test_invocations_and_vectors_are_counted_by_hooks():
    rnn = _Recurrent(t=5)
    m = Mapping.from_model(rnn, HardwareConfig(), sample_input=torch.rand(3, 20))
    assert m.layers["cell"].invocations == 5 and m.layers["cell"].vectors_per_inference == 5
    assert m.layers["out"].vectors_per_inference == 1
    conv = nn.Sequential(
        CrossbarConv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), CrossbarLinear(4 * 6 * 6, 2)
    )
    mc = Mapping.from_model(conv, HardwareConfig(), sample_input=torch.rand(2, 1, 6, 6))
    assert mc.layers["0"].vectors_per_inference == 36  # output positions
    assert mc.layers["0"].k == 9 and mc.layers["0"].n == 4
    assert mc.mac_count == 36 * 9 * 4 + 144 * 2
    with pytest.raises(ValueError, match="sample_input"):
        Mapping.from_model(conv, HardwareConfig())


def test_non_finite_weights_are_rejected_with_a_clear_message():
    import torch

    from evaluators.cim.layers import CrossbarLinear
    from evaluators.cim.mapping import HardwareConfig, Mapping

    model = torch.nn.Sequential(CrossbarLinear(8, 4))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite weights"):
        Mapping.from_model(model, HardwareConfig(), sample_input=torch.rand(4, 8))


def test_input_bit_activity_is_measured_per_plane_and_weights_the_read_conductance():
    """Bit planes of the quantized calibration inputs, as the chip drives them (LSB first),
    and the conductance of the cells on the rows they drive (cost/counts.py reads both)."""
    import torch
    from torch import nn

    from evaluators.cim.layers import CrossbarLinear
    from evaluators.cim.mapping import HardwareConfig, Mapping

    torch.manual_seed(0)
    net = nn.Sequential(CrossbarLinear(16, 4, bias=False))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[:, :8] = 1.0  # rows 0-7 hold full-scale weights
        net[0].weight[0, 8:] = 0.01  # rows 8-15 a tiny one (kept, not pruned)
    x = torch.rand(64, 16)
    x[:, 8:] = 0.0  # only the rows with large weights are ever driven
    hw = HardwareConfig(act_bits=4, weight_bits=8, cell_bits=2)
    (lm,) = Mapping.from_model(net, hw, sample_input=x).layers.values()
    codes = torch.clamp(torch.round(x / float(x.max()) * 15), 0, 15).long()
    expected = [float(((codes >> j) & 1).float().mean()) for j in range(4)]
    assert lm.input_bit_activity == pytest.approx(expected, abs=1e-6)
    # the driven rows hold the large weights: they read far above the array's mean level
    assert lm.read_g_fraction > 1.8 * lm.mean_g_fraction

"""Network models of the CIM evaluator, every weight layer a crossbar layer.

Why only :class:`CrossbarLinear` / :class:`CrossbarConv2d` for weights: the
Mapping, the Monte-Carlo simulator and every noise-aware training method find
the layers that sit on crossbars with :func:`crossbar_layers`; a plain
``nn.Linear`` would silently stay digital and make accuracy and energy describe
different chips. Elementwise layers (ReLU, pooling, BatchNorm, sign) run in the
digital periphery.

Models:

* ``mlp`` — flatten → (crossbar → ReLU) × depth → crossbar (seed 002's MLP).
* ``cnn`` — two 3×3 crossbar convolutions with max-pooling, one crossbar FC.
* ``rnn`` — seed 002's time-multiplexed ReLU RNN: the flattened input is cut
  into T equal slices fed one per step through one input crossbar and one
  recurrent crossbar, ``h_t = ReLU(W_in x_t + W_rec h_{t-1})``, and an output
  crossbar reads ``h_T``. Seed 002: "T must be a natural divisor of Num_pixels";
  default T = 4 (few steps, seed 002's finding), IRNN initialisation (W_rec = I).
* ``bnn_mlp`` / ``bnn_cnn`` — binarized (±1) weights and sign activations as in
  BinaryNet (Courbariaux et al. 2016), the network seed 000 maps on MRAM:
  BatchNorm before each sign, a real-valued input to the first layer and a
  real-valued (BatchNorm'd) output of the last.
* ``resnet20`` — the CIFAR ResNet-20 of He et al. 2016 (§4.2): a 3×3 conv, 3
  stages × 3 basic blocks with 16/32/64 channels, global average pooling, FC.

1-D inputs ``(L,)`` are viewed as ``(1, 1, L)`` images so the convolutional
models use ``1×3`` kernels along the sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.cim.layers import CrossbarConv2d, CrossbarLinear, SignActivation

MODELS = ("mlp", "cnn", "rnn", "bnn_mlp", "bnn_cnn", "resnet20")


class ModelError(ValueError):
    """Unknown model name or a model argument that does not fit the input."""


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) for images, (1, 1, L) for sequences."""
    if len(input_shape) == 3:
        return tuple(int(s) for s in input_shape)  # type: ignore[return-value]
    if len(input_shape) == 1:
        return (1, 1, int(input_shape[0]))
    raise ModelError(f"input_shape must be (C, H, W) or (L,), got {tuple(input_shape)}")


def _conv_geometry(one_d: bool) -> dict[str, tuple[int, int]]:
    return (
        {"kernel_size": (1, 3), "padding": (0, 1)}
        if one_d
        else {"kernel_size": (3, 3), "padding": (1, 1)}
    )


def _pool(one_d: bool, h: int, w: int) -> tuple[nn.Module, int, int]:
    """2×2 max-pool (1×2 on sequences); identity where a side is already 1."""
    kh = 1 if one_d or h < 2 else 2
    kw = 1 if w < 2 else 2
    if kh == 1 and kw == 1:
        return nn.Identity(), h, w
    return nn.MaxPool2d((kh, kw)), h // kh, w // kw


class ToImage(nn.Module):
    """Reshape a flat or 1-D batch to ``(B, C, H, W)``."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


# -- MLP -----------------------------------------------------------------------------
def mlp(input_shape, num_classes: int, hidden: int = 64, depth: int = 2) -> nn.Sequential:
    n = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    width = n
    for _ in range(depth):
        layers += [CrossbarLinear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(CrossbarLinear(width, num_classes))
    return nn.Sequential(*layers)


# -- CNN -----------------------------------------------------------------------------
def cnn(input_shape, num_classes: int, channels: tuple[int, int] = (16, 32)) -> nn.Sequential:
    c, h, w = _image_shape(input_shape)
    one_d = len(input_shape) == 1
    geo = _conv_geometry(one_d)
    layers: list[nn.Module] = [ToImage((c, h, w))]
    cin = c
    for cout in channels:
        pool, h, w = _pool(one_d, h, w)
        layers += [CrossbarConv2d(cin, cout, **geo), nn.ReLU(), pool]
        cin = cout
    layers += [nn.Flatten(), CrossbarLinear(cin * h * w, num_classes)]
    return nn.Sequential(*layers)


# -- time-multiplexed RNN --------------------------------------------------------------
def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class TimeMultiplexedRNN(nn.Module):
    """Seed 002's ReLU RNN: T input slices through one input and one recurrent crossbar.

    The input crossbar is applied to all T slices in one call (the same
    physical array read T times; a backend sees ``B·T`` input vectors), the
    recurrent crossbar once per step from t = 2 (``h_0 = 0``, so step 1 has no
    recurrent read).

    Initialisation is the IRNN's (Le, Jaitly, Hinton 2015, "A Simple Way to Initialize
    Recurrent Networks of Rectified Linear Units", §2): for a ReLU RNN "the recurrent
    weight matrix is initialized to be the identity matrix and biases to be set to
    zero", so at the start h_t carries h_{t−1} unchanged and error derivatives neither
    vanish nor explode over the T steps. ``grad_clip`` is the gradient-norm clip the
    training loop applies to this model (the IRNN trains with clipped gradients; clipping
    by the global norm as in Pascanu, Mikolov, Bengio, ICML 2013; the threshold 1.0 is our
    choice, not a published value).
    """

    #: global gradient-norm clip for training (training/loop.py reads it)
    grad_clip: float = 1.0

    def __init__(self, input_size: int, num_classes: int, hidden: int, time_steps: int):
        super().__init__()
        if time_steps < 1 or input_size % time_steps:
            raise ModelError(
                f"rnn time_steps={time_steps} must divide the input length {input_size}; "
                f"valid values: {', '.join(map(str, divisors(input_size)))}"
            )
        self.time_steps = time_steps
        self.slice = input_size // time_steps
        self.w_in = CrossbarLinear(self.slice, hidden)
        self.w_rec = CrossbarLinear(hidden, hidden, bias=False)
        self.out = CrossbarLinear(hidden, num_classes)
        with torch.no_grad():  # IRNN (Le et al. 2015): W_rec = I, recurrent-path bias 0
            nn.init.eye_(self.w_rec.weight)
            self.w_in.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.reshape(x.shape[0], self.time_steps, self.slice)
        drive = self.w_in(seq)  # (B, T, hidden)
        h = F.relu(drive[:, 0])
        for t in range(1, self.time_steps):
            h = F.relu(drive[:, t] + self.w_rec(h))
        return self.out(h)


#: default RNN time steps: few, as seed 002 found ("RNN systems perform best at a lower
#: number of time-steps"; Bennett et al., Sandia, NICE 2021 slides). Measured here on
#: mnist5k (6 epochs, hidden 64, IRNN init; digital test accuracy): T = 2: 92.6 %,
#: 4: 90.2 %, 7: 87.7 %, 14: 87.1 %, 28: 82.7 %; the MLP: 90.1 %
#: (``python benchmarks/rnn_time_steps.py``).
DEFAULT_TIME_STEPS = 4


def default_time_steps(input_shape: tuple[int, ...]) -> int:
    """The smallest divisor T ≥ :data:`DEFAULT_TIME_STEPS` of the input length.

    T = 4 for every dataset here (784 = 4·196: 7 MNIST rows per step; 64 digits pixels:
    2 rows; mnist1d's 40; CIFAR's 3072). Seed 002: "T must be a natural divisor of
    Num_pixels".
    """
    n = math.prod(input_shape)
    return min(d for d in divisors(n) if d >= min(DEFAULT_TIME_STEPS, n))


# -- binarized networks (BinaryNet) ---------------------------------------------------------
def bnn_mlp(input_shape, num_classes: int, hidden: int = 64, depth: int = 2) -> nn.Sequential:
    """BinaryNet MLP: binary crossbar → BN → sign, …, binary crossbar → BN (real output)."""
    n = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    width = n
    for _ in range(depth):
        layers += [
            CrossbarLinear(width, hidden, bias=False, binary=True),
            nn.BatchNorm1d(hidden),
            SignActivation(),
        ]
        width = hidden
    layers += [
        CrossbarLinear(width, num_classes, bias=False, binary=True),
        nn.BatchNorm1d(num_classes),
    ]
    return nn.Sequential(*layers)


def bnn_cnn(
    input_shape, num_classes: int, hidden: int = 64, channels: tuple[int, int] = (32, 64)
) -> nn.Sequential:
    """BinaryNet CNN: (binary conv → pool → BN → sign) × 2, binary FC → BN → sign, binary FC → BN."""
    c, h, w = _image_shape(input_shape)
    one_d = len(input_shape) == 1
    geo = _conv_geometry(one_d)
    layers: list[nn.Module] = [ToImage((c, h, w))]
    cin = c
    for cout in channels:
        pool, h, w = _pool(one_d, h, w)
        layers += [
            CrossbarConv2d(cin, cout, bias=False, binary=True, **geo),
            pool,
            nn.BatchNorm2d(cout),
            SignActivation(),
        ]
        cin = cout
    layers += [
        nn.Flatten(),
        CrossbarLinear(cin * h * w, hidden, bias=False, binary=True),
        nn.BatchNorm1d(hidden),
        SignActivation(),
        CrossbarLinear(hidden, num_classes, bias=False, binary=True),
        nn.BatchNorm1d(num_classes),
    ]
    return nn.Sequential(*layers)


# -- ResNet-20 -------------------------------------------------------------------------
class ShortcutA(nn.Module):
    """He et al. 2016 option A: identity, stride-subsampled, extra channels zero-padded (no weights)."""

    def __init__(self, stride: tuple[int, int], extra_channels: int):
        super().__init__()
        self.stride = stride
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride[0], :: self.stride[1]]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN + shortcut, ReLU (He et al. 2016, Fig. 2 left)."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int], one_d: bool, shortcut: str):
        super().__init__()
        geo = _conv_geometry(one_d)
        self.conv1 = CrossbarConv2d(cin, cout, stride=stride, bias=False, **geo)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = CrossbarConv2d(cout, cout, bias=False, **geo)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or cin != cout:
            if shortcut == "A":
                self.shortcut = ShortcutA(stride, cout - cin)
            else:  # option B: 1×1 projection on a crossbar
                self.shortcut = nn.Sequential(
                    CrossbarConv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(cout),
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (n = 3 blocks per stage, 6n + 2 = 20 weight layers)."""

    def __init__(self, input_shape, num_classes: int, shortcut: str = "A", blocks: int = 3):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ModelError(f"resnet20 shortcut must be 'A' or 'B', got {shortcut!r}")
        c, h, w = _image_shape(input_shape)
        one_d = len(input_shape) == 1
        self.to_image = ToImage((c, h, w))
        self.conv = CrossbarConv2d(c, 16, bias=False, **_conv_geometry(one_d))
        self.bn = nn.BatchNorm2d(16)
        stages: list[nn.Module] = []
        cin = 16
        for i, cout in enumerate((16, 32, 64)):
            for b in range(blocks):
                down = i > 0 and b == 0
                stride = ((1 if one_d else 2), 2) if down else (1, 1)
                stages.append(BasicBlock(cin, cout, stride, one_d, shortcut))
                cin = cout
        self.blocks = nn.Sequential(*stages)
        self.fc = CrossbarLinear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.conv(self.to_image(x))))
        y = self.blocks(y)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


# -- factory ---------------------------------------------------------------------------
def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 64,
    time_steps: int | None = None,
    depth: int = 2,
    shortcut: str = "A",
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` ((C, H, W) or (L,)).

    ``hidden``: width of the MLP/RNN/BNN hidden layers; ``depth``: hidden
    layers of the MLPs; ``time_steps``: RNN slices T (default: image rows, see
    :func:`default_time_steps`); ``shortcut``: ResNet-20 option A or B.
    """
    input_shape = tuple(int(s) for s in input_shape)
    _image_shape(input_shape)  # validates the rank
    if hidden < 1 or depth < 1 or num_classes < 2:
        raise ModelError(
            f"need hidden >= 1, depth >= 1, num_classes >= 2; got {hidden}, {depth}, {num_classes}"
        )
    if name == "mlp":
        return mlp(input_shape, num_classes, hidden, depth)
    if name == "cnn":
        return cnn(input_shape, num_classes)
    if name == "rnn":
        t = default_time_steps(input_shape) if time_steps is None else int(time_steps)
        return TimeMultiplexedRNN(math.prod(input_shape), num_classes, hidden, t)
    if name == "bnn_mlp":
        return bnn_mlp(input_shape, num_classes, hidden, depth)
    if name == "bnn_cnn":
        return bnn_cnn(input_shape, num_classes, hidden)
    if name == "resnet20":
        return ResNet20(input_shape, num_classes, shortcut)
    raise ModelError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")

"""Every ``hw.*`` design key, declared once: type, allowed values, default, meaning.

The evaluator's key list, the validation of designs *and* of whole search spaces, the
preset search space (``evaluators.cim.space``) and the study-file reference
(``docs/study-file.md``, generated) all read :data:`HW_KEYS`, which is built from the
fields of :class:`HardwareConfig`. Adding a key means adding one field here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from search_spaces import Categorical, Fixed, Int, Param, Real, SearchSpace

from .cells import CellSpec, device_names, get_cell
from .periphery import (
    ADC_TYPES,
    INPUT_MODES,
    ADCSpec,
    BufferSpec,
    DriverSpec,
    FloorplanSpec,
    InterconnectSpec,
    Periphery,
)

#: array sizes the floorplan can place: square power-of-two arrays fold into the
#: H-tree of PEs and tiles (NeuroSim 1.4 Chip.cpp sizes PEs and tiles in powers of two)
ARRAY_SIZES = (16, 32, 64, 128, 256, 512, 1024)
#: CMOS nodes the component tables cover (NeuroSim 1.4 Technology.cpp / SarADC.cpp tables
#: span 7..130 nm; 180 nm from Stillmaker & Baas 2017 supply scaling); between table
#: nodes prices are log-interpolated
TECH_RANGE_NM = (7.0, 180.0)


@dataclass(frozen=True)
class KeySpec:
    """What one ``hw.*`` key accepts, and its range in the preset search space."""

    name: str
    kind: str  # "int" | "float" | "choice"
    doc: str
    low: float | None = None
    high: float | None = None
    #: allowed values (a callable for registries that plugins extend)
    choices: tuple[Any, ...] | Callable[[], tuple[Any, ...]] | None = None
    #: the preset search space's param (None: not searched by default)
    search: Callable[[], Param] | None = None
    #: default when the key is absent; None = derived (see the field's doc)
    default: Any = None

    @property
    def key(self) -> str:
        return f"hw.{self.name}"

    def allowed(self) -> tuple[Any, ...] | None:
        c = self.choices
        return c() if callable(c) else c

    def describe(self) -> str:
        allowed = self.allowed()
        if allowed is not None:
            return "one of " + ", ".join(repr(v) for v in allowed)
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} in [{_num(self.low)}, {_num(self.high)}]"

    def check(self, value: Any) -> Any:
        """The canonical value, or ValueError naming key, value and what is allowed."""
        allowed = self.allowed()
        if allowed is not None:
            for a in allowed:
                if value == a and type(value) is not bool:
                    return a
            raise ValueError(f"{self.key} = {value!r} is invalid; allowed: {self.describe()}")
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        if ok and self.kind == "int":
            ok = int(value) == value
        if ok:
            v = int(value) if self.kind == "int" else float(value)
            if self.low <= v <= self.high:
                return v
        raise ValueError(f"{self.key} = {value!r} is invalid; allowed: {self.describe()}")


def _num(x: float | None) -> str:
    return f"{x:g}" if x is not None else "?"


def _key(default: Any, kind: str, doc: str, **kw: Any) -> Any:
    return field(default=default, metadata={"spec": dict(kind=kind, doc=doc, **kw)})


@dataclass
class HardwareConfig:
    """The chip of a design: one field per ``hw.*`` key (see :data:`HW_KEYS`)."""

    device: str = _key(
        "reram",
        "choice",
        "memory cell technology (evaluators/cim/devices.py; plugins add more)",
        choices=device_names,
        search=lambda: Categorical("hw.device", device_names()),
    )
    variation_scale: float = _key(
        1.0,
        "float",
        "multiplier on every device σ (seed 000 sweeps 1x..10x)",
        low=0.0,
        high=1000.0,
        search=lambda: Real("hw.variation_scale", 0.5, 10.0, log=True),
    )
    array_size: int = _key(
        128,
        "choice",
        "rows = columns of one crossbar array (square, power of two, as the floorplan places them)",
        choices=ARRAY_SIZES,
        search=lambda: Categorical("hw.array_size", (64, 128, 256, 512)),
    )
    adc_type: str = _key(
        "sar",
        "choice",
        "column ADC: " + "; ".join(f"{k} = {v}" for k, v in ADC_TYPES.items()),
        choices=tuple(ADC_TYPES),
        search=lambda: Categorical("hw.adc_type", ("sar", "flash")),
    )
    adc_bits: int = _key(
        8,
        "int",
        "ADC resolution in bits (full scale: the 99.99th percentile of calibrated partial sums)",
        low=1,
        high=16,
        search=lambda: Int("hw.adc_bits", 2, 10),
    )
    cols_per_adc: int = _key(
        8,
        "int",
        "columns multiplexed onto one ADC (NeuroSim numColMuxed); at most hw.array_size",
        low=1,
        high=1024,
        search=lambda: Categorical("hw.cols_per_adc", (1, 2, 4, 8, 16)),
    )
    act_bits: int = _key(
        8,
        "int",
        "activation (input) precision in bits",
        low=1,
        high=16,
        search=lambda: Int("hw.act_bits", 2, 8),
    )
    weight_bits: int = _key(
        8,
        "int",
        "signed weight precision in bits (sign + magnitude; BSQ layers bring their own)",
        low=1,
        high=16,
        search=lambda: Int("hw.weight_bits", 2, 8, when="dnn.bsq_alpha == 0"),
    )
    cell_bits: int | None = _key(
        None,
        "int",
        "bits per cell; at most what the device holds (log2 of its levels). "
        "Absent: min(2, the device's maximum)",
        low=1,
        high=8,
        search=lambda: Categorical(
            "hw.cell_bits", (1, 2, 4), when="hw.device in ['reram', 'sonos', 'fefet']"
        ),
    )
    input_mode: str = _key(
        "bit_serial",
        "choice",
        "input drive: " + "; ".join(f"{k} = {v}" for k, v in INPUT_MODES.items()),
        choices=tuple(INPUT_MODES),
        search=lambda: Categorical("hw.input_mode", tuple(INPUT_MODES)),
    )
    drift_time_s: float = _key(
        0.0,
        "float",
        "seconds since programming at which the chip is read (PCM drift)",
        low=0.0,
        high=1e9,
        search=lambda: Real("hw.drift_time_s", 1.0, 1e6, log=True),
    )
    tech_nm: float = _key(
        32.0,
        "float",
        "CMOS node of the periphery in nm (component prices log-interpolated between table nodes)",
        low=TECH_RANGE_NM[0],
        high=TECH_RANGE_NM[1],
        search=lambda: Categorical("hw.tech_nm", (22, 32, 45, 65)),
    )
    freq_mhz: float = _key(
        1000.0,
        "float",
        "clock of the digital periphery in MHz (NeuroSim 1.4 default clkFreq = 1 GHz)",
        low=1.0,
        high=5000.0,
        search=lambda: Categorical("hw.freq_mhz", (100, 200, 500, 1000)),
    )

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Each key against its own range, then the rules that tie keys together."""
        for spec in HW_KEYS.values():
            value = getattr(self, spec.name)
            if value is None and spec.default is None:
                continue  # derived below
            setattr(self, spec.name, spec.check(value))
        cell_max = get_cell(self.device).max_cell_bits
        if self.cell_bits is None:
            self.cell_bits = min(2, cell_max)
        elif self.cell_bits > cell_max:
            raise ValueError(cell_bits_message(self.device, self.cell_bits))
        if self.cols_per_adc > self.array_size:
            raise ValueError(
                f"hw.cols_per_adc = {self.cols_per_adc} is invalid with hw.array_size = "
                f"{self.array_size}: allowed: an integer in [1, {self.array_size}] (an ADC "
                "is shared by columns of one array)"
            )

    @classmethod
    def from_design(cls, design: dict[str, Any]) -> HardwareConfig:
        """Read the ``hw.*`` keys of a design; absent keys take the defaults above."""
        kwargs: dict[str, Any] = {}
        for key, value in design.items():
            if not key.startswith("hw."):
                continue
            name = key[3:]
            if name not in HW_KEYS:
                raise ValueError(
                    f"unknown hardware key {key!r}; allowed: "
                    + ", ".join(f"hw.{n}" for n in sorted(HW_KEYS))
                )
            if value is None:
                continue
            kwargs[name] = value
        return cls(**kwargs)

    # -- the objects everyone reads ---------------------------------------------------------
    def device_model(self) -> CellSpec:
        return get_cell(self.device, self.variation_scale)

    def periphery(self) -> Periphery:
        """ADC, drivers, buffers, interconnect and floorplan of this chip."""
        return Periphery(
            adc=ADCSpec(self.adc_type, self.adc_bits, self.cols_per_adc),
            driver=DriverSpec(self.input_mode, self.act_bits),
            buffer=BufferSpec(),
            interconnect=InterconnectSpec(),
            floorplan=FloorplanSpec(),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cell_bits_message(device: str, cell_bits: Any) -> str:
    cell = get_cell(device)
    return (
        f"hw.cell_bits = {cell_bits!r} is invalid for hw.device = {device!r}: allowed: an "
        f"integer in [1, {cell.max_cell_bits}] ({device} holds {cell.levels} levels per cell)"
    )


def _key_specs() -> dict[str, KeySpec]:
    out: dict[str, KeySpec] = {}
    for f in fields(HardwareConfig):
        meta = dict(f.metadata["spec"])
        out[f.name] = KeySpec(name=f.name, default=f.default, **meta)
    return out


#: ``name -> KeySpec`` for every hw key, in declaration order
HW_KEYS: dict[str, KeySpec] = _key_specs()


def hw_key_names() -> tuple[str, ...]:
    """The design keys (``hw.<name>``) in declaration order."""
    return tuple(s.key for s in HW_KEYS.values())


def preset_params() -> list[Param]:
    """The preset search space's hw params (derived from the table)."""
    return [s.search() for s in HW_KEYS.values() if s.search is not None]


def _param_values(param: Param) -> list[Any] | None:
    """Every value a param can take when that is a finite list; None for a real range."""
    if isinstance(param, Fixed):
        return [param.value]
    if isinstance(param, Categorical):
        return list(param.choices)
    if isinstance(param, Int):
        step = param.step or 1
        if (param.high - param.low) // step <= 4096:
            return list(range(param.low, param.high + 1, step))
    return None


def check_hw_space(space: SearchSpace) -> None:
    """Refuse a search space that can propose a chip the hardware model rejects.

    Called before any store exists (``dse run``/``resume``/``sweep`` resolve the study
    first), so a bad choice, an out-of-range bound, a cell width a device cannot hold or an
    array size the floorplan cannot place is one message, not a run of failed designs.
    """
    for param in space:
        if not param.name.startswith("hw."):
            continue
        name = param.name[3:]
        spec = HW_KEYS.get(name)
        if spec is None:
            raise ValueError(
                f"unknown hardware key {param.name!r}; allowed: "
                + ", ".join(sorted(hw_key_names()))
            )
        if isinstance(param, Int | Real) and spec.allowed() is None:
            values = [param.low, param.high]  # a range of a ranged key: its two bounds
        else:
            values = _param_values(param)
        if values is None:  # a continuous range over a key with fixed choices
            raise ValueError(
                f"{spec.key}: a range [{param.low}, {param.high}] is invalid; allowed: "
                f"{spec.describe()} (use choices:)"
            )
        for v in values:
            spec.check(v)
    _check_cell_bits(space)


def _check_cell_bits(space: SearchSpace) -> None:
    """Each device the space can choose against each cell width active with it."""
    if "hw.cell_bits" not in space:
        return
    cb = space["hw.cell_bits"]
    widths = _param_values(cb)
    if widths is None:
        return
    devices = _param_values(space["hw.device"]) if "hw.device" in space else ["reram"]
    for device in devices or []:
        if cb.condition is not None:
            if not cb.condition.names <= {"hw.device"}:
                continue  # depends on more than the device: checked per design
            if not SearchSpace.is_active(cb, {"hw.device": device}):
                continue
        cell_max = get_cell(device).max_cell_bits
        too_wide = [w for w in widths if w > cell_max]
        if too_wide:
            raise ValueError(
                cell_bits_message(device, too_wide[0])
                + "; restrict hw.cell_bits with a 'when:' condition on hw.device"
            )

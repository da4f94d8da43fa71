"""Memory cells a crossbar can be built from: one registry that every consumer reads.

A *cell spec* is :class:`evaluators.cim.devices.DeviceModel` (electrical numbers: conductance
range, read voltage and pulse, levels; noise numbers; area in F²; each cited in
``devices.py``). The simulator, the training methods and the cost model all take the spec
from here, so a device added by a plugin (``plugins:`` in a study file) with
:func:`register_device` is a valid ``hw.device`` everywhere at once.
"""

from __future__ import annotations

from evaluators.cim import devices as _devices
from evaluators.cim.devices import DeviceModel

#: the cell description type (aihwkit's "device", CrossSim's "device parameters")
CellSpec = DeviceModel


def device_names() -> tuple[str, ...]:
    """Names ``hw.device`` accepts now (built-ins plus registered plugins)."""
    return tuple(_devices._DEVICES)


def get_cell(name: str, variation_scale: float = 1.0) -> CellSpec:
    """The cell spec of ``name`` with every σ scaled by ``variation_scale``."""
    return _devices.get_device(name, variation_scale)


def register_device(spec: CellSpec, *, replace: bool = False) -> CellSpec:
    """Add a cell technology under ``spec.name``; refuses to shadow one unless ``replace``.

    Why a registry rather than editing the table: plugins are imported in the driver and in
    every Ray worker (``EvaluatorSpec.plugins``), so a registration there reaches all of
    them and the study file can name the device like a built-in.
    """
    if not isinstance(spec, DeviceModel):
        raise TypeError(f"register_device needs a DeviceModel (CellSpec), got {type(spec)!r}")
    key = spec.name.strip().lower()
    if not key or key != spec.name:
        raise ValueError(f"device name {spec.name!r} must be lower-case without spaces")
    if key in _devices._DEVICES and not replace:
        raise ValueError(f"device {key!r} is already registered; pass replace=True to override")
    _devices._DEVICES[key] = spec
    return spec


def max_cell_bits(name: str) -> int:
    """Bits one cell of ``name`` holds reliably (log2 of its programmable levels)."""
    return get_cell(name).max_cell_bits

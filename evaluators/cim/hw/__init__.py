"""The chip, described once: hw keys (config), cells (registry) and periphery specs.

The Monte-Carlo simulator, the training methods and the cost model read these objects;
none of them restates a range, a default or a device number.
"""

from .cells import CellSpec, device_names, get_cell, max_cell_bits, register_device
from .config import HW_KEYS, HardwareConfig, KeySpec, check_hw_space, hw_key_names, preset_params
from .periphery import (
    ADC_RANGE_PERCENTILE,
    ADC_TYPES,
    INPUT_MODES,
    ADCSpec,
    BufferSpec,
    DriverSpec,
    FloorplanSpec,
    InterconnectSpec,
    Periphery,
)

__all__ = [
    "ADC_RANGE_PERCENTILE",
    "ADC_TYPES",
    "ADCSpec",
    "BufferSpec",
    "CellSpec",
    "DriverSpec",
    "FloorplanSpec",
    "HW_KEYS",
    "HardwareConfig",
    "INPUT_MODES",
    "InterconnectSpec",
    "KeySpec",
    "Periphery",
    "check_hw_space",
    "device_names",
    "get_cell",
    "hw_key_names",
    "max_cell_bits",
    "preset_params",
    "register_device",
]

"""Hardware cost of a mapped network: counts × prices (Accelergy/Timeloop split).

* ``counts.py``: what happens per inference (from the Mapping and measured input stats);
* ``components.py``: what each action and instance costs, cited (NeuroSim 1.4 fits,
  Murmann's ADC survey, Horowitz);
* ``estimate.py``: the composition (subarray → PE → tile → chip), latency, breakdowns;
* ``reference.py`` / ``crosscheck.py``: the recorded DNN+NeuroSim runs, like for like.
"""

from .components import energy_scale, vdd
from .estimate import (
    AREA_TERMS,
    ENERGY_TERMS,
    LATENCY_TERMS,
    CostBreakdown,
    estimate_breakdown,
    estimate_cost,
)
from .presets import yan_vlsi2019_config

__all__ = [
    "AREA_TERMS",
    "ENERGY_TERMS",
    "LATENCY_TERMS",
    "CostBreakdown",
    "energy_scale",
    "estimate_breakdown",
    "estimate_cost",
    "vdd",
    "yan_vlsi2019_config",
]

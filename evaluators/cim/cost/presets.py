"""Published chips as hardware configurations (the calibration anchors of the tests)."""

from __future__ import annotations

from ..hw.config import HardwareConfig


def yan_vlsi2019_config() -> HardwareConfig:
    """The 256×256 HfO2 ReRAM macro of B. Yan et al., VLSI 2019 (seed 003): 0.15 µm CMOS,
    64K cells (256×256), 50 MHz, 8-bit precision, 1.52 mW, 0.257 pJ/MAC.

    The macro integrates each column current over a rate-coded 8-bit input window and
    converts it once with an integrate-and-fire converter: one 8-bit conversion per
    column per input vector, i.e. our ``dac`` input mode with an 8-bit converter. Cells
    are 1T1R HfO2 with one weight per differential pair; ternary weights (2 bits) on
    1-bit cells is our assumption (the slide does not give the weight precision).
    """
    return HardwareConfig(
        device="reram",
        array_size=256,
        adc_type="sar",
        adc_bits=8,
        act_bits=8,
        weight_bits=2,
        cell_bits=1,
        cols_per_adc=8,
        input_mode="dac",
        tech_nm=150.0,
        freq_mhz=50.0,
    )

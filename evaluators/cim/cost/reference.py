"""The chip DNN+NeuroSim V1.4 prices, rebuilt from recorded weight and input codes.

Why a separate mapping: NeuroSim stores a signed weight in *offset binary* (w + 2^(B−1)
in ceil(B/cellBit) unsigned cells, one column per cell, no second column; Chip.cpp
LoadInWeightData) while our chip uses differential pairs (two columns per slice,
subtracted before the ADC, so one conversion per pair). Comparing like with like means
pricing NeuroSim's encoding with our counts and components: same columns, same
conversions, same conductances on driven rows (``docs/concepts.md``, "Cost model
calibration"). The recorded codes are in ``tests/data/neurosim/*.npz``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np
import torch

from ..hw.config import HardwareConfig
from ..mapping import LayerMapping, Mapping, bit_activity, driven_level


def offset_layer(
    name: str,
    w_codes: np.ndarray,
    x_codes: np.ndarray,
    hw: HardwareConfig,
    weight_bits: int = 8,
    input_bits: int = 8,
) -> LayerMapping:
    """One layer in NeuroSim's offset encoding: codes c ∈ [−2^(B−1)+1, 2^(B−1)−1] stored as
    c + 2^(B−1) split into ``hw.cell_bits`` digits; ``x_codes`` are the unsigned input codes
    of each vector (rows: vectors, columns: the K inputs)."""
    k, n = w_codes.shape
    cb = hw.cell_bits
    slices = math.ceil(weight_bits / cb)
    v = w_codes.astype(np.int64) + 2 ** (weight_bits - 1)
    levels = 2**cb - 1
    digits = [((v >> (cb * s)) & levels) / levels for s in range(slices)]
    row_g = torch.from_numpy(np.mean(np.stack(digits), axis=(0, 2))).float()  # per row
    activity, act_rows = bit_activity(torch.from_numpy(x_codes.astype(np.int64)), input_bits)
    return LayerMapping(
        name=name,
        k=k,
        n=n,
        row_idx=torch.arange(k),
        col_idx=torch.arange(n),
        bias_rows=0,
        digital_bias=False,
        weight_bits=weight_bits,
        cell_bits=cb,
        slices=slices,
        binary_mram=False,
        cols_per_weight=1,
        rows_per_input=1,
        vectors_per_inference=int(x_codes.shape[0]),
        invocations=1,
        input_range=1.0,
        signed_input=False,
        pm1_input=False,
        mean_g_fraction=float(row_g.mean()),
        array_size=hw.array_size,
        input_bit_activity=activity,
        read_g_fraction=driven_level(act_rows, row_g),
    )


def mapping_from_record(record: MappingABC[str, Any], hw: HardwareConfig) -> Mapping:
    """The offset-encoded Mapping of a recorded network (``np.load`` of an npz).

    Large convolutions are mapped as NeuroSim's default *novel mapping* does (Param.cpp
    novelMapping = true; Chip.cpp ChipDesignInitialize marks a conv layer when
    C_in·k_h·k_w ≥ the subarray rows): one group of arrays per kernel position, each
    holding that position's C_in × C_out weights and reading that position's inputs,
    where our chip unrolls the kernel into one K = C_in·k_h·k_w matrix (im2col). Smaller
    convolutions and FC layers are mapped as ours are.
    """
    meta = json.loads(str(record["meta_json"])) if "meta_json" in record else []
    if isinstance(meta, dict):  # newer records: {"layers": [...], "channels": ..., ...}
        meta = meta.get("layers", [])
    layers: dict[str, LayerMapping] = {}
    i = 0
    while f"l{i}_w_codes" in record:
        w, x = record[f"l{i}_w_codes"], record[f"l{i}_x_codes"]
        info = meta[i] if i < len(meta) else {}
        taps = int(info.get("k_h", 1)) * int(info.get("k_w", 1))
        if info.get("kind") == "conv" and taps > 1 and w.shape[0] >= hw.array_size:
            for tap in range(taps):  # im2col rows are ordered (c_in, k_h, k_w)
                rows = np.arange(tap, w.shape[0], taps)
                lm = offset_layer(f"l{i}.{tap}", w[rows], x[:, rows], hw)
                lm.extra["group"] = float(i)  # the taps run side by side in one tile group
                layers[lm.name] = lm
        else:
            lm = offset_layer(f"l{i}", w, x, hw)
            layers[lm.name] = lm
        i += 1
    if not layers:
        raise ValueError("record has no layers (expected keys l0_w_codes, l0_x_codes, ...)")
    return Mapping(hw=hw, layers=layers)

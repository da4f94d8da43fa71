"""Run the DNN+NeuroSim V1.4 reference grid on the exported digits MLP / CNN.

Usage::

    python benchmarks/neurosim/export_network.py --out /tmp/ns_export
    python benchmarks/neurosim/run_grid.py --neurosim /work/ns_src/Inference_pytorch/NeuroSIM \
        --export /tmp/ns_export --out tests/data/neurosim/runs.json

``--neurosim`` is a NeuroSIM directory with ``instrumentation.patch`` applied and built
(``make -j2``); ``--build SRC`` does extract+patch+build from a bare git mirror first.
The swept Param.cpp fields come from environment variables (see the patch):
NS_MEMCELLTYPE, NS_ACCESSTYPE, NS_TECHNODE, NS_CELLBIT, NS_SARADC, NS_ADC_BITS
(levelOutput = 2^bits), NS_COLMUX, NS_NUMCOLSUBARRAY, NS_PIPELINE, NS_SPEEDUP (speedUpDegree),
NS_DUPLICATION (0: no PE/subarray weight duplication).
``--speedups 8,1`` runs the grid in both duplication variants (settings ``speedup_degree``
8 = stock NeuroSim, with duplication; 1 = speedUpDegree 1 and no duplication, see README);
``--merge`` keeps the records already in ``--out`` that this call does not rerun.
Each grid point is run twice: pipelined (NeuroSim's default, the main record) and
layer-by-layer (NS_PIPELINE=0, its chip summary kept under ``layer_by_layer``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "neurosim"
REPO = "neurosim/DNN_NeuroSim_V1.4"

GRID = dict(
    adc_type=["sar", "mlsa"],
    tech_nm=[32, 22],
    array_size=[64, 128, 256],
    cell_bits=[1, 4],
    adc_bits=[3, 4, 5, 6, 7, 8],
)
FIXED = dict(weight_bits=8, input_bits=8, cols_per_adc=8)
# speedup_degree -> extra settings. 8 = stock (speedUpDegree 8, which Chip.cpp clamps to int(maxIFM/minIFM) = 1 for
# our nets, plus the PE/subarray duplication that fills a small layer's idle PEs/subarrays with copies);
# 1 = speedUpDegree 1 and NS_DUPLICATION=0: every layer exactly once (tiles = the layer's own need, speed-up 1).
VARIANTS = {
    8: dict(speedup_degree=8, weight_duplication=True),
    1: dict(speedup_degree=1, weight_duplication=False),
}
# RRAM (memcelltype 2) with 1T1R access (accesstype 1); NeuroSim's Param.cpp default is SRAM.
BASE_ENV = dict(NS_MEMCELLTYPE="2", NS_ACCESSTYPE="1")

NUM = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|-?nan|-?inf)"


def _f(s: str) -> float:
    return float(s)


def settings_env(s: dict) -> dict:
    return dict(
        BASE_ENV,
        NS_SARADC="1" if s["adc_type"] == "sar" else "0",
        NS_TECHNODE=str(s["tech_nm"]),
        NS_CELLBIT=str(s["cell_bits"]),
        NS_ADC_BITS=str(s["adc_bits"]),
        NS_COLMUX=str(s["cols_per_adc"]),
        NS_NUMCOLSUBARRAY=str(s["array_size"]),
        NS_SPEEDUP=str(s.get("speedup_degree", 8)),
        NS_DUPLICATION="1" if s.get("weight_duplication", True) else "0",
    )


def run_main(binary: Path, workdir: Path, s: dict, pipeline: bool) -> tuple[int, str]:
    args = (workdir / "args.txt").read_text().split()
    a = str(s["array_size"])
    cmd = [str(binary), "NetWork.csv", str(s["weight_bits"]), str(s["input_bits"]), a, a, *args]
    env = dict(os.environ, **settings_env(s), NS_PIPELINE="1" if pipeline else "0")
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


# ----------------------------------------------------------------------------- parsing
LAYER_RE = {
    "read_latency_ns": r"layer(\d+)'s readLatency is: " + NUM + "ns",
    "read_dynamic_pj": r"layer(\d+)'s readDynamicEnergy is: " + NUM + "pJ",
    "leakage_power_uw": r"layer(\d+)'s leakagePower is: " + NUM + "uW",
    "leakage_pj": r"layer(\d+)'s leakageEnergy is: " + NUM + "pJ",
    "buffer_latency_ns": r"layer(\d+)'s buffer latency is: " + NUM + "ns",
    "buffer_pj": r"layer(\d+)'s buffer readDynamicEnergy is: " + NUM + "pJ",
    "ic_latency_ns": r"layer(\d+)'s ic latency is: " + NUM + "ns",
    "ic_pj": r"layer(\d+)'s ic readDynamicEnergy is: " + NUM + "pJ",
}
BREAK = [
    ("adc", r"ADC \(or S/As and precharger for SRAM\)"),
    (
        "accumulation",
        r"Accumulation Circuits \(subarray level: adders, shiftAdds; PE/Tile/Global level: accumulation units\)",
    ),
    (
        "other_periphery",
        r"Other Peripheries \(e.g. decoders, mux, switchmatrix, buffers, IC, pooling and activation units\)",
    ),
]


def _breakdown(text: str) -> tuple[dict, dict]:
    lat, en = {}, {}
    for key, label in BREAK:
        lat[key] = _f(
            re.search(r"----------- " + label + " readLatency is : " + NUM + "ns", text).group(1)
        )
        en[key] = _f(
            re.search(
                r"----------- " + label + " readDynamicEnergy is : " + NUM + "pJ", text
            ).group(1)
        )
    return lat, en


def _nsx_terms(x: dict) -> dict:
    """Instrumentation accumulators (J, counts) of one layer -> pJ terms + counts."""
    pj = lambda k: x.get(k + "_J", 0.0) * 1e12  # noqa: E731
    return {
        "array_wl": pj("array_wl"),
        "adc_circuit": pj("adc"),
        "adc_cell_current": pj("adc_cell_current"),
        "adc_bias": pj("adc_bias"),
        "adc_column_power": pj("adc_column_power"),
        "adc_encoder": pj("adc_encoder"),
        "wl_switchmatrix": pj("wl_switchmatrix"),
        "mux": pj("mux"),
        "shiftadd": pj("shiftadd"),
        "subarray_adder": pj("subarray_adder"),
        "subarray_dff": pj("subarray_dff"),
        "addertree": pj("addertree"),
        "buffer_sram_rf": pj("buffer"),
        "bus_pe": pj("bus"),
        "htree_tile": pj("htree"),
        "xybus_chip": pj("xybus"),
    }, {
        "adc_conversions": x.get("adc_conversions", 0.0),
        "subarray_reads": x.get("subarray_reads", 0.0),
        "addertree_adds": x.get("addertree_adds", 0.0),
        "buffer_bits": x.get("buffer_bits", 0.0),
        "bus_bits": x.get("bus_bits", 0.0),
        "htree_bits": x.get("htree_bits", 0.0),
        "xybus_bits": x.get("xybus_bits", 0.0),
    }


def parse(text: str, n_layers: int) -> dict:
    out: dict = {}
    # floorplan
    fp: dict = {}
    m = re.search(r"Desired Conventional Mapped Tile Storage Size: (\d+)x(\d+)", text)
    fp["cm_tile_storage"] = int(m.group(1))
    fp["cm_pe_storage"] = int(
        re.search(r"Desired Conventional PE Storage Size: (\d+)x", text).group(1)
    )
    m = re.search(r"Desired Novel Mapped Tile Storage Size: (\d+)x(\d+)x(\d+)", text)
    fp["nm_tile_num_pe"], fp["nm_pe_storage"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"User-defined SubArray Size: (\d+)x(\d+)", text)
    fp["subarray_rows"], fp["subarray_cols"] = int(m.group(1)), int(m.group(2))
    sec = lambda title: text.split(title, 1)[1].split("\n\n", 1)[0]  # noqa: E731
    fp["tiles_per_layer"] = [
        int(_f(v)) for v in re.findall(r"layer\d+: " + NUM, sec("# of tile used for each layer"))
    ]
    fp["speedup_per_layer"] = [
        _f(v) for v in re.findall(r"layer\d+: " + NUM, sec("Speed-up of each layer"))
    ]
    fp["utilization_per_layer"] = [
        _f(v) for v in re.findall(r"layer\d+: " + NUM, sec("Utilization of each layer"))
    ]
    fp["chip_memory_utilization_pct"] = _f(
        re.search(r"Memory Utilization of Whole Chip: " + NUM, text).group(1)
    )
    for k, v in re.findall(r"^NSF (\w+) " + NUM, text, re.M):
        fp[k] = _f(v)
    fp["num_tiles_floorplan"] = fp.get("numTileRow", 0) * fp.get("numTileCol", 0)
    fp["num_tiles_used"] = sum(fp["tiles_per_layer"])
    fp["speedup_warning"] = "speed-up degree is auto-assigned" in text
    out["floorplan"] = fp
    units_area = {k: _f(v) for k, v in re.findall(r"^NSA (\w+) " + NUM, text, re.M)}
    units_lat = {k: _f(v) * 1e9 for k, v in re.findall(r"^NSL (\w+)_s " + NUM, text, re.M)}

    # layers
    nsx: list[dict] = [dict() for _ in range(n_layers)]
    for li, k, v in re.findall(r"^NSX layer(\d+) (\w+) " + NUM, text, re.M):
        nsx[int(li) - 1][k] = _f(v)
    per: dict = {k: {} for k in LAYER_RE}
    for k, rx in LAYER_RE.items():
        for li, v in re.findall(rx, text):
            per[k][int(li)] = _f(v)
    blocks = re.split(r"-------------------- Estimation of Layer \d+ ----------------------", text)[
        1:
    ]
    layers = []
    for i in range(n_layers):
        lat_b, en_b = _breakdown(blocks[i])
        terms, counts = _nsx_terms(nsx[i])
        en = {
            "total": per["read_dynamic_pj"][i + 1] + per["leakage_pj"][i + 1],
            "read_dynamic": per["read_dynamic_pj"][i + 1],
            **en_b,
            "buffer": per["buffer_pj"][i + 1],
            "ic": per["ic_pj"][i + 1],
            "leakage": per["leakage_pj"][i + 1],
            **terms,
        }
        en["other_rest"] = (
            en["other_periphery"] - en["wl_switchmatrix"] - en["mux"] - en["buffer"] - en["ic"]
        )
        en["accumulation_rest"] = (
            en["accumulation"]
            - en["shiftadd"]
            - en["subarray_adder"]
            - en["subarray_dff"]
            - en["addertree"]
        )
        en["adc_check_residual"] = en["adc"] - en["array_wl"] - en["adc_circuit"]
        layers.append(
            dict(
                energy_pj=en,
                latency_ns={
                    "total": per["read_latency_ns"][i + 1],
                    **lat_b,
                    "buffer": per["buffer_latency_ns"][i + 1],
                    "ic": per["ic_latency_ns"][i + 1],
                },
                leakage_power_uw=per["leakage_power_uw"][i + 1],
                counts=counts,
            )
        )
    out["layers"] = layers

    # chip summary
    g = lambda rx: _f(re.search(rx + NUM, text).group(1))  # noqa: E731
    area = {
        "chip": g(r"ChipArea : "),
        "cim_array": g(r"Chip total CIM array : "),
        "ic": g(r"Total IC Area on chip \(Global and Tile/PE local\): "),
        "adc": g(r"Total ADC \(or S/As and precharger for SRAM\) Area on chip : "),
        "accumulation": g(
            r"Total Accumulation Circuits \(subarray level: adders, shiftAdds; PE/Tile/Global level: accumulation units\) on chip : "
        ),
        "other_periphery": g(
            r"Other Peripheries \(e.g. decoders, mux, switchmatrix, buffers, pooling and activation units\) : "
        ),
    }
    area["unused"] = area["chip"] - sum(
        area[k] for k in ("cim_array", "ic", "adc", "accumulation", "other_periphery")
    )
    area["units"] = units_area
    out["area_um2"] = area
    summary = text.split("------------------------------ Summary", 1)[1]
    lat_b, en_b = _breakdown(summary)
    pipe = "pipeline-system" in summary
    if pipe:
        tot_lat = g(r"Chip pipeline-system-clock-cycle \(per image\) is: ")
        dyn = g(r"Chip pipeline-system readDynamicEnergy \(per image\) is: ")
        leak = g(r"Chip pipeline-system leakage Energy \(per image\) is: ")
        leak_p = g(r"Chip pipeline-system leakage Power \(per image\) is: ")
        buf_l = g(r"Chip pipeline-system buffer readLatency \(per image\) is: ")
        buf_e = g(r"Chip pipeline-system buffer readDynamicEnergy \(per image\) is: ")
        ic_l = g(r"Chip pipeline-system ic readLatency \(per image\) is: ")
        ic_e = g(r"Chip pipeline-system ic readDynamicEnergy \(per image\) is: ")
    else:
        tot_lat = g(r"Chip layer-by-layer readLatency \(per image\) is: ")
        dyn = g(r"Chip total readDynamicEnergy is: ")
        leak = g(r"Chip total leakage Energy is: ")
        leak_p = g(r"Chip total leakage Power is: ")
        buf_l = g(r"Chip buffer readLatency is: ")
        buf_e = g(r"Chip buffer readDynamicEnergy is: ")
        ic_l = g(r"Chip ic readLatency is: ")
        ic_e = g(r"Chip ic readDynamicEnergy is: ")
    en = {
        "total": dyn + leak,
        "read_dynamic": dyn,
        **en_b,
        "buffer": buf_e,
        "ic": ic_e,
        "leakage": leak,
    }
    for k in layers[0]["energy_pj"]:
        if k not in en:
            en[k] = sum(layer["energy_pj"][k] for layer in layers)
    out["energy_pj"] = en
    out["latency_ns"] = {
        "total": tot_lat,
        "clock_period": g(r"Chip clock period is: ") if "Chip clock period is" in summary else None,
        **lat_b,
        "buffer": buf_l,
        "ic": ic_l,
        "sum_of_layers": sum(layer["latency_ns"]["total"] for layer in layers),
        "units": units_lat,
    }
    out["leakage_power_uw"] = leak_p
    counts = {k: sum(layer["counts"][k] for layer in layers) for k in layers[0]["counts"]}
    out["counts"] = counts
    # per-action unit prices (averages over the run)
    d = lambda a, b: (a / b) if b else None  # noqa: E731
    out["unit_energy_fj"] = {
        "adc_conversion": d(en["adc_circuit"] * 1e3, counts["adc_conversions"]),
        "adc_conversion_cell_current": d(en["adc_cell_current"] * 1e3, counts["adc_conversions"]),
        "adc_conversion_bias": d(en["adc_bias"] * 1e3, counts["adc_conversions"]),
        "array_wl_per_subarray_read": d(en["array_wl"] * 1e3, counts["subarray_reads"]),
        "wl_switchmatrix_per_subarray_read": d(
            en["wl_switchmatrix"] * 1e3, counts["subarray_reads"]
        ),
        "mux_per_subarray_read": d(en["mux"] * 1e3, counts["subarray_reads"]),
        "shiftadd_per_subarray_read": d(en["shiftadd"] * 1e3, counts["subarray_reads"]),
        "addertree_add": d(en["addertree"] * 1e3, counts["addertree_adds"]),
        "buffer_per_bit": d(en["buffer_sram_rf"] * 1e3, counts["buffer_bits"]),
        "bus_pe_per_bit": d(en["bus_pe"] * 1e3, counts["bus_bits"]),
        "htree_tile_per_bit": d(en["htree_tile"] * 1e3, counts["htree_bits"]),
        "xybus_chip_per_bit": d(en["xybus_chip"] * 1e3, counts["xybus_bits"]),
    }
    return out


# ----------------------------------------------------------------------------- driver
def grid_settings(nets: list[str], speedups: list[int] = (8,)) -> list[tuple[str, dict]]:
    keys = list(GRID)
    return [
        (net, dict(zip(keys, vals, strict=True), **FIXED, **VARIANTS[sp]))
        for sp in speedups
        for net in nets
        for vals in itertools.product(*(GRID[k] for k in keys))
    ]


def run_key(r: dict) -> str:
    return json.dumps([r["network"], r["settings"]], sort_keys=True)


def one(binary: Path, export: Path, net: str, s: dict, keep_logs: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"ns_{net}_") as td:
        wd = Path(td)
        for f in (export / net).iterdir():
            shutil.copy(f, wd / f.name)
        n_layers = len((wd / "NetWork.csv").read_text().strip().splitlines())
        rec: dict = {"network": net, "settings": s}
        rc, text = run_main(binary, wd, s, pipeline=True)
        tag = (
            "{network}_{adc_type}_{tech_nm}nm_a{array_size}_c{cell_bits}_b{adc_bits}_s{sp}".format(
                network=net, sp=s.get("speedup_degree", 8), **s
            )
        )
        if keep_logs is not None:
            (keep_logs / f"{tag}.txt").write_text(text)
        if rc != 0 or "Summary" not in text:
            errs = sorted({line.strip() for line in text.splitlines() if "ERROR" in line})
            rec.update(
                status="rejected" if errs else "failed",
                returncode=rc,
                neurosim_messages=errs,
                message=None if errs else text[-2000:],
            )
            return rec
        try:
            rec.update(parse(text, n_layers))
        except Exception as e:  # keep the grid going; record what failed
            rec.update(status="parse_error", message=repr(e), tail=text[-2000:])
            return rec
        errs = [line.strip() for line in text.splitlines() if "ERROR" in line or "Error" in line]
        rec["status"] = "ok"
        if errs:
            rec["neurosim_messages"] = sorted(set(errs))
        rc2, text2 = run_main(binary, wd, s, pipeline=False)
        if rc2 == 0 and "Summary" in text2:
            p2 = parse(text2, n_layers)
            rec["layer_by_layer"] = {
                "energy_pj": {
                    k: p2["energy_pj"][k]
                    for k in (
                        "total",
                        "read_dynamic",
                        "adc",
                        "accumulation",
                        "other_periphery",
                        "buffer",
                        "ic",
                        "leakage",
                    )
                },
                "latency_ns": {
                    k: p2["latency_ns"][k]
                    for k in (
                        "total",
                        "clock_period",
                        "adc",
                        "accumulation",
                        "other_periphery",
                        "buffer",
                        "ic",
                    )
                },
            }
        return rec


PARAM_NAMES = [
    "operationmode",
    "memcelltype",
    "accesstype",
    "transistortype",
    "deviceroadmap",
    "globalBusType",
    "globalBufferType",
    "globalBufferCoreSizeRow",
    "globalBufferCoreSizeCol",
    "tileBufferType",
    "tileBufferCoreSizeRow",
    "tileBufferCoreSizeCol",
    "peBufferType",
    "chipActivation",
    "reLu",
    "novelMapping",
    "SARADC",
    "currentMode",
    "pipeline",
    "speedUpDegree",
    "validated",
    "synchronous",
    "algoWeightMax",
    "algoWeightMin",
    "clkFreq",
    "temp",
    "technode",
    "inputtoggle",
    "outputtoggle",
    "numRowSubArray",
    "numColSubArray",
    "relaxArrayCellHeight",
    "relaxArrayCellWidth",
    "numColMuxed",
    "levelOutput",
    "cellBit",
    "heightInFeatureSize1T1R",
    "widthInFeatureSize1T1R",
    "heightInFeatureSizeCrossbar",
    "widthInFeatureSizeCrossbar",
    "resistanceOn",
    "resistanceOff",
    "readPulseWidth",
    "accessVoltage",
    "writeVoltage",
    "maxGlobalBusWidth",
    "treeFoldedRatio",
    "globalBusDelayTolerance",
    "localBusDelayTolerance",
    "minSenseVoltage",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
]


def param_defaults(param_cpp: Path) -> dict:
    """First assignment of each listed field in the *pristine* Param.cpp text (as written there)."""
    src = param_cpp.read_text(errors="replace")
    out: dict = {}
    for name in PARAM_NAMES:
        m = re.search(r"^\s*" + name + r"\s*=\s*([^;]+);", src, re.M)
        if m:
            v = m.group(1).strip()
            try:
                out[name] = int(v) if re.fullmatch(r"-?\d+", v) else float(eval(v, {}, {}))  # noqa: S307
            except Exception:
                out[name] = {"true": True, "false": False}.get(v, v)
    rv = dict(re.findall(r"technode == (\d+)\) \{readVoltage=([0-9.]+);\}", src))
    out["readVoltage_by_technode"] = {int(k): float(v) for k, v in rv.items()}
    out["resistanceAccess"] = "resistanceOn*IR_DROP_TOLERANCE"
    out["dumcolshared"] = "levelOutput"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neurosim", required=True, help="patched+built NeuroSIM dir (holds ./main)")
    ap.add_argument("--export", default="/tmp/ns_export", help="output dir of export_network.py")
    ap.add_argument("--out", default=str(DATA / "runs.json"))
    ap.add_argument("--nets", default="mlp,cnn,cnn_wide")
    ap.add_argument("--speedups", default="8,1", help="variants to run (keys of VARIANTS)")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs already in --out that are not rerun (old runs without speedup_degree are stock = 8)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--logs", default=None, help="keep raw stdout of each run here")
    ap.add_argument("--pristine-param", default=None, help="pristine Param.cpp for param_defaults")
    ap.add_argument("--commit", default=None)
    a = ap.parse_args()
    ns = Path(a.neurosim)
    binary = ns / "main"
    logs = Path(a.logs) if a.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    todo = grid_settings(a.nets.split(","), [int(v) for v in a.speedups.split(",")])
    with ThreadPoolExecutor(a.jobs) as ex:
        runs = list(ex.map(lambda t: one(binary, Path(a.export), t[0], t[1], logs), todo))
    ok = sum(r["status"] == "ok" for r in runs)
    print(f"{ok}/{len(runs)} runs ok")
    if a.merge and Path(a.out).exists():
        old = json.loads(Path(a.out).read_text())["runs"]
        for r in old:
            for k, v in VARIANTS[8].items():
                r["settings"].setdefault(k, v)
        new_keys = {run_key(r) for r in runs}
        kept = [r for r in old if run_key(r) not in new_keys]
        print(f"merge: kept {len(kept)} of {len(old)} old runs")
        runs = kept + runs
    doc = {
        "neurosim": {
            "repo": REPO,
            "commit": a.commit,
            "patch": "instrumentation.patch",
            "build": "make -j2",
            "param_defaults": param_defaults(
                Path(a.pristine_param) if a.pristine_param else ns / "Param.cpp"
            ),
            "settings_changed_from_defaults": {
                "memcelltype": "2 (RRAM; Param.cpp default 1 = SRAM) via NS_MEMCELLTYPE",
                "accesstype": "1 (1T1R, = default) via NS_ACCESSTYPE",
                "technode": "grid {32, 22} via NS_TECHNODE (default 22)",
                "SARADC": "grid {true=sar, false=mlsa} via NS_SARADC (default false = MLSA)",
                "levelOutput": "grid 2^{3..8} via NS_ADC_BITS (default 32)",
                "cellBit": "grid {1, 4} via NS_CELLBIT (default 1)",
                "numColMuxed": "8 (= default) via NS_COLMUX",
                "numColSubArray": "= numRowSubArray (grid {64,128,256}) via NS_NUMCOLSUBARRAY; stock main() only sets numRowSubArray from argv, numColSubArray stays 128",
                "numRowSubArray/numRowParallel": "argv[4]/argv[5] = array size (fully parallel read)",
                "synapseBit/numBitInput": "argv[2]/argv[3] = 8/8",
                "speedUpDegree": "settings.speedup_degree: 8 (= default) or 1, via NS_SPEEDUP; Chip.cpp clamps it to int(maxIFM/minIFM over conv layers) = 1 for all our nets, so alone it changes nothing",
                "weight duplication": "settings.weight_duplication: true (= stock) or false via NS_DUPLICATION=0 (patch: Chip.cpp PEDesign/SubArrayDup report 1 copy, floorplan unchanged; Tile.cpp skips empty PE slots in that mode); speedup_degree 1 runs have it false",
            },
        },
        "recipe": {
            "export": "python benchmarks/neurosim/export_network.py --out /tmp/ns_export",
            "run": "python benchmarks/neurosim/run_grid.py --neurosim <patched NeuroSIM dir> --export /tmp/ns_export --out tests/data/neurosim/runs.json --pristine-param <pristine Param.cpp> --commit <sha> [--nets mlp,cnn,cnn_wide --speedups 8,1 --merge]",
            "training": {
                "evaluator": "evaluators.cim.evaluator.CimEvaluator(dataset='digits', epochs=8, mc_instances=1, seed=0)",
                "mlp": {
                    "dnn.model": "mlp",
                    "dnn.hidden": 256,
                    "train.method": "ideal",
                    "train.seed": 0,
                },
                "cnn": {"dnn.model": "cnn", "train.method": "ideal", "train.seed": 0},
                "cnn_wide": "evaluators.cim.models.cnn(input_shape=(1,8,8), num_classes=10, channels=(29, 129)) trained by evaluators.cim.training.train_model(net, CimEvaluator(dataset='digits', seed=0).data(), TrainConfig(method='ideal', epochs=8, seed=0, batch_size=64)); see cnn_wide_digits.npz meta_json",
            },
            "input": "first calibration image (CimEvaluator._calibration_inputs()[0]); per layer 8-bit unsigned codes round(x/(x_fs/255)) clipped to 0..255, x_fs = max|input| of that layer over the 256 calibration inputs; 8 bit-plane columns per vector, MSB first; conv: im2col rows (c,kh,kw), positions along columns",
            "weights": "per layer codes c = round(127*w/max|w|) in -127..127 written as c/128 (exact); NeuroSim LoadInWeightData maps f -> v = 128*(f+1) = c+128 (offset binary 1..255) split into ceil(8/cellBit) cells of cellBit bits, conductance = Gmin + digit/(2^cellBit-1)*(Gmax-Gmin)",
            "network_csv": "FC: 1,1,K,1,1,N,0,1; conv: (H+2p),(W+2p),C,kh,kw,N,pool,stride (padded IFM so NeuroSim counts all H*W positions)",
            "grid": {
                **GRID,
                **FIXED,
                "speedup_degree": sorted(VARIANTS),
                "variants": {str(k): v for k, v in VARIANTS.items()},
            },
        },
        "runs": runs,
    }
    Path(a.out).write_text(json.dumps(doc, separators=(",", ":"), default=lambda o: None))
    print("wrote", a.out, os.path.getsize(a.out), "bytes")


if __name__ == "__main__":
    main()

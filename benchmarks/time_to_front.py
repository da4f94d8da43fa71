"""Time to the Pareto front: warm-started trainings and multi-fidelity against plain NSGA-II.

The space is an enumerable CIM space on digits (MLP 64-16-10, 300 training images, 6 epochs
from scratch): training method (hwa, HA-SGD) × σ (5, 10, 15 %) × Group-HS (0, 1e-3) × BSQ
(0, 5e-3) = 24 training recipes, each deployed on 6 chips (ADC 3/5/8 bits × arrays
64/128): 144 designs. hwa and HA-SGD train against the deployed chip (its ADC and array,
issue 12), so every design is its own training: 144 distinct trainings, all fine-tuned
from one digital parent per budget when warm-started. Objectives: accuracy_p5 (max),
energy_nj (min), area_mm2 (min).

1. The *true front*: every design evaluated (grid), warm start off, from-scratch budget.
2. For each seed, in one interleaved run (each round runs the four set-ups back to back on
   fresh model caches, so no training is shared between set-ups or rounds):
   (a) NSGA-II, warm start off; (b) NSGA-II, warm start on; (c) (b) + multi-fidelity
   (``fidelity: {resource: train.epochs, rungs: [2, 6], eta: 3}``); (d) Optuna TPE with (b).
   From the store's completion times: the wall time until the front's hypervolume (one
   reference point for all: each objective's worst value over the 144 designs, 10 % of its
   range beyond) first reaches 0.95 of the true front's, and the final front's / the true.
3. A table of medians over seeds, with ratios to (a). Target (issue 15): (c) ≥ 4× faster
   than (a), every final front within 2 % of the true hypervolume.

A set-up's hypervolume is measured on its *own* results (a warm-started model's accuracy
is its own); budgets are rows of the store (rungs included): 100 per run.

Usage: ``python benchmarks/time_to_front.py [--seeds 5] [--budget 100] [--max-train 300]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from dse.api import run  # noqa: E402
from dse.query import feasible_done, hypervolume  # noqa: E402
from evaluators.cim.model_cache import ModelCache  # noqa: E402

OBJECTIVES = {"accuracy_p5": "max", "energy_nj": "min", "area_mm2": "min"}
EPOCHS = 6
RUNGS = [2, EPOCHS]
SPACE: dict[str, Any] = {
    "dnn.model": {"value": "mlp"},
    "dnn.hidden": {"value": 16},
    "train.method": {"choices": ["hwa", "ha_sgd"]},
    "train.sigma": {"choices": [0.05, 0.1, 0.15]},
    "train.samples": {"value": 2, "when": "train.method == 'ha_sgd'"},
    "train.lr": {"value": 0.02},
    "dnn.group_hs": {"choices": [0.0, 1e-3]},
    "dnn.bsq_alpha": {"choices": [0.0, 5e-3]},
    "hw.device": {"value": "reram"},
    "hw.adc_bits": {"choices": [3, 5, 8]},
    "hw.array_size": {"choices": [64, 128]},
    "hw.act_bits": {"value": 6},
    "hw.weight_bits": {"value": 6, "when": "dnn.bsq_alpha == 0"},
}
SETUPS = {
    "(a) NSGA-II, warm start off": ("nsga2", False, False),
    "(b) NSGA-II, warm start on": ("nsga2", True, False),
    "(c) (b) + multi-fidelity": ("nsga2", True, True),
    "(d) TPE, warm start on": ("tpe", True, False),
}


def study(name: str, cache: Path, optimizer: str, warm: bool, fidelity: bool, **kw: Any) -> dict:
    evaluator = {
        "name": "cim",
        "dataset": "digits",
        "mc_instances": 8,
        "max_train": kw["max_train"],
        "cache_dir": str(cache),
        "warm_start": warm,
    }
    space = dict(SPACE)
    spec: dict[str, Any] = {
        "name": name,
        "evaluator": evaluator,
        "space": space,
        "objectives": OBJECTIVES,
        "optimizer": {"name": optimizer, **({"population": 12} if optimizer == "nsga2" else {})},
        "budget": {"evaluations": kw["budget"]},
        "runner": {"kind": "serial"},
        "seed": kw["seed"],
    }
    if fidelity:
        spec["fidelity"] = {"resource": "train.epochs", "rungs": RUNGS, "eta": 3}
    else:
        space["train.epochs"] = {"value": EPOCHS}
    return spec


def hv_over_time(
    frame: pd.DataFrame, t0: float, ref: dict[str, float]
) -> list[tuple[float, float]]:
    """(seconds since t0, hypervolume of the full-budget results finished by then)."""
    done = feasible_done(frame).sort_values("finished_at")  # done, full-budget rows
    out = []
    for i in range(1, len(done) + 1):
        sub = done.iloc[:i]
        out.append(
            (
                float(sub["finished_at"].iloc[-1] - t0),
                hypervolume(sub, OBJECTIVES, ref_point=ref).value,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--max-train", type=int, default=300)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="time_to_front."))
    kw = {"budget": args.budget, "max_train": args.max_train, "seed": 0}

    t0 = time.time()
    truth = run(
        {**study("truth", root / "truth-cache", "grid", False, False, **{**kw, "budget": 144})},
        runs_dir=root,
    )
    truth_s = time.time() - t0
    tf = truth.frame()
    done = tf[tf["status"] == "done"]
    trainings = len(ModelCache(root / "truth-cache" / "models").trainings())
    worst = {k: (done[k].min() if d == "max" else done[k].max()) for k, d in OBJECTIVES.items()}
    best = {k: (done[k].max() if d == "max" else done[k].min()) for k, d in OBJECTIVES.items()}
    ref = {
        k: worst[k] - 0.1 * (best[k] - worst[k])
        if d == "max"
        else worst[k] + 0.1 * (worst[k] - best[k])
        for k, d in OBJECTIVES.items()
    }
    hv_true = hypervolume(done, OBJECTIVES, ref_point=ref).value
    print(
        f"true front: {len(done)} designs, {trainings} trainings (warm start off), "
        f"{truth_s:.0f} s; hypervolume {hv_true:.6g} at reference {ref}"
    )

    results: dict[str, list[dict[str, float]]] = {k: [] for k in SETUPS}
    for seed in range(args.seeds):
        for label, (optimizer, warm, fidelity) in SETUPS.items():
            tag = f"s{seed}-{optimizer}-{int(warm)}{int(fidelity)}"
            cache = root / f"{tag}-cache"
            t_start = time.time()
            view = run(
                study(tag, cache, optimizer, warm, fidelity, **{**kw, "seed": seed}), runs_dir=root
            )
            wall = time.time() - t_start
            curve = hv_over_time(view.frame(), t_start, ref)
            reach = next((t for t, hv in curve if hv >= 0.95 * hv_true), float("inf"))  # inf: never
            final = curve[-1][1] / hv_true if curve else 0.0
            n_train = len(ModelCache(cache / "models").trainings())
            results[label].append(
                {"reach": reach, "final": final, "wall": wall, "trainings": n_train}
            )
            print(
                f"seed {seed} {label:30s} 0.95 HV at {reach:7.1f} s; final HV {final:.3f} of true; "
                f"{n_train} trainings; {wall:.0f} s",
                flush=True,
            )

    summarize(results, args.seeds, args.budget)


def summarize(results: dict[str, list[dict[str, float]]], seeds: int, budget: int) -> None:
    """Print the table: medians over seeds, ratios to (a) taken within each seed."""
    base_rows = results["(a) NSGA-II, warm start off"]

    def seed_ratios(rows: list[dict[str, float]]) -> list[float]:
        """(a)'s time / this set-up's, per seed (the same load within a seed), where both
        reached 0.95: ratios are taken within a round, never across."""
        pairs = zip(base_rows, rows, strict=True)
        return [a["reach"] / x["reach"] for a, x in pairs if math.isfinite(a["reach"] + x["reach"])]

    def median_ratio(rows: list[dict[str, float]]) -> str:
        r = seed_ratios(rows)
        return f"{statistics.median(r):6.2f}x" if r else "    n/a"

    print(f"\n{seeds} seeds, medians; budget {budget} rows per run, serial runner")
    print(
        f"{'set-up':32s} {'to 0.95 HV':>11s} {'reached':>8s} {'(a)/this':>8s} {'final HV':>9s} "
        f"{'min final':>10s} {'trainings':>10s} {'wall':>7s}"
    )
    for label, rows in results.items():
        reach = statistics.median(r["reach"] for r in rows)
        reached = sum(math.isfinite(r["reach"]) for r in rows)
        finals = [r["final"] for r in rows]
        print(
            f"{label:32s} {reach:9.1f} s {reached:4d}/{len(rows):<3d} {median_ratio(rows)} "
            f"{statistics.median(finals):9.3f} {min(finals):10.3f} "
            f"{statistics.median(r['trainings'] for r in rows):10.0f} "
            f"{statistics.median(r['wall'] for r in rows):6.0f}s"
        )
    c = seed_ratios(results["(c) (b) + multi-fidelity"])
    fast = bool(c) and statistics.median(c) >= 4
    print(
        f"\ntarget (c) >= 4x faster than (a): {'PASS' if fast else 'MISS'} "
        f"({median_ratio(results['(c) (b) + multi-fidelity']).strip()}, median over seeds where both reached); "
        f"every final front within 2 % of the true hypervolume: "
        f"{'PASS' if all(r['final'] >= 0.98 for rows in results.values() for r in rows) else 'MISS'}"
    )


if __name__ == "__main__":
    main()

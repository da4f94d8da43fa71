"""cim-dse's cost model beside the recorded DNN+NeuroSim V1.4 runs, term by term.

    python benchmarks/cost_crosscheck.py            # summary per network and term
    python benchmarks/cost_crosscheck.py --runs     # plus one line per recorded run
    python benchmarks/cost_crosscheck.py --network mlp --speedup 8

Prints, for every term that has a NeuroSim counterpart (``evaluators/cim/cost/crosscheck.py``
TERMS), the ratio ours / NeuroSim over all recorded settings (min, median, max) and the
trend factors across ADC bits, array size, cell width, node and ADC type. The reference
data, its commit and recipe are in ``tests/data/neurosim/``; NeuroSim itself is not needed.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.cim.cost.crosscheck import compare, neurosim_for, ok_runs, ours_for  # noqa: E402

AXES = {
    "adc_bits": (3, 8),
    "array_size": (64, 256),
    "cell_bits": (1, 4),
    "tech_nm": (32, 22),
    "adc_type": ("sar", "mlsa"),
}


def summary(network: str, speedup: int, per_run: bool) -> None:
    runs = ok_runs(network, speedup=speedup)
    agg: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    for r in runs:
        rows = list(compare(r))
        for c in rows:
            agg[(c.quantity, "+".join(c.ours_terms), "+".join(c.neurosim_terms))].append(c.ratio)
        if per_run:
            s = r["settings"]
            tot = {c.quantity: c for c in rows if c.ours_terms == ("total",)}
            print(
                f"  {s['adc_type']:>4} {s['tech_nm']:>2} nm A={s['array_size']:<3} "
                f"cell={s['cell_bits']} adc={s['adc_bits']}  "
                + "  ".join(
                    f"{q} {tot[q].ours:10.1f} vs {tot[q].neurosim:10.1f} ({tot[q].ratio:.2f})"
                    for q in ("energy", "area", "latency")
                    if q in tot
                )
            )
    print(f"\n{network}: {len(runs)} recorded runs (speedUpDegree {speedup}); ours / NeuroSim")
    print(f"  {'quantity':8} {'ours':26} {'NeuroSim':34} {'min':>6} {'median':>7} {'max':>6}")
    for (q, mine, theirs), v in agg.items():
        tol = 1 + 1e-4  # NeuroSim prints 6 significant digits
        flag = "" if min(v) >= 0.5 / tol and max(v) <= 2.0 * tol else "  <- outside 2x"
        print(
            f"  {q:8} {mine:26} {theirs:34} {min(v):6.2f} {statistics.median(v):7.2f} "
            f"{max(v):6.2f}{flag}"
        )
    print("  trends (ours' ratio between two settings / NeuroSim's; worst case):")
    index = {tuple(sorted(r["settings"].items())): r for r in runs}
    for axis, (lo, hi) in AXES.items():
        worst: dict[str, float] = {}
        for r in runs:
            if r["settings"][axis] != lo:
                continue
            r2 = index.get(tuple(sorted(dict(r["settings"], **{axis: hi}).items())))
            if r2 is None:
                continue
            o1, o2, n1, n2 = ours_for(r), ours_for(r2), neurosim_for(r), neurosim_for(r2)
            for q in ("energy", "area", "latency"):
                key = "chip" if q == "area" else "total"
                f = (o2[q]["total"] / o1[q]["total"]) / (n2[q][key] / n1[q][key])
                worst[q] = max(worst.get(q, 1.0), f, 1 / f)
        if worst:
            print(
                f"    {axis:10} {lo!s:>4} -> {hi!s:<4} "
                + "  ".join(f"{q} {w:.2f}" for q, w in worst.items())
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", choices=["mlp", "cnn", "cnn_wide"], action="append")
    ap.add_argument("--speedup", type=int, default=1, choices=[1, 8])
    ap.add_argument("--runs", action="store_true", help="one line per recorded run")
    args = ap.parse_args(argv)
    for net in args.network or ["mlp", "cnn", "cnn_wide"]:
        summary(net, args.speedup, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

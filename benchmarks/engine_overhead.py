"""Engine overhead per design, beside Optuna's own ask/tell loop (one run, side by side).

    python benchmarks/engine_overhead.py [--designs 10000]
    python benchmarks/engine_overhead.py --resume-sizes 10000,50000,100000

Measures wall time per design for a no-op evaluator (so only the engine is
timed) through ``dse.run`` with its durable default store (SQLite file, every
design recorded queued -> running -> done), for two optimizers; and, in the same
run, Optuna's ask/tell loop for the same number of trials with SQLite storage
and with in-memory storage. Targets (issue 3): <= 2 ms per design and >= 15x less
than Optuna on SQLite. Also times a Pareto query over the recorded designs.

``--resume-sizes``: for each size N, an NSGA-II study of N stored designs is built, then
resumed for 100 more designs in a fresh process; prints the resume's wall time and peak
RSS beside the fresh run's time per 1,000 designs (issue 14: resume linear in the study).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

import dse


def engine_ms_per_design(n: int, optimizer: str, workdir: Path) -> tuple[float, int]:
    spec = {
        "name": f"overhead_{optimizer}",
        "evaluator": {"name": "noop", "n_var": 2},
        "space": {"x": {"low": 0.0, "high": 1.0, "size": 2}},
        "objectives": {"f1": "min", "f2": "min"},
        "optimizer": {"name": optimizer, **({"population": 100} if optimizer == "nsga2" else {})},
        "budget": {"evaluations": n},
        "runner": {"kind": "serial", "batch": 100},
        "seed": 0,
    }
    t0 = time.perf_counter()
    view = dse.run(spec, runs_dir=workdir)
    elapsed = time.perf_counter() - t0
    return 1e3 * elapsed / n, len(view.frame())


_RESUME_CHILD = """
import resource, sys, time
from dse.cli import main
t0 = time.perf_counter()
code = main(["resume", sys.argv[1], "--evaluations", sys.argv[2], "--no-progress", "--no-report"])
print("RESUME", time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def resume_cost(n: int, workdir: Path) -> tuple[float, float, float]:
    """(fresh run s, resume s, resume peak RSS MiB) for an NSGA-II study of ``n`` designs."""
    import subprocess
    import sys

    ms, recorded = engine_ms_per_design(n, "nsga2", workdir)
    assert recorded == n, f"engine recorded {recorded} of {n} designs"
    out = subprocess.run(
        [sys.executable, "-c", _RESUME_CHILD, str(workdir / "overhead_nsga2"), str(n + 100)],
        capture_output=True,
        text=True,
        check=True,
    )
    secs, rss_kb = out.stdout.split("RESUME")[-1].split()[:2]
    return ms * n / 1e3, float(secs), int(rss_kb) / 1024


def optuna_ms_per_trial(n: int, storage: str | None) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    t0 = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        x0 = trial.suggest_float("x_0", 0.0, 1.0)
        x1 = trial.suggest_float("x_1", 0.0, 1.0)
        study.tell(trial, [x0, x1])
    return 1e3 * (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=10_000)
    parser.add_argument(
        "--optuna-sqlite-trials",
        type=int,
        default=2_000,
        help="Optuna on SQLite is slow; time this many trials (per-trial cost is flat)",
    )
    parser.add_argument(
        "--resume-sizes",
        default="",
        help="comma-separated study sizes: time and peak RSS of resuming each (skips the rest)",
    )
    args = parser.parse_args()
    if args.resume_sizes:
        sizes = [int(v) for v in args.resume_sizes.split(",")]
        print(f"{'designs':>8s} {'fresh run s':>12s} {'s per 1k':>9s} {'resume s':>9s} "
              f"{'resume peak MiB':>16s} {'resume / 1k fresh':>18s}")  # fmt: skip
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                fresh, resumed, rss = resume_cost(size, Path(tmp))
            per_k = fresh / size * 1e3
            print(f"{size:8d} {fresh:12.1f} {per_k:9.2f} {resumed:9.2f} {rss:16.0f} "
                  f"{resumed / per_k:18.2f}")  # fmt: skip
        return
    n = args.designs
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        rows = []
        for opt in ("random", "nsga2"):
            ms, recorded = engine_ms_per_design(n, opt, tmpdir / "runs")
            assert recorded == n, f"engine recorded {recorded} of {n} designs"
            rows.append((f"cim-dse engine ({opt}, SQLite store)", ms, n))
        t0 = time.perf_counter()
        view = dse.load(tmpdir / "runs" / "overhead_random")
        front = view.pareto()
        pareto_s = time.perf_counter() - t0
        optuna_sqlite = optuna_ms_per_trial(
            args.optuna_sqlite_trials, f"sqlite:///{tmpdir / 'optuna.db'}"
        )
        optuna_mem = optuna_ms_per_trial(n, None)
    rows.append(("Optuna ask/tell, SQLite storage", optuna_sqlite, args.optuna_sqlite_trials))
    rows.append(("Optuna ask/tell, in-memory storage", optuna_mem, n))

    print(f"\nEngine overhead, no-op evaluator ({n} designs)")
    print(f"{'loop':44s} {'ms/design':>10s} {'designs':>8s} {'vs Optuna SQLite':>17s}")
    for name, ms, count in rows:
        print(f"{name:44s} {ms:10.3f} {count:8d} {optuna_sqlite / ms:16.1f}x")
    best_engine = min(ms for name, ms, _ in rows if name.startswith("cim-dse"))
    print(
        f"\ntarget <= 2 ms/design: {'PASS' if best_engine <= 2 else 'MISS'} ({best_engine:.3f} ms); "
        f"target >= 15x less than Optuna SQLite: "
        f"{'PASS' if optuna_sqlite / best_engine >= 15 else 'MISS'} ({optuna_sqlite / best_engine:.1f}x)"
    )
    print(
        f"Pareto query over the {n} recorded designs (load + front of {len(front)}): {pareto_s * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()

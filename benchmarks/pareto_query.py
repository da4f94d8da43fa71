"""Store overhead and Pareto-query speed, side by side with Optuna.

What it measures (one run, one machine, printed as a table):

1. store overhead per design for the engine's pattern: ``add_designs`` +
   ``mark_running`` + ``record_results`` with ``--batch`` designs per
   transaction (target: <= 2 ms per design on SQLite);
2. a bulk load of ``--designs`` (100,000) done designs with 3 objectives
   (DTLZ2 from pymoo on random inputs, so the front is a curved surface);
3. ``Store.frame()`` and ``dse.query.pareto_front`` on them (target < 1 s);
4. Optuna's equivalent on ``--optuna-trials`` (20,000) trials written with
   ``study.add_trials`` into an SQLite Optuna storage in a temp dir:
   ``optuna.load_study(...).best_trials``, beside our query on the same
   20,000 designs (store read + front), with ratios.

Run: ``python benchmarks/pareto_query.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dse.query import pareto_front  # noqa: E402
from dse.runners.base import EvalResult  # noqa: E402
from dse.store import Store  # noqa: E402

OBJECTIVES = {"f1": "min", "f2": "min", "f3": "min"}


def _designs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from pymoo.problems import get_problem

    rng = np.random.default_rng(seed)
    X = rng.random((n, 7))
    F = get_problem("dtlz2", n_var=7, n_obj=3).evaluate(X)
    return X, F


def _fill(store: Store, X: np.ndarray, F: np.ndarray, batch: int) -> float:
    t0 = time.perf_counter()
    for s in range(0, len(X), batch):
        ids = [f"d{i}" for i in range(s, min(s + batch, len(X)))]
        rows = [
            (d, {f"x_{j}": float(v) for j, v in enumerate(X[i])}, None)
            for d, i in zip(ids, range(s, s + len(ids)), strict=True)
        ]
        store.add_designs(rows)
        store.mark_running(ids, "bench")
        now = time.time()
        store.record_results(
            [
                EvalResult(
                    d,
                    "done",
                    {"f1": float(F[i, 0]), "f2": float(F[i, 1]), "f3": float(F[i, 2])},
                    started_at=now,
                    finished_at=now,
                )
                for d, i in zip(ids, range(s, s + len(ids)), strict=True)
            ]
        )
    return time.perf_counter() - t0


def _overhead(tmp: Path, n: int, batch: int) -> dict[str, float]:
    store = Store(tmp / "overhead.db")
    X, F = _designs(n, 1)
    t = {"add": 0.0, "claim": 0.0, "record": 0.0}
    for s in range(0, n, batch):
        ids = [f"o{i}" for i in range(s, min(s + batch, n))]
        rows = [
            (d, {"x_0": float(X[s + k, 0]), "x_1": float(X[s + k, 1])}, None)
            for k, d in enumerate(ids)
        ]
        t0 = time.perf_counter()
        store.add_designs(rows)
        t1 = time.perf_counter()
        store.mark_running(ids, "w")
        t2 = time.perf_counter()
        store.record_results(
            [
                EvalResult(d, "done", {"f1": float(F[s + k, 0])}, started_at=1.0, finished_at=2.0)
                for k, d in enumerate(ids)
            ]
        )
        t3 = time.perf_counter()
        t["add"] += t1 - t0
        t["claim"] += t2 - t1
        t["record"] += t3 - t2
    store.close()
    return {k: v / n * 1e3 for k, v in t.items()}


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=100_000)
    ap.add_argument("--optuna-trials", type=int, default=20_000)
    ap.add_argument("--overhead-designs", type=int, default=2_000)
    ap.add_argument(
        "--batch", type=int, default=10, help="designs per transaction (engine pattern)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (best is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tmpdir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the SQLite files go (default: tmpfs when present, so both sides are timed "
        "without the disk's fsync cost; Optuna's add_trials is ~140 ms/trial on a slow disk)",
    )
    ap.add_argument("--quick", action="store_true", help="10x smaller, for a smoke run")
    a = ap.parse_args()
    if a.quick:
        a.designs, a.optuna_trials, a.overhead_designs = (
            a.designs // 10,
            a.optuna_trials // 10,
            a.overhead_designs // 4,
        )

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=a.tmpdir) as d:
        tmp = Path(d)
        ov = _overhead(tmp, a.overhead_designs, a.batch)
        total = sum(ov.values())
        rows.append(
            (
                "store overhead (SQLite)",
                f"{a.batch}/txn, {a.overhead_designs} designs",
                f"{total:.3f} ms/design (add {ov['add']:.3f} + claim {ov['claim']:.3f} + record {ov['record']:.3f}); target <= 2",
            )
        )

        X, F = _designs(a.designs, a.seed)
        store = Store(tmp / "big.db")
        t_fill = _fill(store, X, F, 5_000)
        rows.append(
            (
                "bulk load",
                f"{a.designs} designs, 5000/txn",
                f"{t_fill:.2f} s ({t_fill / a.designs * 1e6:.1f} us/design)",
            )
        )

        t_frame = _best(store.frame, a.repeat)
        df = store.frame(status="done")
        front = pareto_front(df, OBJECTIVES)
        t_front = _best(lambda: pareto_front(df, OBJECTIVES), a.repeat)
        rows.append(("Store.frame()", f"{a.designs} rows", f"{t_frame:.3f} s"))
        rows.append(
            (
                "pareto_front (3 obj)",
                f"{a.designs} rows -> {len(front)} on front",
                f"{t_front:.3f} s; target < 1",
            )
        )
        t_both = t_frame + t_front
        rows.append(("frame + pareto_front", f"{a.designs} rows", f"{t_both:.3f} s"))
        store.close()

        # Optuna: same DTLZ2 points, first n trials, bulk-added
        n = a.optuna_trials
        url = f"sqlite:///{tmp / 'optuna.db'}"
        study = optuna.create_study(storage=url, study_name="bench", directions=["minimize"] * 3)
        dists = {
            f"x_{j}": optuna.distributions.FloatDistribution(0.0, 1.0) for j in range(X.shape[1])
        }
        trials = [
            optuna.trial.create_trial(
                params={f"x_{j}": float(v) for j, v in enumerate(X[i])},
                distributions=dists,
                values=[float(v) for v in F[i]],
            )
            for i in range(n)
        ]
        t0 = time.perf_counter()
        study.add_trials(trials)
        t_add = time.perf_counter() - t0
        rows.append(
            (
                "optuna add_trials (SQLite)",
                f"{n} trials",
                f"{t_add:.2f} s ({t_add / n * 1e3:.2f} ms/trial)",
            )
        )

        def optuna_best() -> int:
            return len(optuna.load_study(study_name="bench", storage=url).best_trials)

        n_best = optuna_best()
        t_opt = _best(optuna_best, a.repeat)
        small = Store(tmp / "small.db")
        _fill(small, X[:n], F[:n], 5_000)

        def ours() -> int:
            return len(pareto_front(small.frame(status="done"), OBJECTIVES))

        n_ours = ours()
        t_ours = _best(ours, a.repeat)
        assert n_ours == n_best, f"fronts differ: ours {n_ours}, Optuna {n_best}"
        rows.append(
            ("optuna load_study().best_trials", f"{n} trials -> {n_best}", f"{t_opt:.3f} s")
        )
        rows.append(
            (
                "ours: frame + pareto_front",
                f"{n} designs -> {n_ours}",
                f"{t_ours:.3f} s  ({t_opt / t_ours:.0f}x faster than Optuna)",
            )
        )
        rows.append(
            (
                "ours @100k vs Optuna @20k",
                f"{a.designs} vs {n}",
                f"{t_opt / t_both:.1f}x (ours on {a.designs // n}x the data)",
            )
        )

    print(f"SQLite files in {a.tmpdir or tempfile.gettempdir()}; best of {a.repeat} timed runs")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'what':<{w0}}  {'size':<{w1}}  result")
    print("-" * (w0 + w1 + 60))
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}")


if __name__ == "__main__":
    main()

"""Ray runner scaling and dispatch overhead, measured side by side in one run.

1. Speed-up: 8 designs of a CPU-bound 1 s evaluation (``busy``: 1 s of thread CPU
   time each, so squeezing two workers onto one core would show no speed-up)
   run serially in-process and with 2 Ray workers. Target >= 1.8x.
2. Dispatch overhead for trivial evaluations (``busy`` with 0 s): wall time per
   design through the RayRunner (adaptive batching), beside Ray Tune's wall time
   per trial for the same trivial evaluation (a function trainable, 2 concurrent
   trials, actors reused). Target: runner >= 50x lower.

Run: ``python benchmarks/ray_scaling.py`` (``--quick`` for fewer designs/trials).
Ray is started once (2 CPUs); its start-up time is printed but excluded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # Ray workers import the project from the driver's working directory

import ray  # noqa: E402

from dse.runners.base import EvalTask  # noqa: E402
from dse.runners.ray_runner import RayRunner, start_local_ray  # noqa: E402
from dse.runners.serial import SerialRunner  # noqa: E402
from evaluators.base import EvaluatorSpec  # noqa: E402


def drain(runner) -> list:
    out = []
    while runner.pending():
        out += runner.results(timeout=5.0)
    return out


def timed(runner, tasks: list[EvalTask]) -> float:
    t0 = time.perf_counter()
    runner.submit(tasks)
    out = drain(runner)
    dt = time.perf_counter() - t0
    assert len(out) == len(tasks) and all(r.status == "done" for r in out), "an evaluation failed"
    return dt


def tasks(prefix: str, n: int) -> list[EvalTask]:
    return [EvalTask(f"{prefix}{i}", {"x": (i % 97) / 97}) for i in range(n)]


def _tune_trial(config: dict) -> None:
    from ray import tune

    from dse.runners.ray_runner import _worker_evaluator

    ev = _worker_evaluator(EvaluatorSpec("busy", {"seconds": 0.0}))
    tune.report(ev.evaluate({"x": config["x"]}))


def tune_per_trial(n: int, storage: str) -> float:
    """Wall seconds per trial of Ray Tune running the same trivial evaluation."""
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(_tune_trial, {"cpu": 1}),
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name="overhead", storage_path=storage, verbose=0),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    dt = time.perf_counter() - t0
    assert len(grid) == n and not grid.errors
    return dt / n


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer trivial designs and Tune trials")
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per scaling evaluation")
    args = ap.parse_args()
    n_trivial = 2000 if args.quick else 10000
    n_tune = 10 if args.quick else 30

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    busy = EvaluatorSpec("busy", {"seconds": args.seconds})
    serial_s = timed(SerialRunner(busy, batch=8), tasks("s", 8))

    t0 = time.perf_counter()
    start_local_ray(2)
    init_s = time.perf_counter() - t0
    runner = RayRunner(busy)
    warm = RayRunner(EvaluatorSpec("busy", {"seconds": 0.05}))
    timed(warm, tasks("w", 4))  # start both worker processes (a running cluster has them)
    ray_s = timed(runner, tasks("r", 8))

    trivial = RayRunner(EvaluatorSpec("busy", {"seconds": 0.0}))
    timed(trivial, tasks("warm", 200))  # learn that evaluations are trivial
    runner_per = timed(trivial, tasks("t", n_trivial)) / n_trivial
    serial_per = (
        timed(
            SerialRunner(EvaluatorSpec("busy", {"seconds": 0.0}), batch=n_trivial),
            tasks("u", n_trivial),
        )
        / n_trivial
    )
    with tempfile.TemporaryDirectory() as storage:
        tune_per = tune_per_trial(n_tune, storage)
    ray.shutdown()

    speedup = serial_s / ray_s
    ratio = tune_per / runner_per
    print(f"ray.init (excluded below): {init_s:.2f} s\n")
    print(f"{'measurement':<52}{'value':>14}{'ratio':>12}{'target':>10}")
    print("-" * 88)
    print(
        f"{'8 x busy ' + format(args.seconds, 'g') + ' s, serial (in-process)':<52}{serial_s:>12.2f} s"
    )
    print(
        f"{'8 x busy ' + format(args.seconds, 'g') + ' s, RayRunner 2 workers':<52}{ray_s:>12.2f} s"
        f"{speedup:>11.2f}x{'>= 1.8x':>10}"
    )
    print(f"{'trivial design, SerialRunner (no dispatch)':<52}{serial_per * 1e3:>11.4f} ms")
    print(f"{f'trivial design, RayRunner ({n_trivial} designs)':<52}{runner_per * 1e3:>11.4f} ms")
    print(
        f"{f'trivial trial, Ray Tune Tuner ({n_tune} trials)':<52}{tune_per * 1e3:>11.1f} ms"
        f"{ratio:>11.0f}x{'>= 50x':>10}"
    )
    print(
        "\nratio column: speed-up over serial; Tune's per-trial time over the runner's per-design time"
    )
    print(
        f"load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the speed-up is only meaningful when nothing else competes for the cores)"
    )


if __name__ == "__main__":
    main()

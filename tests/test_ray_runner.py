"""RayRunner on a local Ray (one ``ray.init`` for the module): results, failures, limits, grouping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray_helpers import drain  # noqa: E402

from dse.runners.base import EvalTask  # noqa: E402
from dse.runners.ray_runner import RayRunner, TrainingLeases, start_local_ray  # noqa: E402
from evaluators.base import EvaluatorSpec  # noqa: E402
from evaluators.testing import read_trainings  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One private 2-CPU Ray for the whole module (starting Ray costs seconds)."""
    if ray.is_initialized():
        ray.shutdown()
    start_local_ray(2)
    yield
    ray.shutdown()


def test_results_arrive_as_they_complete_and_each_design_once():
    runner = RayRunner(EvaluatorSpec("busy", {"seconds": 0.3}))
    assert runner.capacity() == 2  # 2 CPUs / 1 CPU per evaluation, before any timing is known
    runner.submit([EvalTask(f"d{i}", {"x": i / 10}) for i in range(6)])
    first: list = []
    end = time.monotonic() + 300  # a hang guard: a loaded machine starts workers slowly
    while not first and time.monotonic() < end:
        first = runner.results(timeout=1.0)
    assert 1 <= len(first) < 6  # the first ones come back before the rest are done
    rest = drain(runner)
    out = first + rest
    assert sorted(r.design_id for r in out) == [f"d{i}" for i in range(6)]
    by_id = {r.design_id: r for r in out}
    assert all(r.status == "done" for r in out)
    assert by_id["d3"].metrics["f1"] == pytest.approx(0.3)
    assert by_id["d3"].metrics["cpu_s"] >= 0.3  # the worker really burned the CPU time
    assert len({r.worker for r in out}) == 2  # both workers took part
    runner.close()


def test_evaluation_error_is_recorded_with_traceback_and_others_finish():
    runner = RayRunner(EvaluatorSpec("crash", {"raise_on": [2, 4]}))
    runner.submit([EvalTask(f"c{i}", {"i": i}) for i in range(6)])
    out = {r.design_id: r for r in drain(runner)}
    assert {k for k, r in out.items() if r.status == "failed"} == {"c2", "c4"}
    assert "fails on purpose" in out["c2"].error and "Traceback" in out["c2"].error
    assert out["c5"].metrics == {"y": 5.0, "z": -2.5}
    runner.close()


def test_worker_warnings_come_back_with_the_results():
    # a Ray worker's stderr never reaches the user (log_to_driver=False): warnings travel back
    runner = RayRunner(EvaluatorSpec("crash", {"warn_on": [1, 2]}))
    runner.submit([EvalTask(f"w{i}", {"i": i}) for i in range(4)])
    out = drain(runner)
    carried = [w for r in out for w in r.extra.get("warnings", [])]
    assert carried and set(carried) == {
        "RuntimeWarning: crash evaluator: warning on purpose (warn_on)"
    }
    runner.close()


def test_dead_worker_is_retried_then_gives_up(tmp_path: Path):
    spec = EvaluatorSpec(
        "crash", {"exit_on": [1, 3], "marker_dir": str(tmp_path), "exit_times": 1, "seconds": 0.05}
    )
    runner = RayRunner(spec, max_retries=2)
    runner.submit([EvalTask(f"c{i}", {"i": i}) for i in range(5)])
    out = {r.design_id: r for r in drain(runner)}
    assert len(out) == 5 and all(r.status == "done" for r in out.values())
    assert out["c1"].attempts == 2 and out["c3"].attempts == 2  # second attempt in a fresh worker
    assert len(list(tmp_path.glob("exit-*"))) == 2  # each design killed exactly one worker
    runner.close()

    # a design that kills every worker it touches fails after max_retries, with the reason
    spec = EvaluatorSpec(
        "crash", {"exit_on": [7], "marker_dir": str(tmp_path / "b"), "exit_times": 99}
    )
    runner = RayRunner(spec, max_retries=1)
    runner.submit([EvalTask("k7", {"i": 7}), EvalTask("k8", {"i": 8})])
    out = {r.design_id: r for r in drain(runner)}
    assert out["k8"].status == "done"
    assert out["k7"].status == "failed" and "worker lost 2 times" in out["k7"].error
    assert out["k7"].attempts == 2
    runner.close()


def test_timeout_cancels_and_records_failure():
    runner = RayRunner(EvaluatorSpec("busy", {"seconds": 30.0}), timeout_s=0.5)
    t0 = time.monotonic()
    runner.submit([EvalTask("slow", {"x": 0.1})])
    out = drain(runner)
    assert time.monotonic() - t0 < 30  # less than the evaluation's 30 s: cancelled, not waited out
    assert out[0].status == "failed" and out[0].error.startswith("timeout")
    runner.close()


def test_training_key_trains_once_and_groups(tmp_path: Path):
    spec = EvaluatorSpec("trainkey", {"record_dir": str(tmp_path), "train_seconds": 0.3})
    runner = RayRunner(spec, shared_cache_dir=str(tmp_path))
    tasks = []
    for t in range(3):
        for j in range(4):
            tasks.append(EvalTask(f"t{t}d{j}", {"t": t, "d": j / 4}, training_key=f"key{t}"))
    runner.submit(tasks[:6])
    out = runner.results(timeout=0.05)
    runner.submit(tasks[6:])  # more hardware variants arrive while key 0/1 may be training
    out += drain(runner)
    assert sorted(r.design_id for r in out) == sorted(t.design_id for t in tasks)
    assert all(r.status == "done" for r in out)
    trainings = read_trainings(tmp_path)
    assert sorted(tr["t"] for tr in trainings) == [0, 1, 2]  # one training per key, no more
    runner.close()


def test_trivial_evaluations_are_batched_with_small_overhead():
    runner = RayRunner(EvaluatorSpec("busy", {"seconds": 0.0}))
    slots = runner.capacity()
    n = 3000
    t0 = time.perf_counter()
    runner.submit([EvalTask(f"n{i}", {"x": (i % 100) / 100}) for i in range(n)])
    out = drain(runner)
    per_design = (time.perf_counter() - t0) / n
    assert len({r.design_id for r in out}) == n == len(out)
    assert runner.capacity() > slots  # the loop is told to keep batches in flight
    assert per_design < 0.005  # a Ray round trip per design alone costs more than this
    runner.close()


def test_lease_registry_grants_one_holder_and_expires():
    leases = TrainingLeases.remote()
    assert ray.get(leases.try_acquire.remote(["k"], "A", 60.0)) == ["k"]
    assert ray.get(leases.try_acquire.remote(["k", "j"], "B", 60.0)) == ["j"]
    ray.get(leases.release.remote(["k"], "A"))
    assert ray.get(leases.try_acquire.remote(["k"], "B", 0.2)) == ["k"]
    time.sleep(0.3)  # B never renewed: the lease lapses
    assert ray.get(leases.try_acquire.remote(["k"], "C", 60.0)) == ["k"]
    assert ray.get(leases.held.remote()) == {"k": "C", "j": "B"}
    ray.kill(leases)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="timeout_s"):
        RayRunner(EvaluatorSpec("busy"), timeout_s=0)
    with pytest.raises(ValueError, match="max_retries"):
        RayRunner(EvaluatorSpec("busy"), max_retries=-1)
    runner = RayRunner(EvaluatorSpec("busy", {"seconds": 0.0}))
    runner.submit([EvalTask("a", {"x": 0.5})])
    with pytest.raises(ValueError, match="submitted twice"):
        runner.submit([EvalTask("a", {"x": 0.5})])
    drain(runner)
    runner.close()


def test_a_ray_we_start_runs_workers_at_normal_priority():
    """Ray's default worker niceness (15) starves evaluations beside any busy process."""
    code = (
        "import os, ray\n"
        "from dse.runners.ray_runner import _init_ray\n"
        "_init_ray(None, 1)\n"
        "print('NICE', ray.get(ray.remote(lambda: os.nice(0)).remote()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "NICE 0" in out.stdout, out.stdout + out.stderr
    assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == 0  # this module's Ray too

"""RayRunner on a real two-node Ray cluster (``ray.cluster_utils.Cluster``, 1 CPU per node).

One cluster for the module; the test that removes a node runs last. Each test
checks the end state that matters to a study: every design has exactly one
result, none lost, none duplicated.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from ray_helpers import drain, poll_until  # noqa: E402

from dse.runners.base import EvalTask  # noqa: E402
from dse.runners.ray_runner import LOCAL_RAY_SYSTEM_CONFIG, RayRunner  # noqa: E402
from evaluators.base import EvaluatorSpec  # noqa: E402
from evaluators.testing import read_trainings, started  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    head = {"num_cpus": 1, "include_dashboard": False, "_system_config": LOCAL_RAY_SYSTEM_CONFIG}
    c = Cluster(initialize_head=True, head_node_args=head)
    worker_node = c.add_node(num_cpus=1)
    ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)
    c.wait_for_nodes()
    c.worker_node = worker_node
    yield c
    ray.shutdown()
    c.shutdown()


def _once_each(out: list, ids: list[str]) -> dict:
    got = [r.design_id for r in out]
    assert sorted(got) == sorted(ids), "a design was lost or returned twice"
    return {r.design_id: r for r in out}


def _have_optimizers() -> bool:
    try:
        from dse.optimizers import create_optimizer  # noqa: F401
    except ImportError:
        return False
    return True


def test_study_completes_on_two_nodes(cluster, zdt_spec, tmp_path: Path):
    if not _have_optimizers():
        pytest.skip("dse.optimizers is not in this checkout yet")
    import dse

    zdt_spec["budget"] = {"evaluations": 30}
    zdt_spec["runner"] = {"kind": "ray"}
    runner = RayRunner(EvaluatorSpec("zdt1", {"n_var": 6}))
    assert runner.capacity() >= 2  # both nodes' CPUs count
    view = dse.run(zdt_spec, runs_dir=tmp_path, runner=runner)
    runner.close()
    frame = view.frame()
    assert len(frame) == 30 and frame["design_id"].is_unique
    assert set(frame["status"]) == {"done"}


def test_spreads_over_both_nodes_and_survives_killed_workers(cluster, tmp_path: Path):
    # a design that calls os._exit on its first attempt, on whichever node runs it
    spec = EvaluatorSpec("crash", {"exit_on": [2, 5], "marker_dir": str(tmp_path), "seconds": 0.2})
    runner = RayRunner(spec, max_retries=2)
    ids = [f"c{i}" for i in range(6)]
    runner.submit([EvalTask(f"c{i}", {"i": i}) for i in range(6)])
    out = _once_each(drain(runner), ids)
    assert all(r.status == "done" for r in out.values())
    assert out["c2"].attempts == 2 and out["c5"].attempts == 2
    runner.close()

    # kill -9 a busy worker from outside while it evaluates: each evaluation records its
    # process when it starts and then waits at a gate, so the killed process is known to
    # hold a running design (no sleep, no timing luck)
    marks, gate = tmp_path / "started", tmp_path / "gate"
    spec = EvaluatorSpec("busy", {"seconds": 0.1, "started_dir": str(marks), "gate": str(gate)})
    runner = RayRunner(spec, max_retries=2)
    ids = [f"b{i}" for i in range(4)]
    runner.submit([EvalTask(i, {"x": 0.5}) for i in ids])
    first = poll_until(runner, lambda: started(marks))
    assert not first  # nothing passes the gate before it opens
    os.kill(started(marks)[0]["pid"], signal.SIGKILL)
    gate.touch()
    out = _once_each(first + drain(runner), ids)
    assert all(r.status == "done" for r in out.values())
    assert any(r.attempts == 2 for r in out.values())  # the killed evaluation was re-run
    runner.close()


def test_same_training_key_trains_once_on_the_cluster(cluster, tmp_path: Path):
    spec = EvaluatorSpec("trainkey", {"record_dir": str(tmp_path), "train_seconds": 0.3})
    runner = RayRunner(spec, shared_cache_dir=str(tmp_path))
    tasks = [
        EvalTask(f"t{t}d{j}", {"t": t, "d": j / 3}, training_key=f"k{t}")
        for j in range(3)
        for t in range(3)
    ]
    out: list = []
    for k in range(0, len(tasks), 3):  # arriving in waves, keys interleaved
        runner.submit(tasks[k : k + 3])
        out += runner.results(timeout=0.05)
    out = list(_once_each(out + drain(runner), [t.design_id for t in tasks]).values())
    assert all(r.status == "done" for r in out)
    trainings = read_trainings(tmp_path)
    assert sorted(tr["t"] for tr in trainings) == [0, 1, 2]  # each key trained once, cluster-wide
    assert len(list((tmp_path / "models").glob("*.json"))) == 3
    runner.close()


def test_node_removed_mid_run_loses_nothing(cluster, tmp_path: Path):
    # every evaluation records its node when it starts, then waits at a gate: the node is
    # removed only once a design is known to be running on it (no timing luck)
    victim = cluster.worker_node.node_id
    marks, gate = tmp_path / "started", tmp_path / "gate"
    spec = EvaluatorSpec("busy", {"seconds": 0.1, "started_dir": str(marks), "gate": str(gate)})
    runner = RayRunner(spec, max_retries=2)
    ids = [f"n{i}" for i in range(4)]
    runner.submit([EvalTask(i, {"x": 0.25}) for i in ids])
    first = poll_until(runner, lambda: any(m["node"] == victim for m in started(marks)))
    assert not first
    cluster.remove_node(cluster.worker_node)  # the non-head node goes away mid-evaluation
    gate.touch()
    out = _once_each(first + drain(runner), ids)
    assert all(r.status == "done" for r in out.values())
    assert any(r.attempts == 2 for r in out.values())  # the design on the lost node was re-run
    runner.close()

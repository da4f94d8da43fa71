"""Evaluators for testing and measuring the engine itself (runners, sweeps, stores).

Why they are registered like any other evaluator: runners rebuild evaluators in
worker processes from an :class:`~evaluators.base.EvaluatorSpec`, so a test that
wants a worker to burn CPU, fail, die, or train must go through the same
registry path users do. None of them fakes a result: ``busy`` really burns CPU
time, ``crash`` really raises or really kills its process, and ``trainkey``
really writes a trained artefact to a cache shared by every worker.

* ``busy``: busy loop for ``seconds`` of *thread CPU time* (not wall time), so
  two workers squeezed onto one core take twice as long and a parallel
  speed-up measured with it is honest. An optional ``train.epochs`` design key
  multiplies the work and lowers ``f2`` (for early stopping over epochs).
* ``crash``: raises for designs whose ``i`` is in ``raise_on``; calls
  ``os._exit`` (the worker process dies, as on an out-of-memory kill) for
  designs in ``exit_on`` the first ``exit_times`` times, counted with marker
  files in ``marker_dir`` so a retry in a fresh worker succeeds.
* ``trainkey``: designs have a train-stage ``t`` and a deploy-stage ``d``; the
  first evaluation of a ``t`` "trains" (CPU work) and stores the model under
  ``record_dir/models``; every training appends a record (key, pid, start, end)
  under ``record_dir/trainings`` so tests can count trainings per key and check
  that none overlapped.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from evaluators.base import Design, Evaluator, Metrics, register_evaluator, stable_hash

__all__ = ["BusyEvaluator", "CrashEvaluator", "TrainKeyEvaluator", "burn_cpu", "read_trainings"]


def burn_cpu(seconds: float) -> int:
    """Spin until this thread has used ``seconds`` of CPU time; returns the loop count."""
    if seconds <= 0:
        return 0
    end = time.thread_time() + seconds
    n = 0
    acc = 0.0
    while time.thread_time() < end:
        for k in range(2000):  # check the clock rarely: the loop is the work
            acc += k * 1e-9
        n += 1
    return n


def _space(params: list[Any]) -> Any:
    from search_spaces import SearchSpace

    return SearchSpace(params)


def running_node_id() -> str:
    """The Ray node this process runs on ("local" outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return str(ray.get_runtime_context().get_node_id())
    except Exception:  # pragma: no cover - ray missing or not a worker
        pass
    return "local"


def _mark_started(folder: Path, x: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{running_node_id()}-{os.getpid()}"
    n = len(list(folder.glob(f"{stem}-*.start")))
    tmp = folder / f".{stem}-{n}.tmp"
    tmp.write_text(json.dumps({"node": running_node_id(), "pid": os.getpid(), "x": x}))
    tmp.rename(folder / f"{stem}-{n}.start")  # appears whole


def started(folder: Path) -> list[dict[str, Any]]:
    """Every evaluation that has started (written by ``busy`` with ``started_dir``)."""
    return [json.loads(f.read_text()) for f in sorted(Path(folder).glob("*.start"))]


@register_evaluator("busy")
class BusyEvaluator(Evaluator):
    """CPU-bound evaluation of fixed cost: two objectives of ``x`` after ``seconds`` of busy work."""

    name = "busy"
    version = "1"

    def __init__(
        self, seconds: float = 1.0, started_dir: str | None = None, gate: str | None = None
    ):
        """``started_dir``: each evaluation first writes a file there naming its Ray node and
        process (``<node>-<pid>-<n>.start``), so a test can see a design *running* on a node;
        ``gate``: each evaluation then waits until that file exists (at most 120 s), so a
        test decides when running evaluations may finish — no timing luck."""
        if not isinstance(seconds, (int, float)) or seconds < 0 or math.isnan(seconds):
            raise ValueError(f"busy evaluator: seconds={seconds!r}; allowed: a number >= 0")
        self.seconds = float(seconds)
        self.started_dir = started_dir
        self.gate = gate

    def metric_names(self) -> list[str]:
        return ["f1", "f2", "cpu_s"]

    def default_space(self) -> Any:
        from search_spaces.params import Real

        return _space([Real("x", 0.0, 1.0)])

    def evaluate(self, design: Design) -> Metrics:
        x = float(design.get("x", 0.0))
        epochs = design.get("train.epochs")
        if self.started_dir is not None:
            _mark_started(Path(self.started_dir), x)
        if self.gate is not None:
            end = time.monotonic() + 120.0
            while not Path(self.gate).exists():
                if time.monotonic() > end:
                    raise TimeoutError(f"busy evaluator: gate {self.gate} never opened")
                time.sleep(0.01)
        t0 = time.thread_time()
        burn_cpu(self.seconds * (1.0 if epochs is None else float(epochs)))
        # more epochs, lower f2: the shape early stopping over epochs must cope with
        f2 = (1.0 - x) ** 2 + (0.0 if epochs is None else 1.0 / float(epochs))
        return {"f1": x, "f2": f2, "cpu_s": time.thread_time() - t0}


@register_evaluator("crash")
class CrashEvaluator(Evaluator):
    """Fails on purpose: raises for ``raise_on`` designs, kills its process for ``exit_on``."""

    name = "crash"
    version = "1"

    def __init__(
        self,
        raise_on: list[int] | tuple[int, ...] = (),
        exit_on: list[int] | tuple[int, ...] = (),
        exit_times: int = 1,
        marker_dir: str | None = None,
        seconds: float = 0.0,
        same_message: bool = False,
        warn_on: list[int] | tuple[int, ...] = (),
    ):
        if exit_on and marker_dir is None:
            raise ValueError(
                "crash evaluator: exit_on needs marker_dir (a directory every worker can write) "
                "to count how often each design has already killed its worker"
            )
        self.raise_on = {int(i) for i in raise_on}
        self.exit_on = {int(i) for i in exit_on}
        self.exit_times = int(exit_times)
        self.marker_dir = None if marker_dir is None else Path(marker_dir)
        self.seconds = float(seconds)
        #: one error text for every failing design (a broken path fails them all alike)
        self.same_message = bool(same_message)
        #: designs that raise one and the same RuntimeWarning (like a corrupt cache file)
        self.warn_on = {int(i) for i in warn_on}

    def metric_names(self) -> list[str]:
        return ["y", "z"]

    def default_space(self) -> Any:
        from search_spaces.params import Int

        return _space([Int("i", 0, 1000)])

    def evaluate(self, design: Design) -> Metrics:
        i = int(design["i"])
        burn_cpu(self.seconds)
        if i in self.warn_on:
            warnings.warn(
                "crash evaluator: warning on purpose (warn_on)", RuntimeWarning, stacklevel=2
            )
        if i in self.raise_on:
            if self.same_message:
                raise RuntimeError("crash evaluator: broken on purpose (same_message)")
            raise RuntimeError(f"design i={i} fails on purpose (crash evaluator raise_on)")
        if i in self.exit_on:
            assert self.marker_dir is not None
            self.marker_dir.mkdir(parents=True, exist_ok=True)
            done = len(list(self.marker_dir.glob(f"exit-{i}-*")))
            if done < self.exit_times:
                (self.marker_dir / f"exit-{i}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
                os._exit(3)  # the worker process dies without cleanup, like a kill -9
        return {"y": float(i), "z": float(-i) / 2.0}


@register_evaluator("trainkey")
class TrainKeyEvaluator(Evaluator):
    """Shares one "training" per ``t`` through a model cache; records every training."""

    name = "trainkey"
    version = "1"

    def __init__(self, record_dir: str, train_seconds: float = 0.2, eval_seconds: float = 0.0):
        self.record_dir = Path(record_dir)
        self.train_seconds = float(train_seconds)
        self.eval_seconds = float(eval_seconds)

    def metric_names(self) -> list[str]:
        return ["loss", "cost"]

    def default_space(self) -> Any:
        from search_spaces.params import Int, Real

        return _space([Int("t", 0, 9, stage="train"), Real("d", 0.0, 1.0, stage="deploy")])

    def training_key(self, design: Design) -> str | None:
        return stable_hash({"t": int(design["t"])})

    def _model(self, design: Design) -> float:
        key = self.training_key(design)
        path = self.record_dir / "models" / f"{key}.json"
        if path.exists():
            return float(json.loads(path.read_text())["w"])
        start = time.time()
        burn_cpu(self.train_seconds)
        w = 1.0 / (1.0 + int(design["t"]))
        end = time.time()
        rec = self.record_dir / "trainings"
        rec.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "t": int(design["t"]), "pid": os.getpid(), "start": start, "end": end}
        (rec / f"{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json").write_text(json.dumps(entry))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"w": w}))
        os.replace(tmp, path)  # atomic: readers never see half a model
        return w

    def evaluate(self, design: Design) -> Metrics:
        w = self._model(design)
        burn_cpu(self.eval_seconds)
        d = float(design["d"])
        return {"loss": w + (d - 0.5) ** 2, "cost": d}


def read_trainings(record_dir: str | Path) -> list[dict[str, Any]]:
    """Every training the ``trainkey`` evaluator recorded under ``record_dir``."""
    rec = Path(record_dir) / "trainings"
    if not rec.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(rec.glob("*.json"))]

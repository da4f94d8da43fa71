"""Ray runner: evaluations spread over the cores of a laptop or the nodes of a cluster.

Why the runner keeps its own queue instead of handing every task to Ray at once:

* **training-aware grouping** — tasks sharing a ``training_key`` go to one remote
  call (``evaluate_batch`` in one worker, so one training serves every hardware
  variant), and a key whose training is in flight is never dispatched again
  until that call returns. Across drivers on one cluster (a ``dse run`` beside a
  ``dse sweep``) a named lease actor grants each cold key to one driver at a
  time. Once a key has trained and the model cache is shared
  (``shared_cache_dir``), its later tasks spread freely over workers.
* **tiny dispatch overhead** — fast evaluations are packed several per remote
  call, sized from measured evaluation times so each call lasts about
  ``target_call_s`` (a Ray round trip costs milliseconds; a trivial design
  microseconds).
* **honest time limits** — at most one call per free slot is in flight, so a
  call's clock starts when it starts running; an over-time call is killed with
  ``ray.cancel(force=True)`` and recorded as failed ``timeout``.
* **surviving failures** — an evaluation that raises becomes a failed result with
  its traceback (the study goes on); a call whose worker or node died is retried
  (its designs one per call, so an innocent design is not failed by a
  neighbour) up to ``max_retries`` times, then failed with the error text. Each
  submitted design yields exactly one result: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import socket
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import ray
import ray.exceptions as rex

from dse.runners.base import EvalResult, EvalTask, Runner
from dse.runners.serial import format_error, run_group
from evaluators.base import Evaluator, EvaluatorSpec, evaluator_accepts, stable_hash

__all__ = [
    "RayRunner",
    "TrainingLeases",
    "LEASE_ACTOR",
    "LEASE_NAMESPACE",
    "LOCAL_RAY_SYSTEM_CONFIG",
    "start_local_ray",
]

log = logging.getLogger(__name__)

LEASE_ACTOR = "cim_dse_training_leases"

#: Ray's raylet starts workers at nice 15 (its ``worker_niceness`` default), so beside any
#: busy process they get a few percent of a core — measured here beside two busy loops:
#: ``import torch`` 46 s in a Ray worker against 2.5 s in a plain process, one digits
#: training 32 s against 3 s. The evaluations are the study's whole work, so a Ray this
#: package starts (local runs, ``dse sweep``; the tests' clusters too) runs them at the
#: driver's priority. A cluster joined by ``address=`` keeps its own setting.
LOCAL_RAY_SYSTEM_CONFIG: dict[str, Any] = {"worker_niceness": 0}
LEASE_NAMESPACE = "cim_dse"

# Errors meaning "the machine failed, not the design": retried.
_SYSTEM_ERRORS: tuple[type[BaseException], ...] = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.ObjectLostError,  # includes OwnerDied, ObjectReconstructionFailed, ...
    rex.LocalRayletDiedError,
    rex.OutOfMemoryError,
    rex.RaySystemError,
)


# --------------------------------------------------------------------------- worker side
_WORKER_EVALUATORS: dict[str, Evaluator] = {}


def _worker_evaluator(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator for ``spec``, built once per worker process (models, data stay loaded)."""
    key = stable_hash({"name": spec.name, "options": dict(spec.options)})
    ev = _WORKER_EVALUATORS.get(key)
    if ev is None:
        ev = _WORKER_EVALUATORS[key] = spec.create()
    return ev


def _evaluate_chunk(spec: EvaluatorSpec, tasks: list[EvalTask]) -> list[EvalResult]:
    """Remote body: evaluate ``tasks`` (one training key, or several fast keyless designs)."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        evaluator = _worker_evaluator(spec)
    except Exception as exc:  # bad options, missing data: every design of the call fails
        now = time.time()
        err = format_error(exc)
        return [
            EvalResult(t.design_id, "failed", None, err, now, now, worker, t.attempt) for t in tasks
        ]
    return run_group(evaluator, tasks, worker)


_remote_chunk = ray.remote(max_retries=0)(_evaluate_chunk)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class TrainingLeases:
    """Cluster-wide registry: which driver may currently train a training key.

    Leases expire ``ttl`` seconds after their last renewal, so a driver killed
    while holding one blocks nobody for long. A restarted registry forgets its
    leases; at worst a key trains twice, never a result is lost.
    """

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}

    def try_acquire(self, keys: list[str], holder: str, ttl: float) -> list[str]:
        now = time.time()
        granted = []
        for k in keys:
            cur = self._leases.get(k)
            if cur is None or cur[0] == holder or cur[1] < now:
                self._leases[k] = (holder, now + ttl)
                granted.append(k)
        return granted

    def release(self, keys: list[str], holder: str) -> None:
        for k in keys:
            if self._leases.get(k, ("",))[0] == holder:
                del self._leases[k]

    def renew(self, holder: str, ttl: float) -> int:
        until = time.time() + ttl
        mine = [k for k, (h, _) in self._leases.items() if h == holder]
        for k in mine:
            self._leases[k] = (holder, until)
        return len(mine)

    def held(self) -> dict[str, str]:
        now = time.time()
        return {k: h for k, (h, t) in self._leases.items() if t >= now}


# --------------------------------------------------------------------------- driver side
@dataclass
class _Call:
    tasks: list[EvalTask]
    key: str | None  # cold training key this call trains (lease held), else None
    dispatched: float
    deadline: float | None


class RayRunner(Runner):
    """Evaluates tasks on Ray workers; see the module docstring for the policy.

    ``address=None`` starts a private local Ray (``workers`` CPUs, default all
    cores) unless Ray is already initialised in this process; ``"auto"`` or
    ``"ray://host:port"`` joins an existing cluster. ``num_cpus``/``num_gpus``
    are reserved per remote call. ``timeout_s`` limits each evaluation;
    ``max_retries`` bounds re-runs after a worker or node died.
    ``shared_cache_dir`` is a directory every node sees; it is passed to
    evaluators that take a ``cache_dir`` option, and tells the runner that a
    trained model is visible to every worker once its first call returns.
    """

    def __init__(
        self,
        spec: EvaluatorSpec,
        address: str | None = None,
        workers: int | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        timeout_s: float | None = None,
        max_retries: int = 2,
        shared_cache_dir: str | None = None,
        *,
        target_call_s: float = 0.2,
        max_batch: int = 512,
        lease_ttl_s: float = 120.0,
    ):
        _check_args(workers, num_cpus, num_gpus, timeout_s, max_retries)
        self._owns_ray = False
        cache_from_options = "cache_dir" in spec.options
        if (
            shared_cache_dir is not None
            and not cache_from_options
            and evaluator_accepts(spec, "cache_dir")
        ):
            spec = replace(spec, options={**dict(spec.options), "cache_dir": str(shared_cache_dir)})
        super().__init__(spec)
        self.address = address
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.timeout_s = timeout_s
        self.max_retries = int(max_retries)
        self.shared_cache_dir = shared_cache_dir
        self.target_call_s = float(target_call_s)
        self.max_batch = int(max_batch)
        self.lease_ttl_s = float(lease_ttl_s)

        if not ray.is_initialized():
            _init_ray(address, workers)
            self._owns_ray = True
        # one machine started by us: a cache_dir option is seen by every worker
        self._cache_shared = shared_cache_dir is not None or (
            self._owns_ray and address is None and cache_from_options
        )
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._remote = _remote_chunk.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
        self._groups: OrderedDict[str | None, list[EvalTask]] = OrderedDict()
        self._solo: set[str] = set()  # retried designs: dispatched one per call
        self._retries: dict[str, int] = {}
        self._calls: dict[ray.ObjectRef, _Call] = {}
        self._busy_keys: set[str] = set()
        self._warm_keys: set[str] = set()
        self._done: list[EvalResult] = []
        self._outstanding: set[str] = set()
        self._mean_eval_s: float | None = None
        self._slots_cache: tuple[float, int] = (0.0, 1)
        self._leases: Any = None
        self._lease_broken = False
        self._last_renew = 0.0
        self._closed = False

    # ------------------------------------------------------------------ contract
    def submit(self, tasks: list[EvalTask]) -> None:
        if self._closed:
            raise RuntimeError("RayRunner.submit after close()")
        for t in tasks:
            if t.design_id in self._outstanding:
                raise ValueError(
                    f"design {t.design_id} submitted twice; each design may be in flight once"
                )
            self._outstanding.add(t.design_id)
            self._groups.setdefault(t.training_key, []).append(t)
        self._dispatch()

    def results(self, timeout: float | None = None) -> list[EvalResult]:
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            self._dispatch()
            self._renew_leases()
            if self._done or not self._outstanding:
                break
            wait_s = self._next_wait(end)
            if self._calls:
                ready, _ = ray.wait(list(self._calls), num_returns=1, timeout=wait_s)
                if ready:
                    ready, _ = ray.wait(list(self._calls), num_returns=len(self._calls), timeout=0)
                for ref in ready:
                    self._finish(ref)
            elif wait_s is None or wait_s > 0:
                time.sleep(min(0.05, wait_s if wait_s is not None else 0.05))  # waiting on a lease
            self._enforce_deadlines()
            if end is not None and time.monotonic() >= end:
                break
        self._dispatch()
        out, self._done = self._done, []
        for r in out:
            self._outstanding.discard(r.design_id)
            self._retries.pop(r.design_id, None)
            self._solo.discard(r.design_id)
        return out

    def pending(self) -> int:
        return len(self._outstanding)

    def capacity(self) -> int:
        """Slots (cluster CPUs / ``num_cpus``) times the current batch factor.

        For slow evaluations this is the number of parallel slots; when
        evaluations are fast, several designs share one remote call, so the loop
        keeps that many more in flight to feed the batches.
        """
        return self._slots() * min(64, self._batch_factor())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ref in list(self._calls):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or its node is gone
                pass
        held = [c.key for c in self._calls.values() if c.key is not None]
        self._calls.clear()
        self._release(held)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    # ------------------------------------------------------------------ sizing
    def _slots(self) -> int:
        now = time.monotonic()
        at, n = self._slots_cache
        if now - at < 2.0:
            return n
        res = ray.cluster_resources()
        n = int(res.get("CPU", 0) // self.num_cpus) if self.num_cpus > 0 else 10**6
        if self.num_gpus > 0:
            n = min(n, int(res.get("GPU", 0) // self.num_gpus))
        n = max(1, n)
        self._slots_cache = (now, n)
        return n

    def _batch_factor(self) -> int:
        if self._mean_eval_s is None:
            return 1
        return max(1, min(self.max_batch, int(self.target_call_s / max(self._mean_eval_s, 1e-6))))

    def _chunk_size(self, queued: int) -> int:
        per_slot = math.ceil(queued / self._slots())
        return max(1, min(self._batch_factor(), per_slot))

    def _next_wait(self, end: float | None) -> float | None:
        now = time.monotonic()
        waits = [] if end is None else [max(0.0, end - now)]
        waits += [c.deadline - now for c in self._calls.values() if c.deadline is not None]
        if not self._calls:
            waits.append(0.05)
        if any(k is not None and k not in self._warm_keys for k in self._groups):
            waits.append(0.25)  # a key may have been released by another driver
        return max(0.0, min(waits)) if waits else None

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> None:
        slots = self._slots()
        for key in list(self._groups):
            if len(self._calls) >= slots:
                return
            tasks = self._groups.get(key)
            if not tasks:
                self._groups.pop(key, None)
                continue
            if key is None or (key in self._warm_keys and self._cache_shared):
                while tasks and len(self._calls) < slots:
                    size = self._chunk_size(sum(len(v) for v in self._groups.values()))
                    chunk = []
                    while tasks and len(chunk) < size:
                        if tasks[0].design_id in self._solo and chunk:
                            break
                        chunk.append(tasks.pop(0))
                        if chunk[-1].design_id in self._solo:
                            break
                    self._launch(chunk, None)
            elif key not in self._busy_keys and self._lease(key):
                # a cold key: its whole queue trains once in one worker (one solo retry at a time)
                if tasks[0].design_id in self._solo:
                    chunk = [tasks.pop(0)]
                else:
                    chunk = [t for t in tasks if t.design_id not in self._solo][: self.max_batch]
                    ids = {t.design_id for t in chunk}
                    tasks[:] = [t for t in tasks if t.design_id not in ids]
                self._busy_keys.add(key)
                self._launch(chunk, key)
            if not tasks:
                self._groups.pop(key, None)

    def _launch(self, chunk: list[EvalTask], key: str | None) -> None:
        now = time.monotonic()
        deadline = None if self.timeout_s is None else now + self.timeout_s * len(chunk)
        ref = self._remote.remote(self.spec, chunk)
        self._calls[ref] = _Call(chunk, key, now, deadline)

    # ------------------------------------------------------------------ completion
    def _finish(self, ref: ray.ObjectRef) -> None:
        call = self._calls.pop(ref)
        try:
            results: list[EvalResult] = ray.get(ref)
        except Exception as exc:
            self._end_call(call, ok=False)
            self._failed_call(call, exc)
            return
        self._end_call(call, ok=any(r.status == "done" for r in results))
        took = sum(r.finished_at - r.started_at for r in results) / max(1, len(results))
        self._mean_eval_s = (
            took if self._mean_eval_s is None else 0.7 * self._mean_eval_s + 0.3 * took
        )
        self._done.extend(results)

    def _end_call(self, call: _Call, ok: bool) -> None:
        if call.key is not None:
            self._busy_keys.discard(call.key)
            if ok:
                self._warm_keys.add(call.key)
            self._release([call.key])

    def _failed_call(self, call: _Call, exc: BaseException) -> None:
        retry = isinstance(exc, _SYSTEM_ERRORS) or (
            isinstance(exc, rex.RayTaskError) and isinstance(exc.cause, _SYSTEM_ERRORS)
        )
        text = f"{type(exc).__name__}: {exc}"
        for t in call.tasks:
            n = self._retries.get(t.design_id, 0)
            if retry and n < self.max_retries:
                self._retries[t.design_id] = n + 1
                self._solo.add(t.design_id)
                self._requeue(replace(t, attempt=t.attempt + 1), front=True)
                log.warning(
                    "design %s: worker lost (%s); retry %d", t.design_id, type(exc).__name__, n + 1
                )
            else:
                why = f"worker lost {n + 1} times, giving up: " if retry else ""
                now = time.time()
                self._done.append(
                    EvalResult(
                        t.design_id, "failed", None, why + text[-4000:], now, now, "", t.attempt
                    )
                )

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for ref, call in list(self._calls.items()):
            if call.deadline is None or now < call.deadline:
                continue
            ready, _ = ray.wait([ref], timeout=0)
            if ready:  # finished just in time
                self._finish(ref)
                continue
            ray.cancel(ref, force=True)
            del self._calls[ref]
            self._end_call(call, ok=False)
            if len(call.tasks) > 1:
                # a shared call ran out: give each design its own full time limit
                for t in call.tasks:
                    self._solo.add(t.design_id)
                    self._requeue(t, front=True)
                continue
            t = call.tasks[0]
            wall = time.time()
            self._done.append(
                EvalResult(
                    t.design_id,
                    "failed",
                    None,
                    f"timeout: evaluation exceeded the {self.timeout_s:g} s limit and was cancelled",
                    wall - (now - call.dispatched),
                    wall,
                    "",
                    t.attempt,
                )
            )

    def _requeue(self, task: EvalTask, front: bool) -> None:
        group = self._groups.setdefault(task.training_key, [])
        if front:
            group.insert(0, task)
            self._groups.move_to_end(task.training_key, last=False)
        else:
            group.append(task)

    # ------------------------------------------------------------------ leases
    def _lease_actor(self) -> Any:
        if self._leases is None and not self._lease_broken:
            try:
                self._leases = TrainingLeases.options(
                    name=LEASE_ACTOR,
                    namespace=LEASE_NAMESPACE,
                    lifetime="detached",
                    get_if_exists=True,
                ).remote()
            except Exception as exc:  # no lease service: fall back to this driver's own bookkeeping
                log.warning("training-key lease registry unavailable (%s); leasing per driver", exc)
                self._lease_broken = True
        return self._leases

    def _lease(self, key: str) -> bool:
        actor = self._lease_actor()
        if actor is None:
            return True
        try:
            return bool(
                ray.get(actor.try_acquire.remote([key], self._holder, self.lease_ttl_s), timeout=30)
            )
        except Exception as exc:
            log.warning("lease registry call failed (%s); leasing per driver", exc)
            self._lease_broken, self._leases = True, None
            return True

    def _release(self, keys: list[str]) -> None:
        if keys and self._leases is not None:
            try:
                self._leases.release.remote(keys, self._holder)  # fire and forget
            except Exception:
                pass

    def _renew_leases(self) -> None:
        if self._leases is None or not self._busy_keys:
            return
        now = time.monotonic()
        if now - self._last_renew > self.lease_ttl_s / 4:
            self._last_renew = now
            try:
                self._leases.renew.remote(self._holder, self.lease_ttl_s)
            except Exception:
                pass


# --------------------------------------------------------------------------- helpers
def _check_args(
    workers: int | None, num_cpus: float, num_gpus: float, timeout_s: float | None, max_retries: int
) -> None:
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(
            f"RayRunner: workers={workers!r}; allowed: a whole number >= 1, or None (all cores)"
        )
    if not num_cpus >= 0 or not num_gpus >= 0 or (num_cpus == 0 and num_gpus == 0):
        raise ValueError(
            f"RayRunner: num_cpus={num_cpus!r}, num_gpus={num_gpus!r}; allowed: numbers >= 0, not both 0"
        )
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(
            f"RayRunner: timeout_s={timeout_s!r}; allowed: seconds > 0, or None (no limit)"
        )
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"RayRunner: max_retries={max_retries!r}; allowed: a whole number >= 0")


def _project_modules() -> list[str]:
    """Our package directories when they are not installed (a ``ray://`` cluster needs them shipped)."""
    # found, not imported: this module is itself part of ``dse``
    specs = [importlib.util.find_spec(name) for name in ("dse", "evaluators", "search_spaces")]
    dirs = [os.path.dirname(s.origin or "") for s in specs if s is not None]
    return [d for d in dirs if d and "site-packages" not in d]


def start_local_ray(num_cpus: int | None = None) -> None:
    """Start a private local Ray of ``num_cpus`` CPUs (default: all cores), quiet, with
    workers at normal priority (:data:`LOCAL_RAY_SYSTEM_CONFIG`); the runner, ``dse
    sweep``, the tests and the benchmarks all start theirs here."""
    ray.init(
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        _system_config=LOCAL_RAY_SYSTEM_CONFIG,
    )


def _init_ray(address: str | None, workers: int | None) -> None:
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        start_local_ray(workers)
        return
    if address != "auto" and not address.startswith("ray://") and ":" not in address:
        raise ValueError(
            f"RayRunner: address={address!r}; allowed: 'auto', 'ray://host:port', 'host:port', or None"
        )
    kwargs: dict[str, Any] = dict(quiet)
    if address.startswith("ray://"):
        modules = _project_modules()
        if modules:
            kwargs["runtime_env"] = {"py_modules": modules}
    ray.init(address=address, **kwargs)

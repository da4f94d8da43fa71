"""Trained models, content-addressed by training key, shared across processes.

Why: one training serves every hardware variant of a design (deploy-stage
params never change the weights), and several workers (Ray, or two studies on
one machine) often need the same training at the same time. So each trained
model is one file ``<cache_dir>/<key>.pt``:

* written atomically (temporary file + ``os.replace``), so a reader never sees
  half a file and a ``kill -9`` leaves at worst a stray temporary file;
* a safe format: ``torch.save`` of plain data (state dict tensors, per-layer
  ``weight_bits``, float training metrics), read with ``weights_only=True`` so
  loading never runs code from the file;
* guarded by an ``fcntl`` lock per key: the first process trains, a second one
  needing the same key blocks on the lock and then loads the result instead of
  training again;
* a corrupt or foreign file is reported with ``warnings.warn`` and recomputed,
  never a crash;
* every training done is one line of ``<cache_dir>/trainings.jsonl`` (key, the parent it
  fine-tuned from, seconds, host, pid, time), appended with ``O_APPEND`` so lines from
  concurrent workers never interleave: what a study's trainings cost and where they ran,
  and the proof that a key (a parent too) was trained once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evaluators.cim.layers import crossbar_layers

try:  # POSIX; elsewhere the cache still works, without cross-process de-duplication
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

FORMAT = 1
TRAINING_LOG = "trainings.jsonl"


@dataclass
class TrainedModel:
    """What a training leaves behind, enough to rebuild the trained network."""

    state_dict: dict[str, torch.Tensor]
    #: crossbar layer name -> learned precision (BSQ) or None (use hw.weight_bits)
    weight_bits: dict[str, int | None]
    #: training metrics returned by ``train_model`` (sparsity, train_time_s, ...)
    metrics: dict[str, float]

    @classmethod
    def from_model(cls, model: nn.Module, metrics: dict[str, float]) -> TrainedModel:
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        bits = {
            name: (None if layer.weight_bits is None else int(layer.weight_bits))
            for name, layer in crossbar_layers(model)
        }
        return cls(state, bits, {k: float(v) for k, v in metrics.items()})

    def apply(self, model: nn.Module) -> None:
        """Load the weights and per-layer precisions into a freshly built ``model``."""
        model.load_state_dict(self.state_dict)
        for name, layer in crossbar_layers(model):
            layer.weight_bits = self.weight_bits.get(name)


class ModelCache:
    """Directory of trained models keyed by training key (see module docstring)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        if not key or not all(c.isalnum() or c in "-_" for c in key):
            raise ValueError(f"training key {key!r} must be non-empty letters, digits, '-' or '_'")
        return self.directory / f"{key}.pt"

    # -- reading / writing ---------------------------------------------------------------
    def load(self, key: str) -> TrainedModel | None:
        """The cached model, or None if absent; a corrupt file warns and counts as absent."""
        trained, problem = self._read(key)
        if problem is not None:
            _warn_unreadable(self.path(key), problem)
        return trained

    def _read(self, key: str) -> tuple[TrainedModel | None, str | None]:
        """``(model, None)``, ``(None, None)`` when absent, ``(None, why)`` when unreadable."""
        path = self.path(key)
        if not path.exists():
            return None, None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            return _decode(payload), None
        except Exception as exc:  # any unreadable file is recomputed, never fatal
            return None, _first_line(exc)

    def save(self, key: str, trained: TrainedModel) -> Path:
        """Write atomically: a temporary file in the same directory, then ``os.replace``."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "state_dict": trained.state_dict,
            "weight_bits": {k: (-1 if v is None else v) for k, v in trained.weight_bits.items()},
            "metrics": trained.metrics,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive cross-process lock for ``key`` (blocks while another process holds it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory / f"{key}.lock"
        with open(lock_path, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def get_or_train(
        self, key: str, train: Callable[[], TrainedModel], parent: str | None = None
    ) -> tuple[TrainedModel, bool]:
        """Return ``(trained, was_trained_now)``; ``train`` runs at most once per key across
        processes. ``parent``: the key ``train`` fine-tunes from, for the training log."""
        cached, problem = self._read(key)
        if cached is not None:
            return cached, False
        with self.lock(key):
            # another process may have finished (or rewritten the bad file) while we waited
            cached, problem_now = self._read(key)
            if cached is not None:
                return cached, False
            if problem_now is not None or problem is not None:
                _warn_unreadable(self.path(key), problem_now or problem or "")
            t0 = time.perf_counter()
            trained = train()
            self.save(key, trained)
            self._log_training(key, parent, time.perf_counter() - t0)
            return trained, True

    def _log_training(self, key: str, parent: str | None, seconds: float) -> None:
        line = json.dumps(
            {
                "key": key,
                "parent": parent,
                "seconds": round(seconds, 3),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "at": time.time(),
            }
        )
        fd = os.open(self.directory / TRAINING_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (line + "\n").encode())  # one write: atomic under O_APPEND
        finally:
            os.close(fd)

    def trainings(self) -> list[dict]:
        """The training log, oldest first (empty if nothing was trained here)."""
        path = self.directory / TRAINING_LOG
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut by a crash is skipped
                out.append(json.loads(line))
        return out


def _first_line(exc: Exception) -> str:
    """``Type: first line`` of an error: torch's unpickling errors run to a page of advice
    (including "Please file an issue") that is about torch, not about this cache file."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _warn_unreadable(path: Path, problem: str) -> None:
    warnings.warn(
        f"model cache file {path} is unreadable ({problem}); retraining and overwriting it",
        RuntimeWarning,
        stacklevel=3,
    )


def _decode(payload: object) -> TrainedModel:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"not a cim-dse model cache file of format {FORMAT}")
    state = payload["state_dict"]
    bits = payload["weight_bits"]
    metrics = payload["metrics"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("state_dict is not a mapping of tensors")
    if not isinstance(bits, dict) or not isinstance(metrics, dict):
        raise ValueError("weight_bits / metrics are not mappings")
    return TrainedModel(
        state_dict=dict(state),
        weight_bits={str(k): (None if int(v) < 0 else int(v)) for k, v in bits.items()},
        metrics={str(k): float(v) for k, v in metrics.items()},
    )

"""Shared fixtures. Tests are offline, seeded and small (the suite runs in minutes on 2 cores)."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also works from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

# Keep torch/BLAS from oversubscribing the 2 cores when Ray workers run beside pytest.
os.environ.setdefault("OMP_NUM_THREADS", "2")

ZDT_SPEC: dict[str, Any] = {
    "name": "zdt_test",
    "evaluator": {"name": "zdt1", "n_var": 6},
    "space": {"x": {"low": 0.0, "high": 1.0, "size": 6}},
    "objectives": {"f1": "min", "f2": "min"},
    "optimizer": {"name": "nsga2", "population": 20},
    "budget": {"evaluations": 100},
    "runner": {"kind": "serial", "batch": 10},
    "seed": 0,
}


@pytest.fixture
def zdt_spec() -> dict[str, Any]:
    """A small, valid ZDT1 study as a dict (mutate freely)."""
    return copy.deepcopy(ZDT_SPEC)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"

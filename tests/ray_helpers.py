"""Helpers shared by the Ray runner tests."""

import time

from dse.runners.ray_runner import RayRunner


def drain(runner: RayRunner, limit_s: float = 60.0) -> list:
    """Collect results until the runner has nothing pending (fails after ``limit_s``)."""
    out = []
    end = time.monotonic() + limit_s
    while runner.pending() and time.monotonic() < end:
        out += runner.results(timeout=1.0)
    assert runner.pending() == 0, "runner did not finish in time"
    return out

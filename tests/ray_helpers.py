"""Helpers shared by the Ray runner tests.

The limits are hang guards, not timing expectations: a loaded machine (the suite beside
``stress --cpu 2``) takes tens of seconds to replace a crashed Ray worker, so they are
generous and a passing test returns as soon as its condition holds.
"""

import time

from dse.runners.ray_runner import RayRunner


def drain(runner: RayRunner, limit_s: float = 300.0) -> list:
    """Collect results until the runner has nothing pending (fails after ``limit_s``)."""
    out = []
    end = time.monotonic() + limit_s
    while runner.pending() and time.monotonic() < end:
        out += runner.results(timeout=1.0)
    assert runner.pending() == 0, "runner did not finish in time"
    return out


def poll_until(runner: RayRunner, condition, limit_s: float = 300.0) -> list:
    """Collect results until ``condition()`` holds (fails after ``limit_s``); returns them."""
    out = []
    end = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < end, "condition not reached in time"
        out += runner.results(timeout=0.05)
    return out

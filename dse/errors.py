"""The error every input check raises: one message naming what is wrong and what is allowed.

Why its own module: the study file (``spec``), the study directory (``layout``) and the
CLI all raise or catch it, and ``spec`` itself uses ``layout``; defined in either of them
the two would import each other.
"""

from __future__ import annotations

__all__ = ["SpecError"]


class SpecError(ValueError):
    """Bad input (a study file, a flag, a directory); the message says where, what, and what is allowed."""

"""Which optimizers exist, and building one by name.

Why apart from ``base``: the backends import the contract (``base``) to subclass it and
register themselves; the registry imports the backends to fill the table. With both in
one module they imported each other. The backends are imported on first use, so
``import dse.optimizers`` (``dse pareto``, ``dse status``) does not load Optuna and pymoo.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from dse.optimizers.base import REGISTERED, Optimizer, OptimizerError
from search_spaces import SearchSpace
from search_spaces.expressions import Constraint

#: the modules whose ``@register_optimizer`` lines fill the table
BUILTIN_BACKENDS = (
    "dse.optimizers.optuna_backend",
    "dse.optimizers.pymoo_backend",
    "dse.optimizers.simple",
)


def _load_builtin() -> None:
    for module in BUILTIN_BACKENDS:
        importlib.import_module(module)


def available_optimizers() -> list[str]:
    """Every registered optimizer name, sorted (the built-in backends loaded first)."""
    _load_builtin()
    return sorted(REGISTERED)


def create_optimizer(
    name: str,
    space: SearchSpace,
    objectives: Mapping[str, str],
    constraints: Sequence[Constraint | str] = (),
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Optimizer:
    """Build a registered optimizer; unknown names list the allowed ones."""
    _load_builtin()
    if name not in REGISTERED:
        raise OptimizerError(
            f"unknown optimizer {name!r}; allowed: {', '.join(sorted(REGISTERED))}"
        )
    return REGISTERED[name](space, objectives, constraints, seed, **dict(options or {}))

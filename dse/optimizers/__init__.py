"""Optimizers: batched ask/tell over canonical designs (see ``base`` for the contract).

Backends: ``nsga2``, ``nsga3`` (pymoo), ``optuna-nsga2``, ``tpe``, ``qmc`` (Optuna
samplers on an in-memory study), ``random`` and ``grid`` (native).
"""

from dse.optimizers.base import Optimizer, OptimizerError, design_key, register_optimizer
from dse.optimizers.registry import available_optimizers, create_optimizer

__all__ = [
    "Optimizer",
    "OptimizerError",
    "available_optimizers",
    "create_optimizer",
    "design_key",
    "register_optimizer",
]

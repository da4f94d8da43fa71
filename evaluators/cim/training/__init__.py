"""Training methods of the seeds, one entry point: :func:`train_model`.

``TrainConfig.from_design(design, defaults)`` reads the ``dnn.*``/``train.*`` keys of a
CIM design (docs/architecture.md); ``train_model(model, data, config, device_model)``
trains in place and returns metrics (sparsity, bits, timings, final train loss/acc).
Methods: ideal, preact_noise (seed 002), ha_sgd (seed 001), ddhr / s_ddhr / ps_ddhr / as_ddhr /
fixed (seed 000); regularizers Group-HS, Hoyer-Square, group Lasso with pruning, and BSQ
(seed 003) combine with any method.
"""

from .config import METHODS, TrainConfig, TrainConfigError
from .loop import step_loss, train_model

__all__ = ["METHODS", "TrainConfig", "TrainConfigError", "step_loss", "train_model"]

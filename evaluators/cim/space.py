"""The preset CIM search space (``cim`` evaluator's default space).

The ranges are *search ranges*, not device figures: they span the values the seed
documents sweep (variation up to 10x in seed 000, ADC resolutions and 64..512 arrays in
seeds 001/003) with regularizer strengths over a few decades, because the useful λ
depends on the dataset and model. Users narrow or widen them in the study file.

Each ``hw.*`` param comes from the hardware description (``hw/config.py``), the methods
from the training registry and the models from ``models.py``: nothing is restated here.
"""

from __future__ import annotations

from search_spaces import Categorical, Fixed, Int, Real, SearchSpace

from .hw.config import preset_params
from .models import MODELS
from .training.config import METHODS

__all__ = ["cim_space"]

# Regularizer strengths: 0 (off) or a few log-spaced values. A categorical keeps the
# exact "off" point reachable, which a log-scaled real cannot represent.
_LAMBDAS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
_BSQ_ALPHAS = (0.0, 1e-3, 3e-3, 1e-2, 3e-2)


def cim_space(models: tuple[str, ...] = MODELS) -> SearchSpace:
    """The CIM space: ``dnn.*``/``train.*`` are train stage, ``hw.*`` deploy stage.

    ``models`` restricts ``dnn.model`` (e.g. ``("mlp", "cnn")`` for quick CPU studies).
    """
    bad = [m for m in models if m not in MODELS]
    if not models or bad:
        raise ValueError(f"cim_space models={models!r}: allowed: {', '.join(MODELS)}")
    regularized = "dnn.group_hs > 0 or dnn.hoyer > 0 or dnn.group_lasso > 0"
    return SearchSpace(
        [
            # --- network (train stage) ---
            Categorical("dnn.model", tuple(models)),
            Int("dnn.hidden", 16, 256, log=True, when="dnn.model in ['mlp', 'rnn', 'bnn_mlp']"),
            # T must divide the input length: 2, 4, 8 divide 64 (digits), 40 (mnist1d), 784, 3072.
            Categorical("dnn.time_steps", (2, 4, 8), when="dnn.model == 'rnn'"),
            Categorical("dnn.group_hs", _LAMBDAS),
            Categorical("dnn.hoyer", _LAMBDAS),
            Categorical("dnn.group_lasso", _LAMBDAS),
            Real("dnn.prune_threshold", 1e-3, 1e-1, log=True, when=regularized),
            Categorical("dnn.bsq_alpha", _BSQ_ALPHAS),
            # --- training (train stage) ---
            Categorical("train.method", METHODS),
            Real("train.sigma", 0.01, 0.5, log=True, when="train.method != 'ideal'"),
            Int("train.samples", 1, 8, when="train.method == 'ha_sgd'"),
            Real("train.mean_shift", 0.0, 0.2, when="train.method == 'ha_sgd'"),
            Fixed("train.epochs", 10),
            Real("train.lr", 3e-4, 3e-2, log=True),
            Fixed("train.seed", 0),
            # --- chip (deploy stage): the hardware description's search ranges ---
            *preset_params(),
        ]
    )

"""Training lineage: which trained model a training fine-tunes from, and for how long.

Why: the practice of the field is to fine-tune, not to retrain. aihwkit's hardware-aware
training starts from a trained digital model (Rasch et al., Nat. Commun. 14, 5282, 2023,
"Hardware-aware training for large-scale and diverse deep learning inference workloads
using in-memory computing-based accelerators": HWA fine-tunes a pretrained FP model);
BSQ starts from an 8-bit quantization of a trained model (Yang et al., ICLR'21, seed 003);
DeepHoyer and SSL prune a trained network (Yang et al., ICLR'20; Wen et al., NIPS'16). So
every noise-aware, regularized or quantized training of a study has one *parent*: the
digital (``ideal``) model of the same network, dataset, seed and optimiser, trained once
with the from-scratch budget and content-addressed in the model cache like any training.
"""

from __future__ import annotations

import dataclasses
import math

from .config import TrainConfig

#: what a parent keeps of its child's recipe: the network's optimiser and budget. Every
#: other field (method, noise, regularizers, pruning, BSQ, hw) takes its default: ideal.
PARENT_FIELDS = ("epochs", "lr", "batch_size", "seed", "optimizer", "weight_decay", "grad_clip")

#: methods that train from scratch even with ``warm_start``: measured, a fine-tune from the
#: digital parent does not reach their from-scratch accuracy. ``preact_noise`` (seed 002
#: trains with pre-activation noise from the first epoch), digits MLP 64-32-10, 600 train
#: images, 8 epochs from scratch, σ = 0.15, accuracy_mean over 8 chips: from scratch 0.901;
#: fine-tuned 2 epochs 0.782, 4 epochs 0.846, 6 epochs 0.861 (σ = 0.05: 0.921 vs 0.903,
#: 0.939, 0.938). It is also the cheapest noise-aware method (one forward per step), so
#: little is lost; hwa and ha_sgd, the costly ones, fine-tune to within 0.02 or better.
FROM_SCRATCH_METHODS = ("preact_noise",)

#: the fine-tune budget when a study states none: this fraction of the from-scratch epochs,
#: at least one epoch. Our choice, measured on digits (tests/test_warm_start.py): hwa and
#: ha_sgd fine-tunes of 2 epochs from an 8-epoch parent land within 0.02 of from-scratch.
FINETUNE_FRACTION = 0.25


def digital_parent(config: TrainConfig) -> TrainConfig | None:
    """The ``ideal`` training ``config`` fine-tunes from, or None if it is that training.

    None also when ``config`` trains for no epochs (nothing to start from: the network
    stays at its initialization, as asked) and for :data:`FROM_SCRATCH_METHODS`.
    """
    parent = digital_parent_fields(config)
    if config.epochs == 0 or config.method in FROM_SCRATCH_METHODS:
        return None
    if _same_training(config, parent):
        return None
    return parent


def finetune_budget(from_scratch_epochs: int, finetune_epochs: int | None) -> int:
    """Epochs of a warm-started training: the stated ``finetune_epochs``, else
    :data:`FINETUNE_FRACTION` of the from-scratch budget (at least 1)."""
    if finetune_epochs is not None:
        return int(finetune_epochs)
    return max(1, math.ceil(FINETUNE_FRACTION * from_scratch_epochs))


def warm_config(config: TrainConfig, epochs: int) -> TrainConfig:
    """``config`` as a fine-tune of ``epochs`` epochs from its digital parent.

    A training whose main phase *is* the parent's recipe (``ideal`` with no regularizer or
    pruning; only BSQ differs) skips that phase, so BSQ starts from the parent quantized to
    ``bsq_init_bits`` (8) as the paper does; BSQ's own phase then runs ``epochs`` epochs.
    """
    main = dataclasses.replace(config, bsq_alpha=0.0, bsq_epochs=None)
    main_is_parent = _same_training(main, digital_parent_fields(config))
    bsq_epochs = config.bsq_epochs
    if config.bsq_alpha > 0 and bsq_epochs is None:
        bsq_epochs = epochs  # from scratch it follows ``epochs``; warm, the fine-tune budget
    return dataclasses.replace(
        config, epochs=0 if main_is_parent else epochs, bsq_epochs=bsq_epochs
    )


def digital_parent_fields(config: TrainConfig) -> TrainConfig:
    """The parent recipe of ``config`` (whether or not ``config`` is that recipe itself)."""
    return TrainConfig(**{name: getattr(config, name) for name in PARENT_FIELDS})


def _same_training(a: TrainConfig, b: TrainConfig) -> bool:
    return dataclasses.asdict(a) == dataclasses.asdict(b)

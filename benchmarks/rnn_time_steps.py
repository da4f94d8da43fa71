"""Seed 002's RNN time-step finding on real MNIST (mnist5k), digital accuracy per T.

    python benchmarks/rnn_time_steps.py [--epochs 6] [--hidden 64] [--steps 2 4 7 14 28]

Trains the MLP and the time-multiplexed IRNN-initialised RNN (models.py) on the 4,000
mnist5k training digits and prints the digital test accuracy on the 1,000 test digits.
The default ``dnn.time_steps`` (models.DEFAULT_TIME_STEPS) was chosen from this run.
"""

from __future__ import annotations

import argparse
import time

import torch

from evaluators.cim.data import load_dataset
from evaluators.cim.models import build_model
from evaluators.cim.training import TrainConfig, train_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 4, 7, 14, 28])
    args = ap.parse_args()
    d = load_dataset("mnist5k")
    for name, t in [("mlp", None)] + [("rnn", t) for t in args.steps]:
        torch.manual_seed(0)
        start = time.perf_counter()
        m = build_model(name, d.input_shape, 10, hidden=args.hidden, time_steps=t)
        train_model(m, d, TrainConfig(epochs=args.epochs, lr=args.lr))
        m.eval()
        with torch.no_grad():
            acc = float((m(d.test_x).argmax(1) == d.test_y).float().mean())
        label = name if t is None else f"rnn T={t}"
        print(f"{label:10s} digital accuracy {acc:.3f}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()

"""PS-DDHR at 10x sigma_MRAM on digits: how close it comes to variation-free, by BNN width.

Seed 000 claims < 3 % loss against variation-free hardware (BinaryNet on CIFAR-10, a wide
network). Our reproduce_seeds table uses a BNN-MLP with 64 hidden units and loses ~38
points; width is what closes most of the gap (per-column noise averages over more rows and
more columns vote). One setting per call:

    python benchmarks/psddhr_width.py EPOCHS HIDDEN METHOD   # e.g. 8 1024 ps_ddhr

prints the accuracy (%) on 8 chips at 10x and on the variation-free chip (0x). Data: digits
800 train / 300 test (reproduce_seeds' quick subset), chip as reproduce_seeds' S-DDHR table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reproduce_seeds as r  # noqa: E402

from evaluators.cim.data import load_dataset  # noqa: E402
from evaluators.cim.devices import get_device  # noqa: E402


def main(argv: list[str]) -> None:
    ep, hid, method = int(argv[0]), int(argv[1]), argv[2]
    d = load_dataset("digits", seed=0, max_train=800, max_test=300)
    hw = dict(adc_bits=8, act_bits=8, weight_bits=1, cell_bits=1, input_mode="dac")
    chip = dict(device="mram", variation_scale=10.0, array_size=128, **hw)
    t = time.time()
    m = r.train(
        d, "bnn_mlp", get_device("mram", 10.0), method=method, epochs=ep, hidden=hid,
        hw=chip, chip_seed=1,
    )  # fmt: skip
    a10 = r.sim(m, d, "mram", 10.0, 8, **hw)
    a0 = r.sim(m, d, "mram", 0.0, 1, **hw)
    print(f"{method} epochs={ep} hidden={hid}: 10x {a10:.1f}  0x {a0:.1f}  {time.time() - t:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Reproduce the seed papers' tables on digits (8x8) and mnist5k (real MNIST, 28x28).

Prints, measured in one run, for each dataset of ``--datasets`` (default both):

1. S-DDHR (seed 000): binarized MLP on MRAM at 10x (and 5x) sigma_MRAM, the five
   training losses beside seed 000's CIFAR-10 numbers.
2. HA-SGD (seed 001): accuracy vs test noise for ideal and HA-SGD, with an 8-bit and a
   3-bit ADC, the mean-shift prior, and the chip's 3-bit per-tile ADC in the training
   loop (ideal / hwa / HA-SGD without and with the chip's ADC, issue 12).
3. Pre-activation noise (seed 002): MLP / RNN / CNN x internal (synaptic) / external
   (gaussian, speckle, salt & pepper test-set noise) / both, like seed 002's table.
4. Group-HS (seed 003): lambda sweep with row/col sparsity, tiles, energy, area, accuracy.
5. BSQ (seed 003): alpha sweep with average bits, compression, accuracy.

Usage: ``python benchmarks/reproduce_seeds.py [--full] [--instances S]
[--datasets digits,mnist5k] [--only sddhr,ha_sgd,...]``
(default: a quick run on subsets, digits 800/300 and mnist5k 1,000/300 train/test digits;
``--full`` uses all of both, 4,000/1,000 for mnist5k, and more epochs).
Test-time accuracy is the Monte-Carlo simulator's mean over S chip instances.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.cim.corruptions import corrupt  # noqa: E402
from evaluators.cim.cost import estimate_cost  # noqa: E402
from evaluators.cim.data import Dataset, load_dataset  # noqa: E402
from evaluators.cim.devices import get_device  # noqa: E402
from evaluators.cim.mapping import HardwareConfig, Mapping  # noqa: E402
from evaluators.cim.models import build_model  # noqa: E402
from evaluators.cim.simulator import simulate  # noqa: E402
from evaluators.cim.training import TrainConfig, train_model  # noqa: E402
from evaluators.cim.training.noise import WeightNoise, noisy_accuracy  # noqa: E402

SEED000 = {"ddhr": 90.40, "ideal": 33.18, "fixed": 11.25, "ps_ddhr": 88.11, "as_ddhr": 87.42}


def train(data: Dataset, arch: str, device=None, hidden: int = 32, **kw) -> torch.nn.Module:
    torch.manual_seed(kw.get("seed", 0))
    model = build_model(arch, data.input_shape, data.num_classes, hidden=hidden)
    train_model(model, data, TrainConfig(**kw), device)
    return model


def sim(
    model, data: Dataset, device: str, scale: float, instances: int, test_x=None, **hw
) -> float:
    dev = get_device(device, scale)
    cfg = HardwareConfig(device=device, variation_scale=scale, **hw)
    mapping = Mapping.from_model(model, cfg, sample_input=data.train_x[:64], device_model=dev)
    x = data.test_x if test_x is None else test_x
    out = simulate(model, mapping, cfg, dev, x, data.test_y, instances, seed=1, device="cpu")
    return 100.0 * float(out["accuracy_mean"])


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n## {title}")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    sys.stdout.flush()


def sddhr(data: Dataset, epochs: int, s: int) -> None:
    hw = dict(adc_bits=8, act_bits=8, weight_bits=1, cell_bits=1, input_mode="dac")
    rows = []
    free = None
    for m in ("ddhr", "ideal", "fixed", "ps_ddhr", "as_ddhr", "s_ddhr"):
        cells = [m, f"{SEED000[m]:.2f}" if m in SEED000 else "-"]
        for scale in (10.0, 5.0):
            # ddhr: trained on chip instance 0 of the simulation seed (1), tested on it alone
            chip = dict(device="mram", variation_scale=scale, array_size=128, **hw)
            model = train(
                data, "bnn_mlp", get_device("mram", scale), method=m, epochs=epochs + 3,
                hidden=64, hw=chip, chip_seed=1,
            )  # fmt: skip
            n = 1 if m == "ddhr" else s
            cells.append(f"{sim(model, data, 'mram', scale, n, **hw):.2f}")
            if m == "ideal" and free is None:
                free = sim(model, data, "mram", 0.0, 1, **hw)
        rows.append(cells)
    rows.append(["variation-free (ideal, 0x)", "-", f"{free:.2f}", f"{free:.2f}"])
    table(
        "S-DDHR (seed 000): BNN-MLP on MRAM, accuracy % (seed 000: BinaryNet, CIFAR-10, 10x)",
        ["loss", "seed000@10x", "ours@10x", "ours@5x"],
        rows,
    )


def ha_sgd(data: Dataset, epochs: int, s: int) -> None:
    scales = (0.0, 2.0, 4.0, 8.0)
    models = {
        "ideal": train(data, "mlp", epochs=epochs),
        "ha_sgd(σ=.1,L=4)": train(
            data, "mlp", epochs=epochs, method="ha_sgd", sigma=0.1, samples=4
        ),
    }
    rows = []
    for name, model in models.items():
        for adc in (8, 3):
            rows.append(
                [name, str(adc)]
                + [f"{sim(model, data, 'reram', sc, s, adc_bits=adc):.1f}" for sc in scales]
            )
    table(
        "HA-SGD (seed 001): MLP on ReRAM, accuracy % vs test variation scale",
        ["training", "adc_bits"] + [f"{sc:g}x" for sc in scales],
        rows,
    )
    shift = 0.05
    rows = []
    for prior in (0.0, shift):
        model = train(
            data, "mlp", epochs=epochs, method="ha_sgd", sigma=0.05, samples=4, mean_shift=prior
        )
        acc = noisy_accuracy(
            model,
            data.test_x,
            data.test_y,
            lambda g: WeightNoise(0.05, mean_shift=shift, groups=g, fixed=True),
            16,
        )
        rows.append([f"{prior:g}", f"{100 * float(acc.mean()):.1f}"])
    table(
        f"HA-SGD mean-shift prior: tested with device shift {shift} and σ 0.05 (weight-noise backend)",
        ["train mean_shift", "accuracy %"],
        rows,
    )
    adc_in_the_loop(data, epochs, s)


def adc_in_the_loop(data: Dataset, epochs: int, s: int) -> None:
    """The chip's 3-bit per-tile ADC during training (issue 12: hwa, HA-SGD with its ADC)."""
    from evaluators.cim.training.chip_forward import CHIP_KEYS, SIGMA_KEYS

    hw = dict(adc_bits=3, cell_bits=4)
    chip = HardwareConfig(device="reram", **hw)
    rec = {k: getattr(chip, k) for k in CHIP_KEYS}
    dev = get_device("reram")
    runs = {
        "ideal": dict(method="ideal"),
        "hwa": dict(method="hwa", hw=rec),
        # HA-SGD's weight noise at the deployed σ (the chip's slicing), no ADC in training
        "ha_sgd L=2, no ADC in training": dict(
            method="ha_sgd", samples=2, hw={k: rec[k] for k in SIGMA_KEYS}
        ),
        "ha_sgd L=2, chip's ADC in training": dict(method="ha_sgd", samples=2, adc_bits=3, hw=rec),
    }
    rows = []
    for name, kw in runs.items():
        model = train(data, "mlp", dev, hidden=64, epochs=epochs, **kw)
        rows.append([name, f"{sim(model, data, 'reram', 1.0, s, **hw):.1f}"])
    table(
        "Chip ADC in the loop (seed 001 / issue 12): MLP-64 on ReRAM 1x, 4-bit cells, 8-bit "
        "weights, 3-bit per-tile ADC",
        ["training", "accuracy %"],
        rows,
    )


def preact(data: Dataset, epochs: int, s: int) -> None:
    scale = 3.0  # internal: ReRAM at 3x its sigma
    levels = {"gaussian": 0.3, "speckle": 0.5, "salt_pepper": 0.1}
    rows = []
    for arch in ("mlp", "rnn", "cnn"):
        ep = max(2, epochs // 2) if arch == "cnn" else epochs
        for m in ("ideal", "preact_noise"):
            model = train(data, arch, epochs=ep, method=m, sigma=0.1)
            cells = [arch, m, f"{sim(model, data, 'reram', scale, s):.1f}"]
            for kind, lvl in levels.items():
                xt = corrupt(data.test_x, kind, lvl, seed=0)
                ext = sim(model, data, "reram", 0.0, 1, test_x=xt)
                both = sim(model, data, "reram", scale, s, test_x=xt)
                cells += [f"{ext:.1f}", f"{both:.1f}"]
            rows.append(cells)
    header = ["arch", "training", "internal"]
    for kind in levels:
        header += [f"ext:{kind}", f"both:{kind}"]
    table(
        f"Pre-activation noise (seed 002): accuracy %; internal = ReRAM {scale:g}x, external = "
        + ", ".join(f"{k} {v}" for k, v in levels.items()),
        header,
        rows,
    )


def group_hs(data: Dataset, epochs: int, s: int) -> None:
    hw = HardwareConfig(device="reram", array_size=64)
    dev = get_device("reram")
    rows = []
    for lam in (0.0, 1e-3, 3e-3, 1e-2, 3e-2):
        torch.manual_seed(0)
        model = build_model("mlp", data.input_shape, data.num_classes, hidden=128)
        out = train_model(
            model,
            data,
            TrainConfig(epochs=epochs, group_hs=lam, prune_threshold=0.1 if lam else 0.0),
        )
        mapping = Mapping.from_model(model, hw, sample_input=data.train_x[:64], device_model=dev)
        cost = estimate_cost(mapping, hw, dev)
        acc = sim(model, data, "reram", 1.0, s, array_size=64)
        rows.append(
            [
                f"{lam:g}",
                f"{out['sparsity_rows']:.3f}",
                f"{out['sparsity_cols']:.3f}",
                f"{cost['tiles']:.0f}",
                f"{cost['energy_nj']:.3f}",
                f"{cost['area_mm2']:.4f}",
                f"{acc:.1f}",
            ]
        )
    table(
        "Group-HS (seed 003): MLP-128 on ReRAM 64x64 tiles, prune threshold 0.1",
        ["lambda", "rows_sparse", "cols_sparse", "tiles", "energy_nJ", "area_mm2", "accuracy %"],
        rows,
    )


def bsq(data: Dataset, epochs: int, s: int) -> None:
    rows = []
    for alpha in (0.0, 0.05, 0.1, 0.2, 0.3):
        torch.manual_seed(0)
        model = build_model("mlp", data.input_shape, data.num_classes, hidden=32)
        out = train_model(
            model, data, TrainConfig(epochs=epochs, bsq_alpha=alpha, bsq_epochs=epochs)
        )
        bits = [
            getattr(m, "weight_bits", None) for m in model.modules() if hasattr(m, "weight_bits")
        ]
        hwbits = {} if alpha else {"weight_bits": 8}
        acc = sim(model, data, "reram", 1.0, s, **hwbits)
        avg = out["avg_weight_bits"] if alpha else 8.0
        rows.append(
            [
                f"{alpha:g}",
                str(bits if alpha else [8] * len(bits)),
                f"{avg:.2f}",
                f"{32 / avg:.2f}",
                f"{acc:.1f}",
            ]
        )
    table(
        "BSQ (seed 003): MLP, from 8 bits (alpha 0 = uniform 8-bit)",
        ["alpha", "layer bits", "avg_bits", "compression", "accuracy %"],
        rows,
    )


def reuse(data: Dataset, epochs: int, s: int) -> None:
    """Trainings per evaluated design in a study over hardware-only variants (target <= 0.1).

    A grid study through the engine: 2 trainings (Group-HS off/on) x 4 devices x 3 ADC
    resolutions x 2 array sizes = 48 designs. Trainings are counted as the model files
    the evaluator's content-addressed cache holds at the end (one per training key).
    """
    import tempfile
    from pathlib import Path

    import dse

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "models"
        spec = {
            "name": "reuse",
            "evaluator": {
                "name": "cim",
                "dataset": "digits",
                "epochs": epochs,
                "mc_instances": s,
                "cache_dir": str(cache),
            },
            "space": {
                "dnn.model": {"value": "mlp"},
                "dnn.hidden": {"value": 32},
                "dnn.group_hs": {"choices": [0.0, 1e-3]},
                "hw.device": {"choices": ["reram", "pcm", "sonos", "fefet"]},
                "hw.adc_bits": {"choices": [4, 6, 8]},
                "hw.array_size": {"choices": [64, 128]},
            },
            "objectives": {"accuracy_p5": "max", "energy_nj": "min"},
            "optimizer": {"name": "grid"},
            "budget": {"evaluations": 48},
            "runner": {"kind": "serial", "batch": 48},
        }
        t0 = time.perf_counter()
        view = dse.run(spec, runs_dir=Path(tmp) / "runs")
        elapsed = time.perf_counter() - t0
        designs = int((view.frame()["status"] == "done").sum())
        trainings = len(list(cache.rglob("*.pt")))
    table(
        "Trained-model reuse: hardware-only variants through the engine",
        ["designs", "trainings", "trainings/design", "target", "wall s"],
        [
            [
                str(designs),
                str(trainings),
                f"{trainings / max(designs, 1):.3f}",
                "<= 0.1",
                f"{elapsed:.1f}",
            ]
        ],
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--full", action="store_true", help="all of digits and more epochs")
    ap.add_argument("--instances", type=int, default=8, help="chip instances per accuracy")
    ap.add_argument(
        "--datasets",
        default="digits,mnist5k",
        help="comma list of datasets: digits (8x8), mnist5k (real MNIST, 28x28)",
    )
    ap.add_argument(
        "--only",
        default="sddhr,ha_sgd,preact,group_hs,bsq,reuse",
        help="comma list of tables to print",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    quick = {"digits": (800, 300), "mnist5k": (1000, 300)}
    names = [d for d in args.datasets.split(",") if d]
    for name in names:
        if name not in quick:
            raise SystemExit(f"--datasets: unknown {name!r}; allowed: {', '.join(quick)}")
    t0 = time.perf_counter()
    fns = {
        "sddhr": sddhr,
        "ha_sgd": ha_sgd,
        "preact": preact,
        "group_hs": group_hs,
        "bsq": bsq,
        "reuse": reuse,
    }
    tables = args.only.split(",")
    for name in tables:
        if name not in fns:
            raise SystemExit(f"--only: unknown table {name!r}; allowed: {', '.join(fns)}")
    for dname in names:
        tr, te = (None, None) if args.full else quick[dname]
        data = load_dataset(dname, seed=0, max_train=tr, max_test=te)
        epochs = 10 if args.full else 5
        print(
            f"\n# {dname}: {len(data.train_x)} train / {len(data.test_x)} test, {epochs} "
            f"epochs, {args.instances} chip instances per accuracy"
        )
        for name in tables:
            if name == "reuse" and dname != "digits":
                continue  # an engine property, not a dataset one: measured once, on digits
            t1 = time.perf_counter()
            fns[name](data, epochs, args.instances)
            print(f"({name} on {dname}: {time.perf_counter() - t1:.0f} s)")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

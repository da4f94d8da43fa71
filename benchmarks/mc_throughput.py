"""Monte-Carlo analog-inference throughput, measured side by side with references.

Prints, for an MLP 64-256-256-10 trained on scikit-learn digits and 64 chip instances:

* chips/s like for like (issue 15 item 4) on the 360 held-out images, quantization off
  everywhere, the same trained weights and the same Gaussian weight-noise level
  (σ_w·max|W| per layer, fresh per chip), all timed in ONE interleaved run:
  - ours on its *linear* path (g_min far above 0, so one Gaussian per weight) and with
    *clipped differential pairs* (ReRAM as specified: G⁺, G⁻ drawn and clipped at 0 per
    cell and weight slice);
  - a plain torch loop in this process (per chip: W + σ_w·max|W|·randn, then one forward
    over the 360 images; torch's own intra-op threads), and the same loop run as one
    single-threaded chip loop per core (the strongest plain-torch form: on a loaded
    shared host intra-op threads stall at every barrier, measured down to ~15 chips/s);
  - aihwkit-lightning 2.1 (installed into its own venv under ~/.cache/cim-dse, run as a
    child process that times one round each time it is told to, so its rounds interleave
    with ours: one train-mode forward with ``ADD_NORMAL`` weight noise = one chip);
  with ours/reference ratios per round (medians) against the targets ≥ 1.5× lightning on
  the linear path and ≥ 1.0× with clipped pairs. On a quiet 2-core machine the issue
  measured lightning ≈ 1,300 chips/s and the torch loop ≈ 1,400 on this protocol (the
  92 chips/s and 28 GFLOP/s once quoted here for lightning were wrong);
* ours with per-tile ADC + activation quantization on, in achieved GFLOP/s (matmul FLOPs
  it performs, incl. weight slices and unpadded partial tiles) beside ``torch.mm``
  2048×2048 on the same cores, on the held-out set and on all 1797 images;
* Gaussian draws/s of the simulator's noise kernel beside torch's ``normal_``;
* peak resident memory;
* hardware-only re-evaluation (same trained model; other ADC bits / array size /
  device) with 32 instances.

This machine's speed drifts by ±20 % within minutes (shared host), so every figure is
the median of interleaved rounds (each round times torch.mm, every configuration of
ours, the torch loop and lightning back to back) and ratios are taken within a round.

Usage: ``python benchmarks/mc_throughput.py [--instances 64] [--rounds 7] [--skip-aihwkit]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluators.cim.layers import CrossbarLinear  # noqa: E402
from evaluators.cim.mapping import HardwareConfig, Mapping  # noqa: E402
from evaluators.cim.native_rng import block_stream, native_available  # noqa: E402
from evaluators.cim.simulator import SimOptions, build_backend, run_instances  # noqa: E402

SIM_CAP = 64 * 2**20  # simulator memory cap (bytes) used throughout
LIGHTNING_VERSION = "2.1.0"
TORCH_VERSION = "2.13.0"


def train_mlp(seed: int = 0):
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[:1437], perm[1437:]
    torch.manual_seed(seed)
    net = nn.Sequential(
        CrossbarLinear(64, 256),
        nn.ReLU(),
        CrossbarLinear(256, 256),
        nn.ReLU(),
        CrossbarLinear(256, 10),
    )
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(60):
        for i in range(0, len(tr), 128):
            idx = tr[i : i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    return net, x[tr], y[tr], x[te], y[te]


def mm_gflops_once(a: torch.Tensor) -> float:
    """One timed ``torch.mm`` of the square matrix ``a`` with itself, in GFLOP/s."""
    t = time.perf_counter()
    torch.mm(a, a)
    return 2 * a.shape[0] ** 3 / (time.perf_counter() - t) / 1e9


def median(v: list[float]) -> float:
    return statistics.median(v)


def sim_flops(
    mapping: Mapping, hw: HardwareConfig, n_samples: int, instances: int, quantize: bool
) -> float:
    """Matmul FLOPs the simulator executes (2 per multiply-accumulate).

    With per-tile ADCs: every input cycle (bit plane) × every physical row of every row
    tile (partial last tiles are not padded, so this is the mapped row count) × slices ×
    columns. Without ADCs (quantization off, or a digital device) shift-and-add is linear
    and the simulator runs one product on the combined weight (K' rows, N' columns).
    """
    total = 0.0
    adc = quantize and hw.device_model().analog
    for lm in mapping.layers.values():
        vec = n_samples * max(lm.vectors_per_inference, 1)
        if not adc:
            total += 2.0 * vec * lm.rows_physical * lm.cols_logical
            continue
        total += 2.0 * vec * lm.input_cycles(hw) * lm.rows_physical * lm.cols_logical * lm.slices
    return total * instances


class OursTimer:
    """Times ``run_instances`` of one (evaluation set, quantization) configuration."""

    def __init__(
        self, net, mapping, hw, x, y, instances: int, quantize: bool, seed: int = 0, dev=None
    ):
        self.args = (net, mapping, hw, x, y)
        self.instances = instances
        self.opts = SimOptions(quantize=quantize, read_noise=quantize, memory_cap_bytes=SIM_CAP)
        dev = dev or hw.device_model()
        self.backend = build_backend(net, mapping, hw, dev, seed=seed, opts=self.opts)
        net_, m, hw_, x_, y_ = self.args
        run_instances(net_, self.backend, m, hw_, x_, y_, min(instances, 4), self.opts)  # warm-up
        self.rates: list[float] = []
        self.accuracy = float("nan")

    def round(self) -> float:
        net, m, hw, x, y = self.args
        t = time.perf_counter()
        correct = run_instances(net, self.backend, m, hw, x, y, self.instances, self.opts)
        rate = self.instances / (time.perf_counter() - t)
        self.rates.append(rate)
        self.accuracy = float(correct.mean() / len(y))
        return rate


LIGHTNING_CHILD = textwrap.dedent(
    """
    import json, sys, time, torch
    from torch import nn
    import aihwkit_lightning
    from aihwkit_lightning.nn.conversion import convert_to_analog
    from aihwkit_lightning.simulator.configs import TorchInferenceRPUConfig
    from aihwkit_lightning.simulator.parameters import WeightNoiseInjectionType
    blob = torch.load(sys.argv[1], weights_only=True)
    sigma, instances = float(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]))
    net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    net.load_state_dict(blob["state"])
    # aihwkit-lightning 2.x has no programming/drift noise model: its only weight noise is the
    # hardware-aware-training injection (WeightNoiseInjectionType.ADD_NORMAL, std_dev relative
    # to the layer's max|W|), drawn fresh in every forward while the module is in train mode.
    # One train-mode forward over the test set is therefore one chip instance.
    cfg = TorchInferenceRPUConfig()
    cfg.forward.inp_res = -1          # no DAC quantization
    cfg.forward.out_res = -1          # no ADC quantization
    cfg.forward.out_bound = 0.0       # no ADC clipping
    cfg.forward.out_noise = 0.0       # no output (read) noise
    cfg.pre_post.input_range.enable = False
    cfg.mapping.max_input_size = -1   # one tile per layer, like ours (array 256 covers 256 rows)
    cfg.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL
    cfg.modifier.std_dev = sigma
    model = convert_to_analog(net, cfg)
    model.train()
    x, y = blob["x"], blob["y"]
    with torch.no_grad():
        base = model(x)
        if torch.equal(base, model(x)):
            raise SystemExit("weight noise not applied: two train-mode forwards are identical")
        for _ in range(3):
            model(x)
        print(json.dumps({"ready": True, "version": aihwkit_lightning.__version__,
                          "torch": torch.__version__}), flush=True)
        for _ in sys.stdin:  # one timed round per line: the parent interleaves its rounds
            t = time.perf_counter()
            correct = 0
            for _ in range(instances):  # the reference API draws one instance per forward
                correct += int((model(x).argmax(-1) == y).sum())
            rate = instances / (time.perf_counter() - t)
            print(json.dumps({"instances_per_s": rate, "accuracy": correct / instances / len(y)}),
                  flush=True)
    """
)


def _lightning_python() -> Path | str:
    """Python of a venv holding aihwkit-lightning, created on first use; or why not.

    The venv sees the system site-packages so that the torch build already installed here
    (the one our simulator runs on) satisfies aihwkit-lightning's ``torch==2.13.0`` pin:
    the two sides then share the same BLAS/threading and pip need not fetch a CUDA wheel.
    A torch of that release is installed into the venv only when the system has another.
    """
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "cim-dse"
        / f"aihwkit-lightning-{LIGHTNING_VERSION}-venv"
    )
    py = cache / "bin" / "python"
    probe = [str(py), "-c", "import aihwkit_lightning, torch; print(torch.__version__)"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", "--clear", str(cache)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        cmd = [str(py), "-m", "pip", "install", "-q", f"aihwkit-lightning=={LIGHTNING_VERSION}"]
        if torch.__version__.split("+")[0] != TORCH_VERSION:
            cmd.append(f"torch=={TORCH_VERSION}")
            if not torch.cuda.is_available():  # CPU-only wheel of the same torch release
                cmd += ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
        subprocess.run(probe, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        err = (e.stderr or e.stdout or "").strip().splitlines()
        return f"could not install aihwkit-lightning=={LIGHTNING_VERSION}: {' | '.join(err[-3:])}"
    except (subprocess.TimeoutExpired, OSError) as e:
        return f"could not install aihwkit-lightning=={LIGHTNING_VERSION}: {e}"
    return py


class LightningChild:
    """aihwkit-lightning on the same weights and noise level, one timed round per call.

    Runs in its own process (its own venv); :meth:`round` asks it for one round, so its
    rounds interleave with ours. ``error`` says why it is not measured (then rounds are
    skipped).
    """

    def __init__(self, net, xte, yte, sigma: float, instances: int):
        self.rates: list[float] = []
        self.accuracy = float("nan")
        self.info: dict = {}
        self.error: str | None = None
        self.proc = None
        self.tmp = tempfile.TemporaryDirectory()
        try:
            self._start(net, xte, yte, sigma, instances)
        except Exception as e:  # the reference must never take the rest down
            self._fail(f"{type(e).__name__}: {e}")

    def _start(self, net, xte, yte, sigma, instances) -> None:
        py = _lightning_python()
        if isinstance(py, str):
            self.error = py
            return
        state = {k: v for k, v in net.state_dict().items() if k.endswith(("weight", "bias"))}
        blob = Path(self.tmp.name) / "blob.pt"
        script = Path(self.tmp.name) / "child.py"
        torch.save({"state": state, "x": xte, "y": yte}, blob)
        script.write_text(LIGHTNING_CHILD)
        self.proc = subprocess.Popen(
            [str(py), str(script), str(blob), str(sigma), str(instances),
             str(torch.get_num_threads())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.info = self._read()

    def _read(self) -> dict:
        while True:  # skip whatever else the child prints (import banners, warnings)
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read().strip().splitlines()
                raise RuntimeError(f"aihwkit-lightning run failed: {' | '.join(err[-3:])}")
            if line.startswith("{"):
                return json.loads(line)

    def _fail(self, why: str) -> None:
        self.error = why
        if self.proc is not None:
            self.proc.kill()
            self.proc = None

    def round(self) -> float | None:
        if self.error is not None:
            return None
        try:
            self.proc.stdin.write("round\n")
            self.proc.stdin.flush()
            r = self._read()
        except Exception as e:
            self._fail(f"{type(e).__name__}: {e}")
            return None
        self.rates.append(r["instances_per_s"])
        self.accuracy = r["accuracy"]
        return self.rates[-1]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            self.proc = None
        self.tmp.cleanup()


class TorchLoop:
    """The plain torch reference: per chip, noisy weights then one forward over the set.

    Same trained float weights as ours, Gaussian weight noise σ_w·max|W| per layer drawn
    fresh for every chip (as aihwkit-lightning's ``ADD_NORMAL``), torch's own threads.
    """

    def __init__(self, net, x, y, sigma: float, instances: int, per_core: bool = False):
        lins = [m for m in net if isinstance(m, nn.Linear)]
        #: one chip per core at a time (single-threaded torch in each of torch's thread
        #: count Python threads) instead of every op on torch's intra-op threads
        self.per_core = per_core
        self.layers = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in lins]
        self.std = [sigma * float(w.abs().max()) for w, _ in self.layers]
        self.x, self.y, self.instances = x, y, instances
        self.gen = torch.Generator().manual_seed(0)
        self.rates: list[float] = []
        self.accuracy = float("nan")
        self.round()  # warm-up
        self.rates.clear()

    def _chips(self, n: int, gen: torch.Generator) -> int:
        correct = 0
        last = len(self.layers) - 1
        with torch.no_grad():
            for _ in range(n):
                h = self.x
                for i, ((w, b), std) in enumerate(zip(self.layers, self.std, strict=True)):
                    wn = torch.randn(w.shape, generator=gen).mul_(std).add_(w)
                    h = torch.addmm(b, h, wn.t())
                    if i < last:
                        h = h.relu_()
                correct += int((h.argmax(-1) == self.y).sum())
        return correct

    def round(self) -> float:
        t = time.perf_counter()
        if self.per_core:
            cores = torch.get_num_threads()
            gens = [torch.Generator().manual_seed(1 + j) for j in range(cores)]
            share = [self.instances // cores + (j < self.instances % cores) for j in range(cores)]

            def part(j: int) -> int:
                torch.set_num_threads(1)  # per-thread setting
                return self._chips(share[j], gens[j])

            with ThreadPoolExecutor(cores) as pool:
                correct = sum(pool.map(part, range(cores)))
        else:
            correct = self._chips(self.instances, self.gen)
        self.rates.append(self.instances / (time.perf_counter() - t))
        self.accuracy = correct / self.instances / len(self.y)
        return self.rates[-1]


def linear_device(dev):
    """``dev`` with g_min raised far above 0 (same range and σ): linear programming."""
    g0 = 10 * dev.prog_sigma * dev.g_range_us
    return dataclasses.replace(dev, g_min_us=g0, g_max_us=g0 + dev.g_range_us)


def noise_rates() -> tuple[float, float, bool]:
    """(native kernel, torch normal_) Gaussians per second on one thread, and native used."""
    n = 1 << 18
    buf = torch.empty(n)
    gen = torch.Generator().manual_seed(0)
    stream = block_stream(0, 0)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = [float("inf"), float("inf")]
        for _ in range(5):
            for i, fill in enumerate(
                (lambda: stream.normal_(buf), lambda: buf.normal_(generator=gen))
            ):
                t = time.perf_counter()
                for _ in range(10):
                    fill()
                best[i] = min(best[i], (time.perf_counter() - t) / (10 * n))
    finally:
        torch.set_num_threads(saved)
    return 1 / best[0], 1 / best[1], native_available()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instances", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median)")
    ap.add_argument(
        "--skip-aihwkit", action="store_true", help="do not install/run aihwkit-lightning"
    )
    args = ap.parse_args()
    s, rounds = args.instances, max(1, args.rounds)
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}")
    net, xtr, ytr, xte, yte = train_mlp()
    with torch.no_grad():
        acc_dig = float((net(xte).argmax(-1) == yte).float().mean())
    print(
        f"MLP 64-256-256-10 on digits: digital accuracy {acc_dig:.4f} on {len(xte)} held-out images"
    )
    sets = {"all": (torch.cat([xtr, xte]), torch.cat([ytr, yte])), "heldout": (xte, yte)}

    native, torch_rate, used = noise_rates()
    print(
        f"Gaussian draws, one thread: noise kernel {native / 1e6:.0f} M/s "
        f"({'compiled' if used else 'torch fallback: no C compiler'}), torch normal_ "
        f"{torch_rate / 1e6:.0f} M/s ({native / torch_rate:.1f}x)"
    )

    hw = HardwareConfig(
        device="reram",
        array_size=256,
        adc_bits=8,
        act_bits=8,
        weight_bits=8,
        cell_bits=4,
        input_mode="dac",
    )
    mapping = Mapping.from_model(net, hw, sample_input=xtr[:256])
    dev = hw.device_model()
    # weight-noise level shared with aihwkit-lightning: our per-cell σ mapped to max|W| units
    # (differential pair, 2 slices: the MSB slice dominates; σ_w ≈ √2·σ_prog·(L−1)·2^c / q_max)
    lm0 = next(iter(mapping.layers.values()))
    q_max = 2 ** (lm0.weight_bits - 1) - 1
    lv = 2**lm0.cell_bits - 1
    sigma_w = (2**0.5) * dev.prog_sigma * lv * (1 + 2**lm0.cell_bits) / q_max
    print(
        f"device {dev.name}: σ_prog = {dev.prog_sigma:.3f} of range → weight σ ≈ {sigma_w:.4f}·max|W|"
        f"; {lm0.slices} weight slices of {lm0.cell_bits} bits, per-tile {hw.adc_bits}-bit ADC"
    )

    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    xte_, yte_ = sets["heldout"]
    dev_lin = linear_device(dev)
    # (set, mode): "adc" = per-tile ADC + activation quantization; "clipped" / "linear" =
    # quantization off, clipped differential pairs (the device as specified) / linear
    # programming (g_min raised, same σ)
    timers = {
        ("heldout", "linear"): OursTimer(net, mapping, hw, xte_, yte_, s, False, dev=dev_lin),
        ("heldout", "clipped"): OursTimer(net, mapping, hw, xte_, yte_, s, False),
        **{
            (name, "adc"): OursTimer(net, mapping, hw, x, y, s, True)
            for name, (x, y) in sets.items()
        },
    }
    torch_loop = TorchLoop(net, xte_, yte_, sigma_w, s)
    torch_cores = TorchLoop(net, xte_, yte_, sigma_w, s, per_core=True)
    lightning = None if args.skip_aihwkit else LightningChild(net, xte_, yte_, sigma_w, s)
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    mm: list[float] = []
    ratio: dict[tuple[str, str], list[float]] = {k: [] for k in timers}
    vs: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        mm.append(mm_gflops_once(a))
        for key, timer in timers.items():
            fl = sim_flops(mapping, hw, len(timer.args[3]), 1, key[1] == "adc")
            ratio[key].append(timer.round() * fl / 1e9 / mm[-1])
        refs = {"torch loop": torch_loop.round(), "torch loop per core": torch_cores.round()}
        if lightning is not None and (r := lightning.round()) is not None:
            refs["aihwkit-lightning"] = r
        for ref, rate in refs.items():
            for mode in ("linear", "clipped"):
                vs.setdefault((ref, mode), []).append(timers[("heldout", mode)].rates[-1] / rate)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if lightning is not None:
        lightning.close()
    gf_mm = median(mm)
    print(
        f"torch.mm 2048x2048: {gf_mm:.1f} GFLOP/s (median of {rounds} rounds, "
        f"range {min(mm):.0f}-{max(mm):.0f})"
    )
    labels = {
        "linear": "quantization OFF, linear programming  ",
        "clipped": "quantization OFF, clipped diff. pairs ",
        "adc": "ADC+act quantization ON               ",
    }
    for (name, mode), timer in timers.items():
        ips = median(timer.rates)
        fl = sim_flops(mapping, hw, len(timer.args[3]), 1, mode == "adc")
        target = "; target ≥ 40 %" if mode == "adc" else ""
        print(
            f"ours, {name:>7} ({len(timer.args[3]):4d} images), {labels[mode]}: {ips:7.1f} "
            f"chips/s, {ips * fl / 1e9:6.1f} GFLOP/s = {100 * median(ratio[(name, mode)]):5.1f}% "
            f"of torch.mm (per-round median{target}), mean acc {timer.accuracy:.4f}"
        )
    print(
        f"peak resident memory (process): {peak:.0f} MiB, {peak_before:.0f} MiB before the "
        f"simulator runs (cap: {SIM_CAP >> 20} MiB of programmed weights + activations per "
        f"chunk, plus {SimOptions().block_elems * 4 >> 10} KiB cache blocks per thread)"
    )
    print(
        f"like for like, heldout ({len(xte_)} images, {s} chips, quantization off, weight "
        f"noise σ ≈ {sigma_w:.4f}·max|W|):"
    )
    print(
        f"  torch loop (this process, torch's {torch.get_num_threads()} intra-op threads): "
        f"{median(torch_loop.rates):7.1f} chips/s, mean acc {torch_loop.accuracy:.4f}"
    )
    print(
        f"  torch loop per core (one single-threaded chip loop per core): "
        f"{median(torch_cores.rates):7.1f} chips/s, mean acc {torch_cores.accuracy:.4f} "
        "(the strongest plain-torch reference; intra-op threads stall on a loaded host)"
    )
    if lightning is None:
        print("  aihwkit-lightning: skipped (--skip-aihwkit)")
    elif not lightning.rates:
        print(f"  aihwkit-lightning: NOT MEASURED: {lightning.error}")
    else:
        info = lightning.info
        print(
            f"  aihwkit-lightning {info.get('version')} on torch {info.get('torch')} "
            f"(own process, rounds interleaved): {median(lightning.rates):7.1f} chips/s, "
            f"mean acc {lightning.accuracy:.4f}"
        )
    targets = {"linear": 1.5, "clipped": 1.0}
    for (ref, mode), v in vs.items():
        goal = f"; target ≥ {targets[mode]}x" if ref == "aihwkit-lightning" else ""
        print(
            f"  ratio ours/{ref:<19}, {mode:>7}: {median(v):.2f}x (per-round median, range "
            f"{min(v):.2f}-{max(v):.2f}{goal})"
        )

    print(
        "hardware-only re-evaluation (same trained model, 32 instances, mapping + calibration + MC):"
    )
    for kw in (
        {"adc_bits": 4},
        {"array_size": 64},
        {"device": "pcm", "drift_time_s": 86400.0, "cell_bits": 2},  # PCM: 8 levels a cell
        {"device": "sonos", "input_mode": "bit_serial"},
    ):
        hw2 = HardwareConfig(**{**hw.to_dict(), **kw})
        t0 = time.perf_counter()
        m2 = Mapping.from_model(net, hw2, sample_input=xtr[:256])
        opts = SimOptions(memory_cap_bytes=SIM_CAP)
        be = build_backend(net, m2, hw2, hw2.device_model(), opts=opts)
        correct = run_instances(net, be, m2, hw2, xte, yte, 32, opts)
        dt = time.perf_counter() - t0
        print(f"  {kw}: {dt:.3f} s, mean acc {correct.mean() / len(yte):.4f}")
    evaluator_reeval()


def evaluator_reeval(instances: int = 32) -> None:
    """Hardware-only re-evaluations of one trained digits MLP (hidden 64) via ``cim``."""
    from evaluators.cim.evaluator import CimEvaluator

    base = {
        "dnn.model": "mlp",
        "dnn.hidden": 64,
        "train.method": "ideal",
        "train.lr": 0.01,
        "hw.device": "reram",
        "hw.array_size": 128,
        "hw.adc_bits": 8,
        "hw.act_bits": 8,
        "hw.input_mode": "bit_serial",
    }
    variants = (
        {},
        {"hw.adc_bits": 4},
        {"hw.array_size": 64},
        {"hw.device": "pcm", "hw.drift_time_s": 86400.0},
        {"hw.device": "sonos", "hw.variation_scale": 3.0},
        {"hw.input_mode": "dac"},
        {"hw.device": "fefet", "hw.cell_bits": 1},
    )
    with tempfile.TemporaryDirectory() as cache:
        ev = CimEvaluator(cache_dir=cache, mc_instances=instances, epochs=10)
        t0 = time.perf_counter()
        ev.evaluate(base)
        print(
            f"cim evaluator, digits MLP hidden 64, {instances} instances, {len(ev.data().test_y)} "
            f"test samples (training + first deploy {time.perf_counter() - t0:.1f} s); "
            "hardware-only re-evaluations (mapping + calibration + MC + cost):"
        )
        for kw in variants:
            t0 = time.perf_counter()
            r = ev.evaluate({**base, **kw})
            dt = time.perf_counter() - t0
            print(
                f"  bit_serial 8-bit {kw or '(same design)'}: {dt:.3f} s, mean acc {r['accuracy_mean']:.4f}"
            )


if __name__ == "__main__":
    main()

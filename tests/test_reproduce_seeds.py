"""benchmarks/reproduce_seeds.py: both datasets by default, bad names refused up front."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reproduce_seeds  # noqa: E402


def test_unknown_dataset_or_table_is_refused_before_any_training():
    with pytest.raises(SystemExit, match="--datasets: unknown 'cifar'"):
        reproduce_seeds.main(["--datasets", "digits,cifar"])
    with pytest.raises(SystemExit, match="--only: unknown table 'nope'"):
        reproduce_seeds.main(["--only", "bsq,nope"])


def test_default_prints_digits_and_mnist5k(capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(reproduce_seeds, "bsq", lambda data, e, s: seen.append(len(data.test_x)))
    reproduce_seeds.main(["--only", "bsq"])
    out = capsys.readouterr().out
    assert "# digits: 800 train / 300 test" in out and "# mnist5k: 1000 train / 300 test" in out
    assert seen == [300, 300]

"""The hardware description: one key table, and bad chips refused before any store exists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from evaluators.cim.evaluator import KNOWN_KEYS, CimEvaluator
from evaluators.cim.hw import (
    HW_KEYS,
    HardwareConfig,
    check_hw_space,
    device_names,
    get_cell,
    hw_key_names,
    register_device,
)
from evaluators.cim.space import cim_space
from search_spaces import SearchSpace


def test_one_table_feeds_the_evaluator_the_preset_and_the_docs():
    names = hw_key_names()
    assert set(names) <= set(KNOWN_KEYS)
    assert "hw.adc_type" in names and "hw.adc_type" in cim_space().names
    preset = [n for n in cim_space().names if n.startswith("hw.")]
    assert preset == [s.key for s in HW_KEYS.values() if s.search is not None]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "study-file.md").read_text()
    for spec in HW_KEYS.values():
        assert f"`{spec.key}`" in doc, spec.key
    check_hw_space(cim_space())  # the preset itself is a valid chip space


def test_defaults_and_derived_cell_width():
    hw = HardwareConfig()
    assert hw.adc_type == "sar" and hw.cell_bits == 2 and hw.freq_mhz == 1000.0
    assert HardwareConfig(device="mram").cell_bits == 1  # a binary MTJ holds one bit
    assert HardwareConfig(device="pcm", cell_bits=3).cell_bits == 3


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"adc_type": "pipelined"}, ["hw.adc_type", "'pipelined'", "sar", "flash"]),
        ({"cell_bits": 4, "device": "pcm"}, ["hw.cell_bits", "4", "pcm", "[1, 3]"]),
        ({"cell_bits": 2, "device": "mram"}, ["hw.cell_bits", "mram", "[1, 1]"]),
        ({"array_size": 100}, ["hw.array_size", "100", "128", "256"]),
        ({"array_size": 64, "cols_per_adc": 128}, ["hw.cols_per_adc", "128", "[1, 64]"]),
        ({"tech_nm": 3.0}, ["hw.tech_nm", "3", "[7, 180]"]),
        ({"adc_bits": True}, ["hw.adc_bits", "True"]),
    ],
)
def test_bad_chip_one_message(kwargs, words):
    with pytest.raises(ValueError) as info:
        HardwareConfig(**kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_space_check_catches_bounds_choices_and_pairs():
    from search_spaces import Categorical, Int

    with pytest.raises(ValueError, match="hw.adc_bits = 40"):
        check_hw_space(SearchSpace([Int("hw.adc_bits", 3, 40)]))
    with pytest.raises(ValueError, match="hw.array_size = 65"):
        check_hw_space(SearchSpace([Int("hw.array_size", 64, 128)]))
    pair = [Categorical("hw.device", ("reram", "pcm")), Categorical("hw.cell_bits", (1, 4))]
    with pytest.raises(ValueError, match="hw.cell_bits = 4 is invalid for hw.device = 'pcm'"):
        check_hw_space(SearchSpace(pair))
    guarded = [
        Categorical("hw.device", ("reram", "pcm")),
        Categorical("hw.cell_bits", (1, 4), when="hw.device == 'reram'"),
    ]
    check_hw_space(SearchSpace(guarded))


def test_registered_device_is_a_valid_hw_device_everywhere(monkeypatch):
    from evaluators.cim import devices

    monkeypatch.setattr(devices, "_DEVICES", dict(devices._DEVICES))  # undone after the test
    name = "reram_test_plugin"
    register_device(replace(get_cell("reram"), name=name, levels=4))
    assert name in device_names()
    hw = HardwareConfig(device=name, cell_bits=2)
    assert hw.device_model().name == name
    with pytest.raises(ValueError, match=f"hw.cell_bits = 4 is invalid for hw.device = '{name}'"):
        HardwareConfig(device=name, cell_bits=4)
    with pytest.raises(ValueError, match="already registered"):
        register_device(get_cell("reram"))


CIM_SPEC = {
    "name": "bad_chip",
    "evaluator": {"name": "cim", "dataset": "digits", "epochs": 1, "mc_instances": 2},
    "objectives": {"accuracy_mean": "max", "energy_nj": "min"},
    "budget": {"evaluations": 4},
    "runner": {"kind": "serial"},
}


@pytest.mark.parametrize(
    "space, words",
    [
        ({"hw.adc_type": {"choices": ["sar", "pipelined"]}}, ["hw.adc_type", "pipelined", "flash"]),
        (
            {"hw.device": {"value": "pcm"}, "hw.cell_bits": {"value": 4}},
            ["hw.cell_bits", "4", "pcm", "[1, 3]"],
        ),
        ({"hw.array_size": {"choices": [128, 100]}}, ["hw.array_size", "100", "allowed"]),
        ({"hw.adc_bits": {"low": 3, "high": 40, "type": "int"}}, ["hw.adc_bits", "40", "[1, 16]"]),
        ({"hw.adc_bitz": {"value": 4}}, ["hw.adc_bitz", "allowed"]),
    ],
)
def test_cli_refuses_bad_chip_spaces_before_any_store(tmp_path, capsys, space, words):
    spec = dict(CIM_SPEC, space={"dnn.model": {"value": "mlp"}, **space})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    code = main(["run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert "Traceback" not in err
    assert not runs.exists(), "a refused study must not create a store"


def test_evaluator_metric_names_carry_every_breakdown_term():
    names = set(CimEvaluator(dataset="digits").metric_names())
    from evaluators.cim.cost import AREA_TERMS, ENERGY_TERMS, LATENCY_TERMS

    assert {f"energy.{t}_nj" for t in ENERGY_TERMS} <= names
    assert {f"area.{t}_mm2" for t in AREA_TERMS} <= names
    assert {f"latency.{t}_us" for t in LATENCY_TERMS} | {"latency.pipelined_us"} <= names


@pytest.mark.parametrize("case", ["no_dir", "missing_file", "bad_magic"])
def test_cli_refuses_unusable_dataset_files_before_any_store(tmp_path, capsys, case):
    data = tmp_path / "mnist"
    data.mkdir()
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    names += ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    for n in names:
        ndim = 3 if "images" in n else 1
        (data / n).write_bytes(bytes((0, 0, 8, ndim)) + b"\x00" * 16)
    if case == "missing_file":
        (data / names[3]).unlink()
    if case == "bad_magic":
        (data / names[0]).write_bytes(b"PK\x03\x04 not an idx file")
    evaluator = {"name": "cim", "dataset": "mnist", "epochs": 1, "mc_instances": 2}
    if case != "no_dir":
        evaluator["data_dir"] = str(data)
    spec = dict(CIM_SPEC, evaluator=evaluator, space={"dnn.model": {"value": "mlp"}})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    code = main(["run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    word = {"no_dir": "no data_dir", "missing_file": names[3], "bad_magic": "malformed file"}
    assert word[case] in err
    assert not runs.exists()

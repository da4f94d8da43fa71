"""Search spaces: parsing, validation messages, conditions, canonical form, hashing, conversions."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from pymoo.core.variable import Choice, Integer
from pymoo.core.variable import Real as PReal

from evaluators.cim.space import cim_space
from search_spaces import Categorical, Fixed, Int, Real, SearchSpace

ROOT = Path(__file__).resolve().parents[1]

STUDY_SPACE = {
    "x": {"low": 0.0, "high": 1.0, "size": 3},
    "lr": {"low": "1e-4", "high": 1e-1, "log": True},  # PyYAML reads 1e-4 as a string
    "n": {"low": 2, "high": 10, "type": "int", "step": 2},
    "q": {"low": 0.0, "high": 1.0, "step": 0.25},
    "train.method": {"choices": ["ideal", "ha_sgd", "ddhr"]},
    "train.sigma": {"low": 0.01, "high": 0.5, "when": "train.method != 'ideal'"},
    "train.samples": {"low": 1, "high": 8, "type": "int", "when": "train.method == 'ha_sgd'"},
    "hw.array_size": [64, 128, 256],
    "batch": {"value": 8},
    "tag": "v1",
    "special": {"low": 0, "high": 1, "stage": "train"},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_dict(STUDY_SPACE)


def test_from_dict_builds_every_param_kind(space: SearchSpace) -> None:
    assert space.names[:3] == ["x_0", "x_1", "x_2"]
    assert isinstance(space["x_1"], Real) and space["x_1"].high == 1.0
    assert isinstance(space["lr"], Real) and space["lr"].log and space["lr"].low == 1e-4
    assert isinstance(space["n"], Int) and space["n"].step == 2
    assert isinstance(space["train.method"], Categorical)
    assert space["hw.array_size"].choices == (64, 128, 256)
    assert isinstance(space["batch"], Fixed) and space["batch"].value == 8
    assert isinstance(space["tag"], Fixed) and space["tag"].value == "v1"
    # stages: inferred from the namespace unless given
    assert space["train.sigma"].stage == "train"
    assert space["hw.array_size"].stage == "deploy"
    assert space["special"].stage == "train"
    assert {p.name for p in space.train_params()} == {
        "train.method",
        "train.sigma",
        "train.samples",
        "special",
    }
    assert "hw.array_size" in {p.name for p in space.deploy_params()}


def test_to_dict_round_trips(space: SearchSpace) -> None:
    again = SearchSpace.from_dict(space.to_dict())
    assert again == space
    assert again.hash() == space.hash()


def test_hash_is_stable_across_processes_and_sensitive_to_changes(space: SearchSpace) -> None:
    code = (
        "import json,sys; from search_spaces import SearchSpace; "
        "print(SearchSpace.from_dict(json.loads(sys.argv[1])).hash())"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(STUDY_SPACE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == space.hash()
    changed = dict(STUDY_SPACE, n={"low": 2, "high": 12, "type": "int", "step": 2})
    assert SearchSpace.from_dict(changed).hash() != space.hash()
    reordered = dict(reversed(list(STUDY_SPACE.items())))
    assert SearchSpace.from_dict(reordered).hash() == space.hash()


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ({"x": {"low": 2.0, "high": 1.0}}, ["space.x.low", "2.0", "low <= high"]),
        ({"x": {"low": 0, "high": 1, "foo": 3}}, ["space.x.foo", "unknown key", "allowed keys"]),
        ({"x": {"low": 0, "high": 1, "type": "str"}}, ["space.x.type", "'str'", "float, int"]),
        ({"x": {"low": "abc", "high": 1}}, ["space.x.low", "'abc'", "finite number"]),
        ({"x": {"low": 0.5, "high": 3, "type": "int"}}, ["space.x.low", "0.5", "integer"]),
        ({"x": {"low": 0, "high": 1, "log": True}}, ["space.x.low", "0", "low > 0"]),
        ({"x": {"low": 0, "high": 1, "log": "yes"}}, ["space.x.log", "'yes'", "true or false"]),
        ({"x": {"low": 0, "high": 1, "step": -1}}, ["space.x.step", "-1", "> 0"]),
        ({"x": {"low": 1, "high": 9, "log": True, "step": 2}}, ["space.x.step", "log"]),
        ({"x": {"low": 0, "high": 1, "size": 0}}, ["space.x.size", "0", "integer >= 1"]),
        ({"x": {"low": 0, "high": 1, "stage": "infer"}}, ["space.x.stage", "'infer'", "train"]),
        ({"x": {"high": 1}}, ["space.x.low", "missing"]),
        ({"x": {"choices": []}}, ["space.x.choices", "non-empty list"]),
        ({"x": {"choices": [[1, 2]]}}, ["space.x.choices[0]", "[1, 2]", "str, int, float"]),
        ({"x": {"choices": ["a", "a"]}}, ["space.x", "'a'", "twice"]),
        ({"x": {"choices": [1], "low": 0, "high": 1}}, ["space.x", "cannot be combined"]),
        ({"x": {"value": {"a": 1}}}, ["space.x.value", "str, int, float"]),
        ({"x": {"log": True}}, ["space.x.low", "missing"]),
        ({"x": {"when": "y > 1"}}, ["space.x", "low/high", "choices", "value"]),
        ({"x": {"low": 0, "high": 1, "when": 3}}, ["space.x.when", "3", "condition string"]),
        (
            {"x": {"low": 0, "high": 1, "when": "__import__('os').system('true')"}},
            ["space.x.when", "not allowed"],
        ),
        ({"x": {"low": 0, "high": 1, "when": "y > 1"}}, ["space.x.when", "'y'", "allowed"]),
        (
            {
                "a": {"low": 0, "high": 1, "when": "b > 0"},
                "b": {"low": 0, "high": 1, "when": "a > 0"},
            },
            ["cycle", "'a'", "'b'"],
        ),
        ({"x": object()}, ["space.x", "not allowed"]),
        ({}, ["space", "non-empty mapping"]),
        ({"x": {"low": 0, "high": 1, "size": 2}, "x_1": 3}, ["'x_1'", "twice"]),
    ],
)
def test_malformed_space_entries_get_one_clear_message(entry, fragments) -> None:
    with pytest.raises(ValueError) as info:
        SearchSpace.from_dict(entry)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_validate_names_param_value_and_allowed_range(space: SearchSpace) -> None:
    good = space.sample(np.random.default_rng(0))
    assert space.validate(good) == good
    cases = [
        ({"x_1": 1.5}, ["'x_1'", "1.5", "[0.0, 1.0]"]),
        ({"n": 5}, ["'n'", "5", "steps of 2"]),
        ({"n": 2.5}, ["'n'", "2.5", "integer"]),
        ({"q": 0.3}, ["'q'", "0.3", "steps of 0.25"]),
        ({"train.method": "magic"}, ["'train.method'", "'magic'", "'ideal', 'ha_sgd', 'ddhr'"]),
        ({"hw.array_size": "64"}, ["'hw.array_size'", "'64'", "[64, 128, 256]"]),
        ({"batch": 9}, ["'batch'", "9", "exactly 8"]),
        ({"lr": float("nan")}, ["'lr'", "nan", "log scale"]),
        ({"nonsense": 1}, ["'nonsense'", "unknown", "known:"]),
    ]
    for patch, fragments in cases:
        with pytest.raises(ValueError) as info:
            space.validate({**good, **patch})
        for fragment in fragments:
            assert fragment in str(info.value), (patch, str(info.value))
    missing = {k: v for k, v in good.items() if k != "lr"}
    with pytest.raises(ValueError, match="lacks param 'lr'"):
        space.validate(missing)


def test_canonicalize_drops_inactive_casts_and_snaps(space: SearchSpace) -> None:
    design = {
        "x_0": 1,
        "x_1": np.float64(0.5),
        "x_2": 0.25,
        "lr": 0.01,
        "n": 6.0,
        "q": 0.26,
        "train.method": "ideal",
        "train.sigma": 0.3,  # inactive: method is ideal
        "train.samples": 4,  # inactive
        "hw.array_size": np.int64(128),
        "special": 0.5,
    }
    canon = space.canonicalize(design)
    assert "train.sigma" not in canon and "train.samples" not in canon
    assert canon["batch"] == 8 and canon["tag"] == "v1"  # fixed values filled in
    assert type(canon["x_0"]) is float and canon["x_0"] == 1.0
    assert type(canon["n"]) is int and canon["n"] == 6
    assert canon["q"] == 0.25
    assert type(canon["hw.array_size"]) is int and canon["hw.array_size"] == 128
    assert space.canonicalize(canon) == canon  # idempotent
    assert space.active(design) == list(canon)
    ha = space.canonicalize({**design, "train.method": "ha_sgd"})
    assert ha["train.sigma"] == 0.3 and ha["train.samples"] == 4
    # a lattice computed in floats lands on the same canonical value
    assert space.canonicalize({**design, "q": 0.1 * 7.5})["q"] == 0.75


def test_sample_is_seeded_in_range_and_respects_conditions(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    draws = [space.sample(rng) for _ in range(600)]
    again = [space.sample(np.random.default_rng(1)) for _ in range(1)]
    assert draws[0] == again[0]
    for d in draws:
        assert space.validate(d) == d
        assert ("train.sigma" in d) == (d["train.method"] != "ideal")
        assert ("train.samples" in d) == (d["train.method"] == "ha_sgd")
    methods = {d["train.method"] for d in draws}
    assert methods == {"ideal", "ha_sgd", "ddhr"}
    # log scale: half the mass below the geometric mean of the bounds
    lrs = np.array([d["lr"] for d in draws])
    assert abs(np.mean(lrs < math.sqrt(1e-4 * 1e-1)) - 0.5) < 0.08
    assert set(d["n"] for d in draws) == {2, 4, 6, 8, 10}
    assert set(d["q"] for d in draws) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_log_int_sampling_covers_small_values_more() -> None:
    p = Int("h", 1, 100, log=True)
    rng = np.random.default_rng(0)
    vals = np.array([p.sample(rng) for _ in range(2000)])
    assert vals.min() >= 1 and vals.max() <= 100
    assert np.mean(vals <= 10) > 0.4  # a uniform sampler would give ~0.1


def test_grid_is_complete_unique_and_conditional() -> None:
    space = SearchSpace.from_dict(
        {
            "m": ["a", "b", "c"],
            "x": {"low": 0.0, "high": 1.0, "when": "m != 'a'"},
            "y": {"low": 1e-3, "high": 1e-1, "log": True, "when": "x > 0.4"},
            "k": {"low": 1, "high": 3, "type": "int"},
        }
    )
    grid = list(space.grid(3))
    # m=a: 3 (k); m=b/c: x=0 -> 3, x=0.5/1 -> 3*3 each: 3 + 2*(3+9+9) = 45
    assert len(grid) == 45 == space.grid_size(3)
    assert len({tuple(sorted(d.items())) for d in grid}) == len(grid)
    for d in grid:
        assert space.validate(d) == d
    assert sorted({d["y"] for d in grid if "y" in d}) == pytest.approx([1e-3, 1e-2, 1e-1])


def test_grid_size_of_cim_space_is_counted_not_enumerated() -> None:
    space = cim_space()
    assert space.grid_size(2) > 10**10  # counted in milliseconds; enumeration would take days
    small = cim_space(models=("mlp",))
    assert small.grid_size(1) < space.grid_size(1)


def test_pymoo_and_optuna_conversions(space: SearchSpace) -> None:
    pv = space.to_pymoo_vars()
    assert "batch" not in pv and "tag" not in pv  # fixed params are not searched
    assert isinstance(pv["x_0"], PReal) and pv["x_0"].bounds == (0.0, 1.0)
    assert isinstance(pv["lr"], PReal)
    assert pv["lr"].bounds == pytest.approx((math.log(1e-4), math.log(1e-1)))
    assert isinstance(pv["n"], Integer) and pv["n"].bounds == (0, 4)  # lattice index
    assert isinstance(pv["train.method"], Choice)
    for name in ("lr", "n", "train.method", "q"):
        p = space[name]
        value = p.sample(np.random.default_rng(3))
        assert p.decode(p.encode(value)) == value
    od = space.to_optuna_distributions()
    assert od["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert od["n"] == IntDistribution(2, 10, step=2)
    assert od["q"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert od["train.method"] == CategoricalDistribution(["ideal", "ha_sgd", "ddhr"])
    assert od["batch"] == CategoricalDistribution([8])


def test_python_api_errors_and_vector_expansion() -> None:
    with pytest.raises(ValueError, match="low=3.0 must be <= high=1.0"):
        Real("a", 3.0, 1.0)
    with pytest.raises(ValueError, match="stage 'x' is not allowed; allowed: train, deploy"):
        Real("a", 0.0, 1.0, stage="x")
    with pytest.raises(ValueError, match="declared twice"):
        SearchSpace([Real("a", 0, 1), Int("a", 0, 3)])
    from search_spaces import expand_vector

    vec = expand_vector(Real("w", -1.0, 1.0, when="m == 1"), 2)
    assert [p.name for p in vec] == ["w_0", "w_1"]
    assert all(p.when == "m == 1" and p.low == -1.0 for p in vec)


def test_cim_preset_matches_the_architecture_table() -> None:
    space = cim_space()
    table = (ROOT / "docs" / "architecture.md").read_text()
    import re

    keys = set(re.findall(r"`((?:dnn|train|hw)\.[a-z_]+)`", table.split("## evaluators/")[0]))
    assert keys <= set(space.names), sorted(keys - set(space.names))
    for p in space:
        assert p.stage == ("deploy" if p.name.startswith("hw.") else "train")
    assert space["hw.array_size"].choices == (64, 128, 256, 512)
    assert (space["hw.adc_bits"].low, space["hw.adc_bits"].high) == (2, 10)
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = space.sample(rng)
        assert space.validate(d) == d
        assert ("train.sigma" in d) == (d["train.method"] != "ideal")
        assert ("hw.weight_bits" in d) == (d["dnn.bsq_alpha"] == 0)
        assert ("dnn.time_steps" in d) == (d["dnn.model"] == "rnn")
    with pytest.raises(ValueError, match="allowed: mlp"):
        cim_space(models=("transformer",))

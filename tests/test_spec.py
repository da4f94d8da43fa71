"""Study-file validation: every malformed file gets one message naming key, value and what is allowed,
exit code 2 from the CLI, and no store is touched."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.spec import SpecError, load_spec, parse_duration


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_valid_spec_resolves(zdt_spec):
    resolved = load_spec(zdt_spec)
    assert resolved.space.names == [f"x_{i}" for i in range(6)]
    assert resolved.spec.budget.evaluations == 100
    assert resolved.evaluator.name == "zdt1"


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), (45, 45.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


MALFORMED = [
    # (mutation, words the message must contain)
    (lambda s: s.update(colour="red"), ["colour", "unknown key", "objectives"]),
    (lambda s: s["budget"].update(evaluations="many"), ["budget.evaluations", "many"]),
    (lambda s: s["space"]["x"].update(low=2.0), ["space.x", "low"]),
    (
        lambda s: s["optimizer"].update(name="simulated-annealing"),
        ["optimizer.name", "simulated-annealing", "nsga2"],
    ),
    (lambda s: s["optimizer"].update(name="random", population=10), ["optimizer", "population"]),
    (lambda s: s.update(evaluator="resnet-magic"), ["evaluator", "resnet-magic", "zdt1"]),
    (lambda s: s.update(objectives={"accuracy": "max"}), ["objectives.accuracy", "f1"]),
    (lambda s: s.update(objectives={"f1": "smallest"}), ["objectives.f1", "smallest", "min"]),
    (lambda s: s.update(constraints=["f1 < 0.5"]), ["constraints.0", "f1 < 0.5", "<="]),
    (lambda s: s.update(constraints=["area_mm2 <= 2"]), ["constraints.0", "area_mm2", "f1"]),
    (
        lambda s: s.update(constraints=["__import__('os').system('x') <= 1"]),
        ["constraints.0", "not allowed"],
    ),
    (lambda s: s["budget"].update(time="ten minutes"), ["budget.time", "ten minutes", "'<n>m'"]),
    (lambda s: s.update(budget={}), ["budget", "evaluations"]),
    (lambda s: s["runner"].update(kind="kubernetes"), ["runner.kind", "kubernetes", "serial"]),
    (lambda s: s.update(name="bad name/with slash"), ["name", "bad name/with slash"]),
]


@pytest.mark.parametrize("mutate, words", MALFORMED, ids=[w[0] for _, w in MALFORMED])
def test_malformed_spec_one_clear_message(zdt_spec, mutate, words):
    spec = copy.deepcopy(zdt_spec)
    mutate(spec)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"


@pytest.mark.parametrize("mutate, words", MALFORMED[:4], ids=[w[0] for _, w in MALFORMED[:4]])
def test_cli_exit_2_and_no_store(tmp_path, zdt_spec, capsys, mutate, words):
    spec = copy.deepcopy(zdt_spec)
    mutate(spec)
    path = _write(tmp_path, spec)
    runs = tmp_path / "runs"
    code = main(["run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert words[0] in err
    assert not runs.exists(), "a malformed study must not create a store"


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides_are_validated(zdt_spec):
    resolved = load_spec(zdt_spec, overrides={"budget.evaluations": 7, "runner.kind": "serial"})
    assert resolved.spec.budget.evaluations == 7
    with pytest.raises(SpecError, match="runner.kind"):
        load_spec(zdt_spec, overrides={"runner.kind": "mpi"})


def test_study_file_reference_is_current():
    from dse.docgen import generate

    committed = (Path(__file__).resolve().parents[1] / "docs" / "study-file.md").read_text()
    assert committed == generate(), "regenerate with: python -m dse.docgen > docs/study-file.md"


def test_sweep_halving_section(zdt_spec):
    zdt_spec["sweep"] = {"halving": {"resource": "train.epochs", "rungs": [1, 3, 9], "eta": 3}}
    assert load_spec(zdt_spec).spec.sweep.halving.rungs == [1, 3, 9]
    zdt_spec["sweep"]["halving"]["eta"] = 1
    with pytest.raises(SpecError, match="sweep.halving.eta"):
        load_spec(zdt_spec)


def test_ray_is_the_default_runner(zdt_spec):
    del zdt_spec["runner"]
    assert load_spec(zdt_spec).spec.runner.kind == "ray"


PLUGIN = """
from evaluators.base import Evaluator, register_evaluator
from search_spaces import Real, SearchSpace


@register_evaluator("parabola_plugin")
class Parabola(Evaluator):
    name = "parabola_plugin"

    def metric_names(self):
        return ["a", "b"]

    def default_space(self):
        return SearchSpace([Real("x", -1.0, 1.0)])

    def evaluate(self, design):
        return {"a": design["x"] ** 2, "b": (design["x"] - 1.0) ** 2}
"""


def test_plugins_register_user_evaluators(tmp_path, monkeypatch):
    import dse

    (tmp_path / "cim_dse_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {
        "name": "plug",
        "plugins": ["cim_dse_test_plugin"],
        "evaluator": "parabola_plugin",
        "objectives": {"a": "min", "b": "min"},
        "optimizer": {"name": "random"},
        "budget": {"evaluations": 12},
        "runner": {"kind": "serial"},
    }
    view = dse.run(spec, runs_dir=tmp_path / "runs")
    frame = view.frame()
    assert len(frame) == 12 and (frame["a"] == frame["x"] ** 2).all()

    spec["plugins"] = ["no_such_plugin_module"]
    with pytest.raises(SpecError, match="plugin module 'no_such_plugin_module' cannot be imported"):
        load_spec(spec)

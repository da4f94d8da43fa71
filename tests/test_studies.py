"""The shipped studies: every file validates, and the README's quickstart runs end to end
(a shortened copy: fewer evaluations, epochs and chip instances; same space, optimizer, runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.spec import load_spec
from dse.store import Store

STUDIES = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.yaml"))


def test_the_documented_studies_are_shipped():
    names = {p.stem for p in STUDIES}
    assert {
        "quickstart",
        "zdt1",
        "s_ddhr_mram",
        "ha_sgd",
        "sandia_rnn",
        "codesign_group_hs_bsq",
        "cluster_sweep",
    } <= names


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_study_file_validates(path: Path):
    resolved = load_spec(path)
    for objective in resolved.spec.objectives:
        assert objective in resolved.evaluator.metric_names()
    # every param of the space is something the evaluator reads (a typo would be rejected here)
    design = resolved.space.sample(0)
    assert resolved.space.validate(design)


def test_quickstart_end_to_end(tmp_path: Path, capsys):
    spec = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml").read_text()
    )
    spec["evaluator"].update(
        epochs=2, mc_instances=4, cache_dir=str(tmp_path / "cache"), max_test=120
    )
    spec["optimizer"]["population"] = 4
    spec["budget"] = {"evaluations": 8}
    study = tmp_path / "quickstart.yaml"
    study.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"

    assert main(["run", str(study), "--runs-dir", str(runs), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front:" in out and "report:" in out

    store = Store(str(runs / "quickstart" / "study.db"))
    frame = store.frame()
    assert len(frame) == 8 and set(frame["status"]) == {"done"}, frame[["status", "error"]]
    for column in ("accuracy_p5", "energy_nj", "area_mm2", "hw.adc_bits", "train.method"):
        assert column in frame.columns
    assert frame["accuracy_ideal"].between(0.2, 1.0).all()
    assert (frame["energy_nj"] > 0).all() and (frame["area_mm2"] > 0).all()

    report = runs / "quickstart" / "report" / "report.html"
    html = report.read_text()
    assert report.exists() and "<img" in html and "accuracy_p5" in html
    assert (runs / "quickstart" / "report" / "pareto_3d.png").exists()

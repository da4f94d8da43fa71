"""What the CLI prints (issue 14 item 7): the front that ``dse run`` shows names every
column it leaves out (``--wide`` shows them all), integer params stay integers when some
designs lack them, every subcommand's ``--help`` teaches, ``--version``, and a closed
output pipe ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dse.cli import EXIT_PIPE, build_parser, main
from dse.export import to_parquet
from dse.runners.base import EvalResult
from dse.store import Store

ROOT = Path(__file__).resolve().parents[1]

ZDT30 = {
    "name": "wide_zdt",
    "evaluator": "zdt1",
    "space": {"x": {"low": 0.0, "high": 1.0, "size": 30}},
    "objectives": {"f1": "min", "f2": "min"},
    "optimizer": {"name": "nsga2", "population": 8},
    "budget": {"evaluations": 16},
    "runner": {"kind": "serial"},
}


@pytest.fixture(scope="module")
def zdt_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import yaml

    root = tmp_path_factory.mktemp("wide")
    path = root / "wide.yaml"
    path.write_text(yaml.safe_dump(ZDT30))
    return root, path


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_front_names_the_columns_it_leaves_out(zdt_study, capsys, monkeypatch):
    root, path = zdt_study
    monkeypatch.setenv("COLUMNS", "100")  # a narrow terminal: 30 x's cannot all fit
    runs = root / "runs_narrow"
    code, out, err = _run_cli(
        ["run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report"], capsys
    )
    assert code == 0, err
    table = out.split("Pareto front:", 1)[1]
    header = table.splitlines()[1].split()
    assert header[:3] == ["design_id", "f1", "f2"] and "x_29" not in header
    assert all(len(line) <= 100 for line in table.splitlines()[1:-1])
    left_out_line = next(line for line in table.splitlines() if "columns left out" in line)
    left_out = left_out_line.split(": ", 1)[1].split(", ")
    # every searched variable is either in the table or named as left out, none twice
    assert sorted(header[3:] + left_out) == sorted(f"x_{i}" for i in range(30))
    assert "--wide" in left_out_line


def test_run_front_wide_prints_every_param(zdt_study, capsys, monkeypatch):
    root, path = zdt_study
    monkeypatch.setenv("COLUMNS", "100")
    runs = root / "runs_wide"
    code, out, err = _run_cli(
        ["run", str(path), "--runs-dir", str(runs), "--no-progress", "--no-report", "--wide"],
        capsys,
    )
    assert code == 0, err
    header = out.split("Pareto front:", 1)[1].splitlines()[1].split()
    assert header == ["design_id", "f1", "f2", *[f"x_{i}" for i in range(30)]]
    assert "columns left out" not in out


def _conditional_int_store(path: Path) -> Store:
    """Designs where ``dnn.time_steps`` (an int) is active only for the RNN."""
    store = Store(path)
    store.save_spec(
        "cond",
        {
            "name": "cond",
            "evaluator": "zdt1",
            "objectives": {"f1": "min"},
            "space": {
                "dnn.model": {"choices": ["mlp", "rnn"]},
                "dnn.time_steps": {"choices": [4, 8], "when": "dnn.model == 'rnn'"},
            },
        },
    )
    rows = [
        ("a", {"dnn.model": "rnn", "dnn.time_steps": 4}, None),
        ("b", {"dnn.model": "mlp"}, None),
        ("c", {"dnn.model": "rnn", "dnn.time_steps": 8}, None),
    ]
    store.add_designs(rows)
    store.mark_running(["a", "b", "c"], "w")
    store.record_results([EvalResult(i, "done", {"f1": float(n)}) for n, i in enumerate("abc")])
    return store


def test_inactive_integer_params_stay_integers(tmp_path):
    store = _conditional_int_store(tmp_path / "study.db")
    frame = store.frame()
    assert str(frame["dnn.time_steps"].dtype) == "Int64"
    assert frame["dnn.time_steps"].isna().tolist() == [False, True, False]
    csv = frame[["design_id", "dnn.time_steps"]].to_csv(index=False)
    assert "a,4\n" in csv and "b,\n" in csv and "4.0" not in csv
    to_parquet(store, tmp_path / "d.parquet")
    table = pq.read_table(tmp_path / "d.parquet")
    assert table.schema.field("dnn.time_steps").type == pa.int64()
    assert table.column("dnn.time_steps").to_pylist() == [4, None, 8]


def test_pareto_csv_prints_integers(tmp_path, capsys):
    _conditional_int_store(tmp_path / "study.db").close()
    code, out, err = _run_cli(["pareto", str(tmp_path / "study.db"), "--format", "csv"], capsys)
    assert code == 0, err
    assert "4.0" not in out and ",4" in out


def test_every_subcommand_help_has_a_description_and_an_example():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"run", "resume", "status", "pareto", "export", "report", "sweep"}
    for name, sub in commands.items():
        text = sub.format_help()
        assert sub.description, name
        assert "examples:" in text and f"dse {name} " in text.split("examples:", 1)[1], name
    assert "exit codes:" in parser.format_help() and "130" in parser.format_help()


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    from dse import __version__

    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"cim-dse {__version__}"


def test_closed_output_pipe_ends_quietly(tmp_path):
    """``dse pareto ... | head -0``: the reader is gone before we write. No traceback, no
    "Exception ignored" at interpreter exit, exit code 141 (SIGPIPE's shell code)."""
    _conditional_int_store(tmp_path / "study.db").close()
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dse.cli", "pareto", str(tmp_path / "study.db")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == EXIT_PIPE, proc.stderr
    assert proc.stderr == b""

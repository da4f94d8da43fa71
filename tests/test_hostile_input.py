"""Hostile study files and filter expressions through the real CLI (issue 14 item 3):
each is refused with one ``error:`` line naming the file or expression and the limit,
quickly, within bounded memory, and before any study directory exists.

The cases that used to eat memory (alias bombs, /dev/zero, string repetition) run in a
child process under an address-space limit, so a regression fails instead of swapping.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from dse.cli import main

ZDT = {
    "name": "hostile",
    "evaluator": {"name": "zdt1"},
    "space": {"x": {"low": 0.0, "high": 1.0, "size": 5}},
    "objectives": {"f1": "min", "f2": "min"},
    "optimizer": {"name": "random"},
    "budget": {"evaluations": 4},
    "runner": {"kind": "serial"},
}


def _bomb() -> str:
    """A billion-laughs value: 9 levels of 9 aliases each, 9^9 strings once expanded."""
    levels = ["a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "{" + ", ".join(levels) + "}"


def _bomb_at(place: str) -> str:
    """The study file with the bomb as the value of ``place``."""
    spec = dict(ZDT)
    key = {"unknown key": "extra", "description": "description", "plugins": "plugins"}
    text = yaml.safe_dump(spec, sort_keys=False)
    if place == "evaluator option":
        return text.replace(
            "evaluator:\n  name: zdt1\n", f"evaluator: {{name: zdt1, n_var: {_bomb()}}}\n"
        )
    return text + f"{key.get(place, place)}: {_bomb()}\n"


def _child(argv: list[str], limit_gb: float = 3.0, timeout: float = 60.0):
    """Run the CLI in a child limited to ``limit_gb`` of address space."""
    code = textwrap.dedent(
        f"""
        import resource, sys
        lim = int({limit_gb} * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        from dse.cli import main
        sys.exit(main({argv!r}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def _one_error(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "place", ["unknown key", "description", "plugins", "constraints", "evaluator option"]
)
def test_alias_bomb_refused_anywhere_in_bounded_memory(place, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb_at(place))
    runs = tmp_path / "runs"
    out = _child(["run", str(path), "--runs-dir", str(runs), "--no-progress"])
    assert out.returncode == 2, out.stderr[-1500:]
    assert "anchors and aliases expand to more than" in _one_error(out.stderr)
    assert str(path) in out.stderr
    assert not runs.exists()


def test_dev_zero_and_huge_files_refused_by_size(tmp_path):
    out = _child(["run", "/dev/zero", "--runs-dir", str(tmp_path / "runs")])
    assert out.returncode == 2 and "/dev/zero is larger than" in _one_error(out.stderr)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "content,words",
    [
        (b"name: a\x00\x01\x02", ["not a text file"]),
        (b"name: \xff\xfe\xfa", ["not UTF-8 text"]),
        (b"name: a\nname: b\n", ["duplicate key 'name' at line 2", "first at line 1"]),
        (b"x: " + b"[" * 50_000 + b"]" * 50_000, ["nested deeper than 64 levels"]),
        (b"x:\n" + b"".join(b"  " * i + b"-\n" for i in range(200)), ["nested deeper"]),
    ],
    ids=["binary", "not-utf8", "duplicate-key", "deep-flow-list", "deep-block-list"],
)
def test_bad_study_files_one_message_naming_the_file(content, words, tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    runs = tmp_path / "runs"
    code = main(["run", str(path), "--runs-dir", str(runs), "--no-progress"])
    err = _one_error(capsys.readouterr().err)
    assert code == 2 and str(path) in err
    for w in words:
        assert w in err, (w, err)
    assert not runs.exists()


def test_a_directory_as_study_file(tmp_path, capsys):
    code = main(["run", str(tmp_path), "--runs-dir", str(tmp_path / "runs")])
    assert code == 2 and "is a directory" in _one_error(capsys.readouterr().err)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    import dse

    runs = tmp_path_factory.mktemp("hostile")
    dse.run(ZDT, runs_dir=runs).store.close()
    return runs / "hostile"


@pytest.mark.parametrize(
    "where,words",
    [
        ("'a' * 1000000000 == f1", ["repeated 1000000000 times is too large"]),
        ("'a' * 100000 * 100000 == f1", ["too large"]),
        ("(" * 5000 + "f1" + ")" * 5000 + " < 1", ["too long"]),
        ("not " * 200 + "f1", ["nested deeper than 50 levels"]),
        ("[1] * 100000 == f1", ["list of 1 repeated 100000 times"]),
    ],
    ids=["str-repeat", "str-repeat-twice", "long", "deep", "list-repeat"],
)
def test_filter_language_is_bounded(where, words, study):
    out = _child(["pareto", str(study), "--where", where], limit_gb=3.0, timeout=60)
    assert out.returncode == 2, out.stderr[-1500:]
    err = _one_error(out.stderr)
    for w in words:
        assert w in err, (w, err)


def test_child_limit_is_real():
    """The address-space cap the children run under does stop a big allocation."""
    code = (
        "import resource; lim = 2**30; resource.setrlimit(resource.RLIMIT_AS, (lim, lim)); "
        "b = bytearray(2 * 2**30)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0 and "MemoryError" in res.stderr

"""The docs' code runs: every ```python block of README.md and docs/*.md.

The blocks of one markdown file run in order in one namespace, in a fresh temporary
working directory that holds a copy of ``studies/`` (the docs run their commands from
the checkout's root), offline (a connection to anything but this machine fails).
Each block is one test, ``<file>:<index>``; running one block alone runs the blocks
before it first.

Markers, an HTML comment on the line right before the fence:

* ``<!-- docs-test: skip (reason) -->``: the block is deliberately not runnable (an
  interface summary, a cluster address, a dataset that is not shipped); the reason is
  required and is the skip message.
* ``<!-- docs-test: file NAME.py -->``: the block is a module; it is written to
  ``NAME.py`` in the working directory (which is on ``sys.path``) and imported, so a
  later block can name it (``plugins: [NAME]``, ``import NAME``).

A block that defines ``test_*`` functions has them called right after it runs (the
docs show tests that must pass); ``tmp_path`` is the only fixture they may ask for.
Registrations the blocks make (evaluators, optimizers, devices) and the modules they
write are undone when this module's tests end.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import re
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(.*?)-->\s*$")
_SKIP = re.compile(r"^skip\s*\((.*)\)$")
_FILE = re.compile(r"^file\s+([A-Za-z_]\w*)\.py$")


@dataclass(frozen=True)
class Block:
    path: Path
    index: int  # among the file's python blocks, from 0
    line: int  # 1-based line of the first code line
    code: str
    skip: str | None = None  # reason
    module: str | None = None  # `file NAME.py`

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def id(self) -> str:
        return f"{self.rel}:{self.index}"


def parse(path: Path) -> list[Block]:
    """The ```python blocks of ``path``, with their markers; a malformed marker raises."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            marker = _MARKER.match(lines[i])
            if marker and not (i + 1 < len(lines) and _FENCE.match(lines[i + 1])):
                raise ValueError(f"{path.name}:{i + 1}: docs-test marker not right before a fence")
            i += 1
            continue
        lang, start = m.group(1), i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path.name}:{i + 1}: unclosed code fence")
        skip = module = None
        marker = _MARKER.match(lines[i - 1]) if i > 0 else None
        if marker:
            text = marker.group(1).strip()
            if lang != "python":
                raise ValueError(f"{path.name}:{i}: docs-test marker before a {lang!r} block")
            if s := _SKIP.match(text):
                skip = s.group(1).strip()
                if not skip:
                    raise ValueError(f"{path.name}:{i}: docs-test skip needs a reason")
            elif f := _FILE.match(text):
                module = f.group(1)
            else:
                raise ValueError(
                    f"{path.name}:{i}: unknown docs-test marker {text!r}; "
                    "allowed: 'skip (reason)', 'file NAME.py'"
                )
        if lang == "python":
            code = "\n".join(lines[start:end]) + "\n"
            blocks.append(Block(path, len(blocks), start + 1, code, skip, module))
        i = end + 1
    return blocks


BLOCKS = [b for p in DOC_FILES for b in parse(p)]


@dataclass
class FileRun:
    """The state the blocks of one markdown file share."""

    workdir: Path
    ns: dict[str, Any] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    failed: int | None = None


_RUNS: dict[Path, FileRun] = {}


def _is_local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def offline(monkeypatch):
    """Connections and name look-ups to anything but this machine fail."""
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise OSError(f"docs test is offline: connection to {address!r} refused")

    def guarded_connect(sock, address):
        check(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        check(sock, address)
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            raise socket.gaierror(f"docs test is offline: no look-up of {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@pytest.fixture(scope="module", autouse=True)
def _undo_registrations():
    """Registries and modules as they were before the docs ran."""
    from dse.optimizers import base as optimizers
    from evaluators import base as evaluators
    from evaluators.cim import devices

    registries = [evaluators._REGISTRY, optimizers.REGISTERED, devices._DEVICES]
    saved = [dict(r) for r in registries]
    path = list(sys.path)
    yield
    for registry, before in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(before)
    sys.path[:] = path
    workdirs = [run.workdir for run in _RUNS.values()]
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if file and any(Path(file).is_relative_to(w) for w in workdirs):
            del sys.modules[name]
    _RUNS.clear()


def _call_tests(block: Block, ns: dict[str, Any], filename: str, tmp_path_factory) -> None:
    """Call the ``test_*`` functions ``block`` defines (they are the docs' own tests)."""
    first, last = block.line, block.line + block.code.count("\n")
    for name, fn in list(ns.items()):
        code = getattr(fn, "__code__", None)
        if not (name.startswith("test_") and inspect.isfunction(fn) and code):
            continue
        if code.co_filename != filename or not first <= code.co_firstlineno < last:
            continue
        params = inspect.signature(fn).parameters
        unknown = set(params) - {"tmp_path"}
        assert not unknown, f"{block.id}: {name} asks for fixtures {sorted(unknown)}"
        kwargs = {"tmp_path": tmp_path_factory.mktemp(name)} if "tmp_path" in params else {}
        fn(**kwargs)


def _run(block: Block, run: FileRun, tmp_path_factory) -> None:
    if block.skip is not None:
        return
    # pad so that tracebacks name the markdown file and its line numbers
    source = "\n" * (block.line - 1) + block.code
    if block.module is not None:
        file = run.workdir / f"{block.module}.py"
        file.write_text(source, encoding="utf-8")
        importlib.invalidate_caches()
        module = importlib.import_module(block.module)
        _call_tests(block, vars(module), str(file), tmp_path_factory)
        return
    exec(compile(source, str(block.path), "exec"), run.ns)
    _call_tests(block, run.ns, str(block.path), tmp_path_factory)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, tmp_path_factory, monkeypatch, offline):
    run = _RUNS.get(block.path)
    if run is None:
        workdir = tmp_path_factory.mktemp(block.path.stem)
        shutil.copytree(ROOT / "studies", workdir / "studies")
        run = _RUNS[block.path] = FileRun(workdir, {"__name__": f"docs_{block.path.stem}"})
    monkeypatch.chdir(run.workdir)
    monkeypatch.syspath_prepend(str(run.workdir))
    for earlier in BLOCKS:
        if earlier.path != block.path or earlier.index > block.index:
            continue
        if run.failed is not None:
            pytest.skip(f"an earlier block of {block.rel} failed: {block.rel}:{run.failed}")
        if earlier.index in run.done:
            continue
        try:
            _run(earlier, run, tmp_path_factory)
        except BaseException:
            run.failed = earlier.index
            raise
        finally:
            run.done.add(earlier.index)
    if block.skip is not None:
        pytest.skip(f"{block.id}: {block.skip}")


def test_every_doc_file_is_parsed_and_skips_say_why():
    """The collection itself: each marker is attached to a python block and skips have reasons."""
    assert {b.rel for b in BLOCKS} >= {"README.md", "docs/extending.md"}
    for b in BLOCKS:
        assert b.code.strip(), b.id
        assert b.skip is None or b.skip.strip(), b.id
    skipped = [b.id for b in BLOCKS if b.skip is not None]
    assert len(skipped) < len(BLOCKS) / 2, f"most doc blocks are skipped: {skipped}"

"""No import circles in our packages, counting the imports inside functions too.

Why a test: a circle is usually "fixed" by moving one import into a function, which hides
it from Python but keeps the two modules knowing each other (issue 13: the training-method
factory and the S-DDHR modules; the optimizer contract and its backends). The graph is
read from the source with ``ast``, so it also sees imports that never ran.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dse", "evaluators", "search_spaces")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            # ``from pkg import sub`` needs only sub; ``from pkg import name`` needs pkg
            if len(submodules) < len(node.names) and target in modules:
                deps.add(target)
            deps.update(submodules)
    deps.discard(name)
    return deps


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append(path[path.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_module_imports_itself_back() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "evaluators.cim.training.registry" in graph  # the graph was read
    assert "evaluators.cim.training.sddhr" in graph["evaluators.cim.training.registry"]
    cycles = [" -> ".join(c) for c in _cycles(graph)]
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_cycle_finder_sees_a_lazy_import(tmp_path: Path) -> None:
    """The checker itself: a function-level import back is a circle."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    modules = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {n: _imports(n, p, modules) for n, p in modules.items()}
    assert _cycles(graph) == [["a", "b", "a"]]


def test_every_training_method_has_an_analog_builder() -> None:
    """The registry covers exactly the names the study file accepts (config.METHODS)."""
    from evaluators.cim.training.config import METHODS
    from evaluators.cim.training.methods import BUILDERS
    from evaluators.cim.training.registry import build_method  # noqa: F401  fills BUILDERS

    assert {name for name, variant in BUILDERS if variant == "analog"} == set(METHODS)
    binary = {name for name, variant in BUILDERS if variant == "binary_mram"}
    assert binary == {"s_ddhr", "ps_ddhr", "as_ddhr", "fixed"}  # seed 000's MTJ model


@pytest.mark.parametrize("method", ["s_ddhr", "ddhr"])
def test_binary_model_on_mram_takes_the_mtj_builder_where_one_exists(method: str) -> None:
    import torch

    from evaluators.cim.devices import get_device
    from evaluators.cim.layers import CrossbarLinear
    from evaluators.cim.training import TrainConfig
    from evaluators.cim.training.binary_sddhr import MRAMInstances
    from evaluators.cim.training.registry import build_method, variant_of

    model = torch.nn.Sequential(CrossbarLinear(8, 4, binary=True))
    mram = get_device("mram")
    assert variant_of(model, mram) == "binary_mram"
    assert variant_of(model, get_device("reram")) == "analog"
    built = build_method(TrainConfig(method=method), model, mram, torch.zeros(2, 8), None)
    # s_ddhr: seed 000's per-cell MTJ instances; ddhr: the evaluator's chip z_0 on any device
    assert isinstance(built.make(), MRAMInstances) == (method == "s_ddhr")

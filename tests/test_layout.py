"""The packages' layers, read from the source: every import (at module level or inside a function, and
`importlib.import_module` of a constant name) between the project's modules.

    runtime < engine_bridge < demo_game < shotstream (the command line, on top)
    storyworld: only itself; distill: runtime, storyworld and itself; nothing of the serving path imports either

No import circle between modules, no import up the layers, and no module over MAX_LINES lines unless its docstring
says why ("Long module: ...")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "engine_bridge", "demo_game", "shotstream", "distill", "storyworld")
LAYER = {"runtime": 0, "engine_bridge": 1, "demo_game": 2, "shotstream": 3}
MAY_IMPORT = {"storyworld": {"storyworld"}, "distill": {"distill", "runtime", "storyworld"}}
MAX_LINES = 350
GENERATED = ("engine_bridge/_gen/",)  # protoc's output


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module `name` is, or lies in (an imported attribute resolves to its module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found.update(m for m in map(_resolve, names) if m)
    return found


GRAPH = {module: imports_of(path) - {module} for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return out


def test_the_reader_sees_every_kind_of_import():
    assert "runtime.engine" in GRAPH["runtime"]  # from runtime.engine import Engine, in a package's __init__
    assert "runtime.official.loader" in GRAPH["runtime.model"]  # inside a function
    assert "engine_bridge.bench" in GRAPH["shotstream.bench"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_between_modules():
    assert _cycles(GRAPH) == []


def test_no_import_up_the_layers_and_training_stays_off_the_serving_path():
    wrong = []
    for module, deps in GRAPH.items():
        package = module.split(".")[0]
        for dep in deps:
            target = dep.split(".")[0]
            if package in MAY_IMPORT:
                ok = target in MAY_IMPORT[package]
            else:
                ok = target in LAYER and LAYER[target] <= LAYER[package]
            if not ok:
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_long_module_says_why(module):
    path = MODULES[module]
    if any(str(path.relative_to(REPO)).startswith(g) for g in GENERATED):
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines > MAX_LINES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert "Long module:" in doc, f"{path.relative_to(REPO)}: {lines} lines, and its docstring does not say why"

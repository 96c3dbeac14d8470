"""The import graph of ciaoweb and simulator has no circles, not even inside functions.

Python tolerates a circle hidden in a function-local import, but it is a design smell:
two modules that need each other are one module, or share a third they should both
import. Every `import`/`from … import` counts, wherever it is written (module level,
function, `if TYPE_CHECKING:`), and so does `importlib.import_module` of a literal or of
a module-level string constant: a late-bound import is still an import.

The layers also stay apart: the simulator is plain Python (no Django, no ciaoweb) and the
node agent runs without Django.
"""

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TREES = ("ciaoweb", "simulator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Every module of the trees, by dotted name (a package by its `__init__`)."""
    return {
        _module_name(path): path for tree in TREES for path in sorted((REPO / tree).rglob("*.py"))
    }


MODULES = _modules()


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "dotted.module"` assignments, for `import_module(NAME)`."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants[target.id] = node.value.value
    return constants


def _is_import_module(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == "import_module" and len(call.args) == 1


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(dotted name, line, is a candidate) of everything `module` imports, anywhere.

    Relative imports are resolved against the module's package. `from pkg import x`
    yields the candidate `pkg.x`, which counts only if it is a submodule, and `pkg`
    unless every imported name is a submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    constants = _string_constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = [f"{source}.{alias.name}" for alias in node.names]
            for name in submodules:
                yield name, node.lineno, True
            # The package itself counts when a name is not a submodule (parents are
            # imported first anyway, as for `import a.b`: that alone is no dependency).
            if not all(name in MODULES for name in submodules):
                yield source, node.lineno, False
        elif isinstance(node, ast.Call) and _is_import_module(node):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                yield argument.value, node.lineno, False
            elif isinstance(argument, ast.Name) and argument.id in constants:
                yield constants[argument.id], node.lineno, False


def _own_module(name: str) -> str | None:
    """The ciaoweb/simulator module a dotted import name lands in (None = third party)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported own module: first line importing it}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for name, line, candidate in imported_names(module, path):
            target = (name if name in MODULES else None) if candidate else _own_module(name)
            if target is not None and target != module:
                edges.setdefault(target, line)
    return graph


def _shortest_path(graph: dict[str, dict[str, int]], start: str, goal: str) -> list[str] | None:
    parents = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while path[-1] != start:
                path.append(parents[path[-1]])
            return path[::-1]
        for target in sorted(graph[node]):
            if target not in parents:
                parents[target] = node
                queue.append(target)
    return None


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The shortest cycle through every import that lies on one, without repeats: each
    circle to cut shows up, not only the shortest one through each module."""
    found: dict[tuple[str, ...], list[str]] = {}
    for source in sorted(graph):
        for target in sorted(graph[source]):
            back = _shortest_path(graph, target, source)
            if back is None:
                continue
            chain = [source] + back[:-1]
            first = chain.index(min(chain))  # one rotation, so a cycle is listed once
            chain = chain[first:] + chain[:first]
            found.setdefault(tuple(chain), chain)
    return sorted(found.values())


def _describe(chain: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [f"{chain[0]}"]
    for source, target in zip(chain, chain[1:] + chain[:1], strict=True):
        steps.append(f"  --(line {graph[source][target]})--> {target}")
    return "\n".join(steps)


def test_the_parser_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "fake.py"
    source.write_text(
        "from . import models, no_such_name\n"
        "from ..core import exceptions\n"
        "BROADCAST = 'ciaoweb.events.broadcast'\n"
        "def later():\n"
        "    from ciaoweb.networks.api.serializers import LeaseSerializer\n"
        "    import ciaoweb.tenancy.access\n"
        "    return importlib.import_module(BROADCAST)\n"
    )
    found = {
        (name, line)
        for name, line, candidate in imported_names("ciaoweb.events.fake", source)
        if not candidate or name in MODULES
    }
    assert found == {
        ("ciaoweb.events.models", 1),
        ("ciaoweb.events", 1),  # `no_such_name` is no submodule: from the package itself
        ("ciaoweb.core.exceptions", 2),  # a submodule only: not `ciaoweb.core`
        ("ciaoweb.networks.api.serializers", 5),
        ("ciaoweb.tenancy.access", 6),
        ("ciaoweb.events.broadcast", 7),
    }


def test_the_graph_covers_both_trees():
    graph = import_graph()
    assert "simulator.core" in graph["simulator"]  # `from .core import Simulator`
    assert "ciaoweb.events.models" in graph["ciaoweb.events.services"]
    assert len(graph) == len(MODULES) > 100


def test_no_import_cycles():
    graph = import_graph()
    cycles = _cycles(graph)
    report = "\n\n".join(_describe(chain, graph) for chain in cycles)
    assert not cycles, f"{len(cycles)} import cycles:\n\n{report}"


def _reach(tree: str, graph: dict[str, dict[str, int]]) -> dict[str, str]:
    """Every own module that importing `tree` runs -> the module that imports it first
    (parent packages included: importing `a.b.c` runs `a/__init__` and `a/b/__init__`)."""
    reached = {m: m for m in graph if m == tree or m.startswith(f"{tree}.")}
    queue = deque(sorted(reached))
    while queue:
        module = queue.popleft()
        parts = module.split(".")
        parents = {".".join(parts[:i]) for i in range(1, len(parts))} & MODULES.keys()
        for target in sorted(set(graph[module]) | parents):
            if target not in reached:
                reached[target] = module
                queue.append(target)
    return reached


def _forbidden_imports(tree: str, forbidden: tuple[str, ...]) -> list[str]:
    """Where the code that `tree` runs imports a forbidden top-level package."""
    graph = import_graph()
    offences = set()
    for module, importer in _reach(tree, graph).items():
        via = "" if importer == module else f" (reached from {importer})"
        for name, line, candidate in imported_names(module, MODULES[module]):
            if not candidate and name.split(".")[0] in forbidden:
                offences.add(f"{MODULES[module].relative_to(REPO)}:{line} imports {name}{via}")
    return sorted(offences)


@pytest.mark.parametrize(
    ("tree", "forbidden"),
    [("simulator", ("django", "rest_framework", "ciaoweb")), ("ciaoweb.agent", ("django",))],
    ids=["simulator", "agent"],
)
def test_layers_stay_apart(tree, forbidden):
    """Neither directly nor through a ciaoweb module it imports."""
    assert _forbidden_imports(tree, forbidden) == []

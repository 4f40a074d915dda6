"""The package's shape holds: capability folders, one-way imports, the solver behind model/."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flux_opt"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """flux_opt modules (and third-party roots) imported by a file; lazy imports inside functions
    are skipped when `top_level_only` (they cannot make an import cycle at load time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _graph(top_level_only: bool = True) -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p, top_level_only) if i in modules and i != m} for m, p in modules.items()}


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_package_inits_hold_only_a_docstring():
    for init in PACKAGE.rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        if init.parent == PACKAGE:  # flux_opt/__init__ also carries the version
            body = [n for n in body if not (isinstance(n, ast.Assign) and n.targets[0].id == "__version__")]
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init


def test_only_the_model_package_talks_to_a_solver():
    for path in PACKAGE.rglob("*.py"):
        if PACKAGE / "model" in path.parents:
            continue
        solvers = {i for i in _imports(path, top_level_only=False) if i.split(".")[0] in ("highspy", "pyomo")}
        assert not solvers, (path, solvers)


def test_capability_folders_leave_few_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
